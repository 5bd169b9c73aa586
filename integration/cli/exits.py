"""How a command ends on an operator's mistake: one line on stderr naming the setting, and an exit code.

A missing variable, a store that cannot be opened or a plug-in that does not import ends the
command with 2 (configuration) or 1 (the rest) and one line, never a traceback: tracebacks are
for bugs. Every command that needs configuration, plug-ins or the store goes through these.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from integration.config import Config, ConfigError, database_path, load_config
from integration.flows.plugins import PluginError, handler_plugins
from integration.store.db import Database, StoreUnavailable
from integration.store.engine import display_url


def config_or_exit() -> Config:
    """The whole configuration, or exit 2 with the line that names every bad variable."""
    try:
        return load_config(os.environ)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


def plugins_or_exit() -> None:
    """Import every INTEGRATION_HANDLER_PLUGINS entry now, so a bad one is one line, not a crash later."""
    try:
        handler_plugins(os.environ)
    except PluginError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


def migrate_or_exit(db: Database) -> list[str]:
    """Apply pending migrations; a store that cannot be opened or written ends the command in one line."""
    try:
        return db.migrate()
    except (OSError, StoreUnavailable) as exc:
        path = database_path(db.url)
        if path is None:  # PostgreSQL: the server's own words, the URL without its password
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            click.echo(f"error: cannot open the store {display_url(db.url)} (DATABASE_URL): {reason}", err=True)
            sys.exit(1)
        click.echo(f"error: cannot open the store {path} (DATABASE_URL): {_path_problem(path, exc)}", err=True)
        sys.exit(1)


def _path_problem(path: str, exc: Exception) -> str:
    """What is wrong with a store path, in words: the nearest existing folder on the way decides."""
    for parent in Path(path).absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                return f"{parent} is not a folder"
            if not os.access(parent, os.W_OK):
                return f"{parent} is not writable"
            break
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc)
