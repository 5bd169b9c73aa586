"""The registry of kinds of work: each kind the worker handles is declared here once — its event type,
the object it is about, how that object's key is made, whether its events coalesce, and its retry policy.

Every reader takes a kind from here rather than typing its parts again: the webhooks (a vendor's event
type maps onto a kind), on-demand sync (``integration.actions.sync``), reconciliation
(``integration.store.reconcile``), the backfill (``integration.flows.backfill_apply``), the link request
(``integration.store.links``), the invoice flow's usage follow-up, the inbox (coalescing, attempts,
backoff) and the worker (which failures retry). The handler of each kind is bound in
``integration.flows.registry``, which checks that every kind here has exactly one handler and no handler
lacks a kind.

Why the declaration lives in ``domain`` and the handler apart: the web and actions rooms read the
declarations but may not import the flows (tests/test_layout.py), and a handler is a flow bound to one
process's clients and store, so it can only be made where the flows are. This mirrors how procrastinate
declares a task (``procrastinate/tasks.py``): a name, a ``lock`` (our object key: never two running at
once), a ``queueing_lock`` (our coalescing: one pending per object) and a ``retry`` strategy.

Kinds are *internal*: a vendor's webhook types (Togai's today, Lago's next) map onto them in that
vendor's webhook reader, so two platforms queue the same kinds and the flows never see whose webhook it
was. The event types stored today are the ones Togai named first; they stay as they are in the store.

Not to be confused with ``integration.domain.kinds``: those are the closed *value* sets of the store
(object types, mapping origins, meter modes); a ``Kind`` here is a kind of *work*.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypedDict

from integration.domain.backoff import Backoff
from integration.domain.errors import SyncError, TransientError
from integration.domain.kinds import ObjectType

Side = Literal["zuora", "billing"]


@dataclass(frozen=True)
class KeySpace:
    """A family of keys: ``{prefix}:{object ID}`` for objects of one ``side``.

    An *object key* (``events.object_key``) serialises work on one object: the inbox never runs two events
    with the same key at once, and an event waiting for an account (``waiting_for``) names that account's
    key. Kinds about the same object share a key space on purpose (a void and a push of one invoice, a
    link and a callout of one Zuora account never run side by side).
    """

    prefix: str
    side: Side

    def key(self, object_id: str) -> str:
        return f"{self.prefix}:{object_id}"


ZUORA_ACCOUNT = KeySpace("zuora-account", "zuora")
BILLING_ACCOUNT = KeySpace("billing-account", "billing")
BILLING_INVOICE = KeySpace("billing-invoice", "billing")
BILLING_INVOICE_USAGE = KeySpace("billing-invoice-usage", "billing")
"""The usage of a billing invoice: its own object, so a usage push may run beside its invoice's void."""
OBJECT_KEYS = (ZUORA_ACCOUNT, BILLING_ACCOUNT, BILLING_INVOICE, BILLING_INVOICE_USAGE)

INVOICE_USAGE_ONCE = KeySpace("invoice-usage", "billing")
"""Dedupe keys, not object keys: the one usage follow-up of an invoice, whichever run decided its split."""
USAGE_UPLOAD = "usage"
"""The Zuora ``Idempotency-Key`` prefix of a usage file upload (``usage:{invoice}:{digest}:{series}``)."""


def parse_key(object_key: str) -> tuple[KeySpace, str] | None:
    """The key space and object ID of an object key made here; None for any other key (a plug-in's)."""
    prefix, _, object_id = object_key.partition(":")
    space = next((s for s in OBJECT_KEYS if s.prefix == prefix), None)
    return (space, object_id) if space is not None and object_id else None


def side_of(object_key: str) -> Side | None:
    """Whose ID an object key carries: ``zuora``, ``billing``, or None for a key not made here."""
    parsed = parse_key(object_key)
    return parsed[0].side if parsed else None


def delivery_key(source: str, delivery_id: str) -> str:
    """The dedupe key of a sender's delivery (Zuora's notification ID, a billing ``webhook-id``): the
    source names the namespace, so two senders' IDs never collide."""
    return f"{source}:{delivery_id}"


@dataclass(frozen=True)
class RetryPolicy:
    """What the inbox does when an event of a kind fails (procrastinate's ``RetryStrategy``).

    ``retry_on``: the failures tried again with backoff, in the same attempt series (so a lost answer is
    replayed from Zuora's store); any other ``SyncError`` is permanent and goes on the failure list (a
    ``MissingMapping`` waits for its account). ``max_attempts`` and ``backoff``: None means the process's
    settings (``INTEGRATION_MAX_ATTEMPTS``, ``INTEGRATION_BACKOFF_SECONDS``), which every kind uses today;
    a kind that must give up sooner or wait longer says so here, not in the worker.
    """

    retry_on: tuple[type[SyncError], ...] = (TransientError,)
    max_attempts: int | None = None
    backoff: Backoff | None = None

    def retries(self, error: BaseException) -> bool:
        return isinstance(error, self.retry_on)


DEFAULT_RETRY = RetryPolicy()


class EventFields(TypedDict):
    """What an event is about, as ``Inbox.record`` takes it (a TypedDict, so ``**fields`` stays typed)."""

    type: str
    object_type: str
    object_id: str
    object_key: str


@dataclass(frozen=True)
class Kind:
    """One kind of work: events of type ``type`` about an ``object_type`` keyed in ``key``.

    ``coalesce``: a new event joins a *pending* one of the same type and object instead of queueing
    another (events are pointers, fetched fresh, so one run serves both). ``once``: the kind's events
    are made once per object (their dedupe key is this space's key of the object ID).
    """

    type: str
    object_type: ObjectType
    key: KeySpace
    coalesce: bool = True
    retry: RetryPolicy = DEFAULT_RETRY
    once: KeySpace | None = None

    def object_key(self, object_id: str) -> str:
        return self.key.key(object_id)

    def event(self, object_id: str) -> EventFields:
        """What an event of this kind is about, as ``Inbox.record`` takes it; the caller adds the source, the
        payload and its dedupe key (a delivery's, or ``dedupe_key`` for a kind made ``once`` per object)."""
        return EventFields(type=self.type, object_type=self.object_type.value, object_id=object_id,
                           object_key=self.object_key(object_id))

    def dedupe_key(self, object_id: str) -> str:
        """The dedupe key of this kind's one event for the object (only for a kind that is ``once``)."""
        if self.once is None:
            raise ValueError(f"{self.type} events are not made once per object")
        return self.once.key(object_id)


ACCOUNT_CALLOUT = Kind("account.callout", ObjectType.ACCOUNT, ZUORA_ACCOUNT)
"""A Zuora account to sync to the billing platform (flow 1): a callout, a sync request, reconciliation."""
ACCOUNT_CREATED = Kind("account.created", ObjectType.ACCOUNT, BILLING_ACCOUNT)
"""A billing account to sync to Zuora (flow 2), first seen."""
ACCOUNT_UPDATED = Kind("account.updated", ObjectType.ACCOUNT, BILLING_ACCOUNT)
"""A billing account to sync to Zuora (flow 2), changed (and the on-demand sync of one)."""
ACCOUNT_LINK = Kind("account.link", ObjectType.ACCOUNT, ZUORA_ACCOUNT, coalesce=False)
"""An operator's link of two existing accounts. Never coalesced: each request names its own billing
account in its payload, and joining a pending one would answer it with another request's outcome."""
INVOICE_FINALIZED = Kind("invoice.finalized", ObjectType.INVOICE, BILLING_INVOICE)
"""A finalized billing invoice to push as a Zuora invoice (flow 3)."""
INVOICE_USAGE = Kind("invoice.usage", ObjectType.USAGE, BILLING_INVOICE_USAGE, once=INVOICE_USAGE_ONCE)
"""The usage lines an invoice push left off the invoice (flows 4/5), queued by that push."""
INVOICE_VOIDED = Kind("invoice.voided", ObjectType.INVOICE, BILLING_INVOICE)
"""A voided billing invoice (CONTRACT §12): recorded, or its Zuora twin undone. The invoice's own key, so
a void never runs beside a push of the same invoice."""
INVOICE_UPDATED = Kind("invoice.updated", ObjectType.INVOICE, BILLING_INVOICE)
"""The platform's generic invoice update, handled as a possible void (CONTRACT §12)."""

KINDS: dict[str, Kind] = {kind.type: kind for kind in (
    ACCOUNT_CALLOUT, ACCOUNT_CREATED, ACCOUNT_UPDATED, ACCOUNT_LINK,
    INVOICE_FINALIZED, INVOICE_USAGE, INVOICE_VOIDED, INVOICE_UPDATED)}
"""Every kind of work, by event type."""


def coalesces(event_type: str) -> bool:
    """Whether events of this type coalesce; a type not declared here (a plug-in's) does, as before."""
    kind = KINDS.get(event_type)
    return kind.coalesce if kind is not None else True


def retry_policy(event_type: str) -> RetryPolicy:
    """The kind's retry policy; a type not declared here (a plug-in's) gets the default one."""
    kind = KINDS.get(event_type)
    return kind.retry if kind is not None else DEFAULT_RETRY
