"""A test handler plugged into real `integration serve` / `integration worker` processes
through INTEGRATION_HANDLER_PLUGINS. It logs each start and finish to $TEST_HANDLER_LOG; an
account ID starting with "slow" takes $TEST_HANDLER_SLOW seconds on its first attempt."""
import os
import time

from integration.flows.outcome import Outcome


def handlers(services):
    log_path = os.environ["TEST_HANDLER_LOG"]

    def write(line):
        with open(log_path, "a") as f:
            f.write(line + "\n")
            f.flush()

    def handle(event):
        write(f"start {event.id} {os.getpid()} {event.attempts}")
        if event.object_id.startswith("slow") and event.attempts == 1:
            time.sleep(float(os.environ.get("TEST_HANDLER_SLOW", "30")))
        write(f"done {event.id} {os.getpid()} {event.attempts}")
        return Outcome(summary="test handler")

    return {"account.callout": handle}
