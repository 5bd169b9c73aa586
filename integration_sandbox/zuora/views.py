"""Response shapes: accounts, invoices, usage imports, and their Object Query rows."""
from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from .common import SANDBOX_USER_ID
from .validation import CONTACT_EMAILS, CONTACT_LIMITS, NETSUITE_FIELDS

if TYPE_CHECKING:
    from .state import ZuoraSandbox


# ---------------------------------------------------------------------------------------------------
# views (response shapes)
# ---------------------------------------------------------------------------------------------------

def contact_view(contact: dict) -> dict:
    """A contact as the account GET and Object Query's ``expand[]=billTo`` answer it."""
    out = {"id": contact["id"]}
    for key in list(CONTACT_LIMITS) + list(CONTACT_EMAILS) + ["otherPhoneType"]:
        out[key] = contact.get(key)
    return out


def account_metrics(account: dict, sb: ZuoraSandbox) -> dict:
    posted = [i for i in sb.invoices.values() if i["accountId"] == account["id"] and i["status"] == "Posted"]
    balance = sum((i["balance"] for i in posted), Decimal("0"))
    return {"balance": balance, "totalInvoiceBalance": balance, "creditBalance": Decimal("0"),
            "contractedMrr": Decimal("0")}


def account_view(a: dict, sb: ZuoraSandbox) -> dict:
    """``GET /v1/accounts/{key}`` without ``success``."""
    basic = {"id": a["id"], "accountNumber": a["accountNumber"], "name": a["name"], "status": a["status"],
             "batch": a["batch"], "crmId": a.get("crmId"), "notes": a.get("notes"), "salesRep": a.get("salesRep"),
             "parentId": a.get("parentId"), "communicationProfileId": a.get("communicationProfileId"),
             "profileNumber": a.get("profileNumber"), "invoiceTemplateId": a.get("invoiceTemplateId"),
             "sequenceSetId": a.get("sequenceSetId"), "partnerAccount": a.get("partnerAccount", False),
             "customerServiceRepName": a.get("customerServiceRepName"),
             "purchaseOrderNumber": a.get("purchaseOrderNumber"), "tags": a.get("tagging"),
             "organizationLabel": a.get("organizationLabel"),
             "summaryStatementTemplateId": a.get("summaryStatementTemplateId"),
             "creditMemoTemplateId": a.get("creditMemoTemplateId"), "debitMemoTemplateId": a.get("debitMemoTemplateId"),
             "defaultPaymentMethodId": a.get("defaultPaymentMethodId"),
             **{name: a.get(name) for name in NETSUITE_FIELDS}}  # request ``tagging`` answers as ``tags``
    for name in sorted(sb.custom_fields):
        basic[name] = a["customFields"].get(name)
    billing = {"billCycleDay": a["billCycleDay"], "currency": a["currency"], "autoPay": a["autoPay"],
               "paymentTerm": a["paymentTerm"], "paymentGateway": a.get("paymentGateway"),
               "defaultPaymentMethodId": a.get("defaultPaymentMethodId"),
               "invoiceDeliveryPrefsEmail": a["invoiceDeliveryPrefsEmail"],
               "invoiceDeliveryPrefsPrint": a["invoiceDeliveryPrefsPrint"],
               "additionalEmailAddresses": list(a.get("additionalEmailAddresses", [])),
               "paymentMethodCascadingConsent": False, "rollUpUsage": a.get("rollUpUsage", False),
               "gatewayRoutingEligible": a.get("gatewayRoutingEligible", False),
               "paymentGatewayNumber": a.get("paymentGatewayNumber")}
    metrics = account_metrics(a, sb)
    ship_to = a["contacts"].get(a.get("shipToContactId") or a["soldToContactId"])
    return {"basicInfo": basic, "billingAndPayment": billing,
            "billToContact": contact_view(a["contacts"][a["billToContactId"]]),
            "soldToContact": contact_view(a["contacts"][a["soldToContactId"]]),
            "shipToContact": contact_view(ship_to), "eReportingProfile": a.get("eReportingProfile"),
            "metrics": metrics, "metricsData": [dict(metrics, currency=a["currency"])],
            "taxInfo": a.get("taxInfo"), "einvoiceProfile": a.get("einvoiceProfile")}


def account_query_view(a: dict, sb: ZuoraSandbox) -> dict:
    """One account as Object Query returns it: flat camelCase fields plus custom fields."""
    metrics = account_metrics(a, sb)
    out = {"id": a["id"], "accountNumber": a["accountNumber"], "name": a["name"], "status": a["status"],
           "currency": a["currency"], "billCycleDay": a["billCycleDay"], "autoPay": a["autoPay"],
           "paymentTerm": a["paymentTerm"], "batch": a["batch"], "crmId": a.get("crmId"),
           "billToId": a["billToContactId"], "soldToId": a["soldToContactId"],
           "shipToId": a.get("shipToContactId") or a["soldToContactId"], "notes": a.get("notes"),
           "balance": metrics["balance"], "creditBalance": metrics["creditBalance"],
           "totalInvoiceBalance": metrics["totalInvoiceBalance"], "createdDate": a["createdDate"],
           "updatedDate": a["updatedDate"]}
    for name in sorted(sb.custom_fields):
        out[name] = a["customFields"].get(name)
    return out


INVOICE_QUERY_ONLY = ("reversed", "isSplit")
"""Stored invoice fields that only Object Query's ``ExpandedInvoice`` has (``InvoiceResponse`` lacks them)."""


def invoice_view(inv: dict) -> dict:
    """Zuora's ``InvoiceResponse`` (POST and GET ``/v1/invoices``), without ``success``: the items are
    read from ``/v1/invoices/{key}/items``; the account number is not part of it."""
    return {k: v for k, v in inv.items() if k not in ("items", "accountNumber", *INVOICE_QUERY_ONLY)}


def invoice_state_view(inv: dict) -> dict:
    """An invoice in ``/_sandbox/state``: everything stored, the items as posted (request names)."""
    out = {k: v for k, v in inv.items() if k != "items"}
    out["invoiceItems"] = [dict(item) for item in inv["items"]]
    return out


def import_view(imp: dict) -> dict:
    return {k: imp[k] for k in ("id", "fileName", "size", "status", "message", "polls", "recordCount",
                                "createdDate")}


def proxy_import_view(imp: dict) -> dict:
    """``GET /v1/object/import/{id}`` (Zuora's ``ProxyGetImport``). ``TotalCount`` is known once processed."""
    done = imp["status"] in ("Completed", "Failed")
    return {"Id": imp["id"], "Name": imp["fileName"], "ImportType": "Usage", "Status": imp["status"],
            "StatusReason": imp["message"], "ImportedCount": imp["recordCount"],
            "TotalCount": imp["recordCount"] if done else 0, "CreatedById": SANDBOX_USER_ID,
            "CreatedDate": imp["createdDate"], "UpdatedById": SANDBOX_USER_ID, "UpdatedDate": imp["updatedDate"]}

def invoice_query_view(inv: dict, sb: ZuoraSandbox) -> dict:
    """One invoice as Object Query returns it: the ``InvoiceResponse`` fields and the custom fields, and
    what Invoice Settlement says about it (``reversed``, payments and credit memos applied)."""
    return {**invoice_view(inv), "paymentAmount": inv.get("paymentAmount", Decimal("0")),
            "creditMemoAmount": inv.get("creditMemoAmount", Decimal("0")), "reversed": inv.get("reversed", False),
            "isSplit": inv.get("isSplit", False)}


# GET /v1/invoices/{key}/items names two request fields differently; the rest keep their names, and
# accountsReceivableAccountingCode is not part of the documented InvoiceItem.
ITEM_VIEW_NAMES = {"amount": "chargeAmount", "uom": "unitOfMeasure"}
ITEM_VIEW_OMIT = {"accountsReceivableAccountingCode"}


def invoice_item_view(item: dict) -> dict:
    """One stored item as ``GET /v1/invoices/{key}/items`` answers it (Zuora's ``InvoiceItem``)."""
    out = {ITEM_VIEW_NAMES.get(k, k): v for k, v in item.items() if k not in ITEM_VIEW_OMIT}
    out["balance"] = item["amount"]
    return out


def usage_query_view(u: dict) -> dict:
    """One usage record as Object Query returns it (Zuora's ``ExpandedUsage``; ``uOM`` is its spelling)."""
    return {"id": u["Id"], "accountId": u["AccountId"], "accountNumber": u["AccountNumber"],
            "quantity": u["Quantity"], "uOM": u["UOM"], "startDateTime": u["StartDateTime"],
            "endDateTime": u["EndDateTime"], "subscriptionId": u.get("SubscriptionId"),
            "description": u["Description"], "uniqueKey": u["UniqueKey"], "importId": u["ImportId"],
            "sourceType": u["Source"], "createdDate": u["CreatedDate"], "updatedDate": u["CreatedDate"]}


# Object Query's expanded objects spell some fields differently from the v1 GETs (ExpandedContact,
# ExpandedInvoiceItem): renamed here, and fields those objects lack are left out.
EXPANDED_CONTACT_NAMES = {"zipCode": "postalCode", "nickname": "nickName", "contactDescription": "description"}
EXPANDED_ITEM_NAMES = {
    "id": "id", "amount": "chargeAmount", "uom": "uOM", "sku": "sKU", "chargeName": "chargeName",
    "description": "description", "quantity": "quantity", "unitPrice": "unitPrice", "chargeDate": "chargeDate",
    "serviceStartDate": "serviceStartDate", "serviceEndDate": "serviceEndDate", "taxMode": "taxMode",
    "taxAmount": "taxAmount", "taxCode": "taxCode", "accountingCode": "accountingCode",
    "bookingReference": "bookingReference", "itemType": "itemType", "purchaseOrderNumber": "purchaseOrderNumber",
    "revRecCode": "revRecCode", "revRecStartDate": "revRecStartDate",
    "revRecTriggerCondition": "revRecTriggerCondition",
    "revenueRecognitionRuleName": "revenueRecognitionRuleName",
    "excludeItemBillingFromRevenueAccounting": "excludeItemBillingFromRevenueAccounting",
    "processingType": "processingType", "appliedToItemId": "appliedToInvoiceItemId"}


def expanded_contact_view(contact: dict, account_id: str) -> dict:
    """A contact as Object Query's ``expand[]=billTo`` answers it (Zuora's ``ExpandedContact``)."""
    return {"accountId": account_id,
            **{EXPANDED_CONTACT_NAMES.get(k, k): v for k, v in contact_view(contact).items()}}


def expanded_item_view(item: dict, invoice: dict) -> dict:
    """An invoice item as Object Query's ``expand[]=invoiceItems`` answers it (``ExpandedInvoiceItem``)."""
    out = {EXPANDED_ITEM_NAMES[k]: v for k, v in item.items() if k in EXPANDED_ITEM_NAMES}
    return {**out, "invoiceId": invoice["id"], "accountId": invoice["accountId"], "balance": item["amount"]}
