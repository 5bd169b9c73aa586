"""What a test may assert about a 400's ``detail``: which fields were wrong, not the sentence a library wrote.

marshmallow words its messages ("Missing data for required field.", "Not a valid string.") and may reword
them in any release; the project's promise is the field path (CONTRACT §3: "a 400 naming the field").
"""
from __future__ import annotations

from typing import Any


def bad_fields(detail: Any, prefix: str = "") -> set[str]:
    """The dotted paths of the fields ``detail`` names, each checked to carry a non-empty list of messages."""
    assert isinstance(detail, dict) and detail, detail
    paths: set[str] = set()
    for name, value in detail.items():
        path = f"{prefix}{name}"
        if isinstance(value, dict):
            paths |= bad_fields(value, f"{path}.")
        else:
            assert isinstance(value, list) and value and all(isinstance(m, str) and m for m in value), (path, value)
            paths.add(path)
    return paths
