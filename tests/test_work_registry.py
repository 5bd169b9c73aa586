"""The registry of kinds of work (integration.domain.work, handlers in integration.flows.registry).

Each kind is declared once: its handler is bound once, every reader's table holds kinds from the
registry, and no product module outside the registry types an event type or a key prefix again.
"""
from __future__ import annotations

import ast
import random
from datetime import datetime, timezone
from pathlib import Path

import pytest

from integration.actions.sync import SYNC_TARGETS
from integration.domain import work
from integration.domain.backoff import Backoff
from integration.domain.errors import RETRIES_EXHAUSTED, InvalidData, TransientError
from integration.domain.kinds import ObjectType
from integration.flows import backfill_apply, build_handlers, registry
from integration.flows.outcome import Outcome
from integration.store import reconcile
from integration.store.db import Database
from integration.store.inbox import Inbox
from integration.web.webhooks import BILLING_EVENT_TYPES
from integration.worker.loop import Worker

PACKAGE = Path(__file__).resolve().parent.parent / "integration"
REGISTRY = PACKAGE / "domain" / "work.py"
TEST_KIND = work.Kind("test.kind", ObjectType.ACCOUNT, work.ZUORA_ACCOUNT)


# -- one handler per kind ---------------------------------------------------------------------------------

def test_every_declared_kind_has_exactly_one_handler(services):
    bindings = registry.bind(services)
    registry.check(bindings)
    assert sorted(kind.type for kind, _ in bindings) == sorted(work.KINDS)
    assert set(build_handlers(services)) == set(work.KINDS)


def test_check_names_a_kind_without_handler_a_second_handler_and_a_handler_without_kind():
    def handle(event):
        return None

    bindings = [(kind, handle) for kind in work.KINDS.values() if kind is not work.INVOICE_USAGE]
    bindings += [(work.ACCOUNT_LINK, handle), (TEST_KIND, handle)]
    with pytest.raises(registry.RegistryError) as caught:
        registry.check(bindings)
    assert str(caught.value) == ("kinds of work and handlers disagree: account.link: 2 handlers; "
                                 "invoice.usage: no handler; "
                                 "test.kind: a handler for a kind not declared in integration.domain.work")


def plugin(services):
    """A plug-in (INTEGRATION_HANDLER_PLUGINS) adding a type of its own and replacing a flow."""
    def handle(event):
        return Outcome(summary="plugged in")
    return {"custom.type": handle, "account.callout": handle}


def test_plug_ins_lay_over_the_registry(services, monkeypatch):
    monkeypatch.setenv("INTEGRATION_HANDLER_PLUGINS", f"{__name__}:plugin")
    handlers = build_handlers(services)
    assert set(handlers) == {*work.KINDS, "custom.type"}
    assert handlers["account.callout"](None).summary == "plugged in"


# -- every reader reads the registry ----------------------------------------------------------------------

def test_every_readers_table_holds_declared_kinds():
    declared = set(work.KINDS.values())
    assert set(BILLING_EVENT_TYPES.values()) <= declared
    assert set(SYNC_TARGETS.values()) <= declared
    assert set(reconcile.KINDS.values()) <= declared
    assert {kind for kind, _ in backfill_apply._EVENTS.values()} <= declared


def test_keys_are_made_and_read_by_the_registry():
    assert work.ACCOUNT_CALLOUT.event("A1") == {"type": "account.callout", "object_type": "account",
                                                "object_id": "A1", "object_key": "zuora-account:A1"}
    assert work.INVOICE_USAGE.object_key("I1") == "billing-invoice-usage:I1"
    assert work.INVOICE_USAGE.dedupe_key("I1") == "invoice-usage:I1"
    with pytest.raises(ValueError, match="not made once per object"):
        work.INVOICE_FINALIZED.dedupe_key("I1")
    assert work.delivery_key("zuora", "n-1") == "zuora:n-1"
    assert work.parse_key("billing-invoice:I:1") == (work.BILLING_INVOICE, "I:1")
    assert [work.side_of(k) for k in ("zuora-account:A", "billing-account:B", "custom:C", "zuora-account:")] == [
        "zuora", "billing", None, None]


def _kind_constants() -> set[str]:
    return {name for name, value in vars(work).items() if isinstance(value, work.Kind)}


def _typed_literals(path: Path, kinds: set[str]) -> list[tuple[int, str]]:
    """String literals (docstrings and other bare strings aside) that type an event type or a key prefix.

    A vendor's webhook type may equal an internal one (Togai named them first) only as a key of a table
    mapping it onto a kind (``{"invoice.finalized": work.INVOICE_FINALIZED}``).
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            skip.update(id(key) for key, value in zip(node.keys, node.values, strict=True)
                        if isinstance(value, ast.Attribute) and value.attr in kinds)
    prefixes = [space.prefix for space in (*work.OBJECT_KEYS, work.INVOICE_USAGE_ONCE)]
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if text in work.KINDS or text in prefixes or any(text.startswith(p + ":") for p in prefixes):
                found.append((node.lineno, text))
        elif isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
            first = node.values[0].value
            if first in ("zuora:", "billing:"):  # a delivery key: work.delivery_key
                found.append((node.lineno, first))
    return sorted(found)


def test_kinds_and_key_prefixes_are_typed_only_in_the_registry():
    """Fails when a kind of work (its event type) or a key prefix is declared a second time in product
    code: every reader takes them from integration.domain.work."""
    kinds = _kind_constants()
    found = {str(path.relative_to(PACKAGE.parent)): hits for path in sorted(PACKAGE.rglob("*.py"))
             if path != REGISTRY and (hits := _typed_literals(path, kinds))}
    assert found == {}


def test_the_scan_sees_a_second_declaration(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('"""docstring: zuora-account:{id} is fine here."""\n'
                      'A = {"invoice.finalized": ("invoice", "billing-invoice")}\n'
                      'B = {"account.created": work.ACCOUNT_CREATED}\n'
                      'C = f"zuora-account:{x}"\n'
                      'D = f"billing:{webhook_id}"\n', encoding="utf-8")
    assert _typed_literals(sample, _kind_constants()) == [
        (2, "billing-invoice"), (2, "invoice.finalized"), (4, "zuora-account:"), (5, "billing:")]


# -- coalescing and retry policy come from the kind -------------------------------------------------------

class Clock:
    def __init__(self):
        self.now = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)

    def __call__(self):
        return self.now


@pytest.fixture
def inbox(database_url):
    db = Database(database_url)
    db.migrate()
    yield Inbox(db, clock=Clock(), lease_seconds=30, max_attempts=3, rng=random.Random(7))
    db.close()


def _record(inbox, kind, object_id="A1", **options):
    return inbox.record(source="admin", **kind.event(object_id), **options)


def test_coalescing_is_the_kinds_unless_the_caller_says_otherwise(inbox):
    first = _record(inbox, work.ACCOUNT_CALLOUT)
    assert _record(inbox, work.ACCOUNT_CALLOUT).coalesced  # declared coalescing
    assert not _record(inbox, work.ACCOUNT_LINK).coalesced
    assert not _record(inbox, work.ACCOUNT_LINK).coalesced  # declared not coalescing: a second event
    assert not _record(inbox, work.ACCOUNT_CALLOUT, coalesce=False).coalesced  # the backfill's override
    assert first.created
    with inbox.db.transaction() as tx, pytest.raises(ValueError, match=r"account\.link events do not coalesce"):
        inbox.record_unless_active(tx, source="admin", **work.ACCOUNT_LINK.event("A2"))


def test_a_kinds_retry_policy_decides_attempts_and_backoff(inbox, monkeypatch):
    policy = work.RetryPolicy(max_attempts=2, backoff=Backoff(base_seconds=0.0, cap_seconds=0.0))
    monkeypatch.setitem(work.KINDS, TEST_KIND.type, work.Kind(TEST_KIND.type, ObjectType.ACCOUNT,
                                                              work.ZUORA_ACCOUNT, retry=policy))
    event_id = _record(inbox, TEST_KIND).event_id

    def handle(event):
        raise TransientError("HTTP 503")

    worker = Worker(inbox, {TEST_KIND.type: handle})
    assert worker.run_once()
    assert inbox.get(event_id).status == "pending"
    assert inbox.get(event_id).next_attempt_at == inbox.clock()  # the kind's backoff: no wait
    assert worker.run_once()
    event = inbox.get(event_id)
    assert (event.status, event.attempts, event.error_code) == ("failed", 2, RETRIES_EXHAUSTED)  # inbox: 3


def test_a_kinds_retry_policy_decides_which_failures_retry(inbox, monkeypatch):
    policy = work.RetryPolicy(retry_on=(TransientError, InvalidData))
    monkeypatch.setitem(work.KINDS, TEST_KIND.type, work.Kind(TEST_KIND.type, ObjectType.ACCOUNT,
                                                              work.ZUORA_ACCOUNT, retry=policy))
    retried = _record(inbox, TEST_KIND, "A1").event_id
    failed = _record(inbox, work.ACCOUNT_CALLOUT, "A2").event_id

    def handle(event):
        raise InvalidData("name", "too long")

    worker = Worker(inbox, {TEST_KIND.type: handle, "account.callout": handle})
    assert worker.drain() == 2
    assert (inbox.get(retried).status, inbox.get(failed).status) == ("pending", "failed")
