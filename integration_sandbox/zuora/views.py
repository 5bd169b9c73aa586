"""Response shapes: accounts, invoices, usage imports, and their Object Query rows."""
from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from .validation import CONTACT_EMAILS, CONTACT_LIMITS

if TYPE_CHECKING:
    from .state import ZuoraSandbox


# ---------------------------------------------------------------------------------------------------
# views (response shapes)
# ---------------------------------------------------------------------------------------------------

def _contact_view(contact: dict) -> dict:
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
             "purchaseOrderNumber": a.get("purchaseOrderNumber"), "tagging": a.get("tagging"),
             "organizationLabel": a.get("organizationLabel")}
    for name in sorted(sb.custom_fields):
        basic[name] = a["customFields"].get(name)
    billing = {"billCycleDay": a["billCycleDay"], "currency": a["currency"], "autoPay": a["autoPay"],
               "paymentTerm": a["paymentTerm"], "paymentGateway": a.get("paymentGateway"),
               "defaultPaymentMethodId": a.get("defaultPaymentMethodId"),
               "invoiceDeliveryPrefsEmail": a["invoiceDeliveryPrefsEmail"],
               "invoiceDeliveryPrefsPrint": a["invoiceDeliveryPrefsPrint"],
               "additionalEmailAddresses": list(a.get("additionalEmailAddresses", [])),
               "paymentMethodCascadingConsent": False}
    metrics = account_metrics(a, sb)
    return {"basicInfo": basic, "billingAndPayment": billing,
            "billToContact": _contact_view(a["contacts"][a["billToContactId"]]),
            "soldToContact": _contact_view(a["contacts"][a["soldToContactId"]]),
            "metrics": metrics, "metricsData": [dict(metrics, currency=a["currency"])],
            "taxInfo": a.get("taxInfo"), "einvoiceProfile": a.get("einvoiceProfile")}


def account_query_view(a: dict, sb: ZuoraSandbox) -> dict:
    """One account as Object Query returns it: flat camelCase fields plus custom fields."""
    metrics = account_metrics(a, sb)
    out = {"id": a["id"], "accountNumber": a["accountNumber"], "name": a["name"], "status": a["status"],
           "currency": a["currency"], "billCycleDay": a["billCycleDay"], "autoPay": a["autoPay"],
           "paymentTerm": a["paymentTerm"], "batch": a["batch"], "crmId": a.get("crmId"),
           "billToId": a["billToContactId"], "soldToId": a["soldToContactId"], "notes": a.get("notes"),
           "balance": metrics["balance"], "creditBalance": metrics["creditBalance"],
           "totalInvoiceBalance": metrics["totalInvoiceBalance"], "createdDate": a["createdDate"],
           "updatedDate": a["updatedDate"]}
    for name in sorted(sb.custom_fields):
        out[name] = a["customFields"].get(name)
    return out


def invoice_view(inv: dict, *, with_items: bool) -> dict:
    out = {k: v for k, v in inv.items() if k != "items"}
    if with_items:
        out["invoiceItems"] = [dict(item) for item in inv["items"]]
    return out


def import_view(imp: dict) -> dict:
    return {k: imp[k] for k in ("id", "fileName", "size", "status", "message", "polls", "recordCount",
                                "createdDate")}

def invoice_query_view(inv: dict, sb: ZuoraSandbox) -> dict:
    """One invoice as Object Query returns it: flat fields plus the invoice custom fields."""
    out = {k: inv[k] for k in ("id", "invoiceNumber", "accountId", "invoiceDate", "dueDate", "status", "amount",
                               "balance", "currency", "comments", "createdDate", "updatedDate")}
    for name in sorted(sb.invoice_custom_fields):
        out[name] = inv.get(name)
    return out


def usage_query_view(u: dict) -> dict:
    """One usage record as Object Query returns it (camelCase)."""
    return {"id": u["Id"], "accountId": u["AccountId"], "accountNumber": u["AccountNumber"],
            "quantity": u["Quantity"], "uom": u["UOM"], "startDateTime": u["StartDateTime"],
            "endDateTime": u["EndDateTime"], "subscriptionNumber": u["SubscriptionNumber"],
            "chargeNumber": u["ChargeNumber"], "description": u["Description"], "uniqueKey": u["UniqueKey"],
            "importId": u["ImportId"], "source": u["Source"], "createdDate": u["CreatedDate"]}
