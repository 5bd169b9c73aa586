"""The ``integration`` command (CONTRACT §1): demo, serve, worker, migrate, sandbox, check.

An operator's mistake (a missing variable, a store that cannot be opened, a busy port, a plug-in
that does not import) ends a command with one line on stderr that names the setting, and a
non-zero exit: 2 for configuration, 1 for the rest. Tracebacks are for bugs.
"""
from __future__ import annotations

import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import click

from integration.config import (
    Config,
    ConfigError,
    database_path,
    load_config,
    load_database_url,
)
from integration.flows.plugins import PluginError, handler_plugins
from integration.store.db import Database, StoreUnavailable
from integration.store.engine import display_url


def _config_or_exit() -> Config:
    try:
        return load_config(os.environ)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


def _plugins_or_exit() -> None:
    """Import every INTEGRATION_HANDLER_PLUGINS entry now, so a bad one is one line, not a crash later."""
    try:
        handler_plugins(os.environ)
    except PluginError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


def _migrate_or_exit(db: Database) -> list[str]:
    """Apply pending migrations; a store that cannot be opened or written ends the command in one line."""
    try:
        return db.migrate()
    except (OSError, StoreUnavailable) as exc:
        path = database_path(db.url)
        if path is None:  # PostgreSQL: the server's own words, the URL without its password
            click.echo(f"error: cannot open the store {display_url(db.url)} (DATABASE_URL): "
                       f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}", err=True)
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="zuora-billing-integration", prog_name="integration")
def main() -> None:
    """Keep a Zuora tenant and a Togai-compatible billing platform in step.

    Configuration comes from the environment (see docs/configuration.md). Every command that needs it
    checks all of it first and names each missing or malformed variable.
    """


@main.command()
@click.option("--keep-running", is_flag=True, help="Leave everything up and print the URLs and credentials.")
def demo(keep_running: bool) -> None:
    """Run every flow once against the built-in sandboxes and report whether each reached its end state.

    Needs no configuration: the store lives in a temporary folder and the sandboxes generate the
    credentials the service is given.
    """
    from integration_sandbox.demo import run_demo

    sys.exit(run_demo(sys.stdout, keep_running=keep_running))


@main.command()
def migrate() -> None:
    """Apply the bundled SQL migrations in order (safe to run twice, or from two processes)."""
    try:
        url = load_database_url(os.environ)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    applied = _migrate_or_exit(Database(url, busy_timeout=60))
    click.echo(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))


@main.command()
@click.option("--poll-interval", default=0.1, show_default=True, help="Seconds between checks for new events.")
def worker(poll_interval: float) -> None:
    """Run the worker alone: claim events from the inbox and sync them (Procfile ``worker``).

    SIGTERM finishes the event in hand and exits; an event interrupted harder (SIGKILL) is
    claimed again once its lease expires.
    """
    from integration.flows import build_handlers
    from integration.logs import configure_logging
    from integration.services import Services
    from integration.worker.loop import Worker
    from integration.worker.scheduled_retry import scheduled_retry_job

    config = _config_or_exit()
    _plugins_or_exit()
    configure_logging(config.secrets())
    services = Services.from_config(config)
    _migrate_or_exit(services.db)
    runner = Worker(services.inbox, build_handlers(services), poll_interval=poll_interval,
                    periodic=[scheduled_retry_job(services)])
    runner.install_signal_handlers()
    runner.run()


@main.command()
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 256),
              help="gunicorn worker processes.")
@click.option("--port", default=lambda: os.environ.get("PORT", "8000"), show_default="$PORT or 8000",
              type=click.IntRange(1, 65535))
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--no-worker", is_flag=True, help="Web only; run `integration worker` elsewhere.")
def serve(workers: int, port: int, host: str, no_worker: bool) -> None:
    """Web server (gunicorn) plus an embedded worker, in one command.

    The worker runs as a supervised child process: if it dies it is restarted, sooner after a
    long run than after a quick crash (0.5 s doubling to 30 s), and SIGTERM stops both
    gracefully (the worker finishes the event in hand).
    """
    from integration.cli.supervise import RestartPolicy, listen_problem

    _config_or_exit()
    if not no_worker:
        _plugins_or_exit()
    if problem := listen_problem(host, port):
        click.echo(f"error: {problem} (set by --port or $PORT, and --host)", err=True)
        sys.exit(1)
    _migrate_or_exit(Database(load_database_url(os.environ), busy_timeout=60))
    own_metrics_dir = None
    env = dict(os.environ)
    if not env.get("PROMETHEUS_MULTIPROC_DIR"):
        own_metrics_dir = tempfile.mkdtemp(prefix="integration-metrics-")
        env["PROMETHEUS_MULTIPROC_DIR"] = own_metrics_dir
    web_cmd = [sys.executable, "-m", "gunicorn", "-c", "python:integration.gunicorn_conf",
               "--workers", str(workers), "--bind", f"{host}:{port}", "integration:create_app()"]
    worker_cmd = [sys.executable, "-m", "integration", "worker"]
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    web = subprocess.Popen(web_cmd, env=env)
    work = None if no_worker else subprocess.Popen(worker_cmd, env=env)
    click.echo(f"serving on http://{host}:{port} (web pid {web.pid}"
               + (f", worker pid {work.pid})" if work else ", no worker)"), err=True)
    exit_code = 0
    restarts = RestartPolicy()
    started_at, restart_at = time.monotonic(), None
    try:
        while not stopping:
            if web.poll() is not None:
                click.echo(f"gunicorn exited with {web.returncode}", err=True)
                exit_code = web.returncode or 1
                break
            if work is not None and restart_at is None and work.poll() is not None:
                delay = restarts.delay(time.monotonic() - started_at)
                click.echo(f"worker exited with {work.returncode}; restarting it in {delay:g} s", err=True)
                restart_at = time.monotonic() + delay
            if restart_at is not None and time.monotonic() >= restart_at:
                work = subprocess.Popen(worker_cmd, env=env)
                started_at, restart_at = time.monotonic(), None
            time.sleep(0.2)
    finally:
        for child in (work, web):
            if child is not None and child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in (work, web):
            if child is not None:
                try:
                    child.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    child.kill()
        if own_metrics_dir:
            shutil.rmtree(own_metrics_dir, ignore_errors=True)
    sys.exit(exit_code)


@main.command()
@click.option("--zuora-port", default=8101, show_default=True, type=click.IntRange(0, 65535))
@click.option("--billing-port", default=8102, show_default=True, type=click.IntRange(0, 65535))
@click.option("--callout-url", default=None, help="Where the Zuora sandbox sends account-created callouts.")
@click.option("--callout-username", default="zuora-callouts", show_default=True,
              help="Basic credentials the callouts carry after a challenge.")
@click.option("--callout-password", default=None, show_default="generated")
@click.option("--billing-webhook-url", default=None, help="Where the billing sandbox sends signed events.")
@click.option("--webhook-secret", default=None, show_default="generated",
              help="whsec_… secret the billing events are signed with.")
def sandbox(zuora_port: int, billing_port: int, callout_url: str | None, callout_username: str | None,
            callout_password: str | None, billing_webhook_url: str | None, webhook_secret: str | None) -> None:
    """Run the Zuora and billing-platform sandboxes alone, for local development.

    Prints the service's settings for them as shell ``export`` lines, ready to ``source``:
    the URLs, the credentials both sandboxes accept, and the callout credentials the Zuora
    sandbox sends. Ctrl+C (or SIGTERM) stops them.
    """
    from integration.cli.supervise import listen_problem
    from integration_sandbox.billing import create_billing_sandbox
    from integration_sandbox.server import ServerThread
    from integration_sandbox.zuora import create_zuora_sandbox

    for port, option in ((zuora_port, "--zuora-port"), (billing_port, "--billing-port")):
        if port and (problem := listen_problem("127.0.0.1", port)):
            click.echo(f"error: {problem} ({option})", err=True)
            sys.exit(1)
    callout_password = callout_password or secrets.token_urlsafe(18)
    try:
        zuora_app = create_zuora_sandbox(callout_url=callout_url, callout_username=callout_username,
                                         callout_password=callout_password)
        billing_app = create_billing_sandbox(webhook_url=billing_webhook_url, webhook_secret=webhook_secret)
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    servers = [ServerThread(zuora_app, port=zuora_port).start(), ServerThread(billing_app, port=billing_port).start()]
    zuora, billing = servers
    zuora_state = zuora_app.extensions["zuora_sandbox"]
    billing_state = billing_app.extensions["billing_sandbox"]
    settings = {
        "ZUORA_BASE_URL": zuora.url,
        "ZUORA_CLIENT_ID": zuora_state.client_id,
        "ZUORA_CLIENT_SECRET": zuora_state.client_secret,
        "ZUORA_CALLOUT_USERNAME": callout_username,
        "ZUORA_CALLOUT_PASSWORD": callout_password,
        "BILLING_BASE_URL": billing.url,
        "BILLING_API_TOKEN": billing_state.api_token,
        "BILLING_WEBHOOK_SECRET": billing_state.webhook_secret,
    }
    click.echo(f"# Zuora sandbox {zuora.url}, billing sandbox {billing.url}: the service's settings for them.\n"
               "# Save this block to a file and `source` it; ADMIN_TOKEN is yours to choose.\n"
               + "".join(f"export {name}={shlex.quote(value)}\n" for name, value in settings.items())
               + "# Press Ctrl+C to stop.")
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    try:
        while not done.wait(0.5):
            pass
    finally:
        for server in servers:
            server.stop()


@main.command()
def check() -> None:
    """Check the configuration, the store, a Zuora token and the billing API, one line each.

    Exit 0 only if every check passes. A failing line names the setting to fix; no secret value
    is printed.
    """
    import logging

    from integration.cli.check import run_checks
    from integration.logs import RedactingFilter

    # The clients log each call; the check's own lines already say what happened.
    logging.getLogger("integration").addHandler(logging.NullHandler())
    logging.getLogger("integration").propagate = False
    results, known_secrets = run_checks(os.environ)
    redact = RedactingFilter(known_secrets)._clean
    for result in results:
        click.echo(redact(result.line()))
    passed = sum(result.ok for result in results)
    click.echo(f"{passed} of {len(results)} checks passed")
    sys.exit(0 if passed == len(results) else 1)
