"""Claim throughput: events per second that 1, 2 and 4 real ``integration worker`` processes take
through claim → (no-op) handler → finish, as a ratio of what the same number of bare claim loops
(``bare_claim.py``) take from the same table, on each engine.

WHY this ratio: the inbox's claim is the one place every worker process meets every other. On
PostgreSQL it locks candidates ``FOR UPDATE SKIP LOCKED`` so claimers pass each other's rows; on
SQLite there is one writer at a time. The bare loop is the floor of a claim on that engine and
table (two transactions per event, nothing else), so the ratio says what the worker's own
machinery costs (attempt rows, the per-object rule, savepoints, lease heartbeat thread, log line,
metrics) and whether adding processes adds throughput the way it does for the bare loop.

How: for each engine a fresh store (PostgreSQL: a database of this run's own, dropped after). For
each process count, in turn the workers (``INTEGRATION_HANDLER_PLUGINS=noop_handler:handlers``)
and the bare loops are started and wait idle; ``--events`` no-op events, one object each, are
recorded in one transaction; the clock runs from its commit until no event is pending or running
(polled every 20 ms from this process), and the processes are stopped. The table is emptied
between runs. Both sides use the same table, indexes, and event rows.

    .venv/bin/python bench/bench_claim.py              # 1,500 events per run, both engines: ~2-4 min
    .venv/bin/python bench/bench_claim.py --quick      # 300 events per run
    .venv/bin/python bench/bench_claim.py --engine postgresql --processes 1,2,4,8
"""
from __future__ import annotations

import argparse
import secrets
import sys
import time

from _common import (
    BENCH_DIR,
    PYTHON,
    BenchStore,
    Process,
    add_engine_option,
    format_table,
    machine_line,
    per_engine,
    service_env,
    wait_until,
    workdir,
)
from noop_handler import EVENT_TYPE
from sqlalchemy import text

from integration.store.db import Database
from integration.store.inbox import Inbox


def record(db: Database, count: int, tag: str) -> None:
    """``count`` due no-op events, one object each, in one transaction (visible to all at its commit)."""
    inbox = Inbox(db)
    with db.transaction() as tx:
        for n in range(count):
            inbox.record(source="bench", type=EVENT_TYPE, object_type="bench", object_id=f"{tag}-{n}",
                         object_key=f"bench:{tag}:{n}", dedupe_key=f"bench:{tag}:{n}", conn=tx)


def open_events(db: Database) -> int:
    with db.read() as tx:
        return tx.scalar(text("SELECT COUNT(*) FROM events WHERE status IN ('pending', 'running')"))


def done_events(db: Database) -> int:
    with db.read() as tx:
        return tx.scalar(text("SELECT COUNT(*) FROM events WHERE status = 'done'"))


def empty(db: Database) -> None:
    with db.transaction() as tx:
        tx.run(text("DELETE FROM attempts"))
        tx.run(text("DELETE FROM events"))


def timed_drain(db: Database, processes: list[Process], count: int, tag: str, timeout: float) -> float:
    """Record ``count`` events, then seconds from that commit until none is pending or running."""
    record(db, count, tag)
    began = time.monotonic()
    while open_events(db):
        if time.monotonic() - began > timeout:
            raise TimeoutError(f"{tag}: {open_events(db)} events still open after {timeout:.0f}s")
        dead = [p for p in processes if not p.alive()]
        if dead:
            raise RuntimeError(f"{tag}: a process exited with {dead[0].popen.returncode}:\n{dead[0].tail()}")
        time.sleep(0.02)
    seconds = time.monotonic() - began
    if done_events(db) != count:
        raise RuntimeError(f"{tag}: {done_events(db)} of {count} events done")
    return seconds


def run_side(side: str, n: int, store: BenchStore, db: Database, env: dict, folder, count: int) -> float:
    """Start ``n`` processes of one side, wait until they are idle, drain ``count`` events: events/s."""
    tag = f"{side}{n}"
    if side == "worker":
        procs = [Process([PYTHON, "-m", "integration", "worker"], env=env, log_path=folder / f"{tag}-{i}.log")
                 for i in range(n)]
        marker = b"worker started"
    else:
        procs = [Process([PYTHON, str(BENCH_DIR / "bare_claim.py"), store.url], env=env,
                         log_path=folder / f"{tag}-{i}.log") for i in range(n)]
        marker = b"ready"
    try:
        for proc in procs:
            wait_until(lambda proc=proc: marker in proc.log_path.read_bytes(), timeout=60, what=f"{tag} ready",
                       process=proc)
        seconds = timed_drain(db, procs, count, tag, timeout=300)
    finally:
        for proc in procs:
            proc.stop()
        empty(db)
    return count / seconds


def run_engine(args, store: BenchStore, folder) -> dict[int, float]:
    """Every process count on one engine: {processes: worker rate / bare rate}."""
    env = service_env(store.url, callout_password=secrets.token_urlsafe(18),
                      extra={"INTEGRATION_HANDLER_PLUGINS": "noop_handler:handlers"})
    db = Database(store.url, busy_timeout=30)
    db.migrate()
    rows, ratios = [], {}
    try:
        for k, n in enumerate(args.processes):
            order = ["worker", "bare"] if k % 2 == 0 else ["bare", "worker"]
            rates = {side: run_side(side, n, store, db, env, folder, args.events) for side in order}
            ratios[n] = rates["worker"] / rates["bare"]
            rows.append([n, f"{rates['worker']:,.0f}", f"{rates['bare']:,.0f}", f"{ratios[n]:.2f}"])
    finally:
        db.close()
    print(format_table(["processes", "worker events/s", "bare loop events/s", "ratio"], rows))
    scale = {n: float(r[1].replace(",", "")) for n, r in zip(args.processes, rows, strict=True)}
    first = args.processes[0]
    print("worker scaling vs " + f"{first} process: " + ", ".join(
        f"{n}: x{scale[n] / scale[first]:.2f}" for n in args.processes))
    return ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1500, help="events per run (default 1500)")
    parser.add_argument("--processes", default="1,2,4", help="process counts to measure (default 1,2,4)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 events per run")
    parser.add_argument("--workdir", help="folder for the logs (default: a new temp folder)")
    add_engine_option(parser)
    args = parser.parse_args(argv)
    args.processes = [int(p) for p in args.processes.split(",")]
    if args.quick:
        args.events = 300

    wd = workdir("claim", args.workdir)
    print(f"bench_claim  {machine_line()}")
    print(f"  {args.events} no-op events per run; real `integration worker` processes vs bare_claim.py loops; "
          f"logs in {wd}")
    results = per_engine(args.engine, wd, lambda store, folder: run_engine(args, store, folder))
    print()
    for engine, ratios in results.items():
        print(f"claim ratio, {engine} (worker / bare loop, events/s): "
              + ", ".join(f"{n} proc {r:.2f}" for n, r in ratios.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
