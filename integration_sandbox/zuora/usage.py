"""Usage: ``POST /v1/object/usage`` (one record), ``POST /v1/usage`` (an atomic CSV import and its
status) and ``/object-query/usages``."""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import flask

from .common import (
    CAT_INVALID,
    CAT_MISSING,
    CAT_NOT_FOUND,
    MAX_USAGE_FILE_BYTES,
    MAX_USAGE_FILE_NAME,
    RES_GET,
    RES_USAGE_UPLOAD,
    USAGE_OPTIONAL_HEADERS,
    USAGE_REQUIRED_HEADERS,
    Body,
    _new_id,
    _to_decimal,
    _utc_iso,
    _valid_date_time,
    common_error,
    object_error,
    parse_json,
    reason,
)
from .idempotency import _api
from .object_query import _query_usages
from .views import proxy_import_view

if TYPE_CHECKING:
    from .state import ZuoraSandbox


# ---------------------------------------------------------------------------------------------------
# usage
# ---------------------------------------------------------------------------------------------------

USAGE_OBJECT_KEYS = {"AccountId", "AccountNumber", "Quantity", "StartDateTime", "EndDateTime", "UOM",
                     "SubscriptionId", "SubscriptionNumber", "ChargeId", "ChargeNumber", "Description",
                     "ProductRatePlanChargeNumber", "UniqueKey"}
USAGE_OBJECT_LIMITS = {"AccountId": 32, "AccountNumber": 50, "UOM": 100, "SubscriptionId": 32,
                       "SubscriptionNumber": 100, "ChargeId": 32, "ChargeNumber": 50, "Description": 200,
                       "ProductRatePlanChargeNumber": 100, "UniqueKey": 50}


def _create_usage_object(sb: ZuoraSandbox, body: Any, reject_unknown: bool) -> tuple[Body, int]:
    """``POST /v1/object/usage``: one record, Object-API shapes (caller holds the lock)."""
    if not isinstance(body, dict):
        return object_error("INVALID_VALUE", "The request body must be a JSON object"), 400
    unknown = [k for k in body if k not in USAGE_OBJECT_KEYS]
    if unknown and reject_unknown:
        return {"message": "Error - unrecognised fields"}, 400
    for key in ("Quantity", "StartDateTime", "UOM"):
        if body.get(key) is None or body.get(key) == "":
            return object_error("MISSING_REQUIRED_VALUE", f"Missing required value: {key}"), 400
    for key, limit in USAGE_OBJECT_LIMITS.items():
        value = body.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            return object_error("INVALID_VALUE", f"{key} must be a string of at most {limit} characters"), 400
    if body.get("AccountId") is None and body.get("AccountNumber") is None:
        return object_error("MISSING_REQUIRED_VALUE", "Missing required value: AccountId or AccountNumber"), 400
    account = None
    if body.get("AccountId") is not None:
        account = sb.accounts.get(body["AccountId"])
        if account is None:
            return object_error("INVALID_VALUE", f"The account ID {body['AccountId']} is invalid."), 400
    if body.get("AccountNumber") is not None:
        by_number = next((a for a in sb.accounts.values() if a["accountNumber"] == body["AccountNumber"]), None)
        if by_number is None:
            return object_error("INVALID_VALUE", f"The account number {body['AccountNumber']} is invalid."), 400
        if account is not None and account["id"] != by_number["id"]:
            return object_error("INVALID_VALUE", "AccountId and AccountNumber refer to different accounts."), 400
        account = by_number
    quantity = _to_decimal(body["Quantity"])
    if quantity is None or quantity < 0:
        return object_error("INVALID_VALUE", "Quantity must be a number greater than or equal to 0."), 400
    if not _valid_date_time(body["StartDateTime"]):
        return object_error("INVALID_VALUE",
                            "StartDateTime must be a date-time, e.g. 2024-06-01T02:00:00.000+01:00."), 400
    if body.get("EndDateTime") is not None and not _valid_date_time(body["EndDateTime"]):
        return object_error("INVALID_VALUE", "EndDateTime must be a date-time."), 400
    if account is None:  # one of the two was given and found, checked above
        return object_error("MISSING_REQUIRED_VALUE", "Missing required value: AccountId or AccountNumber"), 400
    record = _usage_record(sb, account, quantity=quantity, uom=body["UOM"], start=body["StartDateTime"],
                           end=body.get("EndDateTime"), subscription=body.get("SubscriptionNumber"),
                           charge=body.get("ChargeNumber"), description=body.get("Description"),
                           unique_key=body.get("UniqueKey"), import_id=None, source="API")
    record["SubscriptionId"] = body.get("SubscriptionId")
    record["ChargeId"] = body.get("ChargeId")
    sb.usage.append(record)
    return {"Success": True, "Id": record["Id"]}, 200


def _usage_record(sb: ZuoraSandbox, account: dict, *, quantity: Decimal, uom: str, start: str, end: str | None,
                  subscription: str | None, charge: str | None, description: str | None, unique_key: str | None,
                  import_id: str | None, source: str) -> dict:
    return {"Id": _new_id(), "AccountId": account["id"], "AccountNumber": account["accountNumber"],
            "Quantity": quantity, "UOM": uom, "StartDateTime": start, "EndDateTime": end,
            "SubscriptionNumber": subscription or None, "ChargeNumber": charge or None,
            "Description": description or None, "UniqueKey": unique_key or None, "ImportId": import_id,
            "Source": source, "CreatedDate": _utc_iso(sb.now())}


def _parse_us_date(value: str) -> dt.date | None:
    if not re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}", value):
        return None
    try:
        return dt.datetime.strptime(value, "%m/%d/%Y").replace(tzinfo=dt.timezone.utc).date()
    except ValueError:
        return None


def process_usage_file(sb: ZuoraSandbox, content: bytes, import_id: str) -> tuple[list[dict], str | None]:
    """Validate a whole usage CSV; ``(records, None)`` or ``([], message naming the line)``.

    Atomic like Zuora's import: one bad record rejects the file. Line 1 is the header row.
    """
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], "The file is not UTF-8 encoded text."
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        return [], "The file is empty."
    header = [h.strip() for h in rows[0]]
    missing = [h for h in USAGE_REQUIRED_HEADERS if h not in header]
    if missing:
        return [], f"Missing required column heading(s): {', '.join(missing)}."
    unknown = [h for h in header if h not in USAGE_REQUIRED_HEADERS + USAGE_OPTIONAL_HEADERS]
    if unknown or len(set(header)) != len(header):
        return [], f"Unexpected or duplicate column heading(s): {', '.join(unknown) or 'duplicate'}."
    data = [(n, row) for n, row in enumerate(rows[1:], start=2) if any(cell.strip() for cell in row)]
    if not data:
        return [], "The file has no usage records."
    records = []
    for line, row in data:
        if len(row) != len(header):
            return [], f"Line {line}: expected {len(header)} columns, found {len(row)}."
        cells = {h: cell.strip() for h, cell in zip(header, row, strict=True)}
        record, problem = _usage_row(sb, cells, import_id)
        if problem:
            return [], f"Line {line}: {problem}"
        records.append(record)
    return records, None


def _usage_row(sb: ZuoraSandbox, cells: dict[str, str], import_id: str) -> tuple[dict | None, str | None]:
    number = cells["ACCOUNT_ID"]
    if not number:
        return None, "ACCOUNT_ID is required."
    account = next((a for a in sb.accounts.values() if a["accountNumber"] == number), None)
    if account is None:
        hint = " (ACCOUNT_ID takes the account number, not the account ID)" if number in sb.accounts else ""
        return None, f"The account number {number} is invalid{hint}."
    if not cells["UOM"]:
        return None, "UOM is required."
    quantity = _to_decimal(cells["QTY"]) if cells["QTY"] else None
    if quantity is None or quantity < 0:
        return None, f"QTY '{cells['QTY']}' must be a number greater than or equal to 0."
    start = _parse_us_date(cells["STARTDATE"])
    if start is None:
        return None, f"STARTDATE '{cells['STARTDATE']}' must be a date in MM/DD/YYYY format."
    end = None
    if cells["ENDDATE"]:
        end = _parse_us_date(cells["ENDDATE"])
        if end is None:
            return None, f"ENDDATE '{cells['ENDDATE']}' must be a date in MM/DD/YYYY format."
        if end < start:
            return None, "ENDDATE cannot be earlier than STARTDATE."
    description = cells.get("DESCRIPTION", "")
    if len(description) > 200:
        return None, "DESCRIPTION must be at most 200 characters."
    if len(cells["SUBSCRIPTION_ID"]) > 100 or len(cells["CHARGE_ID"]) > 50:
        return None, "SUBSCRIPTION_ID must be at most 100 and CHARGE_ID at most 50 characters."
    record = _usage_record(sb, account, quantity=quantity, uom=cells["UOM"], start=f"{start.isoformat()}T00:00:00",
                           end=f"{end.isoformat()}T00:00:00" if end else None,
                           subscription=cells["SUBSCRIPTION_ID"], charge=cells["CHARGE_ID"],
                           description=description, unique_key=cells.get("UNIQUE_KEY"), import_id=import_id,
                           source="Import")
    return record, None


def _register_usage_routes(app: flask.Flask, sb: ZuoraSandbox) -> None:
    @app.post("/v1/object/usage")
    @_api(sb, write=True, object_api=True)
    def create_usage() -> tuple[Body, int]:
        req = flask.request
        if req.mimetype != "application/json":
            return object_error("INVALID_VALUE", "Content-Type must be application/json"), 400
        try:
            body = parse_json(req.get_data(cache=False))
        except (ValueError, UnicodeDecodeError, RecursionError):
            return object_error("INVALID_VALUE", "Malformed JSON in the request body"), 400
        reject_unknown = req.args.get("rejectUnknownFields", "false").lower() == "true"
        with sb.lock:
            return _create_usage_object(sb, body, reject_unknown)

    @app.post("/v1/usage")
    @_api(sb, write=True, resource=RES_USAGE_UPLOAD)
    def upload_usage() -> tuple[Body, int]:
        def fail(category: int, message: str) -> tuple[Body, int]:
            return common_error([reason(RES_USAGE_UPLOAD, category, message)]), 200

        if flask.request.mimetype != "multipart/form-data":
            return fail(CAT_INVALID, "The request must be multipart/form-data with a 'file' part")
        upload = flask.request.files.get("file")
        if upload is None:
            return fail(CAT_MISSING, "'file' may not be null")
        name = upload.filename or ""
        content = upload.read(MAX_USAGE_FILE_BYTES + 1)
        if not name:
            return fail(CAT_MISSING, "The uploaded file must have a file name")
        if len(name) > MAX_USAGE_FILE_NAME:
            return fail(CAT_INVALID, f"The file name must not exceed {MAX_USAGE_FILE_NAME} characters")
        if not name.lower().endswith(".csv"):
            return fail(CAT_INVALID, "Only .csv usage files are supported by the sandbox")
        if len(content) > MAX_USAGE_FILE_BYTES:
            return fail(CAT_INVALID, "The file size must not exceed 4MB")
        import_id = _new_id()
        with sb.lock:
            sb.imports[import_id] = {"id": import_id, "fileName": name, "size": len(content), "status": "Pending",
                                     "message": None, "polls": 0, "recordCount": 0, "content": content,
                                     "updatedDate": _utc_iso(sb.now()),
                                     "createdDate": _utc_iso(sb.now())}
            if flask.request.path in sb.lose_next:
                # The client will not learn the import ID: process it now, as Zuora would in the
                # background, so the upload really "took effect".
                _advance_import(sb, sb.imports[import_id])
                _advance_import(sb, sb.imports[import_id])
        return {"success": True, "checkImportStatus": f"/v1/usage/{import_id}/status", "size": len(content)}, 200

    @app.get("/object-query/usages")
    @_api(sb)
    def query_usages() -> tuple[Body, int]:
        return _query_usages(sb)

    @app.get("/v1/usage/<import_id>/status")
    @_api(sb)
    def usage_import_status(import_id: str) -> tuple[Body, int]:
        with sb.lock:
            imp = sb.imports.get(import_id)
            if imp is None:
                return common_error([reason(RES_GET, CAT_NOT_FOUND,
                                            f"Cannot find entity by key: '{import_id}'.")]), 200
            _advance_import(sb, imp)
            return {"success": True, "importStatus": imp["status"], "message": imp["message"]}, 200

    @app.get("/v1/object/import/<import_id>")
    @_api(sb, object_api=True)
    def object_get_import(import_id: str) -> tuple[Body, int]:
        """The documented import-status call (``ProxyGetImport``); polls advance the import as above."""
        with sb.lock:
            imp = sb.imports.get(import_id)
            if imp is None:
                return object_error("INVALID_ID", f"invalid id: {import_id}"), 404
            _advance_import(sb, imp)
            return proxy_import_view(imp), 200


def _advance_import(sb: ZuoraSandbox, imp: dict) -> None:
    """One state per poll: Pending -> Processing -> Completed/Failed (caller holds the lock)."""
    imp["polls"] += 1
    if imp["status"] == "Pending":
        imp["status"] = "Processing"
    elif imp["status"] == "Processing":
        records, problem = process_usage_file(sb, imp["content"], imp["id"])
        if problem:
            imp.update(status="Failed", message=problem)
        else:
            sb.usage.extend(records)
            imp.update(status="Completed", recordCount=len(records), message=None)
        imp["updatedDate"] = _utc_iso(sb.now())
        imp["content"] = b""
