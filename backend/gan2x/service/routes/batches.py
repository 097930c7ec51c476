"""``/v1/batches``: many sources with the same settings, tracked together."""
from __future__ import annotations

from fastapi import APIRouter, Response

from .. import schemas
from ..errors import ApiError
from .jobs import new_job
from ..state import Service
from .views import batch_view, error_responses

router = APIRouter(tags=["batches"])


def _batch_or_404(service, batch_id: str) -> tuple[float, list]:
    created_at = service.store.batch_created_at(batch_id)
    if created_at is None:
        raise ApiError(404, "batch_not_found", f"there is no batch {batch_id!r}")
    return created_at, service.store.batch_jobs(batch_id)


@router.post("/v1/batches", status_code=201, response_model=schemas.Batch, responses=error_responses(400, 413),
             summary="Submit many sources (seeds or uploads) at once; one job each, queued in order")
def submit_batch(request: schemas.BatchRequest, service: Service, response: Response) -> schemas.Batch:
    jobs = [new_job(source, request.settings, service, ("body", "sources", index))
            for index, source in enumerate(request.sources)]
    batch_id, _ = service.store.add_jobs(jobs, batch=True)
    service.scheduler.wake()
    response.headers["Location"] = f"/v1/batches/{batch_id}"
    return batch_view(batch_id, *_batch_or_404(service, batch_id), service)


@router.get("/v1/batches/{batch_id}", response_model=schemas.Batch, responses=error_responses(404),
            summary="A batch's items with their states, and counts per state")
def get_batch(batch_id: str, service: Service) -> schemas.Batch:
    return batch_view(batch_id, *_batch_or_404(service, batch_id), service)


@router.post("/v1/batches/{batch_id}/cancel", response_model=schemas.Batch, responses=error_responses(404),
             summary="Cancel every queued or running item of a batch")
def cancel_batch(batch_id: str, service: Service) -> schemas.Batch:
    _, jobs = _batch_or_404(service, batch_id)
    for job in jobs:
        if job.state in ("queued", "running"):
            service.store.request_cancel(job.id)
    service.scheduler.wake()
    return batch_view(batch_id, *_batch_or_404(service, batch_id), service)


@router.delete("/v1/batches/{batch_id}", status_code=204, response_class=Response,
               responses=error_responses(404, 409), summary="Delete a batch and its jobs (none may be running)")
def delete_batch(batch_id: str, service: Service) -> Response:
    outcome, job_ids = service.store.delete_batch(batch_id)
    if outcome == "missing":
        raise ApiError(404, "batch_not_found", f"there is no batch {batch_id!r}")
    if outcome == "running":
        raise ApiError(409, "batch_running", f"an item of batch {batch_id} is running; cancel the batch first "
                                             f"(POST /v1/batches/{batch_id}/cancel), then delete it")
    for job_id in job_ids:
        service.data_dir.remove_job(job_id)
    return Response(status_code=204)
