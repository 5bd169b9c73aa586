"""Shared pieces of the Zuora sandbox: reason codes and limits, exact-Decimal JSON, error bodies,
parsers. WHY one module: every resource module answers in the same Zuora shapes."""
from __future__ import annotations

import datetime as dt
import json
import logging
import re
import secrets
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import flask
import pycountry
from flask.json.provider import DefaultJSONProvider

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Body = dict[str, Any]

# Reason-code resource prefixes (sandbox choice, see module docstring) and Zuora's categories (§9).
RES_ACCOUNT = 531000
RES_INVOICE = 592100
RES_USAGE_UPLOAD = 533000
RES_GET = 500000
CAT_INVALID = 20
CAT_UNKNOWN_FIELD = 21
CAT_MISSING = 22
CAT_BAD_QUERY = 27
CAT_BUSINESS = 30
CAT_NOT_FOUND = 40
CAT_CONCURRENCY = 70
CAT_MALFORMED = 90

SANDBOX_USER_ID = "2c93808457d787030157e031fcd34e19"  # createdById/postedBy: the one API user
REQUEST_LOG_SIZE = 10_000  # the newest requests kept for /_sandbox/state
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
MAX_IDEMPOTENCY_KEY = 255
MAX_USAGE_FILE_BYTES = 4 * 1024 * 1024
MAX_USAGE_FILE_NAME = 50
MAX_INVOICE_ITEMS = 1000
# Paged v1 GET lists (developer.zuora.com/docs/guides/pagination; zuora-sdk: ``page_size`` ``le=40``):
# ``pageSize`` at most 40, "typically" 10 when absent; ``page`` counts from 1. Object Query is 1-99.
V1_PAGE_SIZE_DEFAULT, V1_PAGE_SIZE_MAX = 10, 40
OBJECT_QUERY_PAGE_SIZE_DEFAULT, OBJECT_QUERY_PAGE_SIZE_MAX = 10, 99
CALLOUT_TIMEOUT = (10, 15)  # Zuora: 10 s to connect, 15 s to transfer
CALLOUT_WORKERS = 4
HMAC_ALGORITHMS = {"MD5": "md5", "SHA-1": "sha1", "SHA-224": "sha224", "SHA-256": "sha256",
                   "SHA-384": "sha384", "SHA-512": "sha512"}
HMAC_FORMATS = ("BASE64", "HEX")
PAYMENT_TERMS = {"Due Upon Receipt": 0, "Net 30": 30, "Net 60": 60, "Net 90": 90}
BATCHES = {f"Batch{n}" for n in range(1, 51)}
TRACK_ID_RE = re.compile(r"^[\x20-\x7e]{1,64}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
CUSTOM_FIELD_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*__c$")
INVOICE_NUMBER_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
DATE_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$")
USAGE_REQUIRED_HEADERS = ("ACCOUNT_ID", "UOM", "QTY", "STARTDATE", "ENDDATE", "PRODUCT_RATE_PLAN_CHARGE_ID",
                          "SUBSCRIPTION_ID", "CHARGE_ID")
USAGE_OPTIONAL_HEADERS = ("DESCRIPTION", "UNIQUE_KEY")


# ---------------------------------------------------------------------------------------------------
# JSON: Decimal in, Decimal out (as a JSON number, digit for digit)
# ---------------------------------------------------------------------------------------------------

_DEC_NONCE = secrets.token_hex(6)
_DEC_RE = re.compile(r'"@@dec' + _DEC_NONCE + r'@@(-?[0-9]+(?:\.[0-9]+)?)@@"')


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return f"@@dec{_DEC_NONCE}@@{format(obj, 'f')}@@"
    if isinstance(obj, (dt.date, dt.datetime)):
        return obj.isoformat()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps(obj: Any) -> str:
    """JSON text with every Decimal written as a plain number, so amounts round-trip exactly."""
    return _DEC_RE.sub(r"\1", json.dumps(obj, default=_json_default, ensure_ascii=False))


class _DecimalJSONProvider(DefaultJSONProvider):
    """Flask's provider writes Decimal as a string; Zuora writes numbers."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return dumps(obj)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


def parse_json(raw: bytes) -> Any:
    """Parse a request body; floats become Decimal; NaN/Infinity are refused."""
    return json.loads(raw.decode("utf-8"), parse_float=Decimal, parse_constant=_reject_constant)


# ---------------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------------

def _new_id() -> str:
    return uuid.uuid4().hex


def _process_id() -> str:
    return secrets.token_hex(8).upper()


def _utc_iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="seconds")


def common_error(reasons: list[dict], **extra: Any) -> Body:
    """Zuora's v1 business-error body (``CommonResponse``)."""
    return {"success": False, "processId": _process_id(), "reasons": reasons,
            "requestId": str(uuid.uuid4()), **extra}


def reason(resource: int, category: int, message: str) -> dict:
    return {"code": resource * 100 + category, "message": message}


def object_error(code: str, message: str) -> Body:
    """The Object (CRUD) API's error body."""
    return {"Success": False, "Errors": [{"Code": code, "Message": message}]}


def v1_page(args: Any) -> tuple[int, int]:
    """``page`` and ``pageSize`` of a paged v1 GET list; ``ValueError`` (the sandbox's 400) when either is
    not a whole number in range. WHY refuse: Zuora's pagination guide says a larger ``pageSize`` "is
    treated as 40" and zuora-sdk refuses it before sending; either way a client that asks for 200 and
    counts pages by its own size reads the wrong rows on a real tenant. Refusing is what lets a test see it."""
    raw_size, raw_page = args.get("pageSize"), args.get("page")
    size, page = V1_PAGE_SIZE_DEFAULT, 1
    if raw_size is not None:
        if not re.fullmatch(r"[0-9]{1,6}", raw_size) or not 1 <= int(raw_size) <= V1_PAGE_SIZE_MAX:
            raise ValueError(f"Invalid value for 'pageSize': it must be an integer from 1 to {V1_PAGE_SIZE_MAX}")
        size = int(raw_size)
    if raw_page is not None:
        if not re.fullmatch(r"[0-9]{1,9}", raw_page) or int(raw_page) < 1:
            raise ValueError("Invalid value for 'page': it must be an integer of 1 or more")
        page = int(raw_page)
    return page, size


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _to_decimal(v: Any) -> Decimal | None:
    """A JSON number or numeric string as a finite Decimal, else None (bools are not numbers)."""
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, Decimal)):
        d = Decimal(v)
    elif isinstance(v, str) and re.fullmatch(r"\s*-?\d+(\.\d+)?\s*", v):
        d = Decimal(v.strip())
    else:
        return None
    return d if d.is_finite() else None


def _parse_date(v: Any) -> dt.date | None:
    if not isinstance(v, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
        return None
    try:
        return dt.date.fromisoformat(v)
    except ValueError:
        return None


def _valid_date_time(v: Any) -> bool:
    if not isinstance(v, str) or not DATE_TIME_RE.match(v):
        return False
    try:
        dt.date.fromisoformat(v[:10])
        if len(v) > 10:
            dt.datetime.fromisoformat(v.replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        return False
    return True


def _normalise_country(value: str) -> str | None:
    try:
        return pycountry.countries.lookup(value.strip()).name
    except LookupError:
        return None


def _valid_state(country_name: str, state: str) -> bool:
    """Zuora checks state/province only where it knows them; we do for the US and Canada."""
    codes = {"United States": "US", "Canada": "CA"}
    cc = codes.get(country_name)
    if cc is None:
        return True
    wanted = state.strip().lower()
    for sub in pycountry.subdivisions.get(country_code=cc) or ():
        if wanted in (sub.name.lower(), sub.code.split("-", 1)[1].lower()):
            return True
    return False


def _valid_currency(value: Any) -> bool:
    return (isinstance(value, str) and re.fullmatch(r"[A-Z]{3}", value) is not None
            and pycountry.currencies.get(alpha_3=value) is not None)

def _json_response(body: Any, status: int = 200) -> flask.Response:
    return flask.Response(dumps(body), status=status, mimetype="application/json")

LOSE_MODES = ("error", "timeout", "failure")
