"""Store records -> response models, and what every router needs: the 404s,
the error responses for OpenAPI. (The service's state as a dependency,
``Service``, is in ``..state``.)"""
from __future__ import annotations

import time
from datetime import datetime, timezone

from .. import schemas
from ..errors import ApiError
from ..state import ServiceState
from ..store import JobRecord

ERROR_DESCRIPTIONS = {
    400: "the body could not be read (not UTF-8 JSON, or cut short)",
    401: "missing or wrong bearer token",
    404: "no such job, batch or upload",
    409: "not possible in the current state (the message says why)",
    413: "body, file or image larger than the service's limits",
    415: "not an image of an accepted format",
    422: "invalid request: a setting out of its range, a wrong type, an unknown field",
}


def error_responses(*statuses: int) -> dict:
    """OpenAPI ``responses`` entries for these error statuses and 401 and 422
    (any parameter may be invalid), all ``ErrorResponse``."""
    return {status: {"model": schemas.ErrorResponse, "description": ERROR_DESCRIPTIONS[status]}
            for status in sorted({401, 422, *statuses})}


def utc(timestamp: float | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, tz=timezone.utc)


def job_or_404(service: ServiceState, job_id: str) -> JobRecord:
    job = service.store.get_job(job_id)
    if job is None:
        raise ApiError(404, "job_not_found", f"there is no job {job_id!r} (deleted, or never submitted here); "
                                             "GET /v1/jobs lists the jobs")
    return job


def job_view(job: JobRecord, service: ServiceState, now: float | None = None) -> schemas.Job:
    now = time.time() if now is None else now
    fraction = min(1.0, job.step / job.total_steps) if job.total_steps else 0.0
    if job.state == "succeeded":
        fraction = 1.0
    eta = None
    if job.state == "running" and job.step > 0 and job.fit_started_at and job.progress_at:
        seconds_per_step = (job.progress_at - job.fit_started_at) / job.step
        eta = max(0.0, seconds_per_step * (job.total_steps - job.step) - (now - job.progress_at))
    preview_url = None
    if (job.preview_at is not None or job.state == "succeeded") and service.data_dir.preview(job.id).is_file():
        preview_url = f"/v1/jobs/{job.id}/preview.png"
    result = None
    if job.state == "succeeded" and job.result is not None:
        result = schemas.JobResult(bundle_url=f"/v1/jobs/{job.id}/bundle.zip",
                                   bundle_bytes=job.result.get("bundle_bytes", 0),
                                   metrics=job.result.get("metrics") or {}, timings=job.result.get("timings") or {})
    error = None
    if job.state in ("failed", "cancelled", "interrupted") and job.error_code:
        error = schemas.JobError(code=job.error_code, message=job.error_message or job.error_code)
    return schemas.Job(
        id=job.id, kind=job.kind, state=job.state, batch_id=job.batch_id, batch_index=job.batch_index,
        source=job.source, settings=schemas.JobSettings(**job.settings), created_at=utc(job.created_at),
        started_at=utc(job.started_at), finished_at=utc(job.finished_at),
        queue_position=service.store.queue_position(job), cancel_requested=job.cancel_requested,
        interruptions=job.interruptions, worker_pid=job.worker_pid if job.state == "running" else None,
        device=job.device,
        progress=schemas.JobProgress(stage=job.stage, step=job.step, total_steps=job.total_steps,
                                     fraction=fraction, eta_seconds=None if eta is None else round(eta, 1),
                                     preview_url=preview_url, updated_at=utc(job.progress_at)),
        error=error, result=result)


def batch_view(batch_id: str, created_at: float, jobs: list[JobRecord], service: ServiceState) -> schemas.Batch:
    now = time.time()
    items = [job_view(job, service, now) for job in jobs]
    counts = {state.value: 0 for state in schemas.JobState}
    for item in items:
        counts[item.state.value] += 1
    active = counts["queued"] + counts["running"] > 0
    done = sum(1.0 if item.state in schemas.FINAL_STATES else item.progress.fraction for item in items)
    return schemas.Batch(id=batch_id, created_at=utc(created_at), state="active" if active else "finished",
                         counts=counts, fraction=done / len(items) if items else 1.0, items=items)
