"""``integration migrate``: apply the bundled migrations (``integration.store.migrate``), alone (a release step)."""
from __future__ import annotations

import os
import sys

import click

from integration.cli.exits import migrate_or_exit
from integration.config import ConfigError, load_database_url
from integration.store.db import Database


@click.command("migrate")
def migrate_command() -> None:
    """Apply the bundled migrations in order (safe to run twice, or from two processes)."""
    try:
        url = load_database_url(os.environ)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    applied = migrate_or_exit(Database(url, busy_timeout=60))
    click.echo(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))
