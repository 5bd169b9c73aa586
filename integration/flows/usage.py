"""Flows 4 and 5 (CONTRACT §6.4–6.5): a finalized invoice's usage-synced meters → Zuora usage.

One usage record per meter and invoice, on the meter's subscription and charge:

- ``quantity`` mode: the meter's ``USAGE_METER_USAGE`` quantity from ``usageInfo`` (at any depth; its
  ``value`` where it has no ``quantity``: integration.billing.togai.line_items), the meter's UOM, the per-unit amount
  (the revenue line's ``valuePerQuantity``, else its slabs') in the description; Zuora rates it.
- ``revenue`` mode: the meter's revenue (the exact sum of its lines' ``value``) as the quantity, at
  1 per unit (the Zuora charge is priced at 1).

Transport: a usage *file* (``POST /v1/usage``), not a call per record: an invoice of 5,000 meters is
one upload and a few status polls, where ``/v1/object/usage`` would be 5,000 calls against a rate
limit of 2,500 a minute on an API sandbox. Zuora imports a file atomically and only ``Completed``
means it did; a ``Failed`` import surfaces as ZUORA_REJECTED with the import's own reason and
records nothing. Files over 4 MB are split into several imports.

Exactly once:
- which meters to push comes from the event's payload (the invoice flow's split), so a line is
  never both on the Zuora invoice and in usage, nor on neither, even if settings change later;
  their subscription, charge, UOM and mode are read fresh (an operator's fix applies on retry);
- each usage line has a mapping row (``billing_id`` = ``{invoice}:{meter}``); lines already mapped
  are never uploaded again;
- before uploading, the Zuora account's usage records are read back (Object Query): each one's
  description ends with a marker naming its billing invoice and meter, and lines already there are
  recorded, not pushed again (an earlier attempt series imported them and its answer was lost);
- the upload's ``Idempotency-Key`` is ``usage:{invoice}:{series key}:{digest of the file}`` (the
  digest names the chunk): a run of the same series that crashed after the upload gets the same
  import back; a new series (an operator's or the scheduled retry), or a file changed by a fix, is
  a new import, where an unchanged key would replay the old failure for the 24 h Zuora keeps it;
- with several files, the rows of each completed import are committed before the next upload, so
  a later file's rejection cannot leave an imported file unrecorded until a retry days later,
  when Zuora no longer remembers the key. The last (usually only) file's rows are written with the
  event's completion.
"""
from __future__ import annotations

import csv
import hashlib
import io
import logging
import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from integration.billing.amounts import Line, MeterUsage, usage_quantity
from integration.billing.model import checked
from integration.domain import money, work
from integration.domain.errors import InvalidData
from integration.flows.invoice_items import truncate
from integration.flows.invoices import (
    fetch_invoice,
    linked_owner,
)
from integration.flows.outcome import Outcome, Write
from integration.services import Services
from integration.store import mappings, meters
from integration.store.db import Database
from integration.store.inbox import Event
from integration.store.meters import MeterSettings
from integration.zuora.usage_import import USAGE_FILE_MAX_BYTES

log = logging.getLogger("integration.flows.usage")

HEADINGS = ("ACCOUNT_ID", "UOM", "QTY", "STARTDATE", "ENDDATE", "PRODUCT_RATE_PLAN_CHARGE_ID",
            "SUBSCRIPTION_ID", "CHARGE_ID", "DESCRIPTION")
DESCRIPTION_MAX = 200
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class UsageLine:
    """One Zuora usage record to be: a meter's usage on one invoice."""

    key: str                  # mapping billing_id: "{invoice_id}:{meter_id}"
    meter_id: str
    settings: MeterSettings
    quantity: Decimal
    description: str


def meter_snapshot(payload: Any) -> dict[str, dict[str, Any]] | None:
    """The meters the invoice flow left off the invoice (None: the event predates that split)."""
    if not isinstance(payload, dict) or "meters" not in payload:
        return None
    snapshot = payload["meters"]
    if not isinstance(snapshot, dict) or not all(isinstance(k, str) and isinstance(v, dict)
                                                 for k, v in snapshot.items()):
        raise InvalidData("payload.meters", "must map meter IDs to their settings")
    return snapshot


def meters_to_push(db: Database, snapshot: dict[str, dict[str, Any]] | None,
                   metered: set[str]) -> dict[str, MeterSettings]:
    """Settings for each meter to push: current settings where they exist (so a fix applies),
    else the snapshot's (so a line left off the invoice is never dropped)."""
    current = meters.settings_for(db, metered if snapshot is None else set(snapshot))
    if snapshot is None:
        return current
    chosen = {}
    for meter_id, values in snapshot.items():
        if meter_id in current:
            chosen[meter_id] = current[meter_id]
            continue
        fields = {k: values.get(k) for k in ("zuora_subscription_number", "zuora_charge_number", "uom", "mode")}
        try:
            meters.validate(meter_id, **fields)
        except ValueError as exc:
            raise InvalidData(f"payload.meters.{meter_id}", str(exc)) from None
        checked = {k: str(v) for k, v in fields.items()}  # strings: validate() raised otherwise
        chosen[meter_id] = MeterSettings(meter_id=meter_id, created_at=None, updated_at=None, **checked)
    return chosen


def build_usage_lines(invoice_id: str, usage: dict[str, list[MeterUsage]], lines: list[Line],
                      settings: dict[str, MeterSettings]) -> list[UsageLine]:
    """One usage line per usage-synced meter with revenue lines on the invoice (``usage``: the invoice's
    meter entries by meter ID, ``BillingInvoice.usage``), by meter ID."""
    by_meter: dict[str, list[Line]] = {}
    for line in lines:
        if line.meter_id in settings:
            by_meter.setdefault(line.meter_id, []).append(line)
    result = []
    for meter_id in sorted(by_meter):
        meter, revenue_lines = settings[meter_id], by_meter[meter_id]
        revenue = money.exact_sum(line.value for line in revenue_lines)
        name = revenue_lines[0].description or meter_id
        if meter.mode == "quantity":
            quantity, units = usage_quantity(usage, meter_id)
            prices = sorted({price for line in revenue_lines for price in line.unit_prices()})
            price = "/".join(money.plain(p) for p in prices) or "unknown"
            head = f"Per-unit amount {price}"
            if units:
                head += f" per {units}"
        else:
            if revenue < 0:
                raise InvalidData(f"{revenue_lines[0].path}.value",
                                  f"meter {meter_id} has negative revenue {money.plain(revenue)}; a Zuora usage "
                                  f"quantity must be ≥ 0")
            quantity, head = revenue, f"Revenue {money.plain(revenue)} at per-unit amount 1"
        description = usage_description(f"{head}; {name}", invoice_id, meter_id)
        result.append(UsageLine(key=f"{invoice_id}:{meter_id}", meter_id=meter_id, settings=meter,
                                quantity=quantity, description=description))
    return result


READ_BACK_MARGIN = timedelta(hours=1)
"""How far before its event's creation the usage flow reads an account's usage back (clock skew)."""
MIN_DESCRIPTION_HEAD = 20
"""Characters of the readable head a description keeps at least, ahead of its marker."""


def usage_marker(invoice_id: str, meter_id: str) -> str:
    """The tail of every usage record's description that names its billing invoice and meter: how a
    later attempt series recognises, by reading the account's usage back, what is already in Zuora."""
    return _one_line(f"meter {meter_id}; billing invoice {invoice_id}")


def usage_description(head: str, invoice_id: str, meter_id: str) -> str:
    """``head`` (cut to fit) followed by the marker, which is never cut, within Zuora's 200 characters."""
    marker = usage_marker(invoice_id, meter_id)
    room = DESCRIPTION_MAX - len(marker) - 2
    if room < MIN_DESCRIPTION_HEAD:
        raise InvalidData("usage", f"meter {meter_id} and invoice {invoice_id} IDs are too long to name in a "
                                   f"{DESCRIPTION_MAX}-character Zuora usage description")
    return f"{truncate(_one_line(head), room)}; {marker}"


def holds_marker(description: object, marker: str) -> bool:
    """Whether a usage record's description ends with ``marker`` (as a whole ``; ``-separated part)."""
    return isinstance(description, str) and (description == marker or description.endswith("; " + marker))


def _one_line(text: str) -> str:
    """Whitespace collapsed: a description is one CSV cell and one line in Zuora's UI."""
    return " ".join(text.split())


def csv_files(lines: list[UsageLine], *, account_number: str, start: date, end: date,
              max_bytes: int = USAGE_FILE_MAX_BYTES) -> list[tuple[bytes, list[UsageLine]]]:
    """Usage CSVs of at most ``max_bytes`` each, with the lines in each, in order (deterministic)."""
    header = _row(HEADINGS)
    files: list[tuple[bytes, list[UsageLine]]] = []
    body: list[bytes] = [header]
    members: list[UsageLine] = []
    size = len(header)
    for line in lines:
        s = line.settings
        row = _row((account_number, s.uom, money.plain(line.quantity), _us_date(start), _us_date(end), "",
                    s.zuora_subscription_number, s.zuora_charge_number, line.description))
        if len(header) + len(row) > max_bytes:
            raise InvalidData("usage", f"the usage row of meter {line.meter_id} alone exceeds {max_bytes} bytes")
        if size + len(row) > max_bytes:
            files.append((b"".join(body), members))
            body, members, size = [header], [], len(header)
        body.append(row)
        members.append(line)
        size += len(row)
    if members:
        files.append((b"".join(body), members))
    return files


def _row(cells: tuple[str, ...]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(cells)
    return out.getvalue().encode("utf-8")


def _us_date(day: date) -> str:
    """Zuora's default usage-file date format (en_US locale): MM/DD/YYYY."""
    return day.strftime("%m/%d/%Y")


class UsageFlow:
    """``invoice.usage`` → one usage import per invoice (or per 4 MB), recorded line by line."""

    def __init__(self, services: Services, *, max_file_bytes: int = USAGE_FILE_MAX_BYTES,
                 import_timeout: float = 300.0, poll_interval: float = 1.0):
        self.db = services.db
        self.zuora = services.zuora
        self.billing = services.billing
        self.max_file_bytes = max_file_bytes
        self.import_timeout = import_timeout
        self.poll_interval = poll_interval

    def handle(self, event: Event) -> Outcome:
        invoice_id = event.object_id
        invoice = fetch_invoice(self.billing, invoice_id)
        if invoice.is_void:  # CONTRACT §12: nothing more of a voided invoice reaches Zuora
            return Outcome(summary=f"usage of invoice {invoice_id}: not pushed, the invoice is void")
        account = linked_owner(self.db, invoice, invoice_id)
        lines = checked(invoice.amounts).lines  # checked as the invoice flow checks it: lines + adjustments
        settings = meters_to_push(self.db, meter_snapshot(event.payload),
                                  {line.meter_id for line in lines if line.meter_id})
        usage = build_usage_lines(invoice_id, checked(invoice.usage), lines, settings)
        done = {m.billing_id for m in mappings.children(self.db, "usage", invoice_id)}
        todo = [line for line in usage if line.key not in done]
        if not todo:
            return Outcome(summary=f"usage of invoice {invoice_id}: nothing to push"
                                   + (f" ({len(done)} line(s) already imported)" if done else ""))

        writes: list[Write] = []
        found = self._already_in_zuora(account.zuora_id, event, todo)
        for key, record_id in found.items():
            writes.append(mappings.link("usage", zuora_id=record_id, billing_id=key,
                                        billing_parent_id=invoice_id, origin="billing"))
        todo = [line for line in todo if line.key not in found]
        if not todo:
            return Outcome(writes=writes, summary=f"usage of invoice {invoice_id}: {len(found)} line(s) already in "
                                                  f"Zuora from an earlier attempt; linked, nothing pushed")

        number = account.zuora_number or self.zuora.get_account(account.zuora_id).number
        files = csv_files(todo, account_number=number, start=checked(invoice.start_date).date(),
                          end=checked(invoice.service_end), max_bytes=self.max_file_bytes)
        imports = []
        for n, (content, members) in enumerate(files, start=1):
            import_id = self._import(event, content)
            imports.append(import_id)
            log.info("usage file imported", extra={"invoice_id": invoice_id, "import_id": import_id,
                                                   "lines": len(members), "file": f"{n}/{len(files)}"})
            links = [mappings.link("usage", zuora_id=f"{import_id}:{row}", billing_id=line.key,
                                   billing_parent_id=invoice_id, origin="billing")
                     for row, line in enumerate(members, start=2)]  # CSV line numbers: headings are line 1
            if n < len(files):
                with self.db.transaction() as tx:
                    for link in links:
                        link(tx)
            else:
                writes += links
        return Outcome(writes=writes, summary=f"usage of invoice {invoice_id}: {len(todo)} line(s) imported "
                                              f"in {len(files)} file(s) ({', '.join(imports)})")

    def _already_in_zuora(self, zuora_account_id: str, event: Event, lines: list[UsageLine]) -> dict[str, str]:
        """The lines (by key) the Zuora account already holds a usage record for (by the marker in
        its description), with that record's ID: imported by an earlier attempt series whose answer was
        lost, or before a crash. Read on every run, since a new series has a new key.

        Only records created since the event was recorded (less ``READ_BACK_MARGIN`` for clock skew)
        are read: an invoice has exactly one usage event (its dedupe key), so nothing older can be
        one of its lines, and the account's older history is not read again on every invoice."""
        if not lines:
            return {}
        invoice_id = event.object_id
        records = self.zuora.find_usages(zuora_account_id, created_since=event.created_at - READ_BACK_MARGIN)
        found = {}
        for line in lines:
            marker = usage_marker(invoice_id, line.meter_id)
            record = next((r for r in records if holds_marker(r.description, marker)), None)
            if record is not None:
                found[line.key] = record.id
        return found

    def _import(self, event: Event, content: bytes) -> str:
        """Upload one file and wait until Zuora has imported all of it; returns the import ID.

        The key is the attempt series' and the file's digest: within one series, after a crash or a
        lost answer, the lines still unrecorded and not found in Zuora pack into the very same files
        again (same lines, same order, same greedy split), so each re-upload meets Zuora's stored
        answer for that file instead of importing it twice; a new series gets a new key.
        """
        invoice_id = event.object_id
        digest = hashlib.sha256(content).hexdigest()[:16]
        name = f"{_UNSAFE_FILENAME.sub('_', invoice_id)[:28]}-{digest[:12]}.csv"
        import_id = self.zuora.upload_usage(content, filename=name,
                                            idempotency_key=event.idempotency_key(work.USAGE_UPLOAD, invoice_id,
                                                                                  digest))
        self.zuora.wait_for_usage_import(import_id, timeout=self.import_timeout, poll_interval=self.poll_interval)
        return import_id
