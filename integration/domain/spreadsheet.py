"""The one rule for a CSV cell the service writes (the mappings export, the backfill report, the
totals report): a spreadsheet must not run it.

Excel, LibreOffice and Google Sheets read a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a
formula (``=HYPERLINK(...)``, ``=cmd|...``), and a leading tab or line break can hide such a start;
OWASP's CSV-injection advice is to prefix those cells with ``'``. The IDs and names in these files come
from the vendors, so any of them can start that way. WHY the compatibility forms too: a spreadsheet
set up for East Asian input folds a full-width ``＝`` (U+FF1D), ``＋``, ``－``, ``＠`` — and their small
and superscript cousins (``﹦``, ``⁼``…) — to the ASCII sign and runs the formula, so the first
character is compared after NFKC folding as well as as it is.
"""
from __future__ import annotations

import unicodedata

FORMULA_STARTS = frozenset("=+-@\t\r\n")


def starts_like_a_formula(text: str) -> bool:
    """Whether a spreadsheet could take ``text`` for a formula (its first character, folded or not)."""
    first = text[:1]
    return bool(first) and (first in FORMULA_STARTS or unicodedata.normalize("NFKC", first)[:1] in FORMULA_STARTS)


def spreadsheet_cell(value: object) -> str:
    """``value`` as a CSV cell a spreadsheet shows as text: a leading ``'`` when it starts like a formula."""
    text = "" if value is None else str(value)
    return "'" + text if starts_like_a_formula(text) else text
