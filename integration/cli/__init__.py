"""The ``integration`` command (CONTRACT §1): demo, serve, worker, migrate, sandbox, check.

An operator's mistake (a missing variable, a store that cannot be opened, a busy port, a plug-in
that does not import) ends a command with one line on stderr that names the setting, and a
non-zero exit: 2 for configuration, 1 for the rest (``integration.cli.exits``). Tracebacks are
for bugs. One module per command group: ``serve`` (serve and worker), ``migrate``, ``sandboxes`` (demo and
sandbox), ``check``; this one holds the group they join.
"""
from __future__ import annotations

import click

from integration.cli import backfill, events, failures, links, mappings, reconcile, report
from integration.cli.check import check_command
from integration.cli.migrate import migrate_command
from integration.cli.sandboxes import demo_command, sandbox_command
from integration.cli.serve import serve_command, worker_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="zuora-billing-integration", prog_name="integration")
def main() -> None:
    """Keep a Zuora tenant and a Togai-compatible billing platform in step.

    Configuration comes from the environment (see docs/configuration.md). Every command that needs it
    checks all of it first and names each missing or malformed variable.
    """


for command in (demo_command, migrate_command, worker_command, serve_command, sandbox_command, check_command,
                failures.failures, mappings.mappings, links.link, events.events, reconcile.reconcile,
                report.report, backfill.backfill):
    main.add_command(command)
