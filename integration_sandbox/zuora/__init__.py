"""The built-in Zuora sandbox: a small Flask app that behaves like the Zuora REST API where it matters.

WHY: the tests, the demo and anyone without a tenant run the service against this app. Where it is more
lenient than Zuora, our bugs ship; so it is deliberately strict: the real field limits, Zuora's error
shapes (HTTP 200 ``success: false`` with 8-digit reason codes; ``Success``/``Errors`` on ``/v1/object``;
401 ``{"message": "Authentication error"}``), tokens that expire, ``Idempotency-Key`` replay and 409/422,
rate and concurrency limits (via :mod:`integration_sandbox.faults`), an atomic usage import that is only
done when its status says ``Completed``, and account-created callouts sent the way Zuora sends them
(first try without credentials, Basic after a challenge, ``Zuora-Notification-Id`` stable across retries,
success only on HTTP 200, retries only on 1xx/403/408/429/5xx/connection errors). Facts and sources:
``reference/zuora-api.md``.

Sandbox choices where Zuora's docs are silent (documented here so nobody mistakes them for Zuora's):

* Reason-code resource prefixes: accounts ``531000``, invoices ``592100``, usage upload ``533000``,
  GETs without a body ``500000``; the last two digits follow Zuora's categories (§9).
* ``Idempotency-Key`` is tenant-wide, as on Zuora: reusing a key on another path or method answers 422.
  Every result of the endpoint is stored and replayed (success or business failure, as Zuora says);
  requests refused before the endpoint ran (401, injected faults, 429) store nothing.
* ``/oauth/token`` is exempt from faults and limits ("create-token requests are unlimited").
* No product catalog, subscriptions, bill runs, payments or commitments: fields that need them are
  refused with a category-30 reason, so nothing pretends to work that the sandbox cannot check. A
  payment can only be applied through ``POST /_sandbox/invoices/{key}/payments`` (what stops a reversal).
* Invoice Settlement is on: ``PUT /v1/invoices/{key}/cancel`` (a ``Draft`` only) and
  ``PUT /v1/invoices/{key}/reverse`` (a ``Posted`` one, into a credit memo applied to it, with Zuora's
  restrictions; :mod:`.settlement`), and ``/object-query/credit-memos``.
* Money (``amount``, ``Quantity``, ``QTY``) is parsed as :class:`decimal.Decimal` and written back as
  JSON numbers digit for digit; numeric strings are accepted too (Zuora's JSON binder coerces them).
* Usage-file ``STARTDATE``/``ENDDATE`` use the default en_US locale format ``MM/DD/YYYY``.

Extras for tests and the demo, none needing auth: ``GET /_sandbox/state``, ``POST /_sandbox/reset``,
``POST /_sandbox/revoke-tokens``, ``GET|POST /_sandbox/config`` (callout settings),
``POST /_sandbox/callouts`` (resend), ``POST /_sandbox/fail-next``, ``POST /_sandbox/lose-next`` (a write
takes effect and its answer is lost: 5xx, timeout or ``success: false``), ``GET|POST|DELETE /_sandbox/faults``,
``POST /_sandbox/invoices/{key}/payments``.

Custom fields: ``custom_fields`` on Account and ``invoice_custom_fields`` on Invoice (``*__c``, strings
≤255), returned by the GETs and filterable in Object Query (:mod:`.object_query`: every documented
operator, ``sort[]``, ``fields[]``, ``expand[]``, accounts by key).

Shapes follow Zuora's schemas as the ``zuora-sdk`` models read them (``tests/conformance/``): every
request field of the schema is known (those needing an unmodelled feature are refused as business
rules), and no response carries a field the schema lacks.

Layout (one module per resource): :mod:`.app` (factory, hooks, error handlers), :mod:`.oauth`,
:mod:`.idempotency` (the wrapper every API view runs in), :mod:`.accounts`, :mod:`.invoices`,
:mod:`.settlement`, :mod:`.usage`, :mod:`.object_query`, :mod:`.callouts`, :mod:`.validation`, :mod:`.views`,
:mod:`.controls` (``/_sandbox/*``), :mod:`.state` and :mod:`.common`.
"""
from __future__ import annotations

from .app import create_zuora_sandbox
from .callouts import CalloutSettings, sign_callout
from .common import dumps, parse_json
from .state import ZuoraSandbox

__all__ = ["CalloutSettings", "ZuoraSandbox", "create_zuora_sandbox", "dumps", "parse_json", "sign_callout"]
