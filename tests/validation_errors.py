"""Which fields a refusal named, read from its structure, not from the words a library wrote.

marshmallow writes the sentences of a 400's ``detail`` ("Not a valid string.", "Length must be between
1 and 64.") and may reword them in any release; the fields it names are the project's contract. A test
parametrised with a ``set`` of field paths checks only which fields were wrong; one given the whole
detail (a ``dict``, or a ``str`` for the billing sandbox's flat messages) checks wording the project
wrote itself (integration/, integration_sandbox/), verbatim.
"""
from __future__ import annotations

from typing import Any


def wrong_fields(detail: Any, prefix: str = "") -> set[str]:
    """The dotted paths of a marshmallow-style error detail: nested dicts keyed by field name or list
    index, each leaf a non-empty list of non-empty strings. ``{"ids": {"0": [...]}}`` → ``{"ids.0"}``.
    ``_schema`` is marshmallow's key for the object that holds it, so it names that object:
    ``{"data": {"_schema": [...]}}`` → ``{"data"}`` (at the top, the body as a whole: ``""``)."""
    if isinstance(detail, dict):
        assert detail, f"an empty error object at {prefix[:-1] or '(top)'}"
        return {path for key, inner in detail.items()
                for path in wrong_fields(inner, prefix if key == "_schema" else f"{prefix}{key}.")}
    assert isinstance(detail, list) and detail, f"{prefix[:-1]}: {detail!r} is not a list of messages"
    assert all(isinstance(m, str) and m.strip() for m in detail), f"{prefix[:-1]}: {detail!r} has an empty message"
    return {prefix[:-1]}


def assert_detail(detail: Any, expected: set[str] | Any) -> None:
    """``expected`` is the set of field paths (a library's wording: only the fields count) or the whole
    detail (the project's own wording: compared as it is)."""
    if isinstance(expected, (set, frozenset)):
        assert wrong_fields(detail) == expected, detail
    else:
        assert detail == expected


def assert_refusal(body: Any, error: str, expected: set[str] | Any) -> None:
    """A refusal's JSON body: exactly ``{"error": error, "detail": ...}``, its detail as :func:`assert_detail`."""
    assert isinstance(body, dict) and body.keys() == {"error", "detail"}, body
    assert body["error"] == error, body
    assert_detail(body["detail"], expected)


def flat_wrong_fields(message: str) -> set[str]:
    """The field paths of the billing sandbox's flat refusal, ``"<path>: <text>; <path>: <text>"``
    (integration_sandbox/billing/schemas.py ``_flatten``): the part before each ``": "``."""
    assert isinstance(message, str) and message, message
    paths = set()
    for part in message.split("; "):
        path, sep, text = part.partition(": ")
        assert sep and path and text.strip(), f"{part!r} is not '<field path>: <message>'"
        paths.add(path)
    return paths


def assert_message(message: str, expected: set[str] | str) -> None:
    """As :func:`assert_detail`, for the billing sandbox's flat ``message``."""
    if isinstance(expected, (set, frozenset)):
        assert flat_wrong_fields(message) == expected, message
    else:
        assert message == expected
