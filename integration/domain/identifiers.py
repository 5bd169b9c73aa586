"""The one rule every identifier from outside must pass (CONTRACT §3): printable, no whitespace.

Identifiers (a Zuora ``AccountId``, a billing ``data.id``, the ``webhook-id`` and
``Zuora-Notification-Id`` headers, the IDs an operator gives ``/admin/sync`` or a filter) end up in
the store, in log lines, in URLs the worker builds and in CSV imports. A lone UTF-16 surrogate cannot
be encoded at all (SQLite and the JSON logger fail on it); a NUL, an ESC or a C1 control corrupts a
terminal or a CSV line; a zero-width space or a right-to-left override (U+200B, U+202E, U+FEFF) makes
two IDs look alike to a human. So every entry point refuses them with a 400 naming the field, here,
before anything is stored.

Refused: the Unicode categories Cc (controls, C0 and C1 and DEL), Cf (format), Cs (surrogates),
Co (private use), Cn (unassigned), Zl and Zp (line and paragraph separators), and any whitespace.
"""
from __future__ import annotations

import unicodedata

from marshmallow import ValidationError, validate

NOT_PRINTABLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
WHITESPACE_MESSAGE = "must not contain whitespace"
NOT_PRINTABLE_MESSAGE = "must contain only printable characters (no control, format or surrogate characters)"


def identifier_problem(value: str) -> str | None:
    """Why ``value`` is not an acceptable identifier, or None when it is.

    Whitespace is reported first, so an ID with a space keeps the message it always had.
    """
    if any(char.isspace() for char in value):
        return WHITESPACE_MESSAGE
    return printable_problem(value)


def printable_problem(value: str) -> str | None:
    """``NOT_PRINTABLE_MESSAGE`` when ``value`` holds a character of the refused categories, else None.

    The looser rule, for what an operator types to look something up (a search, an ID in a path or
    an argument): a space there finds nothing and harms nothing, but a NUL cannot even be put to
    PostgreSQL (the query fails, which would read as "store unavailable") and a lone surrogate
    cannot be encoded for either engine; no record has either, so the answer is a 400 naming the field.
    """
    if any(unicodedata.category(char) in NOT_PRINTABLE_CATEGORIES for char in value):
        return NOT_PRINTABLE_MESSAGE
    return None


class Identifier(validate.Validator):
    """The marshmallow form of ``identifier_problem``, for every schema field that holds an ID."""

    def __call__(self, value: str) -> str:
        problem = identifier_problem(value)
        if problem is not None:
            raise ValidationError(problem)
        return value


IDENTIFIER = Identifier()
