"""Meter settings."""
from sqlalchemy import bindparam

from integration.store.types import text

LIST = text("SELECT * FROM meter_settings ORDER BY meter_id")
GET = text("SELECT * FROM meter_settings WHERE meter_id = :meter_id")
SOME = text("SELECT * FROM meter_settings WHERE meter_id IN :meter_ids").bindparams(
    bindparam("meter_ids", expanding=True))
# An upsert in two statements, each atomic on any engine: the insert lands or meets the primary key;
# the update changes the row only when a value differs (so a repeated PUT leaves updated_at alone).
INSERT_NEW = text(
    "INSERT INTO meter_settings (meter_id, zuora_subscription_number, zuora_charge_number, uom, mode,"
    " created_at, updated_at) VALUES (:meter_id, :zuora_subscription_number, :zuora_charge_number, :uom,"
    " :mode, :now, :now) ON CONFLICT (meter_id) DO NOTHING RETURNING meter_id")
UPDATE_CHANGED = text(
    "UPDATE meter_settings SET zuora_subscription_number = :zuora_subscription_number,"
    " zuora_charge_number = :zuora_charge_number, uom = :uom, mode = :mode, updated_at = :now"
    " WHERE meter_id = :meter_id AND (zuora_subscription_number <> :zuora_subscription_number"
    " OR zuora_charge_number <> :zuora_charge_number OR uom <> :uom OR mode <> :mode)")
DELETE = text("DELETE FROM meter_settings WHERE meter_id = :meter_id")
