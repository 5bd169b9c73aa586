"""Every mapping as CSV (``integration mappings export``, the console's download): one header line,
then one row per mapping in creation order, read page by page so a large table never sits in memory."""
from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import TextIO

from integration.domain.spreadsheet import spreadsheet_cell
from integration.store import mappings
from integration.store.db import Database

COLUMNS = ("type", "zuora_id", "zuora_number", "billing_id", "billing_customer_id", "billing_parent_id", "origin",
           "created_at", "updated_at")
PAGE = 500


def all_mappings(db: Database, type: str | None = None) -> Iterator[mappings.Mapping]:
    after = None
    while True:
        items, cursor = mappings.page(db, type=type, limit=PAGE, after=after)
        yield from items
        if cursor is None:
            return
        after = mappings.decode_cursor(cursor)


def write_csv(db: Database, out: TextIO, type: str | None = None) -> int:
    """Write the header and every mapping (of ``type``) to ``out``; returns the number of rows."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    count = 0
    for mapping in all_mappings(db, type):
        item = mapping.as_json()
        writer.writerow([spreadsheet_cell(item.get(column)) for column in COLUMNS])
        count += 1
    return count
