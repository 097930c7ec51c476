"""``/v1/jobs``: submit, list, status, cancel, delete, preview, bundle."""
from __future__ import annotations

import os

from fastapi import APIRouter, Query, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse

from .. import schemas
from ..errors import ApiError
from ..store import NewJob
from ..state import Service
from .views import error_responses, job_or_404, job_view

router = APIRouter(tags=["jobs"])

_PNG = {200: {"content": {"image/png": {}}, "description": "PNG, RGB, sRGB"}}
_ZIP = {200: {"content": {"application/zip": {}}, "description": "the bundle directory as a zip (docs/bundle.md)"}}


def new_job(source, settings: schemas.JobSettings, service, location: tuple = ("body", "source")) -> NewJob:
    """A submission's source and settings as a job to queue. Its generator
    must be one the service allows (a 422 like any invalid field, at
    ``location``, otherwise); an image source must name an existing upload."""
    if service.generators.resolve(source.generator) is None:
        raise RequestValidationError([{"loc": (*location, "generator"), "type": "value_error",
                                       "msg": service.generators.refusal(source.generator)}])
    upload_id = None
    if isinstance(source, schemas.ImageSource):
        if service.store.get_upload(source.upload_id) is None:
            raise ApiError(422, "unknown_upload", f"upload {source.upload_id!r} does not exist; POST the image to "
                                                  "/v1/uploads and use the id it returns")
        upload_id = source.upload_id
    return NewJob(kind=source.kind, source=source.model_dump(), settings=settings.model_dump(), upload_id=upload_id)


@router.post("/v1/jobs", status_code=201, response_model=schemas.Job, responses=error_responses(400, 413),
             summary="Submit a job: a generator sample by spec and seed, or an uploaded image")
def submit_job(request: schemas.JobRequest, service: Service, response: Response) -> schemas.Job:
    _, (job,) = service.store.add_jobs([new_job(request.source, request.settings, service)])
    service.scheduler.wake()
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return job_view(job, service)


@router.get("/v1/jobs", response_model=schemas.JobList, responses=error_responses(),
            summary="List jobs, newest first")
def list_jobs(service: Service, state: schemas.JobState | None = None,
              limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0, le=10 ** 9)) -> schemas.JobList:
    records = service.store.list_jobs(state.value if state else None, limit, offset)
    return schemas.JobList(jobs=[job_view(job, service) for job in records])


@router.get("/v1/jobs/{job_id}", response_model=schemas.Job, responses=error_responses(404),
            summary="A job's state and progress (stage, step, fraction, ETA, preview)")
def get_job(job_id: str, service: Service) -> schemas.Job:
    return job_view(job_or_404(service, job_id), service)


@router.post("/v1/jobs/{job_id}/cancel", response_model=schemas.Job, responses=error_responses(404),
             summary="Cancel a job: a queued one at once, a running one within seconds")
def cancel_job(job_id: str, service: Service) -> schemas.Job:
    job_or_404(service, job_id)
    job = service.store.request_cancel(job_id)
    if job is None:
        job_or_404(service, job_id)  # deleted meanwhile: 404
    service.scheduler.wake()
    return job_view(job, service)


@router.delete("/v1/jobs/{job_id}", status_code=204, response_class=Response, responses=error_responses(404, 409),
               summary="Delete a job that is not running, with its files")
def delete_job(job_id: str, service: Service) -> Response:
    outcome = service.store.delete_job(job_id)
    if outcome == "missing":
        job_or_404(service, job_id)
    if outcome == "running":
        raise ApiError(409, "job_running", f"job {job_id} is running; cancel it first "
                                           f"(POST /v1/jobs/{job_id}/cancel), then delete it")
    service.data_dir.remove_job(job_id)
    return Response(status_code=204)


@router.get("/v1/jobs/{job_id}/preview.png", response_class=Response, responses={**_PNG, **error_responses(404)},
            summary="A small render of the current estimate (running jobs) or the final re-render")
def get_preview(job_id: str, service: Service) -> Response:
    job = job_or_404(service, job_id)
    try:
        content = service.data_dir.preview(job.id).read_bytes()
    except FileNotFoundError:
        raise ApiError(404, "no_preview", f"job {job_id} has no preview yet (state {job.state}); one appears a few "
                                          "seconds into the fit") from None
    return Response(content, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get("/v1/jobs/{job_id}/bundle.zip", response_class=Response,
            responses={**_ZIP, **error_responses(404, 409)}, summary="Download the finished asset bundle as a zip")
def download_bundle(job_id: str, service: Service) -> Response:
    job = job_or_404(service, job_id)
    if job.state != "succeeded":
        if job.state in ("queued", "running"):
            message = f"job {job_id} is {job.state}; poll GET /v1/jobs/{job_id} until its state is succeeded"
        else:
            message = f"job {job_id} {job.state} ({job.error_message or 'no reason recorded'}); it has no bundle"
        raise ApiError(409, "bundle_not_ready", message)
    try:
        handle = open(service.data_dir.bundle_zip(job.id), "rb")
    except FileNotFoundError:
        raise ApiError(404, "bundle_missing", f"job {job_id} succeeded but its bundle.zip is missing from the "
                                              "data directory (removed by hand?); submit the job again") from None
    size = os.fstat(handle.fileno()).st_size

    def chunks():
        with handle:  # the open handle keeps the file readable even if the job is deleted meanwhile
            while chunk := handle.read(1 << 20):
                yield chunk

    return StreamingResponse(chunks(), media_type="application/zip",
                             headers={"Content-Length": str(size),
                                      "Content-Disposition": f'attachment; filename="gan2x-{job.id[:8]}.zip"'})
