"""``integration demo`` and ``integration sandbox``: the built-in sandboxes, with the service or alone.

``demo`` runs every flow once against them with nothing to configure; ``sandbox`` runs them alone
for local development and prints the service's settings for them.
"""
from __future__ import annotations

import secrets
import shlex
import signal
import sys
import threading

import click

from integration.config import MAKE_A_TOKEN


@click.command("demo")
@click.option("--keep-running", is_flag=True, help="Leave everything up and print the URLs and credentials.")
def demo_command(keep_running: bool) -> None:
    """Run every flow once against the built-in sandboxes and report whether each reached its end state.

    Needs no configuration: the store lives in a temporary folder and the sandboxes generate the
    credentials the service is given.
    """
    from integration_sandbox.demo import run_demo

    sys.exit(run_demo(sys.stdout, keep_running=keep_running))


@click.command("sandbox")
@click.option("--zuora-port", default=8101, show_default=True, type=click.IntRange(0, 65535))
@click.option("--billing-port", default=8102, show_default=True, type=click.IntRange(0, 65535))
@click.option("--callout-url", default=None, help="Where the Zuora sandbox sends account-created callouts.")
@click.option("--callout-username", default="zuora-callouts", show_default=True,
              help="Basic credentials the callouts carry after a challenge.")
@click.option("--callout-password", default=None, show_default="generated")
@click.option("--billing-webhook-url", default=None, help="Where the billing sandbox sends signed events.")
@click.option("--webhook-secret", default=None, show_default="generated",
              help="whsec_… secret the billing events are signed with.")
def sandbox_command(zuora_port: int, billing_port: int, callout_url: str | None, callout_username: str | None,
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
               "# Save this block to a file and `source` it; ADMIN_TOKEN is yours to make (24+ characters):\n"
               f"#   export ADMIN_TOKEN=$({MAKE_A_TOKEN})\n"
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
