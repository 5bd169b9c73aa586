"""Field checks for Zuora account writes (and the contacts inside them), collecting every reason.

WHY: Zuora refuses a request naming all its problems at once; :class:`Problems` collects them."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .common import (
    BATCHES,
    CAT_BUSINESS,
    CAT_INVALID,
    CAT_MALFORMED,
    CAT_MISSING,
    CAT_NOT_FOUND,
    CAT_UNKNOWN_FIELD,
    EMAIL_RE,
    PAYMENT_TERMS,
    RES_ACCOUNT,
    _is_int,
    _normalise_country,
    _valid_currency,
    _valid_state,
    reason,
)


class Problems:
    """Collects every reason a request is refused, so one answer names them all (as Zuora does)."""

    def __init__(self, resource: int):
        self.resource = resource
        self.reasons: list[dict] = []

    def add(self, category: int, message: str) -> None:
        self.reasons.append(reason(self.resource, category, message))

    def __bool__(self) -> bool:
        return bool(self.reasons)

    # field checks: each returns the clean value or None, recording a reason when invalid

    def string(self, data: dict, key: str, label: str, *, required: bool = False, min_len: int = 0,
               max_len: int | None = None) -> str | None:
        if key not in data or data[key] is None:
            if required:
                self.add(CAT_MISSING, f"'{label}' may not be null")
            return None
        value = data[key]
        if not isinstance(value, str):
            self.add(CAT_INVALID, f"'{label}' must be a string")
            return None
        if required and not value.strip():
            self.add(CAT_MISSING, f"'{label}' may not be empty")
            return None
        if len(value) < min_len or (max_len is not None and len(value) > max_len):
            bound = f"between {min_len} and {max_len}" if min_len else f"at most {max_len}"
            self.add(CAT_INVALID, f"'{label}' length must be {bound} characters")
            return None
        return value

    def boolean(self, data: dict, key: str, label: str) -> bool | None:
        if key not in data or data[key] is None:
            return None
        if not isinstance(data[key], bool):
            self.add(CAT_INVALID, f"'{label}' must be true or false")
            return None
        return data[key]

    def integer(self, data: dict, key: str, label: str, lo: int, hi: int, *, required: bool = False) -> int | None:
        if key not in data or data[key] is None:
            if required:
                self.add(CAT_MISSING, f"'{label}' may not be null")
            return None
        value = data[key]
        if not _is_int(value) or not lo <= value <= hi:
            self.add(CAT_INVALID, f"'{label}' must be an integer between {lo} and {hi}")
            return None
        return value

    def email(self, data: dict, key: str, label: str) -> str | None:
        value = self.string(data, key, label, max_len=74)
        if value is not None and value != "" and not EMAIL_RE.match(value):
            self.add(CAT_INVALID, f"'{label}' is not a valid email address")
            return None
        return value

    def unknown_keys(self, data: dict, allowed: Iterable[str], prefix: str = "") -> None:
        allowed = set(allowed)
        for key in data:
            if key not in allowed:
                self.add(CAT_UNKNOWN_FIELD, f"Unknown field '{prefix}{key}'")


# ---------------------------------------------------------------------------------------------------
# accounts
# ---------------------------------------------------------------------------------------------------

CONTACT_LIMITS = {
    "firstName": 100, "lastName": 100, "address1": 255, "address2": 255, "city": 40, "state": 40,
    "zipCode": 20, "country": 64, "county": 32, "workPhone": 40, "homePhone": 40, "mobilePhone": 100,
    "otherPhone": 40, "fax": 40, "nickname": 100, "taxRegion": 32, "contactDescription": 100,
}
CONTACT_EMAILS = ("workEmail", "personalEmail")
CONTACT_KEYS = set(CONTACT_LIMITS) | set(CONTACT_EMAILS) | {"otherPhoneType"}
OTHER_PHONE_TYPES = ("Work", "Mobile", "Home", "Other")

NETSUITE_FIELDS = dict.fromkeys((  # the NetSuite-connector fields of the schema: stored strings
    "Class__NS", "CustomerType__NS", "Department__NS", "IntegrationId__NS", "IntegrationStatus__NS",
    "Location__NS", "Subsidiary__NS", "SyncDate__NS", "SynctoNetSuite__NS"), 255)
ACCOUNT_STRINGS = {  # field -> max length (fields stored as given, on create and update)
    "crmId": 100, "notes": 65535, "salesRep": 50, "purchaseOrderNumber": 100, "parentId": 32,
    "invoiceTemplateId": 32, "communicationProfileId": 32, "profileNumber": 64, "sequenceSetId": 32,
    "paymentGateway": 40, "customerServiceRepName": 50, "creditMemoTemplateId": 32,
    "debitMemoTemplateId": 32, "organizationLabel": 100, "tagging": 255, "defaultPaymentMethodId": 64,
    "summaryStatementTemplateId": 32, "paymentGatewayNumber": 64, **NETSUITE_FIELDS,
}
# Create-only references by name or number (Zuora resolves them; the sandbox stores them as given).
CREATE_ONLY_STRINGS = {"parentAccountNumber": 70, "communicationProfileName": 100, "sequenceSetName": 100,
                       "paymentGatewayName": 40, "gatewayId": 64}
ACCOUNT_BOOLS = ("autoPay", "invoiceDeliveryPrefsEmail", "invoiceDeliveryPrefsPrint", "partnerAccount",
                 "rollUpUsage", "gatewayRoutingEligible")
ACCOUNT_OBJECTS = ("taxInfo", "einvoiceProfile", "eReportingProfile")
CONTACT_ID_KEYS = ("billToContactId", "soldToContactId", "shipToContactId")  # update: one of the account's contacts
CREATE_ONLY = {"name", "accountNumber", "currency", "billToContact", "soldToContact", "shipToContact",
               "billCycleDay", "bcdSettingOption", "paymentTerm", "batch", "additionalEmailAddresses",
               "soldToSameAsBillTo", "shipToSameAsBillTo"}
# Schema fields for features the sandbox does not model (subscriptions, bill runs, payments, commitments):
# accepted as fields, refused as a business rule (category 30) when they ask for the feature.
UNSUPPORTED_CREATE = ("subscription", "paymentMethod", "creditCard", "hpmCreditCardPaymentMethodId",
                      "paymentMethodId", "applicationOrder", "documentDate", "targetDate", "invoiceTargetDate",
                      "creditMemoReasonCode", "associateCommitmentNumber")
UNSUPPORTED_CREATE_FLAGS = ("invoice", "collect", "runBilling", "invoiceCollect", "applyCredit", "applyCreditBalance")
UNMODELLED = "the sandbox models no subscriptions, bill runs, payments or commitments"
ACCOUNT_CREATE_KEYS = (CREATE_ONLY | set(ACCOUNT_STRINGS) | set(CREATE_ONLY_STRINGS) | set(ACCOUNT_BOOLS)
                       | set(ACCOUNT_OBJECTS) | set(UNSUPPORTED_CREATE) | set(UNSUPPORTED_CREATE_FLAGS)
                       ) - {"defaultPaymentMethodId"}
ACCOUNT_UPDATE_KEYS = ({"name", "billCycleDay", "paymentTerm", "batch", "additionalEmailAddresses",
                        "billToContact", "soldToContact", "shipToContact", *CONTACT_ID_KEYS}
                       | set(ACCOUNT_STRINGS) | set(ACCOUNT_BOOLS) | set(ACCOUNT_OBJECTS))


def validate_contact(p: Problems, data: Any, label: str, *, partial: bool) -> dict | None:
    """Check one contact object; ``partial`` (PUT) makes firstName/lastName optional."""
    if not isinstance(data, dict):
        p.add(CAT_INVALID, f"'{label}' must be an object")
        return None
    before = len(p.reasons)
    p.unknown_keys(data, CONTACT_KEYS, prefix=f"{label}.")
    clean: dict[str, Any] = {}
    for key, limit in CONTACT_LIMITS.items():
        required = key in ("firstName", "lastName") and not partial
        min_len = 1 if key in ("firstName", "lastName") else 0
        if key in ("firstName", "lastName") and partial and data.get(key) is not None:
            required = True  # present on an update: must still be 1-100 non-blank characters
        value = p.string(data, key, f"{label}.{key}", required=required, min_len=min_len, max_len=limit)
        if value is not None:
            clean[key] = value
    for key in CONTACT_EMAILS:
        value = p.email(data, key, f"{label}.{key}")
        if value is not None:
            clean[key] = value
    opt = p.string(data, "otherPhoneType", f"{label}.otherPhoneType")
    if opt is not None:
        if opt not in OTHER_PHONE_TYPES:
            p.add(CAT_INVALID, f"'{label}.otherPhoneType' value should be one of: {', '.join(OTHER_PHONE_TYPES)}")
        else:
            clean["otherPhoneType"] = opt
    if clean.get("country") is not None:
        name = _normalise_country(clean["country"])
        if name is None:
            p.add(CAT_INVALID,
                  f"'{label}.country' value '{clean['country']}' is not a valid country name or abbreviation")
        else:
            clean["country"] = name
            if clean.get("state") and not _valid_state(name, clean["state"]):
                p.add(CAT_INVALID,
                      f"'{label}.state' value '{clean['state']}' is not a valid state or province of {name}")
    return clean if len(p.reasons) == before else None


def _validate_account_common(p: Problems, body: dict, custom_fields: set[str], *, create: bool) -> dict:
    """Checks shared by create and update; returns the clean values present in ``body``."""
    clean: dict[str, Any] = {}
    for key, limit in ACCOUNT_STRINGS.items():
        if create and key == "defaultPaymentMethodId":
            continue
        value = p.string(body, key, key, max_len=limit)
        if value is not None:
            clean[key] = value
    for key in ACCOUNT_BOOLS:
        value = p.boolean(body, key, key)
        if value is not None:
            clean[key] = value
    for key in ACCOUNT_OBJECTS:
        if body.get(key) is not None:
            if isinstance(body[key], dict):
                clean[key] = body[key]
            else:
                p.add(CAT_INVALID, f"'{key}' must be an object")
    name = p.string(body, "name", "name", required=create, min_len=1, max_len=255)
    if "name" in body and body["name"] is not None and name is not None and not name.strip():
        p.add(CAT_INVALID, "'name' may not be blank")
    elif name is not None:
        clean["name"] = name
    term = p.string(body, "paymentTerm", "paymentTerm")
    if term is not None:
        if term in PAYMENT_TERMS:
            clean["paymentTerm"] = term
        else:
            p.add(CAT_INVALID, f"'paymentTerm' value should be one of: {', '.join(PAYMENT_TERMS)}")
    batch = p.string(body, "batch", "batch", max_len=50)
    if batch is not None:
        if batch in BATCHES:
            clean["batch"] = batch
        else:
            p.add(CAT_INVALID, f"'batch' value '{batch}' is not a configured batch (Batch1 to Batch50)")
    emails = body.get("additionalEmailAddresses")
    if emails is not None:
        if not isinstance(emails, list) or not all(isinstance(e, str) and EMAIL_RE.match(e) and len(e) <= 74
                                                   for e in emails):
            p.add(CAT_INVALID, "'additionalEmailAddresses' must be a list of valid email addresses")
        else:
            clean["additionalEmailAddresses"] = list(emails)
    for key, value in body.items():
        if key.endswith("__c"):
            if key not in custom_fields:
                p.add(CAT_UNKNOWN_FIELD, f"Unknown field '{key}': no such custom field on Account")
            elif value is not None and (not isinstance(value, str) or len(value) > 255):
                p.add(CAT_INVALID, f"'{key}' must be a string of at most 255 characters")
            else:
                clean.setdefault("customFields", {})[key] = value
    return clean


def validate_account_create(body: Any, custom_fields: set[str]) -> tuple[dict, Problems]:
    p = Problems(RES_ACCOUNT)
    if not isinstance(body, dict):
        p.add(CAT_MALFORMED, "The request body must be a JSON object")
        return {}, p
    p.unknown_keys({k: v for k, v in body.items() if not k.endswith("__c")}, ACCOUNT_CREATE_KEYS)
    clean = _validate_account_common(p, body, custom_fields, create=True)
    for key, limit in CREATE_ONLY_STRINGS.items():
        value = p.string(body, key, key, max_len=limit)
        if value is not None:
            clean[key] = value
    for key in UNSUPPORTED_CREATE:
        if body.get(key) is not None:
            p.add(CAT_BUSINESS, f"'{key}' is not supported by the sandbox ({UNMODELLED})")
    for key in UNSUPPORTED_CREATE_FLAGS:
        if p.boolean(body, key, key):
            p.add(CAT_BUSINESS, f"'{key}: true' is not supported by the sandbox ({UNMODELLED})")
    currency = p.string(body, "currency", "currency", required=True)
    if currency is not None:
        if _valid_currency(currency):
            clean["currency"] = currency
        else:
            p.add(CAT_INVALID,
                  f"'currency' value '{currency}' is not a 3-letter currency code defined in Billing Settings")
    number = p.string(body, "accountNumber", "accountNumber", max_len=50)
    if number is not None:
        if not number.strip():
            p.add(CAT_INVALID, "'accountNumber' may not be blank")
        else:
            clean["accountNumber"] = number
    # No subscription can be created here, so billCycleDay is always required (0 = auto-set).
    bcd = p.integer(body, "billCycleDay", "billCycleDay", 0, 31, required=True)
    if bcd is not None:
        clean["billCycleDay"] = bcd
    opt = p.string(body, "bcdSettingOption", "bcdSettingOption")
    if opt is not None and opt not in ("AutoSet", "ManualSet"):
        p.add(CAT_INVALID, "'bcdSettingOption' value should be one of: AutoSet, ManualSet")
    for key in ("soldToSameAsBillTo", "shipToSameAsBillTo"):
        p.boolean(body, key, key)
    if body.get("billToContact") is None:
        p.add(CAT_MISSING, "'billToContact' may not be null")
    else:
        clean["billToContact"] = validate_contact(p, body["billToContact"], "billToContact", partial=False)
    for key in ("soldToContact", "shipToContact"):
        if body.get(key) is not None:
            if body.get(key.replace("Contact", "SameAsBillTo")) is True:
                p.add(CAT_BUSINESS, f"'{key}' cannot be given when '{key.replace('Contact', 'SameAsBillTo')}' is true")
            clean[key] = validate_contact(p, body[key], key, partial=False)
    if clean.get("autoPay"):
        p.add(CAT_BUSINESS, "autoPay is true but no payment method is given "
                            "(paymentMethod, creditCard or hpmCreditCardPaymentMethodId)")
    return clean, p


def validate_account_update(body: Any, custom_fields: set[str]) -> tuple[dict, Problems]:
    p = Problems(RES_ACCOUNT)
    if not isinstance(body, dict):
        p.add(CAT_MALFORMED, "The request body must be a JSON object")
        return {}, p
    p.unknown_keys({k: v for k, v in body.items() if not k.endswith("__c")}, ACCOUNT_UPDATE_KEYS)
    clean = _validate_account_common(p, body, custom_fields, create=False)
    bcd = p.integer(body, "billCycleDay", "billCycleDay", 1, 31)
    if bcd is not None:
        clean["billCycleDay"] = bcd
    for key in CONTACT_ID_KEYS:
        value = p.string(body, key, key, min_len=1, max_len=32)
        if value is not None:
            clean[key] = value
    for key in ("billToContact", "soldToContact", "shipToContact"):
        if body.get(key) is not None:
            contact = validate_contact(p, body[key], key, partial=True)
            if contact is not None:
                clean[key] = contact
    if clean.get("autoPay"):
        p.add(CAT_BUSINESS, "autoPay is true but the account has no default payment method")
    return clean, p


def named_charge(p: Problems, source: dict, label: str, clean: dict, limits: dict[str, int]) -> None:
    """The strings of an invoice item or a discount item (each within its limit, into ``clean``) and its
    name: Zuora takes a catalog charge or a ``chargeName``; the sandbox has no catalog."""
    for key, limit in limits.items():
        value = p.string(source, key, f"{label}.{key}", max_len=limit)
        if value is not None:
            clean[key] = value
    if source.get("productRatePlanChargeId") is not None:
        p.add(CAT_NOT_FOUND, f"'{label}.productRatePlanChargeId' '{source['productRatePlanChargeId']}' is "
                             "invalid (the sandbox has no product catalog)")
    elif source.get("chargeName") in (None, ""):
        p.add(CAT_MISSING, f"'{label}.chargeName' is required if productRatePlanChargeId is not specified")


REV_REC_TRIGGERS = ("ContractEffectiveDate", "ServiceActivationDate", "CustomerAcceptanceDate")


def rev_rec_trigger(p: Problems, source: dict, label: str, clean: dict) -> None:
    """An invoice item's or discount item's ``revRecTriggerCondition``: one of Zuora's three, into ``clean``."""
    trigger = p.string(source, "revRecTriggerCondition", f"{label}.revRecTriggerCondition")
    if trigger is None:
        return
    if trigger in REV_REC_TRIGGERS:
        clean["revRecTriggerCondition"] = trigger
    else:
        p.add(CAT_INVALID, f"'{label}.revRecTriggerCondition' value should be one of: {', '.join(REV_REC_TRIGGERS)}")
