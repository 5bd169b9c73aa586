"""What the operator commands (failures, mappings, link, events) share: the store from the
environment, output as a table or JSON, and exit codes a script can trust.

Exit codes: 0 done; 1 the command ran but did not get what was asked (an ID not found, a link
refused); 2 bad configuration or usage (click's own); 3 a link still queued when the wait ran out.
"""
from __future__ import annotations

import json
import os
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

import click

from integration.config import ConfigError, load_config
from integration.services import Services
from integration.store.db import StoreUnavailable

EXIT_NOT_DONE = 1
EXIT_CONFIG = 2
EXIT_QUEUED = 3


def fail(message: str, code: int = EXIT_NOT_DONE) -> NoReturn:
    """One line on stderr, then exit ``code``."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def services_or_exit() -> Services:
    """The store (and inbox) from the environment, migrated; exit 2 naming every bad variable,
    exit 1 when the store cannot be opened or lacks migrations."""
    try:
        config = load_config(os.environ)
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
    services = Services.from_config(config)
    try:
        pending = services.db.pending_migrations()
    except Exception as exc:  # noqa: BLE001 - any store trouble is one line, not a traceback
        fail(f"cannot open the store (DATABASE_URL): {type(exc).__name__}: {exc}")
    if pending:
        fail(f"the store is not migrated ({', '.join(pending)} pending): run `integration migrate` first")
    return services


def printable(value: Any) -> str:
    """A value safe for a terminal: control and format characters (an ESC from a hostile account
    name, say) shown as U+FFFD, never passed through."""
    text = "" if value is None else str(value)
    return "".join("\ufffd" if unicodedata.category(ch) in ("Cc", "Cf", "Cs") else ch for ch in text)


def echo_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


def echo_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, max_width: int = 60) -> int:
    """A plain aligned table with a header; long cells are cut with an ellipsis. Returns the row count."""
    cells = [[printable(c) for c in row] for row in rows]
    cells = [[c if len(c) <= max_width else c[:max_width - 1] + "…" for c in row] for row in cells]
    widths = [max([len(col)] + [len(row[i]) for row in cells]) for i, col in enumerate(columns)]
    click.echo("  ".join(col.upper().ljust(w) for col, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip())
    return len(cells)


def guard_store(function):
    """A busy or vanished store ends the command in one line (exit 1), not a traceback."""
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except StoreUnavailable as exc:
            fail(f"the store is busy or unavailable ({exc}); try again")
    wrapper.__name__, wrapper.__doc__ = function.__name__, function.__doc__
    return wrapper
