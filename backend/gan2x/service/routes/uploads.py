"""``/v1/uploads``: an image for an image job, sent as the raw request body."""
from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.requests import ClientDisconnect
from starlette.concurrency import run_in_threadpool

from .. import schemas
from ..errors import ApiError
from ..store import UploadRecord
from ..uploads import store_upload
from ..state import Service
from .views import error_responses, utc

router = APIRouter(tags=["uploads"])

_BODY = {"requestBody": {"required": True, "description": "the image file's bytes (PNG, JPEG or WEBP); the content "
                                                          "type is not trusted: the content is sniffed",
                         "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                                     "image/*": {"schema": {"type": "string", "format": "binary"}}}}}


def _view(record: UploadRecord) -> schemas.Upload:
    return schemas.Upload(id=record.id, format=record.format, width=record.width, height=record.height,
                          bytes=record.bytes, created_at=utc(record.created_at))


def _upload_or_404(service, upload_id: str) -> UploadRecord:
    record = service.store.get_upload(upload_id)
    if record is None:
        raise ApiError(404, "upload_not_found", f"there is no upload {upload_id!r}; POST /v1/uploads first")
    return record


@router.post("/v1/uploads", status_code=201, response_model=schemas.Upload, openapi_extra=_BODY,
             responses=error_responses(400, 413, 415),
             summary="Upload an image (raw body, bounded in bytes and pixels, sniffed)")
async def create_upload(request: Request, service: Service) -> schemas.Upload:
    try:
        chunks = [chunk async for chunk in request.stream()]  # RequestBodyLimit bounds the total
    except ClientDisconnect:
        raise ApiError(400, "upload_incomplete", "the connection closed before the whole image arrived; "
                                                 "send it again") from None
    content = b"".join(chunks)
    record = await run_in_threadpool(store_upload, content, service.config.uploads, service.data_dir,
                                     service.store)
    return _view(record)


@router.get("/v1/uploads/{upload_id}", response_model=schemas.Upload, responses=error_responses(404))
def get_upload(upload_id: str, service: Service) -> schemas.Upload:
    return _view(_upload_or_404(service, upload_id))


@router.delete("/v1/uploads/{upload_id}", status_code=204, response_class=Response,
               responses=error_responses(404, 409))
def delete_upload(upload_id: str, service: Service) -> Response:
    record = _upload_or_404(service, upload_id)
    outcome = service.store.delete_upload(upload_id)
    if outcome == "in_use":
        raise ApiError(409, "upload_in_use", "a queued or running job uses this upload; cancel or delete it first")
    (service.data_dir.uploads / record.file_name).unlink(missing_ok=True)
    return Response(status_code=204)
