"""CSV cells a spreadsheet would run are neutralized — the full-width and other compatibility forms of
``= + - @`` too (issue 23, item 6) — in every CSV the service writes; the console's export on both
engines."""
from __future__ import annotations

import csv
import io

import pytest

from integration.cli.backfill import cell
from integration.domain.spreadsheet import spreadsheet_cell
from integration.store import mappings
from tests.test_console import sign_in

pytestmark = pytest.mark.both_engines  # SQLite and PostgreSQL (tests/conftest.py)

FORMULAS = {
    "ASCII =": "=cmd|' /C calc'!A0", "ASCII +": "+1+1", "ASCII -": "-2+3", "ASCII @": "@SUM(1)",
    "tab": "\t=1+1", "CR": "\r=1+1", "LF": "\n=1+1",
    "full-width ＝": "＝HYPERLINK(\"http://x\")", "full-width ＋": "＋1+1", "full-width －": "－2+3",
    "full-width ＠": "＠SUM(1)", "small ﹦": "﹦1+1", "small ﹢": "﹢1", "small ﹣": "﹣1", "small ﹫": "﹫SUM(1)",
    "superscript ⁼": "⁼1+1", "subscript ₊": "₊1",
}


@pytest.mark.parametrize("text", FORMULAS.values(), ids=FORMULAS.keys())
def test_a_cell_that_starts_like_a_formula_is_quoted(text):
    assert spreadsheet_cell(text) == "'" + text
    assert cell(text) == "'" + text  # the backfill report's cells follow the same rule


@pytest.mark.parametrize("text", ["acc-1", "A00000001", "8ad09be4", "a=b", "x@y.example", "Ｚ1", "'=quoted", "", None])
def test_other_cells_are_left_as_they_are(text):
    assert spreadsheet_cell(text) == ("" if text is None else text)


def test_the_console_export_neutralizes_full_width_formulas(client, services):
    with services.db.transaction() as conn:
        mappings.link("account", zuora_id="Z1", zuora_number="＠SUM(A1)", billing_id="＝cmd()", origin="linked")(conn)
        mappings.link("account", zuora_id="＋Z2", zuora_number="－1", billing_id="B2", origin="zuora")(conn)
    assert sign_in(client).status_code == 302
    rows = list(csv.DictReader(io.StringIO(client.get("/console/mappings.csv").get_data(as_text=True))))
    assert [(r["zuora_id"], r["zuora_number"], r["billing_id"]) for r in rows] == [
        ("Z1", "'＠SUM(A1)", "'＝cmd()"), ("'＋Z2", "'－1", "B2")]
