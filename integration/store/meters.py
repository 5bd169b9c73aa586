"""Usage-meter settings: which Zuora subscription and charge a billing meter's usage lands on.

A meter with settings is *usage-synced* (CONTRACT §6.4/6.5): its invoice lines travel to Zuora as
usage records on the named subscription and charge, and are left off the standalone invoice. A
meter without settings stays an ordinary invoice line. The settings are operator input (the admin
API), so every field is validated here, once, for every caller: the values end up in a Zuora usage
CSV, where a stray newline or an over-long number would reject a whole import.
"""
from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

from integration.store.db import Database, iso, to_db_time, utcnow

MODES = ("quantity", "revenue")

# Field limits: Zuora's Usage object (SubscriptionNumber ≤ 100, ChargeNumber ≤ 50) and a UOM name
# short enough for any tenant; meter IDs are Togai IDs (≤ 20) with room for other platforms.
METER_ID_MAX_LENGTH = 64
METER_ID_PATTERN = r"^[A-Za-z0-9._:\-]+$"
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
    created_at: str
    updated_at: str

    def as_json(self) -> dict:
        """The admin API's item shape, times as ISO-8601 UTC."""
        return {"meter_id": self.meter_id,
                "zuora_subscription_number": self.zuora_subscription_number,
                "zuora_charge_number": self.zuora_charge_number,
                "uom": self.uom, "mode": self.mode,
                "created_at": iso(self.created_at), "updated_at": iso(self.updated_at)}


def _from_row(row: sqlite3.Row | None) -> MeterSettings | None:
    return MeterSettings(**dict(row)) if row is not None else None


def _conn(db_or_conn: Database | sqlite3.Connection) -> sqlite3.Connection:
    return db_or_conn.connection() if isinstance(db_or_conn, Database) else db_or_conn


def list_meters(db: Database | sqlite3.Connection) -> list[MeterSettings]:
    """Every meter with settings, ordered by meter ID."""
    rows = _conn(db).execute("SELECT * FROM meter_settings ORDER BY meter_id").fetchall()
    return [MeterSettings(**dict(r)) for r in rows]


def get_meter(db: Database | sqlite3.Connection, meter_id: str) -> MeterSettings | None:
    return _from_row(_conn(db).execute("SELECT * FROM meter_settings WHERE meter_id = ?",
                                       (meter_id,)).fetchone())


def settings_for(db: Database | sqlite3.Connection, meter_ids: set[str] | list[str]) -> dict[str, MeterSettings]:
    """The settings of those of ``meter_ids`` that have them, in one query per 500 IDs
    (an invoice may carry thousands of meters; SQLite caps bound parameters)."""
    ids = sorted(set(meter_ids))
    found: dict[str, MeterSettings] = {}
    conn = _conn(db)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(f"SELECT * FROM meter_settings WHERE meter_id IN ({marks})", chunk):
            found[row["meter_id"]] = MeterSettings(**dict(row))
    return found


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
        if not _ID.match(values[name]):
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
    fields = (zuora_subscription_number, zuora_charge_number, uom, mode)
    with db.transaction() as conn:
        now = to_db_time(utcnow())
        current = get_meter(conn, meter_id)
        if current is None:
            conn.execute("INSERT INTO meter_settings (meter_id, zuora_subscription_number, zuora_charge_number,"
                         " uom, mode, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (meter_id, *fields, now, now))
        elif (current.zuora_subscription_number, current.zuora_charge_number, current.uom, current.mode) != fields:
            conn.execute("UPDATE meter_settings SET zuora_subscription_number = ?, zuora_charge_number = ?,"
                         " uom = ?, mode = ?, updated_at = ? WHERE meter_id = ?", (*fields, now, meter_id))
        saved = get_meter(conn, meter_id)
    assert saved is not None
    return saved, current is None
