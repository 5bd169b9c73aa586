"""Usage-meter settings: which Zuora subscription and charge a billing meter's usage lands on.

A meter with settings is *usage-synced* (CONTRACT §6.4/6.5): its invoice lines travel to Zuora as
usage records on the named subscription and charge, and are left off the standalone invoice. A
meter without settings stays an ordinary invoice line. The settings are operator input (the admin
API), so every field is validated here, once, for every caller: the values end up in a Zuora usage
CSV, where a stray newline or an over-long number would reject a whole import.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from integration.domain.kinds import (
    METER_ID_MAX_LENGTH,
    METER_ID_PATTERN,
    MeterMode,
    values,
)
from integration.domain.times import iso_moment, utcnow
from integration.store.db import Database
from integration.store.queries import meters as q
from integration.store.tx import Tx

MODES = values(MeterMode)

# Field limits: Zuora's Usage object (SubscriptionNumber ≤ 100, ChargeNumber ≤ 50) and a UOM name
# short enough for any tenant; the meter-ID rule is the domain's (integration.domain.kinds).
_LIMITS = {"meter_id": METER_ID_MAX_LENGTH, "zuora_subscription_number": 100, "zuora_charge_number": 50,
           "uom": 100}
# No whitespace at the ends, no control characters anywhere (they would break the CSV line).
_SAFE = re.compile(r"^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$")
_ID = re.compile(METER_ID_PATTERN)


@dataclass(frozen=True)
class MeterSettings:
    meter_id: str
    zuora_subscription_number: str
    zuora_charge_number: str
    uom: str
    mode: str
    created_at: datetime | None  # None: settings an event carries (its snapshot), never stored
    updated_at: datetime | None

    def as_json(self) -> dict:
        """The admin API's item shape, times as ISO-8601 UTC."""
        return {"meter_id": self.meter_id,
                "zuora_subscription_number": self.zuora_subscription_number,
                "zuora_charge_number": self.zuora_charge_number,
                "uom": self.uom, "mode": self.mode,
                "created_at": iso_moment(self.created_at), "updated_at": iso_moment(self.updated_at)}


def _from_row(row: dict[str, Any] | None) -> MeterSettings | None:
    return MeterSettings(**row) if row is not None else None


def _reading(db_or_tx: Database | Tx, work):
    if isinstance(db_or_tx, Tx):
        return work(db_or_tx)
    with db_or_tx.read() as tx:
        return work(tx)


def list_meters(db: Database | Tx) -> list[MeterSettings]:
    """Every meter with settings, ordered by meter ID."""
    return _reading(db, lambda tx: [MeterSettings(**row) for row in tx.rows(q.LIST)])


def get_meter(db: Database | Tx, meter_id: str) -> MeterSettings | None:
    return _reading(db, lambda tx: _from_row(tx.one(q.GET, meter_id=meter_id)))


def settings_for(db: Database | Tx, meter_ids: set[str] | list[str]) -> dict[str, MeterSettings]:
    """The settings of those of ``meter_ids`` that have them, in one query per 500 IDs
    (an invoice may carry thousands of meters; engines cap bound parameters)."""
    ids = sorted(set(meter_ids))

    def work(tx: Tx) -> dict[str, MeterSettings]:
        found: dict[str, MeterSettings] = {}
        for start in range(0, len(ids), 500):
            for row in tx.rows(q.SOME, meter_ids=ids[start:start + 500]):
                found[row["meter_id"]] = MeterSettings(**row)
        return found
    return _reading(db, work)


def validate(meter_id: object, *, zuora_subscription_number: object, zuora_charge_number: object,
             uom: object, mode: object) -> None:
    """ValueError naming the first bad field; the message never echoes more than the field name
    and the rule, so hostile input is not reflected back verbatim."""
    values = {"meter_id": meter_id, "zuora_subscription_number": zuora_subscription_number,
              "zuora_charge_number": zuora_charge_number, "uom": uom}
    for name, value in values.items():
        if not isinstance(value, str):
            raise ValueError(f"{name}: must be a string")
        if not value:
            raise ValueError(f"{name}: must not be empty")
        if len(value) > _LIMITS[name]:
            raise ValueError(f"{name}: at most {_LIMITS[name]} characters")
        if not _SAFE.match(value):
            raise ValueError(f"{name}: no control characters or surrounding whitespace")
    for name in ("meter_id", "zuora_subscription_number", "zuora_charge_number"):
        if not _ID.match(str(values[name])):  # a str: checked by the loop above
            raise ValueError(f"{name}: only letters, digits and . _ : - are allowed")
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"mode: must be one of {', '.join(MODES)}")


def put_meter(db: Database, meter_id: str, *, zuora_subscription_number: str, zuora_charge_number: str,
              uom: str, mode: str) -> tuple[MeterSettings, bool]:
    """Create or replace a meter's settings; returns (settings, created).

    Idempotent: putting the same values again changes nothing, not even ``updated_at``, so an
    operator's retried PUT leaves no false trace of a change.
    """
    validate(meter_id, zuora_subscription_number=zuora_subscription_number,
             zuora_charge_number=zuora_charge_number, uom=uom, mode=mode)
    values_ = {"meter_id": meter_id, "zuora_subscription_number": zuora_subscription_number,
               "zuora_charge_number": zuora_charge_number, "uom": uom, "mode": mode}
    with db.transaction() as tx:
        # Correct on any engine: the primary key decides whether this creates, and the update
        # changes the row only when a value differs.
        now = utcnow()
        created = tx.one(q.INSERT_NEW, **values_, now=now) is not None
        if not created:
            tx.run(q.UPDATE_CHANGED, **values_, now=now)
        saved = _from_row(tx.one(q.GET, meter_id=meter_id))
    if saved is None:  # written just now in this transaction: cannot happen, but never return None as a meter
        raise RuntimeError(f"meter {meter_id!r} vanished inside the transaction that wrote it")
    return saved, created


def delete_meter(db: Database, meter_id: str) -> bool:
    """Remove a meter's settings (its usage goes back to being invoice lines); False when it had none."""
    with db.transaction() as tx:
        return tx.run(q.DELETE, meter_id=meter_id) == 1
