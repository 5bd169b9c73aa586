"""Scheduler state: which worker ran which slot of a scheduled job."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from integration.store.db import Database
from integration.store.queries import scheduler as q
from integration.store.tx import Tx


def claim_slot(tx: Tx, slot: str, worker_id: str, now: datetime) -> bool:
    """Inside the caller's transaction: True when this worker's row for ``slot`` landed (it runs the
    slot), False when another worker's was there. The primary key decides, on any engine."""
    return tx.run(q.CLAIM_SLOT, slot=slot, worker_id=worker_id, started_at=now) == 1


def record_result(tx: Tx, slot: str, retried: int) -> None:
    tx.run(q.RECORD_RESULT, slot=slot, retried=retried)


def slots(db: Database) -> list[dict[str, Any]]:
    """Every slot run so far: slot, worker_id, started_at, retried (oldest first)."""
    with db.read() as tx:
        return tx.rows(q.SLOTS)
