"""A trivial handler for bench_worker_memory.py, loaded into a real ``integration worker`` process
through ``INTEGRATION_HANDLER_PLUGINS=noop_handler:handlers`` (with ``bench/`` on ``PYTHONPATH``).

It does no work on purpose: what the benchmark watches is the worker's own machinery (claim,
lease heartbeat, finish, logs, metrics) over tens of thousands of events, so anything that grows
with the count shows up in its RSS.
"""
from integration.worker.loop import Outcome

EVENT_TYPE = "bench.noop"


def handlers(services):
    """``{event type: handler}`` for the worker (the plugin contract of integration.flows)."""

    def handle(event):
        return Outcome(summary="noop")

    return {EVENT_TYPE: handle}
