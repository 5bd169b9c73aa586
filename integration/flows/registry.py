"""The worker's half of the registry of kinds of work: each kind's handler.

Everything else about a kind (event type, object, key, coalescing, retry policy) is declared once in
``integration.domain.work``, where the web, the operator actions and the store can read it; only the
handler is bound here, because a handler is a flow bound to this process's clients and store and the
rooms that read the declarations may not import the flows (tests/test_layout.py). ``check`` keeps the
two halves one: every declared kind has exactly one handler, and no handler is bound to a kind that is
not declared — so a kind added there without a flow, or a flow for a kind declared nowhere, stops the
worker from starting instead of failing its events one by one as "no handler".

Plug-ins (``INTEGRATION_HANDLER_PLUGINS``, integration.flows.plugins) are laid over this map by
``integration.flows.build_handlers``: they may add event types of their own or replace a flow.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

from integration.domain import work
from integration.flows.accounts import AccountFlows
from integration.flows.invoices import InvoiceFlow
from integration.flows.links import LinkFlow
from integration.flows.outcome import Outcome
from integration.flows.usage import UsageFlow
from integration.flows.voids import VoidFlow
from integration.services import Services
from integration.store.inbox import Event

Handler = Callable[[Event], "Outcome | None"]
Binding = tuple[work.Kind, Handler]


class RegistryError(Exception):
    """The handler map and the declared kinds of work disagree (a programming error, found at start-up)."""


def bind(services: Services) -> list[Binding]:
    """Each kind of work with the flow that handles it. ``invoice.voided`` and ``invoice.updated`` are voids
    (CONTRACT §12); the invoice flow hands an invoice it finds void to the same void flow."""
    account_flows = AccountFlows(services)
    void_flow = VoidFlow(services)
    return [(work.ACCOUNT_CALLOUT, account_flows.from_zuora),
            (work.ACCOUNT_CREATED, account_flows.from_billing),
            (work.ACCOUNT_UPDATED, account_flows.from_billing),
            (work.ACCOUNT_LINK, LinkFlow(services).handle),
            (work.INVOICE_FINALIZED, InvoiceFlow(services, on_void=void_flow.void).handle),
            (work.INVOICE_USAGE, UsageFlow(services).handle),
            (work.INVOICE_VOIDED, void_flow.handle),
            (work.INVOICE_UPDATED, void_flow.handle)]


def check(bindings: Iterable[Binding], declared: Iterable[work.Kind] = work.KINDS.values()) -> None:
    """RegistryError unless every declared kind has exactly one handler and every handler a declared kind."""
    counts = Counter(kind for kind, _ in bindings)
    kinds = set(declared)
    problems = [f"{kind.type}: no handler" for kind in kinds if kind not in counts]
    problems += [f"{kind.type}: {n} handlers" for kind, n in counts.items() if n > 1]
    problems += [f"{kind.type}: a handler for a kind not declared in integration.domain.work"
                 for kind in counts if kind not in kinds]
    if problems:
        raise RegistryError("kinds of work and handlers disagree: " + "; ".join(sorted(problems)))


def handlers(services: Services) -> dict[str, Handler]:
    """``{event type: handler}`` for every declared kind of work, checked."""
    bindings = bind(services)
    check(bindings)
    return {kind.type: handler for kind, handler in bindings}
