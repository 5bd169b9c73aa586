"""Removing a meter's settings (``DELETE /admin/meters/<id>``): its usage is invoiced as ordinary
lines from then on. A separate module from integration.store.meters so the two can move apart."""
from __future__ import annotations

from integration.store.db import Database


def delete_meter(db: Database, meter_id: str) -> bool:
    """Remove the settings of ``meter_id``; False when it had none."""
    with db.transaction() as conn:
        return conn.execute("DELETE FROM meter_settings WHERE meter_id = ?", (meter_id,)).rowcount == 1
