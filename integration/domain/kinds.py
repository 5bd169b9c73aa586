"""The closed sets the service's data uses, as enums: one definition for the store's checks, the
admin API's schemas and the OpenAPI document. ``StrEnum`` members are their stored text, so they
bind to SQL and serialise to JSON as plain strings."""
from __future__ import annotations

import re
from enum import StrEnum


class ObjectType(StrEnum):
    """What an event or a mapping is about (``events.object_type``, ``id_mappings.type``)."""

    ACCOUNT = "account"
    INVOICE = "invoice"
    USAGE = "usage"


class MappingOrigin(StrEnum):
    """Which side a mapped record was first seen on, or ``linked`` when both existed."""

    ZUORA = "zuora"
    BILLING = "billing"
    LINKED = "linked"


class MeterMode(StrEnum):
    """How a usage-synced meter's lines become Zuora usage: by quantity or by revenue."""

    QUANTITY = "quantity"
    REVENUE = "revenue"


def values(kind: type[StrEnum]) -> tuple[str, ...]:
    """The enum's stored texts, in declaration order (for schemas and messages)."""
    return tuple(member.value for member in kind)


# The meter-ID rule, one place: Togai IDs (≤ 20 characters) with room for other platforms.
METER_ID_MAX_LENGTH = 64
METER_ID_PATTERN = r"^[A-Za-z0-9._:\-]+$"
_METER_ID = re.compile(METER_ID_PATTERN)


def is_meter_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= METER_ID_MAX_LENGTH and bool(_METER_ID.match(value))
