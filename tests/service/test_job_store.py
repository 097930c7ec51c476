"""The job store on its own (SQLite, in-process): queue order, the rule for
runs cut by a service stop, and that a stale worker cannot overwrite a later
run."""
from __future__ import annotations

import sqlite3

import pytest

from gan2x.service.store import JobStore, NewJob, StoreError


def _store(tmp_path) -> JobStore:
    return JobStore(tmp_path / "jobs.sqlite3")


def _queue(store: JobStore, count: int) -> list[str]:
    _, records = store.add_jobs([NewJob("sample", {"seed": seed}, {"preset": "draft"}) for seed in range(count)])
    return [record.id for record in records]


def test_jobs_run_in_submission_order_and_report_their_queue_position(tmp_path):
    store = _store(tmp_path)
    first, second, third = _queue(store, 3)
    assert [store.queue_position(store.get_job(job_id)) for job_id in (first, second, third)] == [1, 2, 3]
    assert store.claim_next("cpu").id == first
    assert store.queue_position(store.get_job(third)) == 2
    store.request_cancel(second)
    assert store.claim_next("cpu").id == third
    assert store.claim_next("cpu") is None


def test_a_run_cut_by_service_stops_is_requeued_then_marked_interrupted(tmp_path):
    store = _store(tmp_path)
    (job_id,) = _queue(store, 1)
    for interruption in (1, 2):
        job = store.claim_next("cpu")
        assert job.attempt == interruption
        assert store.interrupt(job_id, None, max_interruptions=2, reason="the service stopped") == "queued"
        job = store.get_job(job_id)
        assert job.state == "queued" and job.interruptions == interruption and job.step == 0
    store.claim_next("cpu")
    assert store.interrupt(job_id, None, max_interruptions=2, reason="the service stopped") == "interrupted"
    job = store.get_job(job_id)
    assert job.state == "interrupted" and job.error_code == "interrupted"
    assert "3 times" in job.error_message and "submit it anew" in job.error_message


def test_a_pending_cancel_wins_over_requeueing(tmp_path):
    store = _store(tmp_path)
    (job_id,) = _queue(store, 1)
    store.claim_next("cpu")
    assert store.request_cancel(job_id).cancel_requested
    assert store.interrupt(job_id, None, max_interruptions=2, reason="the service stopped") == "cancelled"


def test_writes_of_a_superseded_run_are_ignored(tmp_path):
    store = _store(tmp_path)
    (job_id,) = _queue(store, 1)
    stale = store.claim_next("cpu")
    store.interrupt(job_id, stale.attempt, max_interruptions=2, reason="the service stopped")
    current = store.claim_next("cpu")
    assert current.attempt == stale.attempt + 1
    assert not store.report_progress(job_id, stale.attempt, "stage 1: target fit", 5, 10)
    assert not store.finish(job_id, stale.attempt, "succeeded", result={"bundle_bytes": 1})
    assert store.report_progress(job_id, current.attempt, "stage 1: target fit", 3, 10)
    assert store.finish(job_id, current.attempt, "succeeded", result={"bundle_bytes": 1, "psnr": float("nan")})
    job = store.get_job(job_id)
    assert job.state == "succeeded" and job.step == 3 and job.result == {"bundle_bytes": 1, "psnr": None}


def test_a_database_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    JobStore(path).close()
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="newer gan2x"):
        JobStore(path)
