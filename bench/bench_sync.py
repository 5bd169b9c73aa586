"""Sync throughput under a Zuora rate limit: accounts synced per second by flow 1 (Zuora callout →
billing customer) against a Zuora sandbox limited to R requests/s with L ms added to every call,
as a ratio of the ceiling R / (Zuora calls per account).

WHY this ratio: against a real tenant the rate limit, not our CPU, bounds how fast accounts sync.
The best any client can do is spend the whole budget on useful calls, i.e. R / calls-per-account
accounts per second. The ratio says how much of that budget the service turns into synced
accounts: what it loses to refused calls (429s also count against Zuora's window), to waiting
out a window it need not wait for, or to latency it cannot hide with the workers it has.

How: the whole system in one process (``integration_sandbox.local_stack.LocalStack``: both sandboxes
and the service over real HTTP; ``--workers`` worker threads, each with its own API clients and
so its own OAuth token and rate-limit pacing, as separate worker processes would have). N
accounts are created in the Zuora sandbox with callouts off and no limit; then the limit and
latency are switched on (``POST /_sandbox/faults``) and the sandbox delivers Zuora's callout for
every account (401 challenge, then Basic). The clock runs from the first callout to the moment
the last event finished, once everything has settled: every callout and billing event delivered,
no event pending or running. That includes the billing platform's ``account.created`` echo of
each new customer, which costs a Zuora GET too. Zuora calls per account are counted from the
sandbox's request log between two marker requests, token fetches included (the sandbox, like
Zuora, does not count those against the limit); calls answered 429 are reported apart and left
out of calls-per-account, so budget wasted on refusals lowers the ratio instead of the ceiling.

    .venv/bin/python bench/bench_sync.py                 # R=50/s, L=20 ms, N=300, 4 workers, both engines: ~1-2 min
    .venv/bin/python bench/bench_sync.py --quick         # N=60: ~10 s
    .venv/bin/python bench/bench_sync.py --rate 20 --latency-ms 100 --workers 1

``--engine sqlite|postgresql|both`` (default both): the service's store, PostgreSQL in a database
of this run's own, dropped afterwards.
"""
from __future__ import annotations

import argparse
import sys
import time

import requests
from _common import BenchStore, add_engine_option, format_table, machine_line, per_engine, workdir
from _stack import (
    Logs,
    Window,
    create_zuora_accounts,
    failed_events,
    last_event_done_at,
    mapping_count,
    send_callouts,
    set_zuora_callouts,
    settle,
    start_stack,
    stop_stack,
)


class AdmissionClock:
    """Times every request the Zuora sandbox's rate limiter admits or refuses while switched on.

    Instrumentation of the in-process sandbox only (the service is untouched): it lets the
    benchmark show *where* the budget went, i.e. how long each exhausted rate window's successor
    stayed unused after it had reopened.
    """

    def __init__(self, faults):
        self.times: list[float] = []
        self.on = False
        self._admit = faults.admit

        def admit():
            if self.on:
                self.times.append(time.monotonic())
            return self._admit()

        faults.admit = admit

    def windows(self, window: float = 1.0) -> list[tuple[float, int]]:
        """(start, requests) of each fixed window, rebuilt the way the sandbox opens them."""
        out: list[list] = []
        for t in self.times:
            if not out or t - out[-1][0] >= window:
                out.append([t, 0])
            out[-1][1] += 1
        return [(start, n) for start, n in out]

    def reopen_delays(self, limit: int, window: float = 1.0) -> list[float]:
        """For every window that ran out of budget: seconds from its end to the next call."""
        spans = self.windows(window)
        return [max(0.0, spans[i + 1][0] - (start + window)) for i, (start, n) in enumerate(spans[:-1])
                if n >= limit]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", "-R", type=int, default=50, help="Zuora requests per second allowed (default 50)")
    parser.add_argument("--latency-ms", "-L", type=int, default=20, help="ms added to every Zuora call (default 20)")
    parser.add_argument("--accounts", "-n", type=int, default=300, help="accounts to sync (default 300)")
    parser.add_argument("--workers", type=int, default=4, help="worker threads (default 4)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 60 accounts")
    parser.add_argument("--workdir", help="folder for the store and logs (default: a new temp folder)")
    parser.add_argument("--verbose", "-v", action="store_true", help="also print the Zuora calls per endpoint")
    add_engine_option(parser)
    args = parser.parse_args(argv)
    n = 60 if args.quick else args.accounts
    if not 1 <= n <= 2000:
        parser.error("--accounts must be 1..2000 (the Zuora sandbox logs only its newest 10,000 requests)")

    wd = workdir("sync", args.workdir)
    print(f"bench_sync  {machine_line()}")
    print(f"  LocalStack (sandboxes + service in one process), {args.workers} worker thread(s); Zuora sandbox "
          f"limited to {args.rate} requests/s (1 s window) with {args.latency_ms} ms added latency; "
          f"{n} accounts; logs in {wd}")
    results = per_engine(args.engine, wd, lambda store, folder: run_engine(args, n, store, folder))
    print()
    for engine, (ratio, ok) in results.items():
        print(f"sync ratio, {engine}: {ratio:.2f}" + ("" if ok else "  (FAILED CHECK)"))
    return 0 if all(ok for _, ok in results.values()) else 1


def run_engine(args, n: int, store: BenchStore, wd) -> tuple[float, bool]:
    """Flow 1 for ``n`` accounts under the rate limit on one engine: (ratio, every account synced)."""
    stack, log_file = start_stack(wd, workers=args.workers, database_url=store.url)
    problems = []
    try:
        logs = Logs(stack)
        clock = AdmissionClock(stack.zuora_sandbox.faults)
        set_zuora_callouts(stack, False)
        account_ids = create_zuora_accounts(stack, logs.zuora, n, "sync")
        set_zuora_callouts(stack, True)
        requests.post(f"{stack.zuora_url}/_sandbox/faults", timeout=10, json={
            "rate_limit": args.rate, "rate_window_seconds": 1.0, "latency_ms": args.latency_ms}).raise_for_status()
        start = logs.mark()
        began = time.time()
        clock.on = True
        send_callouts(stack, account_ids)
        settle(stack, timeout=120 + 3 * n * max(1, 50 / args.rate))
        clock.on = False
        seconds = last_event_done_at(stack) - began
        requests.delete(f"{stack.zuora_url}/_sandbox/faults", timeout=10).raise_for_status()
        window = logs.window(start, logs.mark(), billing=False)
        synced = mapping_count(stack, "account")
        customers = {c["id"] for c in stack.billing_state()["customers"]}
        failed = failed_events(stack)
    finally:
        stop_stack(stack, log_file)

    if synced != n or not set(account_ids) <= customers:
        problems.append(f"{synced} of {n} accounts linked; {len(set(account_ids) & customers)} billing customers")
    if failed:
        problems.append(f"{len(failed)} event(s) failed, e.g. {failed[0]}")
    useful = Window.count(window.zuora)
    refused = Window.refused(window.zuora)
    tokens = Window.tokens(window.zuora)
    per_account = useful / n
    ceiling = args.rate / per_account
    rate = n / seconds
    print()
    print(format_table(["accounts", "seconds", "synced/s", "Zuora calls", "of which tokens", "answered 429",
                        "calls/account", "ceiling/s"],
                       [[n, f"{seconds:.1f}", f"{rate:.2f}", useful, tokens, refused, f"{per_account:.2f}",
                         f"{ceiling:.2f}"]]))
    if args.verbose:
        print()
        print(format_table(["method", "path", "status", "calls", "per account"],
                           [[m, p, s, c, f"{c / n:.2f}"] for (m, p, s), c in
                            sorted(Window.breakdown(window.zuora).items())]))
    delays = clock.reopen_delays(args.rate)
    spans = clock.windows()
    print()
    print(f"rate windows: {len(spans)}; {len(delays)} ran out of budget, and the next call came on average "
          f"{(sum(delays) / len(delays) if delays else 0) * 1000:.0f} ms after the window had reopened "
          f"({sum(delays):.1f} s of the {seconds:.1f} s run with budget unused)")
    for problem in problems:
        print(f"note: {problem}")
    print(f"Zuora calls per account: {per_account:.2f} (+{refused / n:.2f} answered 429); "
          f"ceiling {args.rate}/{per_account:.2f} = {ceiling:.2f} accounts/s")
    print(f"sync ratio, {store.engine} (accounts/s / ceiling): {rate / ceiling:.2f}  "
          f"({rate:.2f} / {ceiling:.2f} accounts/s)")
    return rate / ceiling, not problems


if __name__ == "__main__":
    sys.exit(main())
