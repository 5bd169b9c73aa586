"""How an account's fields map between Zuora and the billing platform (the README has the table).

Both directions compare in one *canonical* shape — the billing model's (integration.billing.model): ``name``,
``primaryEmail`` and ``address`` {line1, line2, city, state, postalCode, country (ISO alpha-2),
phoneNumber} — so "United States" in Zuora and "US" in Togai are equal, and a change we pushed
does not look like a new change when it echoes back. That is what ends update ping-pong.
"""
from __future__ import annotations

import re

import pycountry

from integration.domain.errors import InvalidData
from integration.domain.zuora_view import ZuoraAccountView, ZuoraContactView

BILLING_NAME_MIN, BILLING_NAME_MAX = 3, 255
ZUORA_CONTACT_NAME_MAX = 100
DEFAULT_BILL_CYCLE_DAY = 1
_ZUORA_ADDRESS = {"line1": "address1", "line2": "address2", "city": "city", "state": "state",
                  "postalCode": "zipCode"}
_COUNTRY_ALIASES = {"UK": "GB", "GREAT BRITAIN": "GB", "ENGLAND": "GB", "USA": "US", "U.S.A.": "US",
                    "U.S.": "US", "UNITED STATES OF AMERICA": "US", "SOUTH KOREA": "KR", "RUSSIA": "RU"}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


# -- countries --------------------------------------------------------------------------------------

def country_to_alpha2(value: str, field: str) -> str:
    """A Zuora country (name, alpha-2 or alpha-3) as ISO alpha-2; InvalidData when unknown."""
    text = value.strip()
    alias = _COUNTRY_ALIASES.get(text.upper())
    if alias:
        return alias
    try:
        return pycountry.countries.lookup(text).alpha_2
    except LookupError:
        raise InvalidData(field, f"unknown country {value!r}; use an ISO 3166 name or code") from None


def country_to_zuora(alpha2: str, field: str) -> str:
    """An ISO alpha-2 code as the country name Zuora expects ("US" → "United States")."""
    country = pycountry.countries.get(alpha_2=alpha2.strip().upper())
    if country is None:
        raise InvalidData(field, f"unknown ISO 3166 alpha-2 country code {alpha2!r}")
    return getattr(country, "common_name", None) or country.name


# -- Zuora → canonical ------------------------------------------------------------------------------

def _clean(mapping: dict) -> dict:
    return {k: v for k, v in mapping.items() if v not in (None, "")}


def zuora_email(account: ZuoraAccountView) -> str | None:
    """The first email a billing engineer would send invoices to."""
    contacts = [contact for contact in (account.bill_to, account.sold_to) if contact is not None]
    for candidate in (*(email for c in contacts for email in (c.work_email, c.personal_email)),
                      *account.additional_emails):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    return None


def billing_name(name: str, account_number: str | None) -> str:
    """Togai needs 3–255 characters; a shorter Zuora name gets its account number appended."""
    name = (name or "").strip()
    if len(name) < BILLING_NAME_MIN:
        name = f"{name} ({account_number})".strip() if account_number else name
    if len(name) < BILLING_NAME_MIN:
        raise InvalidData("basicInfo.name", f"{name!r} is shorter than the billing platform's minimum of 3")
    return name[:BILLING_NAME_MAX]


def _zuora_address(contact: ZuoraContactView | None) -> dict[str, str | None]:
    """A contact's address under the canonical names (``_ZUORA_ADDRESS``'s order), country as Zuora has it."""
    if contact is None:
        return dict.fromkeys(_ZUORA_ADDRESS)
    return {"line1": contact.address1, "line2": contact.address2, "city": contact.city, "state": contact.state,
            "postalCode": contact.zip_code}


def canonical_from_zuora(account: ZuoraAccountView) -> dict:
    """A Zuora account (GET /v1/accounts/{key}) in the canonical, billing-shaped form."""
    contact = account.bill_to or account.sold_to
    address = _zuora_address(contact)
    if contact and contact.country:
        address["country"] = country_to_alpha2(contact.country, "billToContact.country")
    address["phoneNumber"] = (contact.work_phone or contact.mobile_phone or contact.home_phone) if contact else None
    return {"name": billing_name(account.name, account.number),
            "primaryEmail": zuora_email(account), "address": _clean(address)}


def zuora_currency(account: ZuoraAccountView) -> str:
    currency = account.currency
    if not currency:
        raise InvalidData("billingAndPayment.currency", "the Zuora account has no currency")
    return currency


# -- canonical → billing ----------------------------------------------------------------------------

def billing_customer_fields(zuora_account: ZuoraAccountView, billing_account_id: str) -> dict:
    """What a new billing customer and its account take from a Zuora account (customer ID = Zuora account
    ID, one account of ``billing_account_id``), checked: the flow makes the model's ``NewBillingCustomer``
    of it, and the billing adapter the platform's body."""
    canonical = canonical_from_zuora(zuora_account)
    if not canonical["primaryEmail"]:
        raise InvalidData("billToContact.workEmail",
                          "the Zuora account has no email on its bill-to or sold-to contact, and the billing "
                          "platform requires primaryEmail")
    if not _EMAIL.match(canonical["primaryEmail"]) or len(canonical["primaryEmail"]) > 320:
        raise InvalidData("billToContact.workEmail", f"{canonical['primaryEmail']!r} is not a usable email address")
    return {"id": zuora_account.id, "number": zuora_account.number, "account_id": billing_account_id,
            "currency": zuora_currency(zuora_account), **canonical}


def billing_patch(current: dict, wanted: dict) -> dict:
    """PATCH /accounts/{id} with only the canonical fields that differ (empty: nothing to write)."""
    return {key: wanted[key] for key in ("name", "primaryEmail", "address")
            if wanted.get(key) and wanted.get(key) != current.get(key)}


# -- canonical → Zuora ------------------------------------------------------------------------------

def split_name(name: str) -> tuple[str, str]:
    """billToContact first and last name from a billing name: "Ada Lovelace" → (Ada, Lovelace);
    a one-word name is used for both (Zuora requires both, 1–100 characters)."""
    parts = name.strip().rsplit(" ", 1)
    first, last = (parts[0], parts[1]) if len(parts) == 2 else (parts[0], parts[0])
    return first[:ZUORA_CONTACT_NAME_MAX], last[:ZUORA_CONTACT_NAME_MAX]


def zuora_contact(canonical: dict, first_last: tuple[str, str]) -> dict:
    address = canonical.get("address") or {}
    contact = {"firstName": first_last[0], "lastName": first_last[1], "workEmail": canonical.get("primaryEmail")}
    for ours, theirs in _ZUORA_ADDRESS.items():
        contact[theirs] = address.get(ours)
    if address.get("country"):
        contact["country"] = country_to_zuora(address["country"], "address.country")
    contact["workPhone"] = address.get("phoneNumber")
    return _clean(contact)


def zuora_account_payload(canonical: dict, currency: str | None, billing_id: str, link_field: str) -> dict:
    """POST /v1/accounts for a billing account (in canonical form, integration.billing.model.canonical_account,
    with its invoice currency): link field set, bill-to contact from the billing data."""
    if not canonical["name"]:
        raise InvalidData("name", "the billing account has no name")
    if not currency:
        raise InvalidData("invoiceCurrency", "the billing account has no invoice currency; Zuora requires one")
    return {"name": canonical["name"][:255], "currency": currency, "billCycleDay": DEFAULT_BILL_CYCLE_DAY,
            "autoPay": False, "billToContact": zuora_contact(canonical, split_name(canonical["name"])),
            link_field: billing_id}


def zuora_update(zuora_account: ZuoraAccountView, wanted: dict) -> dict:
    """PUT /v1/accounts/{key} with only what differs from the billing data (empty: skip the write)."""
    current = canonical_from_zuora(zuora_account)
    update: dict = {}
    if wanted.get("name") and wanted["name"] != current["name"]:
        update["name"] = wanted["name"][:255]
    if (wanted.get("primaryEmail") and wanted["primaryEmail"] != current["primaryEmail"]) or \
            (wanted.get("address") and wanted["address"] != current["address"]):
        contact = zuora_account.bill_to
        first, last = (contact.first_name, contact.last_name) if contact else (None, None)
        names = ((first, last) if isinstance(first, str) and first and isinstance(last, str) and last
                 else split_name(wanted.get("name") or current["name"]))
        update["billToContact"] = zuora_contact(
            {"primaryEmail": wanted.get("primaryEmail") or current["primaryEmail"],
             "address": wanted.get("address") or current["address"]}, names)
    return update
