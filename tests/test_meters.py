"""Usage-meter settings: stored exactly, idempotent PUTs, and every field validated by name."""
from __future__ import annotations

import re

import pytest

from integration.store import meters

GOOD = {"zuora_subscription_number": "A-S00000001", "zuora_charge_number": "C-00000001", "uom": "API Calls",
        "mode": "quantity"}
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def test_put_creates_then_reads_back(services):
    saved, created = meters.put_meter(services.db, "m-calls", **GOOD)
    assert created is True
    assert meters.get_meter(services.db, "m-calls") == saved
    body = saved.as_json()
    assert {k: body[k] for k in ("meter_id", *GOOD)} == {"meter_id": "m-calls", **GOOD}
    assert ISO_UTC.match(body["created_at"]) and body["created_at"] == body["updated_at"]
    assert set(body) == {"meter_id", *GOOD, "created_at", "updated_at"}


def test_same_put_twice_changes_nothing_and_a_change_updates(services):
    first, _ = meters.put_meter(services.db, "m-calls", **GOOD)
    again, created = meters.put_meter(services.db, "m-calls", **GOOD)
    assert created is False and again == first  # not even updated_at moves
    changed, created = meters.put_meter(services.db, "m-calls", **{**GOOD, "mode": "revenue", "uom": "USD"})
    assert created is False
    assert (changed.mode, changed.uom, changed.created_at) == ("revenue", "USD", first.created_at)
    assert changed.updated_at >= first.updated_at
    assert [m.meter_id for m in meters.list_meters(services.db)] == ["m-calls"]


def test_list_is_ordered_by_meter_id_and_get_of_unknown_is_none(services):
    for meter_id in ("m-b", "m-a", "m-c"):
        meters.put_meter(services.db, meter_id, **GOOD)
    assert [m.meter_id for m in meters.list_meters(services.db)] == ["m-a", "m-b", "m-c"]
    assert meters.get_meter(services.db, "m-zzz") is None


def test_settings_for_many_meters(services):
    wanted = {f"m{i:04d}" for i in range(1200)}
    for meter_id in ("m0001", "m0777", "m1199"):
        meters.put_meter(services.db, meter_id, **GOOD)
    assert sorted(meters.settings_for(services.db, wanted)) == ["m0001", "m0777", "m1199"]
    assert meters.settings_for(services.db, set()) == {}


@pytest.mark.parametrize("field,value,message", [
    ("meter_id", "", "meter_id: must not be empty"),
    ("meter_id", 42, "meter_id: must be a string"),
    ("meter_id", "m" * 65, "meter_id: at most 64 characters"),
    ("meter_id", "m calls", "meter_id: only letters, digits and . _ : - are allowed"),
    ("meter_id", "m\ncalls", "meter_id: no control characters or surrounding whitespace"),
    ("zuora_subscription_number", None, "zuora_subscription_number: must be a string"),
    ("zuora_subscription_number", "A" * 101, "zuora_subscription_number: at most 100 characters"),
    ("zuora_subscription_number", " A-S1", "zuora_subscription_number: no control characters or surrounding"
                                           " whitespace"),
    ("zuora_subscription_number", "A-S1,evil", "zuora_subscription_number: only letters, digits and . _ : - are"
                                               " allowed"),
    ("zuora_charge_number", "C" * 51, "zuora_charge_number: at most 50 characters"),
    ("zuora_charge_number", "", "zuora_charge_number: must not be empty"),
    ("uom", "", "uom: must not be empty"),
    ("uom", "U" * 101, "uom: at most 100 characters"),
    ("uom", "calls\r\nA-1,x", "uom: no control characters or surrounding whitespace"),
    ("uom", "calls ", "uom: no control characters or surrounding whitespace"),
    ("mode", "both", "mode: must be one of quantity, revenue"),
    ("mode", None, "mode: must be one of quantity, revenue"),
])
def test_bad_input_names_the_field_and_stores_nothing(services, field, value, message):
    values = {"meter_id": "m-calls", **GOOD, field: value}
    meter_id = values.pop("meter_id")
    with pytest.raises(ValueError) as excinfo:  # noqa: PT011 - the message is asserted below, per case
        meters.put_meter(services.db, meter_id, **values)
    assert str(excinfo.value) == message
    assert meters.list_meters(services.db) == []


def test_a_uom_with_inner_spaces_and_punctuation_is_fine(services):
    saved, _ = meters.put_meter(services.db, "m.calls:v2", **{**GOOD, "uom": "Calls, per 1,000 (EU)"})
    assert saved.uom == "Calls, per 1,000 (EU)"
