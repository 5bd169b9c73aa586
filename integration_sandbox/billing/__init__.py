"""The built-in billing-platform sandbox: a small Flask app that behaves like Togai's REST API.

WHY: tests, the demo and users without a tenant run against it, so wherever Togai is strict this must be
strict too, or our bugs ship. Field limits, ``additionalProperties: false``, status codes and the
``{"message": ...}`` error shape follow Togai's OpenAPI spec (``TogaiHQ/togai-mintlify-docs``
``openapi.yaml`` and the generated ``togai-python-client`` 1.0.3 models; see
``reference/billing-platforms.md`` §A).

API (Bearer token on every path outside ``/_sandbox``; missing or wrong → 401):

- ``POST /customers`` (201), ``GET /customers`` (paged), ``GET``/``PATCH /customers/{id}``
- ``POST /accounts`` (201), ``GET /accounts`` (paged), ``GET``/``PATCH /accounts/{id}``; ``invoiceCurrency``
  is immutable
- ``GET /invoices`` (``status``, ``owner_id``, ``customer_id``, ``start_time``/``end_time``; ≤ 50 a page,
  a larger ``pageSize`` is the spec's 422): ``InvoiceSummary`` rows
- ``POST /settings`` (201), ``GET /settings`` (``entity_type``, ``entity_id``, ``namespace``,
  ``setting_id``, ``pageSize`` ≤ 50 default 10, ``nextToken``) → ``{"data", "nextToken"?, "context"}``,
  ``GET /settings/{id}``, ``PATCH /settings/{id}`` (201, as the spec lists for update)
- ``GET /invoices/{id}`` in Togai's ``Invoice`` shape, amounts as exact JSON numbers; the line-item
  trees in the shape the invoice was created with (``shape`` of ``POST /_sandbox/invoices``: ``nested``
  by default, ``flat``, ``total_usage``, ``documented``, ``legacy``; see
  :mod:`.invoices`), so tests meet each of Togai's documented variants

Choices where the spec is silent (each the stricter reading):

- A duplicate customer, account, setting or invoice ID → **400** ``"... already exists"``: Togai
  documents no 409, so a client must recognise the conflict from the message.
- Every account creation emits ``account.created`` and every PATCH that changes an account emits
  ``account.updated`` — through the API too, as Togai's "Account creation" trigger fires whatever the
  channel. So the service sees the echo of its own writes. ``POST /_sandbox/config
  {"emit_api_events": false}`` turns API-originated events off.
- A setting is unique by ID and by (entityType, entityId, namespace, name).
- ``GET /customers``, ``/accounts`` and ``/settings`` document ``pageSize`` with no maximum; the sandbox
  holds them to listInvoices' documented 50 (a 400 above it), so a client that pages them by 50, as the
  service does, works on any Togai tenant.
- Leaf line items carry no ``lineItems`` key (the spec's InvoiceLineItem has none); parents do.

``POST /_sandbox/invoices/{id}/void`` voids an invoice (status ``VOID``) and emits ``invoice.voided``
(``{"event": "invoice.updated"}``: the generic update event instead); ``?webhook=false`` sends nothing.

Outgoing events are Standard-Webhooks-signed POSTs of ``{"type", "data": {"id"}}`` sent from one
background thread, retried on non-2xx and connection errors per ``webhook_retry_schedule``; the
``webhook-id`` is stable across retries and resends of one event. Control and inspection live under
``/_sandbox`` (no auth): see :func:`create_billing_sandbox`.

Layout (one module per resource): :mod:`.app` (factory, routes, hooks, error handlers), :mod:`.customers`,
:mod:`.accounts`, :mod:`.settings`, :mod:`.invoicing` (invoices as resources), :mod:`.invoices` (the
line-item trees and exact JSON), :mod:`.webhooks` (Standard Webhooks delivery), :mod:`.controls`
(``/_sandbox/*``), :mod:`.schemas`, :mod:`.state` and :mod:`.common`."""
from __future__ import annotations

from .app import create_billing_sandbox
from .common import ApiError, new_webhook_secret
from .state import BillingSandbox

__all__ = ["ApiError", "BillingSandbox", "create_billing_sandbox", "new_webhook_secret"]
