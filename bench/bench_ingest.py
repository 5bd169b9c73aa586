"""Ingest: Zuora callouts durably accepted per second by ``integration serve --no-worker``, as a
ratio of what a bare Flask endpoint on the same gunicorn settings answers with the same client.

WHY this ratio: the webhook must "accept fast, work later". Its floor cost is Flask + gunicorn;
everything above that (Basic auth, validation, one ``BEGIN IMMEDIATE`` … ``COMMIT`` with
``synchronous=FULL``, the metric and the JSON log line) is what the service adds. Absolute rates
drift on a shared machine; the two servers measured back to back in one run do not drift apart.

How: both servers run as real gunicorn processes (``-c python:integration.gunicorn_conf``,
``--workers N``; the service through ``integration serve --no-worker``). One client (a thread
pool, one keep-alive connection per thread, see ``_load.py``) sends a fixed number of
``POST /webhooks/zuora`` with Basic auth and a distinct ``Zuora-Notification-Id`` and
``AccountId`` each. A warm-up batch per server is excluded. Rounds alternate the order
(service, bare, bare, service, …) so slow drift hits both alike. Afterwards every callout the
service answered 200 must be a row of the events table: it is counted and each notification ID
looked up.

``--engine sqlite|postgresql|both`` (default both): the service's store; on PostgreSQL the run
gets a database of its own, dropped afterwards. The bare app is measured again beside each engine.

    .venv/bin/python bench/bench_ingest.py            # 4 rounds x 2,500 callouts per server, per engine
    .venv/bin/python bench/bench_ingest.py --quick    # 1 round x 1,000
"""
from __future__ import annotations

import argparse
import base64
import json
import secrets
import sys
import uuid

from _common import (
    BENCH_DIR,
    CALLOUT_USERNAME,
    PYTHON,
    BenchStore,
    Process,
    add_engine_option,
    format_table,
    free_port,
    http_ok,
    machine_line,
    per_engine,
    service_env,
    tree_cpu_seconds,
    wait_until,
    workdir,
)
from _load import LoadResult, Request, run_load


def callouts(count: int, password: str, tag: str) -> list[Request]:
    """``count`` distinct callouts, as Zuora's callout template sends them (preemptive Basic)."""
    auth = "Basic " + base64.b64encode(f"{CALLOUT_USERNAME}:{password}".encode()).decode()
    out = []
    for n in range(count):
        notification_id = f"bench-{tag}-{n}-{uuid.uuid4().hex[:12]}"
        body = json.dumps({"AccountId": f"8a8{tag}{n:07d}{uuid.uuid4().hex[:16]}"[:32]}).encode()
        out.append(Request("POST", "/webhooks/zuora", body, {
            "Content-Type": "application/json", "Authorization": auth, "Zuora-Notification-Id": notification_id,
            "User-Agent": "Zuora-Callout-Bench/1.0"}))
    return out


class Target:
    """One server under test plus the totals of its measured rounds."""

    def __init__(self, name: str, process: Process, port: int):
        self.name, self.process, self.port = name, process, port
        self.rounds: list[LoadResult] = []
        self.server_cpu = 0.0
        self.accepted_ids: list[str] = []  # notification IDs answered 200 (warm-up included)

    def run(self, batch: list[Request], concurrency: int, measured: bool) -> LoadResult:
        cpu_before = tree_cpu_seconds(self.process.pid)
        result = run_load("127.0.0.1", self.port, batch, concurrency=concurrency)
        server_cpu = tree_cpu_seconds(self.process.pid) - cpu_before
        self.accepted_ids += [batch[i].headers["Zuora-Notification-Id"] for i in result.accepted]
        if measured:
            self.rounds.append(result)
            self.server_cpu += server_cpu
        return result

    @property
    def sent(self) -> int:
        return sum(r.sent for r in self.rounds)

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.rounds)

    @property
    def rate(self) -> float:
        return self.sent / self.seconds

    def latency_ms(self, p: float) -> float:
        merged = LoadResult(sent=0, seconds=0.0, latencies=[x for r in self.rounds for x in r.latencies])
        return merged.percentile(p) * 1000

    def non_200(self) -> int:
        return sum(n for r in self.rounds for status, n in r.statuses.items() if status != 200)

    def client_cpu_share(self) -> float:
        return sum(r.client_cpu_seconds for r in self.rounds) / self.seconds


def count_events(url: str, notification_ids: list[str]) -> tuple[int, int]:
    """(rows in events, accepted callouts found by their dedupe key), on either engine."""
    from sqlalchemy import text

    from integration.domain import work
    from integration.store.db import Database

    db = Database(url)
    try:
        with db.read() as tx:
            total = tx.scalar(text("SELECT COUNT(*) FROM events"))
            keys = {row["dedupe_key"] for row in tx.rows(text("SELECT dedupe_key FROM events"))}
    finally:
        db.close()
    return total, sum(work.delivery_key("zuora", n) in keys for n in notification_ids)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers for both servers (default 2)")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads / connections (default 8)")
    parser.add_argument("--requests", type=int, default=2500, help="measured requests per round per server")
    parser.add_argument("--warmup", type=int, default=300, help="unmeasured requests per server first")
    parser.add_argument("--rounds", type=int, default=4, help="measured rounds per server, order alternating")
    parser.add_argument("--quick", action="store_true", help="~15 s smoke run (fewer requests, one round)")
    parser.add_argument("--workdir", help="folder for the store and logs (default: a new temp folder)")
    add_engine_option(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.warmup, args.rounds = 1000, 200, 1

    wd = workdir("ingest", args.workdir)
    print(f"bench_ingest  {machine_line()}")
    print(f"  gunicorn --workers {args.workers} (gthread, integration.gunicorn_conf), client: {args.concurrency} "
          f"keep-alive connections, {args.rounds} x {args.requests} requests per server after {args.warmup} warm-up")
    results = per_engine(args.engine, wd, lambda store, folder: run_engine(args, store, folder))
    print()
    for engine, (ratio, ok) in results.items():
        print(f"ingest ratio, {engine}: {ratio:.2f}" + ("" if ok else "  (FAILED CHECK)"))
    return 0 if all(ok for _, ok in results.values()) else 1


def run_engine(args, store: BenchStore, wd) -> tuple[float, bool]:
    """Both servers on one engine's store, measured side by side: (ratio, every check passed)."""
    password = secrets.token_urlsafe(18)
    env = service_env(store.url, callout_password=password)
    service_port, bare_port = free_port(), free_port()

    service = Process([PYTHON, "-m", "integration", "serve", "--no-worker", "--workers", str(args.workers),
                       "--port", str(service_port), "--host", "127.0.0.1"], env=env, log_path=wd / "serve.log")
    bare_env = {k: v for k, v in env.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    bare = Process([PYTHON, "-m", "gunicorn", "-c", "python:integration.gunicorn_conf", "--workers",
                    str(args.workers), "--bind", f"127.0.0.1:{bare_port}", "bare_app:app"],
                   env=bare_env, log_path=wd / "bare.log", cwd=BENCH_DIR)
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{service_port}/readyz"), timeout=60,
                   what="integration serve ready", process=service)
        wait_until(lambda: http_ok(f"http://127.0.0.1:{bare_port}/healthz"), timeout=60,
                   what="bare gunicorn ready", process=bare)
        targets = {"service": Target("integration serve --no-worker", service, service_port),
                   "bare": Target("bare Flask on gunicorn", bare, bare_port)}
        for key, target in targets.items():
            target.run(callouts(args.warmup, password, f"w{key[0]}"), args.concurrency, measured=False)
        order = ["service", "bare"]
        for n in range(args.rounds):
            for key in (order if n % 2 == 0 else order[::-1]):
                targets[key].run(callouts(args.requests, password, f"{key[0]}{n}"), args.concurrency, measured=True)
    finally:
        service_code = service.stop()
        bare.stop()

    svc, base = targets["service"], targets["bare"]
    rows = []
    for target in (svc, base):
        rows.append([target.name, target.sent, f"{target.seconds:.2f}", f"{target.rate:,.0f}",
                     f"{target.latency_ms(50):.1f}", f"{target.latency_ms(99):.1f}", target.non_200(),
                     f"{target.server_cpu / target.sent * 1000:.2f}", f"{target.server_cpu / target.seconds:.2f}",
                     f"{target.client_cpu_share():.2f}"])
    print()
    print(format_table(["server", "requests", "seconds", "req/s", "p50 ms", "p99 ms", "non-200",
                        "server CPU ms/req", "server cores", "client cores"], rows))
    stored, found = count_events(store.url, svc.accepted_ids)
    accepted = len(svc.accepted_ids)
    print()
    print(f"events table: {stored} rows; {found} of {accepted} callouts answered 200 found by their "
          f"notification ID" + ("  (all present)" if found == accepted == stored else "  (MISMATCH)"))
    if service_code not in (0, None):
        print(f"note: integration serve exited with {service_code} on SIGTERM")
    print(f"ingest ratio, {store.engine} (service / bare Flask+gunicorn, callouts/s): {svc.rate / base.rate:.2f}"
          f"  ({svc.rate:,.0f} / {base.rate:,.0f} req/s)")
    return svc.rate / base.rate, found == accepted == stored and svc.non_200() == 0


if __name__ == "__main__":
    sys.exit(main())
