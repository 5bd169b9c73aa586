"""The one "one runner per slot" mechanism the worker's periodic jobs share (integration.worker.periodic)."""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, timezone

import pytest

from integration.worker.periodic import Periodic, interval_slot

T0 = datetime(2026, 3, 1, 12, 0, 7, tzinfo=timezone.utc)


class Now:
    def __init__(self, value: int = 0):
        self.value = value

    def __call__(self) -> int:
        return self.value


def test_interval_slots_are_counted_from_the_epoch_and_keyed_as_stored():
    assert interval_slot("alert", T0, 300) == "alert:2026-03-01T12:00:00Z"
    assert interval_slot("reconcile", T0 + timedelta(minutes=5), 300) == "reconcile:2026-03-01T12:05:00Z"


def test_an_inline_job_runs_each_slot_once_and_a_failed_run_is_tried_again():
    now, ran, claims = Now(), [], []
    outcomes = [RuntimeError("store busy"), None, None]

    def run(slot: int, at: int) -> None:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        ran.append((slot, at))

    job = Periodic("t", now, lambda at: at // 10, run, claim=lambda slot, at: claims.append(slot) or True)
    with pytest.raises(RuntimeError):
        job()
    assert job.handled is None  # a busy store means "try again next second"
    now.value = 1
    job()
    job()  # within the slot: no claim, no run
    now.value = 10
    job()
    assert ran == [(0, 1), (1, 10)] and claims == [0, 0, 1]


def test_a_lost_claim_handles_the_slot_without_running_it():
    ran: list[int] = []
    job = Periodic("t", Now(), lambda at: 0, lambda slot, at: ran.append(slot), claim=lambda slot, at: False)
    job()
    job()
    assert ran == [] and job.handled == 0


def test_nothing_is_due_while_the_slot_function_says_none():
    ran: list[int] = []
    job = Periodic("t", Now(), lambda at: None, lambda slot, at: ran.append(slot))
    job()
    assert ran == [] and job.handled is None


def test_a_threaded_job_has_at_most_one_run_in_flight_and_logs_its_failure(caplog):
    caplog.set_level(logging.ERROR, logger="integration.test")
    now, release, started = Now(), threading.Event(), []

    def run(slot: int, at: int) -> None:
        started.append(slot)
        release.wait(10)
        raise RuntimeError("boom")

    job = Periodic("t", now, lambda at: at, run, claim=lambda slot, at: True, threaded=True,
                   log=logging.getLogger("integration.test"), failed="test run failed")
    job()  # returns while the run is in flight
    now.value = 1
    job()  # a new slot, but the first run is still going: skipped, not queued
    release.set()
    job.wait(10)
    assert started == [0] and job.handled == 0
    assert "test run failed" in caplog.text
    job()
    job.wait(10)
    assert started == [0, 1]
