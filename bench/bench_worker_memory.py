"""Worker memory: the RSS of a real ``integration worker`` process after 10k and after 50k events
(and 30k in between, to tell a plateau from a slope), and their ratio, which must stay near 1:
a worker runs for months, so anything it keeps per event (a log buffer, a metric label per ID,
a thread that never ends, an unbounded cache) is a leak.

How: a fresh store; a real ``integration worker`` with a trivial handler plugged in through
``INTEGRATION_HANDLER_PLUGINS=noop_handler:handlers`` (``bench/noop_handler.py``), so what is
measured is the worker's own machinery: claim under a lease, the heartbeat thread, finishing in a
transaction, the log line and the metrics of every event. Events are inserted directly with
``integration.store.inbox.Inbox.record`` in batches (one transaction per batch), fed as the worker
drains them so the backlog stays under ``--backlog`` events. VmRSS is read from
``/proc/<pid>/status`` when the worker has finished each checkpoint's events. The worker's
rate is the events of a phase divided by its wall time.

Why the backlog is capped: to measure memory, not how claims scale with a backlog (that is
``bench_claim.py``'s business).

``--engine sqlite|postgresql|both`` (default both): on PostgreSQL the run gets a database of its
own, dropped afterwards, and the worker also keeps a ``LISTEN`` connection.

    .venv/bin/python bench/bench_worker_memory.py            # 10k, 30k, 50k events: ~65 s
    .venv/bin/python bench/bench_worker_memory.py --quick    # 2k, 6k, 10k events: ~15 s
"""
from __future__ import annotations

import argparse
import secrets
import sys
import time

from _common import (
    PYTHON,
    BenchStore,
    Process,
    add_engine_option,
    format_table,
    machine_line,
    per_engine,
    rss_kib,
    service_env,
    wait_until,
    workdir,
)
from noop_handler import EVENT_TYPE
from sqlalchemy import text

from integration.store.db import Database
from integration.store.inbox import Inbox


class Feeder:
    """Inserts numbered no-op events in batches, one transaction per batch."""

    def __init__(self, db: Database, batch: int):
        self.db, self.batch = db, batch
        self.inbox = Inbox(db)
        self.inserted = 0

    def insert(self, upto: int) -> int:
        count = min(self.batch, upto - self.inserted)
        with self.db.transaction() as conn:
            for n in range(self.inserted, self.inserted + count):
                self.inbox.record(source="bench", type=EVENT_TYPE, object_type="bench", object_id=f"noop-{n}",
                                  object_key=f"bench:{n}", dedupe_key=f"bench:{n}", conn=conn)
        self.inserted += count
        return count


def open_events(db: Database) -> int:
    """Events pending or running (an index range: cheap even with 50k finished rows)."""
    with db.read() as tx:
        return tx.scalar(text("SELECT COUNT(*) FROM events WHERE status IN ('pending', 'running')"))


def run_phase(db: Database, feeder: Feeder, target: int, backlog: int, worker: Process, timeout: float) -> None:
    """Feed events up to ``target`` and wait until the worker has finished all of them."""
    deadline = time.monotonic() + timeout
    while True:
        waiting = open_events(db)
        if feeder.inserted >= target and waiting == 0:
            return
        if not worker.alive():
            raise RuntimeError(f"the worker exited with {worker.popen.returncode}:\n{worker.tail()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{feeder.inserted - waiting} of {target} events finished within {timeout:.0f}s")
        if feeder.inserted < target and waiting < backlog:
            feeder.insert(target)
        else:
            time.sleep(0.01)


def finished(db: Database) -> dict[str, int]:
    with db.read() as tx:
        return {row["status"]: row["n"] for row in tx.rows(text(
            "SELECT status, COUNT(*) AS n FROM events WHERE status IN ('done', 'failed') GROUP BY status"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", default="10000,30000,50000",
                        help="event counts at which RSS is read; the ratio is last/first (default 10000,30000,50000)")
    parser.add_argument("--batch", type=int, default=200, help="events per insert transaction (default 200)")
    parser.add_argument("--backlog", type=int, default=400, help="most events waiting at any time (default 400)")
    parser.add_argument("--quick", action="store_true", help="smoke run: checkpoints 2000,6000,10000")
    parser.add_argument("--workdir", help="folder for the store and logs (default: a new temp folder)")
    parser.add_argument("--phase-timeout", type=float, default=1800,
                        help="seconds allowed between two checkpoints (default 1800: a loaded machine is slow)")
    add_engine_option(parser)
    args = parser.parse_args(argv)
    checkpoints = [2000, 6000, 10000] if args.quick else sorted(int(c) for c in args.checkpoints.split(","))
    if len(checkpoints) < 2 or checkpoints[0] < 1:
        parser.error("--checkpoints needs at least two positive counts")

    wd = workdir("worker-memory", args.workdir)
    print(f"bench_worker_memory  {machine_line()}")
    print(f"  real `integration worker` + noop_handler plugin; checkpoints {', '.join(map(str, checkpoints))} events; "
          f"batches of {args.batch}, backlog <= {args.backlog}")
    results = per_engine(args.engine, wd, lambda store, folder: run_engine(args, checkpoints, store, folder))
    print()
    for engine, (ratio, ok) in results.items():
        print(f"RSS ratio, {engine}: {ratio:.3f}" + ("" if ratio <= 1.1 else "  (ABOVE 1.1)")
              + ("" if ok else "  (FAILED CHECK)"))
    return 0 if all(ok and ratio <= 1.1 for ratio, ok in results.values()) else 1


def run_engine(args, checkpoints: list[int], store: BenchStore, wd) -> tuple[float, bool]:
    """One worker on one engine's store: (RSS ratio last/first checkpoint, every event done)."""
    env = service_env(store.url, callout_password=secrets.token_urlsafe(18),
                      extra={"INTEGRATION_HANDLER_PLUGINS": "noop_handler:handlers"})
    db = Database(store.url, busy_timeout=30)
    db.migrate()
    feeder = Feeder(db, args.batch)
    worker = Process([PYTHON, "-m", "integration", "worker"], env=env, log_path=wd / "worker.log")
    rows, results = [], []
    try:
        wait_until(lambda: b"worker started" in (wd / "worker.log").read_bytes(), timeout=60,
                   what="integration worker started", process=worker)
        start_rss = rss_kib(worker.pid)
        previous, began = 0, time.monotonic()
        for target in checkpoints:
            run_phase(db, feeder, target, args.backlog, worker, timeout=args.phase_timeout)
            status = finished(db)
            elapsed = time.monotonic() - began
            rss = rss_kib(worker.pid)
            results.append((target, rss))
            rows.append([f"{target:,}", f"{rss / 1024:.1f}", f"{elapsed:.1f}", f"{(target - previous) / elapsed:,.0f}",
                         status.get("done", 0), status.get("failed", 0)])
            # Printed as it comes too: a run cut short (timeout, Ctrl-C) still shows what it reached.
            print(f"  checkpoint {target:,}: RSS {rss / 1024:.1f} MiB after {elapsed:.1f} s", flush=True)
            previous, began = target, time.monotonic()
    finally:
        code = worker.stop()
        db.close()

    print()
    print(f"worker RSS at start (idle, nothing processed): {start_rss / 1024:.1f} MiB")
    print(format_table(["events processed", "RSS MiB", "phase seconds", "events/s (phase)", "done", "failed"], rows))
    if code not in (0, None):
        print(f"note: the worker exited with {code} on SIGTERM")
    (first, rss_first), (last, rss_last) = results[0], results[-1]
    failed = rows[-1][-1]
    if rows[-1][-2] != last:
        print(f"note: {rows[-1][-2]} events done, expected {last}")
    overall = (last - 0) / sum(float(r[2]) for r in rows)
    print(f"worker events/s: {overall:,.0f} overall")
    print(f"RSS ratio, {store.engine} ({last:,} / {first:,} events): {rss_last / rss_first:.3f}  "
          f"({rss_last / 1024:.1f} / {rss_first / 1024:.1f} MiB)")
    return rss_last / rss_first, not failed and rows[-1][-2] == last


if __name__ == "__main__":
    sys.exit(main())
