"""The ``integration`` command (CONTRACT §1): demo, serve, worker, migrate, sandbox."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import click

from .config import ConfigError, Config, load_config, load_database_url
from .db import Database


def _config_or_exit() -> Config:
    try:
        return load_config(os.environ)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Keep a Zuora tenant and a Togai-compatible billing platform in step.

    Configuration comes from the environment (see the README). Every command that needs it
    checks all of it first and names each missing or malformed variable.
    """


@main.command()
@click.option("--keep-running", is_flag=True, help="Leave everything up and print the URLs and credentials.")
def demo(keep_running: bool) -> None:
    """Run every flow once against the built-in sandboxes and report whether each reached its end state.

    Needs no configuration: the store lives in a temporary folder and the sandboxes generate the
    credentials the service is given.
    """
    from .demo import run_demo

    sys.exit(run_demo(sys.stdout, keep_running=keep_running))


@main.command()
def migrate() -> None:
    """Apply the bundled SQL migrations in order (safe to run twice, or from two processes)."""
    try:
        url = load_database_url(os.environ)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    applied = Database(url, busy_timeout=60).migrate()
    click.echo(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))


@main.command()
@click.option("--poll-interval", default=0.1, show_default=True, help="Seconds between checks for new events.")
def worker(poll_interval: float) -> None:
    """Run the worker alone: claim events from the inbox and sync them (Procfile ``worker``).

    SIGTERM finishes the event in hand and exits; an event interrupted harder (SIGKILL) is
    claimed again once its lease expires.
    """
    from .flows import build_handlers
    from .logs import configure_logging
    from .scheduler import scheduled_retry_job
    from .services import Services
    from .worker import Worker

    config = _config_or_exit()
    configure_logging(config.secrets())
    services = Services.from_config(config)
    services.db.migrate()
    runner = Worker(services.inbox, build_handlers(services), poll_interval=poll_interval,
                    periodic=[scheduled_retry_job(services)])
    runner.install_signal_handlers()
    runner.run()


@main.command()
@click.option("--workers", default=2, show_default=True, help="gunicorn worker processes.")
@click.option("--port", default=lambda: int(os.environ.get("PORT", "8000")), show_default="$PORT or 8000")
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--no-worker", is_flag=True, help="Web only; run `integration worker` elsewhere.")
def serve(workers: int, port: int, host: str, no_worker: bool) -> None:
    """Web server (gunicorn) plus an embedded worker, in one command.

    The worker runs as a supervised child process: if it dies it is restarted, and SIGTERM
    stops both gracefully (the worker finishes the event in hand).
    """
    _config_or_exit()
    Database(load_database_url(os.environ), busy_timeout=60).migrate()
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
    try:
        while not stopping:
            if web.poll() is not None:
                click.echo(f"gunicorn exited with {web.returncode}", err=True)
                exit_code = web.returncode or 1
                break
            if work is not None and work.poll() is not None:
                click.echo(f"worker exited with {work.returncode}; restarting it", err=True)
                time.sleep(0.5)
                work = subprocess.Popen(worker_cmd, env=env)
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
@click.option("--zuora-port", default=8101, show_default=True)
@click.option("--billing-port", default=8102, show_default=True)
@click.option("--callout-url", default=None, help="Where the Zuora sandbox sends account-created callouts.")
@click.option("--callout-username", default=None, help="Basic credentials the callouts carry after a challenge.")
@click.option("--callout-password", default=None)
@click.option("--billing-webhook-url", default=None, help="Where the billing sandbox sends signed events.")
@click.option("--webhook-secret", default=None, help="whsec_… secret the billing events are signed with.")
def sandbox(zuora_port: int, billing_port: int, callout_url: str | None, callout_username: str | None,
            callout_password: str | None, billing_webhook_url: str | None, webhook_secret: str | None) -> None:
    """Run the Zuora and billing-platform sandboxes alone, for local development."""
    from .sandbox.billing import create_billing_sandbox
    from .sandbox.server import ServerThread
    from .sandbox.zuora import create_zuora_sandbox

    zuora_app = create_zuora_sandbox(callout_url=callout_url, callout_username=callout_username,
                                     callout_password=callout_password)
    billing_app = create_billing_sandbox(webhook_url=billing_webhook_url, webhook_secret=webhook_secret)
    zuora_state = zuora_app.extensions["zuora_sandbox"]
    billing_state = billing_app.extensions["billing_sandbox"]
    servers = [ServerThread(zuora_app, port=zuora_port).start(),
               ServerThread(billing_app, port=billing_port).start()]
    click.echo(f"Zuora sandbox:   {servers[0].url}\n"
               f"  ZUORA_CLIENT_ID={zuora_state.client_id}\n"
               f"  ZUORA_CLIENT_SECRET={zuora_state.client_secret}\n"
               f"Billing sandbox: {servers[1].url}\n"
               f"  BILLING_API_TOKEN={billing_state.api_token}\n"
               f"  BILLING_WEBHOOK_SECRET={billing_state.webhook_secret}\n"
               "Press Ctrl+C to stop.")
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    try:
        while not done.wait(0.5):
            pass
    finally:
        for server in servers:
            server.stop()
