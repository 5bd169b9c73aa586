"""API calls per synced object, per flow, counted from both sandboxes' request logs.

WHY: Zuora meters every tenant by requests (per-second limits, daily quotas), so the number of
calls one synced object costs decides how many objects a tenant can sync; a regression that adds
a GET per object is invisible in tests that only check end states. Token fetches are counted.

How: the whole system in one process (``integration_sandbox.local_stack.LocalStack``: both sandboxes
and the service over real HTTP, two worker threads). For each flow, N objects are made the way
users make them, and the calls both sandboxes logged between two marker requests are counted
once everything has settled (every callout and event delivered, no event pending or running):

- flow 1, Zuora → billing: N accounts created in Zuora (callouts off meanwhile), then Zuora's
  callout for each, delivered by the sandbox with its Basic challenge;
- flow 2, billing → Zuora: N customers with one account each on the billing platform;
- flows 3+4+5: one finalized invoice per flow-2 account, with three fixed lines and usage on a
  quantity-mode meter, a revenue-mode meter and a meter without settings (``integration demo``'s
  invoice).

Each count includes what the flow sets off by itself: the billing platform's ``account.created``
echo of a customer flow 1 made, Zuora's account-created callout for an account flow 2 made, and
the usage follow-up event of an invoice. The objects the benchmark itself creates in a sandbox
are outside the window. Calls answered 429 would be counted apart (there is no rate limit here).

    .venv/bin/python bench/bench_calls.py            # N=20, ~14 s
    .venv/bin/python bench/bench_calls.py --quick    # N=5, ~6 s
"""
from __future__ import annotations

import argparse
import sys
import time

from _common import format_table, machine_line, workdir
from _stack import (
    Logs,
    Window,
    configure_meters,
    create_billing_accounts,
    create_invoices,
    create_zuora_accounts,
    failed_events,
    mapping_count,
    send_callouts,
    set_zuora_callouts,
    settle,
    start_stack,
)

INVOICE_HANDLERS = ("invoice.finalized", "invoice.usage")


def invoice_handlers_missing(stack) -> list[str]:
    from integration.flows import build_handlers
    handlers = build_handlers(stack.services)
    return [name for name in INVOICE_HANDLERS if name not in handlers]


def measure(stack, logs: Logs, make, timeout: float) -> tuple[Window, float]:
    start = logs.mark()
    began = time.monotonic()
    make()
    settle(stack, timeout)
    seconds = time.monotonic() - began
    return logs.window(start, logs.mark()), seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", "-n", type=int, default=20, help="objects per flow (default 20)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5 objects per flow")
    parser.add_argument("--workdir", help="folder for the store and logs (default: a new temp folder)")
    parser.add_argument("--verbose", "-v", action="store_true", help="also print the calls per endpoint")
    args = parser.parse_args(argv)
    n = 5 if args.quick else args.objects
    if not 1 <= n <= 100:
        parser.error("--objects must be 1..100 (the billing sandbox logs only its newest 1,000 requests)")

    wd = workdir("calls", args.workdir)
    print(f"bench_calls  {machine_line()}")
    print(f"  LocalStack (sandboxes + service in one process, 2 worker threads), {n} objects per flow; logs in {wd}")
    stack, log_file = start_stack(wd, workers=2)
    rows, details, problems = [], [], []
    try:
        logs = Logs(stack)
        timeout = 30 + 2 * n

        # Flow 1: accounts made in Zuora with callouts off, then Zuora's callout for each.
        set_zuora_callouts(stack, False)
        zuora_ids = create_zuora_accounts(stack, logs.zuora, n, "f1")
        set_zuora_callouts(stack, True)
        window, _seconds = measure(stack, logs, lambda: send_callouts(stack, zuora_ids), timeout)
        rows.append(("1. Zuora account -> billing", window, n))
        if mapping_count(stack, "account") != n:
            problems.append(f"flow 1: {mapping_count(stack, 'account')} account mappings, expected {n}")

        # Flow 2: billing customers and accounts; Zuora's callout echo is part of the flow's cost.
        billing_ids: list[str] = []
        window, _seconds = measure(stack, logs, lambda: billing_ids.extend(create_billing_accounts(stack, n, "f2")),
                                  timeout)
        rows.append(("2. billing account -> Zuora", window, n))
        if mapping_count(stack, "account") != 2 * n:
            problems.append(f"flow 2: {mapping_count(stack, 'account') - n} new account mappings, expected {n}")

        # Flows 3+4+5: a finalized invoice with usage per linked billing account.
        missing = invoice_handlers_missing(stack)
        if missing:
            rows.append(("3+4+5. invoice with usage", None, n))
            problems.append(f"flows 3-5 not available: no handler for {', '.join(missing)}")
        else:
            configure_meters(stack)
            window, _seconds = measure(stack, logs, lambda: create_invoices(stack, billing_ids, "f3"), timeout)
            rows.append(("3+4+5. invoice with usage", window, n))
            if mapping_count(stack, "invoice") != n:
                problems.append(f"flows 3-5: {mapping_count(stack, 'invoice')} invoice mappings, expected {n}")
        failed = failed_events(stack)
        if failed:
            problems.append(f"{len(failed)} event(s) failed, e.g. {failed[0]}")
    finally:
        stack.stop()
        log_file.close()

    table = []
    for name, window, count in rows:
        if window is None:
            table.append([name, count, "not available", "", "", "", ""])
            continue
        z, b = Window.count(window.zuora), Window.count(window.billing)
        table.append([name, count, z, b, f"{z / count:.2f}", f"{b / count:.2f}", Window.tokens(window.zuora)])
        refused = Window.refused(window.zuora) + Window.refused(window.billing)
        if refused:
            problems.append(f"{name}: {refused} call(s) answered 429 (not counted above)")
        details.append((name, count, window))
    print()
    print(format_table(["flow", "objects", "Zuora calls", "billing calls", "Zuora/object", "billing/object",
                        "token fetches"], table))
    if args.verbose:
        for name, count, window in details:
            print(f"\n{name}: calls per object by endpoint")
            rows_ = [[api, m, p, s, f"{c / count:.2f}"]
                     for api, entries in (("Zuora", window.zuora), ("billing", window.billing))
                     for (m, p, s), c in sorted(Window.breakdown(entries).items())]
            print(format_table(["api", "method", "path", "status", "per object"], rows_))
    print()
    for problem in problems:
        print(f"note: {problem}")
    for name, count, window in details:
        z, b = Window.count(window.zuora), Window.count(window.billing)
        print(f"calls per object, {name}: Zuora {z / count:.2f} + billing {b / count:.2f} = {(z + b) / count:.2f}")
    return 1 if any(not p.startswith("flows 3-5 not available") for p in problems) else 0


if __name__ == "__main__":
    sys.exit(main())
