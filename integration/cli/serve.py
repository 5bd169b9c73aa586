"""``integration serve`` and ``integration worker``: the web server with its supervised worker, and the worker alone."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import click

from integration.cli.exits import config_or_exit, migrate_or_exit, plugins_or_exit
from integration.config import load_database_url
from integration.store.db import Database


@click.command("worker")
@click.option("--poll-interval", default=0.1, show_default=True, help="Seconds between checks for new events.")
def worker_command(poll_interval: float) -> None:
    """Run the worker alone: claim events from the inbox and sync them (Procfile ``worker``).

    SIGTERM finishes the event in hand and exits; an event interrupted harder (SIGKILL) is
    claimed again once its lease expires.
    """
    from integration.flows import build_handlers
    from integration.logs import configure_logging
    from integration.services import Services
    from integration.worker.alerts import AlertJob
    from integration.worker.housekeeping import ForgetDeliveriesJob
    from integration.worker.loop import Worker
    from integration.worker.reconcile import ReconcileJob
    from integration.worker.scheduled_retry import scheduled_retry_job

    config = config_or_exit()
    plugins_or_exit()
    configure_logging(config.secrets())
    services = Services.from_config(config)
    migrate_or_exit(services.db)
    runner = Worker(services.inbox, build_handlers(services), poll_interval=poll_interval,
                    periodic=[scheduled_retry_job(services), AlertJob(services), ReconcileJob(services),
                              ForgetDeliveriesJob(services)])
    runner.install_signal_handlers()
    runner.run()


@click.command("serve")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 256),
              help="gunicorn worker processes.")
@click.option("--port", default=lambda: os.environ.get("PORT", "8000"), show_default="$PORT or 8000",
              type=click.IntRange(1, 65535))
@click.option("--host", default="0.0.0.0", show_default=True)  # noqa: S104 - a server: all interfaces is the point
@click.option("--no-worker", is_flag=True, help="Web only; run `integration worker` elsewhere.")
def serve_command(workers: int, port: int, host: str, no_worker: bool) -> None:
    """Web server (gunicorn) plus an embedded worker, in one command.

    The worker runs as a supervised child process: if it dies it is restarted, sooner after a
    long run than after a quick crash (0.5 s doubling to 30 s), and SIGTERM stops both
    gracefully (the worker finishes the event in hand).
    """
    from integration.cli.supervise import RestartPolicy, listen_problem

    config_or_exit()
    if not no_worker:
        plugins_or_exit()
    if problem := listen_problem(host, port):
        click.echo(f"error: {problem} (set by --port or $PORT, and --host)", err=True)
        sys.exit(1)
    migrate_or_exit(Database(load_database_url(os.environ), busy_timeout=60))
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
