"""Settings read once from the environment, validated, with secrets that cannot leak by accident.

CONTRACT §2 lists the variables. ``load_config`` collects *every* problem before raising, so an
operator fixes a deployment in one round; a command exits non-zero with that one message before
doing anything. Secret values are wrapped in ``Secret``, whose ``str`` and ``repr`` are masked:
only ``.reveal()`` — called where a value goes on the wire — yields the real string.
"""
from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from urllib.parse import urlparse

from croniter import croniter

MASK = "********"


class Secret:
    """A string that never prints itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


class ConfigError(Exception):
    """Missing or malformed settings; ``problems`` maps each variable to what is wrong with it."""

    def __init__(self, problems: dict[str, str]):
        self.problems = problems
        lines = "\n".join(f"  {name}: {why}" for name, why in problems.items())
        super().__init__(f"configuration is incomplete or malformed ({len(problems)} problem(s)):\n{lines}")


ADMIN_TOKEN_MIN_LENGTH = 24
ADMIN_TOKEN_MIN_KINDS = 2
ADMIN_TOKEN_MIN_DISTINCT = 8
MAKE_A_TOKEN = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"  # noqa: S105 - a command, not a password


def admin_token_problem(token: str) -> str | None:
    """Why ``token`` is too weak to guard ``/admin/*`` and the console, or None when it will do.

    WHY a rule at all: the token is the only credential of the admin API and the console, and the
    sign-in limits only slow an online guesser down; what makes guessing hopeless is the token's own
    size. The rule is what a generated token always passes and a chosen word fails: at least 24
    printable ASCII characters without spaces (it travels in an HTTP header), of at least two kinds
    (lower case, upper case, digits, punctuation) — so at least 24 × log2(36) ≈ 124 bits by the usual
    estimate — and at least 8 different characters (``aaaa…a1`` is not 124 bits). A dictionary phrase can
    still pass: the message says how to generate one. The message never quotes the token.
    """
    how = f"make one with: {MAKE_A_TOKEN}"
    if any(not 33 <= ord(ch) <= 126 for ch in token):
        return f"must be printable ASCII without spaces (it is sent in an HTTP header); {how}"
    if len(token) < ADMIN_TOKEN_MIN_LENGTH:
        return f"is too short to resist guessing: it needs at least {ADMIN_TOKEN_MIN_LENGTH} characters; {how}"
    kinds = sum(any(test(ch) for ch in token) for test in (str.islower, str.isupper, str.isdigit,
                                                            lambda ch: not ch.isalnum()))
    if kinds < ADMIN_TOKEN_MIN_KINDS or len(set(token)) < ADMIN_TOKEN_MIN_DISTINCT:
        return (f"is too easy to guess: it needs at least two kinds of characters (lower case, upper case, digits, "
                f"punctuation) and at least {ADMIN_TOKEN_MIN_DISTINCT} different characters; {how}")
    return None


HMAC_ALGORITHMS = {"SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}
HMAC_FORMATS = ("BASE64", "HEX")
INVOICE_STATUSES = ("Draft", "Posted")
BILLING_PLATFORMS = ("togai",)
"""The billing platforms with an adapter (integration.billing.factory); ``lago`` is CONTRACT §13's next."""


@dataclass(frozen=True)
class Config:
    """The service's settings. Build it with ``load_config`` (or directly in tests)."""

    zuora_base_url: str
    zuora_client_id: str
    zuora_client_secret: Secret
    billing_base_url: str
    billing_api_token: Secret
    billing_webhook_secret: Secret
    admin_token: Secret
    database_url: str = "sqlite:///integration.db"
    zuora_entity_id: str | None = None
    zuora_link_field: str = "BillingAccountId__c"
    zuora_invoice_link_field: str = "BillingInvoiceId__c"
    zuora_callout_username: str | None = None
    zuora_callout_password: Secret | None = None
    zuora_callout_hmac_secret: Secret | None = None
    zuora_callout_hmac_header: str = "X-Zuora-Signature"
    zuora_callout_hmac_algorithm: str = "SHA-256"
    zuora_callout_hmac_format: str = "BASE64"
    zuora_callout_auth_none: bool = False
    zuora_invoice_status: str = "Posted"
    billing_platform: str = "togai"  # the adapter of the billing port (CONTRACT §13)
    retry_cron: str = "30 11,23 * * *"
    reconcile_minutes: float = 15.0  # 0 turns reconciliation off (CONTRACT §9)
    max_attempts: int = 10
    lease_seconds: float = 60.0
    http_timeout: float = 30.0
    backoff_seconds: float = 5.0
    zuora_max_concurrency: int = 40
    # Operator console and alerts (CONTRACT §8)
    alert_webhook_url: Secret | None = None  # a Slack/Mattermost webhook URL is itself a credential
    alert_interval_seconds: float = 300.0
    public_url: str | None = None
    secret_key: Secret | None = None
    trust_proxy: bool = False
    ui_links: tuple[tuple[str, str], ...] = ()  # (variable, URL template with {id}) that are set

    @property
    def callout_basic_auth(self) -> bool:
        return bool(self.zuora_callout_username and self.zuora_callout_password)

    def secrets(self) -> list[str]:
        """Every configured secret value, for the log redaction filter."""
        return [f.reveal() for f in (getattr(self, x.name) for x in fields(self))
                if isinstance(f, Secret) and f.reveal()]

    def __repr__(self) -> str:
        shown = ", ".join(f"{x.name}={getattr(self, x.name)!r}" for x in fields(self))
        return f"Config({shown})"


UI_LINK_VARIABLES = ("ZUORA_UI_ACCOUNT_URL", "ZUORA_UI_INVOICE_URL", "BILLING_UI_ACCOUNT_URL",
                     "BILLING_UI_INVOICE_URL")
"""Console links into the vendors' own UIs: URL templates in which ``{id}`` is replaced by the object's ID."""

# name -> (required, is_secret)
_VARIABLES = {
    "DATABASE_URL": (False, False),
    "ZUORA_BASE_URL": (True, False),
    "ZUORA_CLIENT_ID": (True, False),
    "ZUORA_CLIENT_SECRET": (True, True),
    "ZUORA_ENTITY_ID": (False, False),
    "ZUORA_LINK_FIELD": (False, False),
    "ZUORA_INVOICE_LINK_FIELD": (False, False),
    "BILLING_PLATFORM": (False, False),
    "BILLING_BASE_URL": (True, False),
    "BILLING_API_TOKEN": (True, True),
    "BILLING_WEBHOOK_SECRET": (True, True),
    "ZUORA_CALLOUT_USERNAME": (False, False),
    "ZUORA_CALLOUT_PASSWORD": (False, True),
    "ZUORA_CALLOUT_HMAC_SECRET": (False, True),
    "ZUORA_CALLOUT_HMAC_HEADER": (False, False),
    "ZUORA_CALLOUT_HMAC_ALGORITHM": (False, False),
    "ZUORA_CALLOUT_HMAC_FORMAT": (False, False),
    "ZUORA_CALLOUT_AUTH": (False, False),
    "ADMIN_TOKEN": (True, True),
    "ZUORA_INVOICE_STATUS": (False, False),
    "INTEGRATION_RETRY_CRON": (False, False),
    "INTEGRATION_RECONCILE_MINUTES": (False, False),
    "INTEGRATION_MAX_ATTEMPTS": (False, False),
    "INTEGRATION_LEASE_SECONDS": (False, False),
    "INTEGRATION_HTTP_TIMEOUT": (False, False),
    "INTEGRATION_BACKOFF_SECONDS": (False, False),
    "ZUORA_MAX_CONCURRENCY": (False, False),
    "INTEGRATION_ALERT_WEBHOOK_URL": (False, True),
    "INTEGRATION_ALERT_INTERVAL_SECONDS": (False, False),
    "PUBLIC_URL": (False, False),
    "INTEGRATION_SECRET_KEY": (False, True),
    "INTEGRATION_TRUST_PROXY": (False, False),
    **dict.fromkeys(UI_LINK_VARIABLES, (False, False)),
}

_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,100}$")
_LINK_FIELD = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,80}__c$")


def _check_url(value: str) -> str | None:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return "must be an http(s) URL such as https://rest.apisandbox.zuora.com"
    return None


def _check_whsec(value: str) -> str | None:
    raw = value[len("whsec_"):] if value.startswith("whsec_") else None
    if raw is None:
        return "must be a Standard Webhooks secret of the form whsec_<base64>"
    try:
        if not base64.b64decode(raw, validate=True):
            return "whsec_ secret is empty"
    except ValueError:
        return "the part after whsec_ is not valid base64"
    return None


def database_path(url: str) -> str | None:
    """The file path in a ``sqlite:///`` URL, or None when the URL is not SQLite."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        return path or None
    return None


def load_database_url(environ: Mapping[str, str]) -> str:
    """Just the store's URL, for commands (``migrate``) that need nothing else; raises ConfigError."""
    url = environ.get("DATABASE_URL", "").strip() or "sqlite:///integration.db"
    if database_path(url) is None and not _is_postgresql(url):
        raise ConfigError({"DATABASE_URL": "must be sqlite:///<path> or postgresql://user:pass@host:5432/db"})
    return url


def _is_postgresql(url: str) -> bool:
    """A ``postgresql://`` (or ``postgres://``) URL that names at least a host or a database."""
    for scheme in ("postgresql://", "postgres://", "postgresql+psycopg://"):
        if url.startswith(scheme):
            return len(url) > len(scheme) and not any(ch.isspace() for ch in url)
    return False


def load_config(environ: Mapping[str, str]) -> Config:
    """Read and validate every CONTRACT §2 variable; raise ConfigError naming each problem."""
    problems: dict[str, str] = {}
    raw = {name: environ.get(name, "").strip() for name in _VARIABLES}

    for name, (required, _secret) in _VARIABLES.items():
        if required and not raw[name]:
            problems[name] = "is required but not set"

    try:
        database_url = load_database_url(environ)
    except ConfigError as exc:
        problems.update(exc.problems)
        database_url = ""
    for name in ("ZUORA_BASE_URL", "BILLING_BASE_URL"):
        if raw[name] and (why := _check_url(raw[name])):
            problems[name] = why
    if raw["ADMIN_TOKEN"] and (why := admin_token_problem(raw["ADMIN_TOKEN"])):
        problems["ADMIN_TOKEN"] = why
    if raw["BILLING_WEBHOOK_SECRET"] and (why := _check_whsec(raw["BILLING_WEBHOOK_SECRET"])):
        problems["BILLING_WEBHOOK_SECRET"] = why
    for name in ("ZUORA_LINK_FIELD", "ZUORA_INVOICE_LINK_FIELD"):
        if raw[name] and not _LINK_FIELD.match(raw[name]):
            problems[name] = "must be a Zuora custom field name ending in __c"
    if raw["ZUORA_CALLOUT_HMAC_HEADER"] and not _HEADER_NAME.match(raw["ZUORA_CALLOUT_HMAC_HEADER"]):
        problems["ZUORA_CALLOUT_HMAC_HEADER"] = "must be an HTTP header name"
    algorithm = raw["ZUORA_CALLOUT_HMAC_ALGORITHM"] or "SHA-256"
    if algorithm not in HMAC_ALGORITHMS:
        problems["ZUORA_CALLOUT_HMAC_ALGORITHM"] = f"must be one of {', '.join(HMAC_ALGORITHMS)}"
    fmt = raw["ZUORA_CALLOUT_HMAC_FORMAT"] or "BASE64"
    if fmt not in HMAC_FORMATS:
        problems["ZUORA_CALLOUT_HMAC_FORMAT"] = "must be BASE64 or HEX"
    status = raw["ZUORA_INVOICE_STATUS"] or "Posted"
    if status not in INVOICE_STATUSES:
        problems["ZUORA_INVOICE_STATUS"] = "must be Draft or Posted"
    cron = raw["INTEGRATION_RETRY_CRON"] or "30 11,23 * * *"
    if not croniter.is_valid(cron):
        problems["INTEGRATION_RETRY_CRON"] = "must be a five-field cron expression, e.g. '30 11,23 * * *'"
    reconcile_minutes = _parse_number(raw, "INTEGRATION_RECONCILE_MINUTES", float, 15.0, 0.0, 1440.0, problems)
    max_attempts = _parse_number(raw, "INTEGRATION_MAX_ATTEMPTS", int, 10, 1, 100, problems)
    lease_seconds = _parse_number(raw, "INTEGRATION_LEASE_SECONDS", float, 60.0, 1.0, 3600.0, problems)
    http_timeout = _parse_number(raw, "INTEGRATION_HTTP_TIMEOUT", float, 30.0, 0.5, 300.0, problems)
    backoff_seconds = _parse_number(raw, "INTEGRATION_BACKOFF_SECONDS", float, 5.0, 0.1, 600.0, problems)
    zuora_max_concurrency = _parse_number(raw, "ZUORA_MAX_CONCURRENCY", int, 40, 1, 1000, problems)
    alert_interval = _parse_number(raw, "INTEGRATION_ALERT_INTERVAL_SECONDS", float, 300.0, 10.0, 86400.0, problems)
    for name in ("INTEGRATION_ALERT_WEBHOOK_URL", "PUBLIC_URL"):
        if raw[name] and _check_url(raw[name]):
            problems[name] = "must be an http(s) URL"
    for name in UI_LINK_VARIABLES:
        if raw[name] and (_check_url(raw[name]) or "{id}" not in raw[name]):
            problems[name] = "must be an http(s) URL template containing {id}"
    if raw["INTEGRATION_TRUST_PROXY"].lower() not in ("", "0", "1", "true", "false"):
        problems["INTEGRATION_TRUST_PROXY"] = "must be true or false"

    username, password = raw["ZUORA_CALLOUT_USERNAME"], raw["ZUORA_CALLOUT_PASSWORD"]
    if bool(username) != bool(password):
        missing = "ZUORA_CALLOUT_PASSWORD" if username else "ZUORA_CALLOUT_USERNAME"
        problems[missing] = "must be set together with its pair (Basic auth needs both)"
    auth = raw["ZUORA_CALLOUT_AUTH"].lower()
    if auth not in ("", "none"):
        problems["ZUORA_CALLOUT_AUTH"] = "may only be 'none' (to accept unauthenticated callouts)"
    if not (username and password) and not raw["ZUORA_CALLOUT_HMAC_SECRET"] and auth != "none":
        problems.setdefault(
            "ZUORA_CALLOUT_USERNAME",
            "no callout authentication configured: set ZUORA_CALLOUT_USERNAME and ZUORA_CALLOUT_PASSWORD, "
            "or ZUORA_CALLOUT_HMAC_SECRET, or ZUORA_CALLOUT_AUTH=none to accept unauthenticated callouts")

    platform = raw["BILLING_PLATFORM"].strip().lower() or "togai"
    if platform == "lago":
        problems["BILLING_PLATFORM"] = "lago is not supported yet: only togai has an adapter in this release"
    elif platform not in BILLING_PLATFORMS:
        problems["BILLING_PLATFORM"] = f"must be one of: {', '.join(BILLING_PLATFORMS)}"

    if problems:
        raise ConfigError(problems)

    def secret(name: str) -> Secret | None:
        return Secret(raw[name]) if raw[name] else None

    return Config(
        database_url=database_url,
        zuora_base_url=raw["ZUORA_BASE_URL"].rstrip("/"),
        zuora_client_id=raw["ZUORA_CLIENT_ID"],
        zuora_client_secret=Secret(raw["ZUORA_CLIENT_SECRET"]),
        zuora_entity_id=raw["ZUORA_ENTITY_ID"] or None,
        zuora_link_field=raw["ZUORA_LINK_FIELD"] or "BillingAccountId__c",
        zuora_invoice_link_field=raw["ZUORA_INVOICE_LINK_FIELD"] or "BillingInvoiceId__c",
        billing_base_url=raw["BILLING_BASE_URL"].rstrip("/"),
        billing_api_token=Secret(raw["BILLING_API_TOKEN"]),
        billing_webhook_secret=Secret(raw["BILLING_WEBHOOK_SECRET"]),
        zuora_callout_username=username or None,
        zuora_callout_password=secret("ZUORA_CALLOUT_PASSWORD"),
        zuora_callout_hmac_secret=secret("ZUORA_CALLOUT_HMAC_SECRET"),
        zuora_callout_hmac_header=raw["ZUORA_CALLOUT_HMAC_HEADER"] or "X-Zuora-Signature",
        zuora_callout_hmac_algorithm=algorithm,
        zuora_callout_hmac_format=fmt,
        zuora_callout_auth_none=auth == "none",
        admin_token=Secret(raw["ADMIN_TOKEN"]),
        zuora_invoice_status=status,
        billing_platform=platform,
        retry_cron=cron,
        reconcile_minutes=reconcile_minutes,
        max_attempts=max_attempts,
        lease_seconds=lease_seconds,
        http_timeout=http_timeout,
        backoff_seconds=backoff_seconds,
        zuora_max_concurrency=zuora_max_concurrency,
        alert_webhook_url=secret("INTEGRATION_ALERT_WEBHOOK_URL"),
        alert_interval_seconds=alert_interval,
        public_url=raw["PUBLIC_URL"].rstrip("/") or None,
        secret_key=secret("INTEGRATION_SECRET_KEY"),
        trust_proxy=raw["INTEGRATION_TRUST_PROXY"].lower() in ("1", "true"),
        ui_links=tuple((name, raw[name]) for name in UI_LINK_VARIABLES if raw[name]),
    )


def _parse_number(raw, name, kind, default, low, high, problems):
    if not raw[name]:
        return default
    try:
        value = kind(raw[name])
    except ValueError:
        problems[name] = f"must be a number between {low} and {high}"
        return default
    if not low <= value <= high:
        problems[name] = f"must be between {low} and {high}"
    return value
