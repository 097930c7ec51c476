"""Uploads against a real service with small limits (256 KiB, 1 megapixel):
bounded in bytes and pixels, sniffed from the content, stored under a name
the service chose."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

LIMIT_BYTES = int(0.25 * 1024 * 1024)


def _image_bytes(width: int, height: int, image_format: str = "PNG", noise: bool = False) -> bytes:
    rng = np.random.default_rng(0)
    pixels = (rng.random((height, width, 3)) * 255).astype(np.uint8) if noise else \
        np.full((height, width, 3), 128, np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=image_format)
    return buffer.getvalue()


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels: a
    decompression bomb's calling card (its few data bytes would inflate to
    the full size if anyone decoded it)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 4096, 9))
            + chunk(b"IEND", b""))


def _error(response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code, body
    return body["error"]["message"]


def test_a_real_image_is_stored_under_a_name_the_service_chose(queue_only_service):
    client = queue_only_service.client()
    content = _image_bytes(96, 80, "JPEG")
    # The client's content type and file name are ignored: the bytes decide.
    response = client.post("/v1/uploads", content=content,
                           headers={"content-type": "text/plain", "content-disposition": 'attachment; filename="../../x.png"'})
    assert response.status_code == 201, response.text
    upload = response.json()
    assert (upload["format"], upload["width"], upload["height"], upload["bytes"]) == ("JPEG", 96, 80, len(content))
    stored = list((queue_only_service.data_dir / "uploads").iterdir())
    assert [path.name for path in stored] == [f"{upload['id']}.jpg"]
    assert stored[0].read_bytes() == content
    assert client.get(f"/v1/uploads/{upload['id']}").json() == upload
    assert client.delete(f"/v1/uploads/{upload['id']}").status_code == 204
    assert list((queue_only_service.data_dir / "uploads").iterdir()) == []
    assert client.get(f"/v1/uploads/{upload['id']}").status_code == 404


def test_an_oversized_upload_is_refused_with_413_declared_or_streamed(queue_only_service):
    client = queue_only_service.client()
    too_big = _image_bytes(400, 400, "PNG", noise=True)
    assert len(too_big) > LIMIT_BYTES
    message = _error(client.post("/v1/uploads", content=too_big), 413, "payload_too_large")
    assert "0.2 MiB" in message or "256.0 KiB" in message or str(LIMIT_BYTES) in message

    def chunked():  # no Content-Length: the limit is enforced while the body streams in
        for start in range(0, len(too_big), 65536):
            yield too_big[start:start + 65536]

    _error(client.post("/v1/uploads", content=chunked()), 413, "payload_too_large")


def test_what_is_not_an_image_is_refused_whatever_its_content_type(queue_only_service):
    client = queue_only_service.client()
    for content in (b"%PDF-1.4 not an image at all" * 10, b"<svg xmlns='http://www.w3.org/2000/svg'/>",
                    _image_bytes(32, 32, "BMP"), _image_bytes(32, 32, "GIF")):
        message = _error(client.post("/v1/uploads", content=content, headers={"content-type": "image/png"}), 415,
                         "unsupported_image")
        assert "PNG" in message
    _error(client.post("/v1/uploads", content=b""), 422, "empty_upload")


def test_a_decompression_bomb_is_refused_from_its_header_before_decoding(queue_only_service):
    client = queue_only_service.client()
    bomb = _png_claiming(30000, 30000)
    assert len(bomb) < 1000
    message = _error(client.post("/v1/uploads", content=bomb), 413, "image_too_large")
    assert "1000000" in message
    just_over = _png_claiming(1001, 1000)
    assert "1001x1000" in _error(client.post("/v1/uploads", content=just_over), 413, "image_too_large")


def test_truncated_and_tiny_images_are_refused_with_a_message(queue_only_service):
    client = queue_only_service.client()
    whole = _image_bytes(64, 64, "PNG", noise=True)
    message = _error(client.post("/v1/uploads", content=whole[: len(whole) // 2]), 422, "corrupt_image")
    assert "could not be decoded" in message
    assert "at least 16" in _error(client.post("/v1/uploads", content=_image_bytes(8, 8)), 422, "image_too_small")


def test_an_upload_used_by_a_queued_job_cannot_be_deleted(queue_only_service):
    client = queue_only_service.client()
    upload = client.post("/v1/uploads", content=_image_bytes(64, 64)).json()
    job = client.post("/v1/jobs", json={"source": {"kind": "image", "upload_id": upload["id"]}}).json()
    assert job["state"] == "queued" and job["source"]["upload_id"] == upload["id"]
    _error(client.delete(f"/v1/uploads/{upload['id']}"), 409, "upload_in_use")
    assert client.post(f"/v1/jobs/{job['id']}/cancel").json()["state"] == "cancelled"
    assert client.delete(f"/v1/uploads/{upload['id']}").status_code == 204
    assert client.delete(f"/v1/jobs/{job['id']}").status_code == 204
