"""Remove a meter's settings (the admin API's ``DELETE /admin/meters/<id>`` and the console's form)."""
from __future__ import annotations

import logging

from integration.actions.limits import METER_ID_MAX
from integration.store.db import Database
from integration.store.meters import delete_meter

log = logging.getLogger("integration.actions")


def remove_meter(db: Database, meter_id: str, *, via: str) -> bool:
    """Remove a meter's settings; its usage is invoiced as ordinary lines from then on. False when the
    meter had none (an ID over METER_ID_MAX has none). The caller refuses an unprintable ID first."""
    if len(meter_id) > METER_ID_MAX or not delete_meter(db, meter_id):
        return False
    log.info("meter settings removed by an operator", extra={"meter_id": meter_id, "via": via})
    return True
