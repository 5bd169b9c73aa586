"""Invoices as resources: list, get, create (sandbox control) and finalize."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from .adjustments import spec_trees
from .common import (
    INVOICE_STATUSES,
    INVOICES_PAGE_DEFAULT,
    INVOICES_PAGE_MAX,
    ApiError,
    _togai_id,
    billing_address,
    paginate,
)
from .invoices import inclusive_end
from .schemas import FinalizeSchema, InvoiceSpecSchema, VoidSchema, load

SUMMARY_FIELDS = ("id", "customerId", "ownerId", "pricePlanId", "status", "finalizingStatus", "invoiceClass",
                  "invoiceType", "startDate", "endDate", "endDateInclusive", "invoiceDate", "dueDate",
                  "generatedAt", "updatedAt", "sequenceId", "pdfUrl", "totalAmount", "paidAmount",
                  "invoiceDetails", "netTermDays")  # Togai's InvoiceSummary


def _epoch_millis(args: Any, name: str) -> datetime | None:
    raw = args.get(name)
    if raw is None:
        return None
    if not re.fullmatch(r"[0-9]{1,15}", raw):
        raise ApiError(400, f"{name} must be epoch milliseconds")
    return datetime.fromtimestamp(int(raw) / 1000, timezone.utc)


class InvoicingMixin:
    """Invoices of :class:`~integration_sandbox.billing.state.BillingSandbox`."""

    # -- invoices --------------------------------------------------------------------------------

    def get_invoice(self, invoice_id: str) -> dict:
        with self._lock:
            return self._invoice(invoice_id)

    def list_invoices(self, args: Any) -> dict:
        """``GET /invoices`` (listInvoices): filtered by ``status``, ``owner_id`` (account),
        ``customer_id`` and ``start_time``/``end_time`` (epoch milliseconds; sandbox choice: the
        invoice date lies in ``[start_time, end_time)``), oldest first, 50 a page at most (more is
        the spec's 422); the rows are Togai's ``InvoiceSummary`` (the invoice without its line-item trees)."""
        status = args.get("status")
        if status is not None and status not in INVOICE_STATUSES:
            raise ApiError(400, f"status must be one of: {', '.join(INVOICE_STATUSES)}")
        start, end = _epoch_millis(args, "start_time"), _epoch_millis(args, "end_time")
        wanted = {"status": status, "ownerId": args.get("owner_id"), "customerId": args.get("customer_id")}
        with self._lock:
            rows = [{k: v for k, v in inv.items() if k in SUMMARY_FIELDS} for inv in self._invoices.values()
                    if all(v is None or inv.get(k) == v for k, v in wanted.items())
                    and (start is None or inv["invoiceDate"] >= start)
                    and (end is None or inv["invoiceDate"] < end)]
        return paginate(rows, args, default=INVOICES_PAGE_DEFAULT, maximum=INVOICES_PAGE_MAX, context=False,
                        over_limit=422)

    def _invoice(self, invoice_id: str) -> dict:
        invoice = self._invoices.get(invoice_id)
        if invoice is None:
            raise ApiError(404, f"Invoice with id '{invoice_id}' not found")
        return invoice

    def create_invoice(self, payload: Any) -> dict:
        """``POST /_sandbox/invoices``: build an invoice from the compact spec; finalized by default.

        Emits ``invoice.finalized`` when the invoice is created finalized; a draft emits nothing.
        """
        spec = load(InvoiceSpecSchema(), payload)
        with self._lock:
            account = self._account(spec["accountId"])
            customer = self._customers[account["customerId"]]
            invoice_id = spec.get("id") or _togai_id("inv")
            if invoice_id in self._invoices:
                raise ApiError(400, f"Invoice with id '{invoice_id}' already exists")
            invoice = self._build_invoice(invoice_id, spec, account, customer)
            self._invoices[invoice_id] = invoice
            if spec["finalize"]:
                self._emit("invoice.finalized", invoice_id, via_api=False)
            return invoice

    def _build_invoice(self, invoice_id: str, spec: dict, account: dict, customer: dict) -> dict:
        now = self._clock()
        usage, revenue, total = spec_trees(spec, account["invoiceCurrency"])
        net_term_days = spec.get("netTermDays", account.get("netTermDays", 0))
        invoice_date = spec.get("invoiceDate", spec["endDate"])
        status = spec.get("status") or ("DUE" if spec["finalize"] else "DRAFT")
        paid = spec.get("paidAmount", total if status == "PAID" else Decimal(0))
        invoice: dict[str, Any] = {
            "id": invoice_id, "customerId": customer["id"], "ownerId": account["id"],
            "usageInfo": usage, "revenueInfo": revenue,
            "invoiceDetails": self._invoice_details(account, customer),
            "status": status}
        if spec["finalize"]:
            invoice["finalizingStatus"] = "FINALIZED"
        invoice.update({
            "invoiceClass": "INVOICE", "invoiceType": "STANDARD", "autoAdvance": True,
            "startDate": spec["startDate"], "endDate": spec["endDate"],
            "endDateInclusive": inclusive_end(spec["endDate"]), "invoiceDate": invoice_date,
            "dueDate": spec.get("dueDate", invoice_date + timedelta(days=net_term_days))})
        if spec["finalize"]:
            invoice["generatedAt"] = now
        invoice["updatedAt"] = now
        if "metadata" in spec:
            invoice["metadata"] = spec["metadata"]
        invoice.update({"sequenceId": f"INV-{len(self._invoices) + 1:06d}", "totalAmount": total,
                        "paidAmount": paid, "netTermDays": net_term_days})
        return invoice

    @staticmethod
    def _invoice_details(account: dict, customer: dict) -> dict:
        """The customer/account snapshot Togai embeds; account falls back to the customer's contact."""
        return {
            "customer": {"name": customer["name"], "primaryEmail": customer["primaryEmail"],
                         "billingAddress": billing_address(customer["address"]),
                         "address": dict(customer["address"])},
            "account": {"name": account["name"], "invoiceCurrency": account["invoiceCurrency"],
                        "address": dict(account.get("address", customer["address"])),
                        "primaryEmail": account.get("primaryEmail", customer["primaryEmail"])}}

    def finalize_invoice(self, invoice_id: str, payload: Any) -> dict:
        """``POST /_sandbox/invoices/{id}/finalize``: a draft becomes FINALIZED and emits the event."""
        data = load(FinalizeSchema(), payload if payload is not None else {})
        with self._lock:
            invoice = self._invoice(invoice_id)
            if invoice.get("finalizingStatus") == "FINALIZED":
                raise ApiError(400, f"Invoice '{invoice_id}' is already finalized")
            now = self._clock()
            status = data.get("status", "DUE")
            rebuilt: dict[str, Any] = {}
            for key, value in invoice.items():
                rebuilt[key] = value
                if key == "status":
                    rebuilt["status"] = status
                    rebuilt["finalizingStatus"] = "FINALIZED"
                if key == "dueDate":
                    rebuilt["generatedAt"] = now
            rebuilt["updatedAt"] = now
            if status == "PAID":
                rebuilt["paidAmount"] = rebuilt["totalAmount"]
            # Replaced, never mutated: a response being serialised elsewhere keeps a stable object.
            self._invoices[invoice_id] = rebuilt
            self._emit("invoice.finalized", invoice_id, via_api=False)
            return rebuilt

    def void_invoice(self, invoice_id: str, payload: Any) -> dict:
        """``POST /_sandbox/invoices/{id}/void``: the invoice becomes ``VOID`` (``updatedAt`` now, so a
        reconciliation pass sees it changed) and emits ``invoice.voided`` — or, with ``{"event":
        "invoice.updated"}``, the generic update event (Togai's "Invoice updation" trigger)."""
        data = load(VoidSchema(), payload if payload is not None else {})
        with self._lock:
            invoice = self._invoice(invoice_id)
            if invoice["status"] in ("VOID", "MERGED"):
                raise ApiError(400, f"Invoice '{invoice_id}' is {invoice['status']}; it cannot be voided")
            voided = {**invoice, "status": "VOID", "updatedAt": self._clock()}
            self._invoices[invoice_id] = voided  # replaced, never mutated (see finalize_invoice)
            self._emit(data["event"], invoice_id, via_api=False)
            return voided
