"""``/v1/accounts``: create, get, update, and ``/object-query/accounts``."""
from __future__ import annotations

from typing import TYPE_CHECKING

import flask

from .common import (
    CAT_BUSINESS,
    CAT_NOT_FOUND,
    RES_ACCOUNT,
    RES_GET,
    Body,
    _new_id,
    _utc_iso,
    common_error,
    reason,
)
from .idempotency import _api, _json_body
from .object_query import _query_account_by_key, _query_accounts
from .validation import (
    ACCOUNT_BOOLS,
    ACCOUNT_OBJECTS,
    ACCOUNT_STRINGS,
    CONTACT_ID_KEYS,
    CREATE_ONLY_STRINGS,
    validate_account_create,
    validate_account_update,
)
from .views import account_view

if TYPE_CHECKING:
    from .state import ZuoraSandbox


def _register_account_routes(app: flask.Flask, sb: ZuoraSandbox) -> None:
    @app.post("/v1/accounts")
    @_api(sb, write=True, resource=RES_ACCOUNT)
    def create_account() -> tuple[Body, int]:
        body, error = _json_body(RES_ACCOUNT)
        if error:
            return error, 200
        clean, problems = validate_account_create(body, sb.custom_fields)
        if problems:
            return common_error(problems.reasons), 200
        with sb.lock:
            if clean.get("accountNumber") and sb.find_account(clean["accountNumber"]):
                return common_error([reason(RES_ACCOUNT, CAT_BUSINESS, f"The account number "
                                            f"{clean['accountNumber']} already exists.")]), 200
            account = _new_account(sb, clean)
            sb.accounts[account["id"]] = account
        sb.queue_callout(account["id"])
        return {"success": True, "accountId": account["id"], "accountNumber": account["accountNumber"],
                "billToContactId": account["billToContactId"], "soldToContactId": account["soldToContactId"]}, 200

    @app.get("/v1/accounts/<path:key>")
    @_api(sb)
    def get_account(key: str) -> tuple[Body, int]:
        with sb.lock:
            account = sb.find_account(key)
            if account is None:
                return common_error([reason(RES_GET, CAT_NOT_FOUND, f"Cannot find entity by key: '{key}'.")]), 200
            return {"success": True, **account_view(account, sb)}, 200

    @app.put("/v1/accounts/<path:key>")
    @_api(sb, write=True, resource=RES_ACCOUNT)
    def update_account(key: str) -> tuple[Body, int]:
        body, error = _json_body(RES_ACCOUNT)
        if error:
            return error, 200
        clean, problems = validate_account_update(body, sb.custom_fields)
        with sb.lock:
            account = sb.find_account(key)
            if account is None:
                return common_error([reason(RES_ACCOUNT, CAT_NOT_FOUND, f"Cannot find entity by key: '{key}'.")]), 200
            for field in CONTACT_ID_KEYS:
                if field in clean and clean[field] not in account["contacts"]:
                    problems.add(CAT_NOT_FOUND, f"'{field}' {clean[field]} is not a contact of this account")
            if problems:
                return common_error(problems.reasons), 200
            _apply_account_update(sb, account, clean)
        return {"success": True}, 200

    @app.get("/object-query/accounts")
    @_api(sb)
    def query_accounts() -> tuple[Body, int]:
        return _query_accounts(sb)

    @app.get("/object-query/accounts/<path:key>")
    @_api(sb)
    def query_account_by_key(key: str) -> tuple[Body, int]:
        return _query_account_by_key(sb, key)


def _new_contact(fields: dict) -> dict:
    return {"id": _new_id(), **fields}


def _new_account(sb: ZuoraSandbox, clean: dict) -> dict:
    """Build a new Active account from validated fields (caller holds the lock)."""
    if clean.get("accountNumber"):
        number = clean["accountNumber"]
    else:
        while True:
            sb.account_seq += 1
            number = f"A{sb.account_seq:08d}"
            if sb.find_account(number) is None:
                break
    bill_to = _new_contact(clean["billToContact"])
    contacts = {bill_to["id"]: bill_to}
    sold_to = bill_to
    if clean.get("soldToContact"):
        sold_to = _new_contact(clean["soldToContact"])
        contacts[sold_to["id"]] = sold_to
    ship_to = sold_to
    if clean.get("shipToContact"):
        ship_to = _new_contact(clean["shipToContact"])
        contacts[ship_to["id"]] = ship_to
    now = _utc_iso(sb.now())
    account = {
        "id": _new_id(), "accountNumber": number, "name": clean["name"], "status": "Active",
        "currency": clean["currency"], "billCycleDay": clean["billCycleDay"], "autoPay": False,
        "paymentTerm": clean.get("paymentTerm", "Due Upon Receipt"), "batch": clean.get("batch", "Batch1"),
        "invoiceDeliveryPrefsEmail": False, "invoiceDeliveryPrefsPrint": False,
        "customFields": dict.fromkeys(sb.custom_fields), "contacts": contacts,
        "billToContactId": bill_to["id"], "soldToContactId": sold_to["id"], "shipToContactId": ship_to["id"],
        "createdDate": now, "updatedDate": now,
    }
    for key, value in clean.items():
        if (key in ACCOUNT_STRINGS or key in CREATE_ONLY_STRINGS or key in ACCOUNT_BOOLS or key in ACCOUNT_OBJECTS
                or key == "additionalEmailAddresses"):
            account[key] = value
    account["customFields"].update(clean.get("customFields", {}))
    return account


def _apply_account_update(sb: ZuoraSandbox, account: dict, clean: dict) -> None:
    """Merge a validated PUT into the account (caller holds the lock)."""
    for key, value in clean.items():
        if key == "customFields":
            account["customFields"].update(value)
        elif key == "billToContact":
            account["contacts"][account["billToContactId"]].update(value)
        elif key == "soldToContact":
            if account["soldToContactId"] == account["billToContactId"]:
                # sold-to shared the bill-to contact: split it rather than change the bill-to too
                copy = {k: v for k, v in account["contacts"][account["billToContactId"]].items() if k != "id"}
                contact = _new_contact({**copy, **value})
                account["contacts"][contact["id"]] = contact
                account["soldToContactId"] = contact["id"]
            else:
                account["contacts"][account["soldToContactId"]].update(value)
        elif key == "shipToContact":
            contact = _new_contact(value)
            account["contacts"][contact["id"]] = contact
            account["shipToContactId"] = contact["id"]
        else:
            account[key] = value
    account["updatedDate"] = _utc_iso(sb.now())
