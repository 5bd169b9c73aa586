"""Outgoing events: Standard-Webhooks-signed deliveries from one thread, retried on a schedule."""
from __future__ import annotations

import heapq
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from standardwebhooks import Webhook

from .common import DELIVERY_TIMEOUT
from .schemas import ResendSchema, load

_SILENCE = threading.local()


@contextmanager
def silenced(on: bool = True) -> Iterator[None]:
    """Within it (this thread only), objects change without emitting their event: the sandbox's way
    to stand for a webhook that never came (``?webhook=false`` on the ``/_sandbox`` controls), the
    case reconciliation exists for."""
    before = getattr(_SILENCE, "on", False)
    _SILENCE.on = on
    try:
        yield
    finally:
        _SILENCE.on = before


class WebhooksMixin:
    """Event emission and webhook delivery of :class:`~integration_sandbox.billing.state.BillingSandbox`."""

    # -- outgoing events -------------------------------------------------------------------------

    def _emit(self, event_type: str, object_id: str, *, via_api: bool) -> dict | None:
        """Record an event and queue its delivery (caller holds the lock)."""
        if (via_api and not self._emit_api_events) or getattr(_SILENCE, "on", False):
            return None
        event_id = "msg_" + secrets.token_hex(16)
        body = json.dumps({"type": event_type, "data": {"id": object_id}}, separators=(",", ":"))
        event = {"id": event_id, "type": event_type, "data": {"id": object_id}, "body": body,
                 "created_at": self._clock(), "status": "pending", "round": 0, "attempts": []}
        self._events[event_id] = event
        self._schedule_round(event)
        return event

    def _schedule_round(self, event: dict) -> None:
        """Start a delivery round (first send, or a resend): queue attempt 1 now."""
        event["round"] += 1
        if self._webhook_url is None:
            event["status"] = "skipped"
            return
        event["status"] = "pending"
        self._enqueue(event["id"], event["round"], delay=0.0)

    def _enqueue(self, event_id: str, round_: int, delay: float) -> None:
        if self._closed:
            return
        heapq.heappush(self._queue, (time.monotonic() + delay, next(self._seq), event_id, round_))
        if self._thread is None:
            self._thread = threading.Thread(target=self._deliver_loop, name="billing-sandbox-webhooks",
                                            daemon=True)
            self._thread.start()
        self._cv.notify_all()

    def resend(self, payload: Any) -> dict:
        """Deliver an event again with its original ``webhook-id`` (a duplicate), or a new one.

        The latest event of that type for that object is resent; with ``"new": true``, or when there
        is none, a new event (any ``type``, to test unknown types) is created.
        """
        data = load(ResendSchema(), payload)
        with self._lock:
            matches = [e for e in self._events.values()
                       if e["type"] == data["type"] and e["data"]["id"] == data["id"]]
            if matches and not data["new"]:
                event = matches[-1]
                self._schedule_round(event)
                duplicate = True
            else:
                event = self._emit(data["type"], data["id"], via_api=False)
                if event is None:  # via_api=False always emits
                    raise RuntimeError(f"event {data['id']!r} was not emitted")
                duplicate = False
            return {"event_id": event["id"], "duplicate": duplicate, "status": event["status"]}

    def _deliver_loop(self) -> None:
        session = requests.Session()
        while True:
            with self._cv:
                item = self._next_due()
                if item is None:
                    return
                job = self._prepare_attempt(*item[2:])
                self._in_flight += 1
            result: tuple[int | None, str | None] = (None, None)
            try:
                if job is not None:
                    result = self._post(session, job)
            finally:
                with self._cv:
                    if job is not None:
                        self._record_attempt(job, *result)
                    self._in_flight -= 1
                    self._cv.notify_all()

    def _next_due(self) -> tuple[float, int, str, int] | None:
        """Wait (lock held, released while waiting) for the next due delivery; None when closed."""
        while not self._closed:
            if self._queue:
                delay = self._queue[0][0] - time.monotonic()
                if delay <= 0:
                    return heapq.heappop(self._queue)
                self._cv.wait(delay)
            else:
                self._cv.wait()
        return None

    def _prepare_attempt(self, event_id: str, round_: int) -> dict | None:
        """Everything one POST needs, read under the lock; None if the event is gone or superseded."""
        event = self._events.get(event_id)
        if event is None or event["round"] != round_ or self._webhook_url is None:
            if event is not None and self._webhook_url is None:
                event["status"] = "skipped"
            return None
        in_round = sum(1 for a in event["attempts"] if a["round"] == round_) + 1
        moment = self._clock()
        signatures = " ".join(Webhook(secret).sign(event_id, moment, event["body"])
                              for secret in [self._webhook_secret, *self._extra_secrets])
        headers = {"content-type": "application/json", "user-agent": "billing-sandbox",
                   "webhook-id": event_id, "webhook-timestamp": str(int(moment.timestamp())),
                   "webhook-signature": signatures}
        return {"event": event, "round": round_, "attempt": in_round, "url": self._webhook_url,
                "headers": headers, "body": event["body"].encode(), "at": moment}

    @staticmethod
    def _post(session: requests.Session, job: dict) -> tuple[int | None, str | None]:
        try:
            response = session.post(job["url"], data=job["body"], headers=job["headers"],
                                    timeout=DELIVERY_TIMEOUT, allow_redirects=False)
            response.close()
            return response.status_code, None
        except requests.RequestException as exc:
            return None, type(exc).__name__  # never str(exc): it may carry the URL's query secrets

    def _record_attempt(self, job: dict, status_code: int | None, error: str | None) -> None:
        event = job["event"]
        if self._events.get(event["id"]) is not event:
            return  # reset while in flight
        ok = status_code is not None and 200 <= status_code < 300
        event["attempts"].append({"round": job["round"], "attempt": job["attempt"], "at": job["at"],
                                  "url": job["url"], "webhook_id": event["id"],
                                  "status_code": status_code, "error": error, "ok": ok})
        if event["round"] != job["round"]:
            return  # a resend started meanwhile; that round decides the status
        if ok:
            event["status"] = "delivered"
        elif job["attempt"] <= len(self._retry_schedule):
            delay = float(self._retry_schedule[job["attempt"] - 1])
            self._enqueue(event["id"], job["round"], delay)
        else:
            event["status"] = "failed"
