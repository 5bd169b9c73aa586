"""Backfill: the memory and speed of ``integration backfill`` on a tenant pair that already has data,
and the time ``--apply`` takes against the Zuora rate limit.

**Part 1, plan (dry run), memory and speed.** Both sandboxes (in this process, over real HTTP) are
filled with ``--accounts`` accounts per side (default 5,000, then grown to 20,000), every block of
20 holding each kind of pair the planner meets (see ``Tenants``). For each size, a real
``integration backfill --report plan.csv`` process plans the whole pair; its peak RSS is the
kernel's high-water mark of that process, read by the process itself as it exits (``peak_rss.py``:
no sample can miss the peak, and the benchmark's own memory is not counted), and its wall
time gives accounts planned per second (accounts of both tenants, reading included). The plan's
counts per action must be exactly those the tenants were built to give. Ratio: peak RSS at the
largest size ÷ at the smallest; it must stay ≤ 1.2 (memory flat with the number of accounts).

**Part 2, ``--apply`` against the rate limit.** A fresh ``LocalStack`` with 4 worker threads and
``--apply-accounts`` accounts per side built the same way (default 300); the Zuora sandbox limited to
``--rate`` requests/s (1 s window) with ``--latency-ms`` added latency, callouts and billing webhooks
on (so the echoes of our own writes cost what they cost in production). The clock runs from the
start of ``integration backfill --apply`` to the last event finished, everything settled. Zuora
calls per queued item are counted from the sandbox's request log between two markers (token
fetches and the backfill's own reads included; calls answered 429 shown apart). Ratio: items/s ÷
the ceiling ``rate / calls per item``, i.e. the share of the Zuora budget turned into synced items.

``--engine sqlite|postgresql|both`` (default both): the service's store (mapping table, inbox). The
backfill's scratch index is a temporary SQLite file on either engine.

    .venv/bin/python bench/bench_backfill.py            # 5k and 20k accounts per side; apply 300
    .venv/bin/python bench/bench_backfill.py --quick    # 1k and 4k; apply 60
"""
from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import requests
from _common import (
    BENCH_DIR,
    PYTHON,
    BenchStore,
    add_engine_option,
    engines_of,
    format_table,
    machine_line,
    per_engine,
    service_env,
    workdir,
)
from _stack import (
    Logs,
    Window,
    failed_events,
    last_event_done_at,
    mapping_count,
    set_zuora_callouts,
    settle,
    start_stack,
    stop_stack,
)

from integration.domain.kinds import MappingOrigin
from integration.store import mappings
from integration.store.db import Database

BLOCK = 20
"""Accounts per side in one block of ``Tenants``; sizes must be multiples of it."""
PER_BLOCK = {"link": 10, "linked": 2, "conflict": 2, "create_in_billing": 7, "create_in_zuora": 7}
"""What the planner must answer for one block (plan rows: a pair is one row)."""
QUEUED = ("link", "create_in_billing", "create_in_zuora")
ADDRESS = {"line1": "1 Navy Way", "city": "Arlington", "state": "VA", "postalCode": "22202", "country": "US"}


class Tenants:
    """Accounts on both sandboxes, made through their own HTTP routes (Flask's test client: no socket,
    so filling 20,000 a side takes seconds, not minutes), with neither callouts nor webhooks sent.

    Slot ``n % 20`` of each block decides what the pair is:

    * 0–7: the Zuora account's link field names the billing account → ``link``;
    * 8–9: the billing account's ``zuora`` settings name the Zuora account → ``link``;
    * 10–11: both name each other and the pair is in the store's mapping table → ``linked``;
    * 12: the Zuora account names a billing account that does not exist, and the billing account
      names a Zuora account that does not exist → two ``conflict`` rows;
    * 13–19: strangers → ``create_in_billing`` and ``create_in_zuora``.
    """

    def __init__(self, stack):
        self.zuora = stack.zuora_app.test_client()
        self.billing = stack.billing_app.test_client()
        sandbox = stack.zuora_sandbox
        token = self.zuora.post("/oauth/token", data={"client_id": sandbox.client_id,
                                                      "client_secret": sandbox.client_secret,
                                                      "grant_type": "client_credentials"}).get_json()
        self.zuora_headers = {"Authorization": f"Bearer {token['access_token']}"}
        self.size = 0
        self.linked: list[tuple[str, str, str]] = []
        """(Zuora ID, Zuora number, billing ID) of the pairs each store's mapping table must hold."""

    def grow(self, size: int) -> None:
        for n in range(self.size, size):
            self._add(n)
        self.size = size

    def expected(self) -> Counter:
        return Counter({action: count * self.size // BLOCK for action, count in PER_BLOCK.items()})

    def _add(self, n: int) -> None:
        slot, billing_id = n % BLOCK, f"bf-{n:06d}"
        if slot <= 7:
            self._zuora(n, link=billing_id)
            self._billing(billing_id)
        elif slot <= 9:
            self._billing(billing_id, names=self._zuora(n)[0])
        elif slot <= 11:
            zuora_id, number = self._zuora(n, link=billing_id)
            self._billing(billing_id, names=zuora_id)
            self.linked.append((zuora_id, number, billing_id))
        elif slot == 12:
            self._zuora(n, link=f"bf-missing-{n:06d}")
            self._billing(billing_id, names=f"2c9-missing-{n:06d}")
        else:
            self._zuora(n)
            self._billing(billing_id)

    def _zuora(self, n: int, link: str | None = None) -> tuple[str, str]:
        body: dict = {"name": f"Backfill Customer {n:06d}", "currency": "USD", "billCycleDay": 1, "autoPay": False,
                      "billToContact": {"firstName": "Ada", "lastName": f"Backfill{n}",
                                        "workEmail": f"ada.{n}@example.com", "country": "United States"}}
        if link:
            body["BillingAccountId__c"] = link
        answer = self.zuora.post("/v1/accounts", json=body, headers=self.zuora_headers).get_json()
        if not answer.get("success"):
            raise RuntimeError(f"the Zuora sandbox refused a sample account: {answer}")
        return answer["accountId"], answer["accountNumber"]

    def _billing(self, account_id: str, names: str | None = None) -> None:
        account: dict = {"id": account_id, "name": f"Account {account_id}", "invoiceCurrency": "USD"}
        if names:
            account["settings"] = [{"id": f"z-{account_id}", "namespace": "zuora", "name": "zuoraAccountId",
                                    "value": names, "dataType": "STRING"}]
        resp = self.billing.post("/_sandbox/accounts?webhook=false", json={
            "customer": {"id": f"cust-{account_id}", "name": f"Customer {account_id}",
                         "primaryEmail": f"{account_id}@example.com", "address": ADDRESS}, "account": account})
        if resp.status_code != 201:
            raise RuntimeError(f"the billing sandbox refused a sample account: {resp.get_data(as_text=True)}")


def record_linked(db: Database, pairs: list[tuple[str, str, str]]) -> None:
    """Put the ``linked`` pairs in a store's mapping table (idempotent: a pair already there is confirmed)."""
    for start in range(0, len(pairs), 500):
        with db.transaction() as tx:
            for zuora_id, number, billing_id in pairs[start:start + 500]:
                mappings.link("account", zuora_id=zuora_id, billing_id=billing_id, zuora_number=number,
                              origin=MappingOrigin.LINKED)(tx)


def stack_env(stack, database_url: str) -> dict:
    """The environment a real ``integration`` process needs to talk to ``stack``'s sandboxes."""
    return service_env(database_url, callout_password=stack.callout_password, zuora_url=stack.zuora_url,
                       billing_url=stack.billing_url, zuora_client_id=stack.zuora_sandbox.client_id,
                       zuora_client_secret=stack.zuora_sandbox.client_secret,
                       billing_token=stack.billing_sandbox.api_token,
                       webhook_secret=stack.billing_sandbox.webhook_secret)


@dataclass
class Run:
    seconds: float
    cpu_seconds: float
    peak_rss_kib: int
    counts: Counter
    code: int
    output: str


COUNT_LINE = re.compile(r"^(\w+)\s+(\d+)$")


def run_backfill(env: dict, args: list[str], log: Path) -> Run:
    """One ``integration backfill`` process (through ``peak_rss.py``): wall time, its own peak RSS,
    counts per action."""
    peak_file = log.with_suffix(".peak")
    peak_file.unlink(missing_ok=True)  # never read an earlier run's figure
    cpu_before = _children_cpu()
    with open(log, "ab") as stderr:
        began = time.monotonic()
        done = subprocess.run([PYTHON, str(BENCH_DIR / "peak_rss.py"), "backfill", *args],  # noqa: S603 - ours
                              env={**env, "BENCH_PEAK_RSS_FILE": str(peak_file)}, stdout=subprocess.PIPE,
                              stderr=stderr, check=False)
        seconds = time.monotonic() - began
    cpu = _children_cpu() - cpu_before
    output = done.stdout.decode("utf-8", "replace")
    counts = Counter({m[1]: int(m[2]) for m in map(COUNT_LINE.match, output.splitlines()) if m})
    return Run(seconds, cpu, int(peak_file.read_text()), counts, done.returncode, output)


def _children_cpu() -> float:
    """CPU seconds (user + system) of the child processes this process has waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", default="5000,20000",
                        help="accounts per side, growing, each a multiple of 20 (default 5000,20000); "
                             "the RSS ratio is last/first")
    parser.add_argument("--apply-accounts", type=int, default=300,
                        help="accounts per side for the --apply part, a multiple of 20 (default 300; 0 skips it)")
    parser.add_argument("--rate", "-R", type=int, default=50, help="Zuora requests per second allowed (default 50)")
    parser.add_argument("--latency-ms", "-L", type=int, default=20, help="ms added to every Zuora call (default 20)")
    parser.add_argument("--workers", type=int, default=4, help="worker threads for --apply (default 4)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1000,4000 accounts; apply 60")
    parser.add_argument("--workdir", help="folder for the stores, reports and logs (default: a new temp folder)")
    add_engine_option(parser)
    args = parser.parse_args(argv)
    sizes = [1000, 4000] if args.quick else sorted(int(s) for s in args.accounts.split(","))
    apply_size = min(60, args.apply_accounts) if args.quick else args.apply_accounts
    if len(sizes) < 2 or any(s < BLOCK or s % BLOCK for s in sizes):
        parser.error("--accounts needs two or more sizes, each a positive multiple of 20")
    if apply_size < 0 or apply_size % BLOCK:
        parser.error("--apply-accounts must be 0 or a positive multiple of 20")
    if apply_size * 2 > 2000:
        parser.error("--apply-accounts must be at most 1000 (the Zuora sandbox logs only its newest 10,000 requests)")

    wd = workdir("backfill", args.workdir)
    engines = engines_of(args.engine)
    print(f"bench_backfill  {machine_line()}")
    print(f"  plan: real `integration backfill` processes against both sandboxes (in this process, over HTTP), "
          f"{' then '.join(f'{s:,}' for s in sizes)} accounts per side; logs in {wd}")
    ok = plan_part(sizes, engines, wd)
    if apply_size:
        print(f"\n  apply: LocalStack with {args.workers} worker threads, {apply_size} accounts per side, Zuora at "
              f"{args.rate} requests/s (1 s window) and {args.latency_ms} ms added latency")
        applied = per_engine(args.engine, wd, lambda store, folder: apply_part(args, apply_size, store, folder),
                             label="apply-")
        ok = ok and all(applied.values())
    return 0 if ok else 1


def plan_part(sizes: list[int], engines: list[str], wd: Path) -> bool:
    """Part 1: per size and engine, one dry run; prints the table and the RSS ratio per engine."""
    stack, log_file = start_stack(wd / "plan", workers=0)
    problems: list[str] = []
    rows: list[list] = []
    peaks: dict[str, list[int]] = {engine: [] for engine in engines}
    try:
        set_zuora_callouts(stack, False)
        tenants = Tenants(stack)
        with PlanStores(engines, wd) as stores:
            for size in sizes:
                began = time.monotonic()
                tenants.grow(size)
                print(f"  {size:,} accounts per side made in {time.monotonic() - began:.1f} s (cumulative)", flush=True)
                for engine, (store, db) in stores.items():
                    record_linked(db, tenants.linked)
                    report = wd / f"plan-{engine}-{size}.csv"
                    run = run_backfill(stack_env(stack, store.url), ["--report", str(report)],
                                       wd / f"backfill-{engine}.log")
                    planned = sum(run.counts.values())
                    peaks[engine].append(run.peak_rss_kib)
                    rows.append([engine, f"{size:,}", f"{2 * size:,}", f"{planned:,}", f"{run.seconds:.1f}",
                                 f"{2 * size / run.seconds:,.0f}", f"{run.cpu_seconds:.1f}",
                                 f"{2 * size / run.cpu_seconds:,.0f}", f"{run.peak_rss_kib / 1024:.1f}"])
                    print(f"  {engine}, {size:,} per side: {run.seconds:.1f} s, peak RSS "
                          f"{run.peak_rss_kib / 1024:.1f} MiB", flush=True)
                    if run.code != 0:
                        problems.append(f"{engine} {size}: backfill exited {run.code}: {run.output[-400:]}")
                    elif run.counts != tenants.expected():
                        problems.append(f"{engine} {size}: planned {dict(run.counts)}, "
                                        f"built {dict(tenants.expected())}")
    finally:
        stop_stack(stack, log_file)

    print()
    print(format_table(["engine", "accounts/side", "accounts", "plan rows", "seconds", "accounts/s",
                        "backfill CPU s", "accounts/CPU s", "peak RSS MiB"], rows))
    for problem in problems:
        print(f"note: {problem}")
    ok = not problems
    for engine, values in peaks.items():
        ratio = values[-1] / values[0]
        ok = ok and ratio <= 1.2
        print(f"backfill RSS ratio, {engine} ({sizes[-1]:,} / {sizes[0]:,} accounts per side): {ratio:.3f}"
              f"  ({values[-1] / 1024:.1f} / {values[0] / 1024:.1f} MiB)" + ("" if ratio <= 1.2 else "  (ABOVE 1.2)"))
    return ok


class PlanStores:
    """One migrated store per engine for the dry runs, dropped at the end."""

    def __init__(self, engines: list[str], wd: Path):
        self.engines, self.wd = engines, wd
        self.opened: dict[str, tuple[BenchStore, Database]] = {}

    def __enter__(self) -> dict[str, tuple[BenchStore, Database]]:
        for engine in self.engines:
            folder = self.wd / f"plan-{engine}"
            folder.mkdir(parents=True, exist_ok=True)
            store = BenchStore(engine, folder).__enter__()
            db = Database(store.url, busy_timeout=30)
            db.migrate()
            self.opened[engine] = (store, db)
        return self.opened

    def __exit__(self, *exc) -> None:
        for store, db in self.opened.values():
            db.close()
            store.__exit__(*exc)


def apply_part(args, size: int, store: BenchStore, wd: Path) -> bool:
    """Part 2 on one engine: ``--apply`` under the Zuora rate limit; (every queued item synced)."""
    stack, log_file = start_stack(wd, workers=args.workers, database_url=store.url)
    problems: list[str] = []
    try:
        logs = Logs(stack)
        set_zuora_callouts(stack, False)
        tenants = Tenants(stack)
        tenants.grow(size)
        record_linked(stack.services.db, tenants.linked)
        set_zuora_callouts(stack, True)
        requests.post(f"{stack.zuora_url}/_sandbox/faults", timeout=10, json={
            "rate_limit": args.rate, "rate_window_seconds": 1.0, "latency_ms": args.latency_ms}).raise_for_status()
        start = logs.mark()
        began = time.time()
        run = run_backfill(stack_env(stack, store.url), ["--apply"], wd / "backfill.log")
        settle(stack, timeout=120 + 3 * size * max(1, 50 / args.rate))
        seconds = last_event_done_at(stack) - began
        requests.delete(f"{stack.zuora_url}/_sandbox/faults", timeout=10).raise_for_status()
        window = logs.window(start, logs.mark(), billing=False)
        linked = mapping_count(stack, "account")
        failed = failed_events(stack)
    finally:
        stop_stack(stack, log_file)

    expected = tenants.expected()
    items = sum(expected[a] for a in QUEUED)
    if run.code != 0 or run.counts != expected:
        problems.append(f"backfill exited {run.code}, planned {dict(run.counts)}: {run.output[-400:]}")
    if linked != items + expected["linked"]:
        problems.append(f"{linked} account mappings, expected {items + expected['linked']}")
    if failed:
        problems.append(f"{len(failed)} event(s) failed, e.g. {failed[0]}")
    useful, refused = Window.count(window.zuora), Window.refused(window.zuora)
    per_item = useful / items
    ceiling = args.rate / per_item
    rate = items / seconds
    print(format_table(["queued items", "seconds", "items/s", "Zuora calls", "of which tokens", "answered 429",
                        "calls/item", "ceiling/s"],
                       [[items, f"{seconds:.1f}", f"{rate:.2f}", useful, Window.tokens(window.zuora), refused,
                         f"{per_item:.2f}", f"{ceiling:.2f}"]]))
    for problem in problems:
        print(f"note: {problem}")
    print(f"backfill --apply ratio, {store.engine} (items/s / ceiling): {rate / ceiling:.2f}  "
          f"({rate:.2f} / {ceiling:.2f} items/s)")
    return not problems


if __name__ == "__main__":
    sys.exit(main())
