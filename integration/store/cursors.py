"""Opaque page cursors for the admin lists: a row position, tagged with the list it belongs to,
so a cursor from one list is refused by another."""
from __future__ import annotations

import base64


def encode(kind: str, position: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{position}".encode()).decode().rstrip("=")


def decode(kind: str, cursor: str) -> int:
    """The position behind a cursor of list ``kind``; ValueError when it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()).decode()
    except (ValueError, UnicodeError) as exc:
        raise ValueError("not a cursor") from exc
    prefix, _, number = text.partition(":")
    if prefix != kind or not number.isdigit() or len(number) > 18:
        raise ValueError("not a cursor")
    return int(number)
