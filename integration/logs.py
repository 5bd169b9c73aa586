"""Structured JSON logs, one object per line, with every configured secret masked.

A log line carries the event ID (from ``integration.context``) and whatever ``extra`` fields the
caller gave. ``RedactingFilter`` is the last line of defence: any configured secret value that
found its way into a message or field is replaced before the line is written.
"""
from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

from integration.config import MASK
from integration.context import current_event_id

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
                  .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        event_id = current_event_id.get()
        if event_id:
            line["event_id"] = event_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class RedactingFilter(logging.Filter):
    """Replace each secret value anywhere in a record with a mask."""

    def __init__(self, secrets: list[str]):
        super().__init__()
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def _clean(self, value):
        if isinstance(value, str):
            for secret in self.secrets:
                if secret in value:
                    value = value.replace(secret, MASK)
        return value

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        record.msg = self._clean(record.getMessage())
        record.args = None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD:
                setattr(record, key, self._clean(value))
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = self._clean(text)
            record.exc_info = None
            record.msg = f"{record.msg}\n{record.exc_text}"
        return True


def configure_logging(secrets: list[str] | None = None, level: int = logging.INFO, stream=None) -> None:
    """JSON lines on stderr for the whole process, secrets masked. Idempotent."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_integration", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._integration = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter(secrets or []))
    root.addHandler(handler)
    root.setLevel(level)
    # urllib3 logs full URLs at DEBUG; keep it at INFO so query strings stay out of the logs.
    logging.getLogger("urllib3").setLevel(max(level, logging.INFO))
