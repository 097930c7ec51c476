"""The HTTP API of a real ``gan2x serve`` (one worker): access control, the
error shape, validation, a job from submission to a valid bundle, cancel,
batches, image jobs."""
from __future__ import annotations

import io
import re
import time
import zipfile

import httpx
import numpy as np
from PIL import Image

from gan2x.export.bundle import validate_bundle
from gan2x.fit.schedule import PRESETS
from gan2x.generators import KNOWN_SPECS

from service_helpers import LONG, TINY, finished, process_is_gone, running_with_progress, sample, wait_for_job

UNKNOWN_ID = "0123456789abcdef0123456789abcdef"


def _operations(schema: dict):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield method.upper(), path, operation


def _assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["message"], str) and len(body["error"]["message"]) > 10, body
    assert "Traceback" not in response.text
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


def test_health_is_public_and_every_other_endpoint_needs_the_token(service):
    anonymous, wrong = service.client(token=None), service.client(token="not-the-token-at-all")
    health = anonymous.get("/v1/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    schema = anonymous.get("/openapi.json").json()
    public, protected = [], []
    for method, path, operation in _operations(schema):
        (protected if operation.get("security") else public).append((method, path))
    assert public == [("GET", "/v1/health")]
    assert len(protected) >= 14
    for method, path in protected:
        url = re.sub(r"\{[a-z_]+\}", UNKNOWN_ID, path)
        for client, code in ((anonymous, "missing_token"), (wrong, "invalid_token")):
            response = client.request(method, url, json={} if method == "POST" else None)
            error = _assert_error(response, 401, code)
            assert response.headers["www-authenticate"] == "Bearer", (method, path)
            assert "bearer" in error["message"].lower()


def test_capabilities_report_version_device_generators_presets_and_ranges(service):
    body = service.client().get("/v1/capabilities").json()
    assert body["version"] == "0.1.0" and body["device"] == "cpu" and body["workers"] == 1
    assert body["generators"] == list(KNOWN_SPECS)
    assert body["presets"]["draft"]["total_steps"] == PRESETS["draft"].total_steps()
    assert body["settings"]["steps_scale"] == {"minimum": 0.01, "maximum": 4.0, "default": 1.0}
    assert body["settings"]["mesh_resolution"]["minimum"] == 32
    assert body["job_kinds"]["sample"]["available"] is True
    assert body["job_kinds"]["image"]["available"] is True


def test_settings_out_of_range_and_unknown_fields_are_refused_naming_the_field(service):
    client = service.client()
    cases = [
        ({"steps_scale": 5.0}, "steps_scale"),
        ({"steps_scale": 0.0}, "steps_scale"),
        ({"mesh_resolution": 16}, "mesh_resolution"),
        ({"texture_size": 8192}, "texture_size"),
        ({"preset": "ultra"}, "preset"),
        ({"steps_scal": 0.5}, "steps_scal"),
    ]
    for settings, field in cases:
        error = _assert_error(client.post("/v1/jobs", json={"source": sample(1), "settings": settings}), 422,
                              "invalid_request")
        assert field in error["message"], error
        assert any(field in entry["location"] for entry in error["fields"]), error
    for source, field in (({"kind": "sample", "seed": -1}, "seed"),
                          ({"kind": "sample", "generator": "stylegan:/etc/passwd"}, "generator"),
                          ({"kind": "sample", "truncation": 3}, "truncation"),
                          ({"kind": "video"}, "source"),
                          ({"seed": 2}, "kind")):
        error = _assert_error(client.post("/v1/jobs", json={"source": source}), 422, "invalid_request")
        assert field in error["message"], error
    error = _assert_error(client.post("/v1/jobs", json={"source": {"kind": "image", "upload_id": UNKNOWN_ID}}),
                          422, "unknown_upload")
    assert "/v1/uploads" in error["message"]
    _assert_error(client.post("/v1/jobs", content=b"{not json", headers={"content-type": "application/json"}),
                  422, "invalid_request")
    _assert_error(client.post("/v1/batches", json={"sources": []}), 422, "invalid_request")
    _assert_error(client.post("/v1/batches", json={"sources": [sample(seed) for seed in range(257)]}), 422)
    assert client.get("/v1/jobs", params={"state": "queued"}).json()["jobs"] == []  # nothing was queued


def test_oversized_json_bodies_are_refused_before_they_are_read(service):
    client = service.client()
    padding = {"source": sample(1), "settings": TINY, "padding": "x" * (2 * 1024 * 1024)}
    error = _assert_error(client.post("/v1/jobs", json=padding), 413, "payload_too_large")
    assert "1.0 MiB" in error["message"]


def test_unknown_ids_routes_and_methods_answer_in_the_error_shape(service):
    client = service.client()
    for method, path, code in (("GET", f"/v1/jobs/{UNKNOWN_ID}", "job_not_found"),
                               ("GET", "/v1/jobs/../../etc/passwd", None),
                               ("POST", f"/v1/jobs/{UNKNOWN_ID}/cancel", "job_not_found"),
                               ("DELETE", f"/v1/jobs/{UNKNOWN_ID}", "job_not_found"),
                               ("GET", f"/v1/jobs/{UNKNOWN_ID}/preview.png", "job_not_found"),
                               ("GET", f"/v1/jobs/{UNKNOWN_ID}/bundle.zip", "job_not_found"),
                               ("GET", f"/v1/batches/{UNKNOWN_ID}", "batch_not_found"),
                               ("POST", f"/v1/batches/{UNKNOWN_ID}/cancel", "batch_not_found"),
                               ("DELETE", f"/v1/batches/{UNKNOWN_ID}", "batch_not_found"),
                               ("GET", f"/v1/uploads/{UNKNOWN_ID}", "upload_not_found"),
                               ("DELETE", f"/v1/uploads/{UNKNOWN_ID}", "upload_not_found"),
                               ("GET", "/v1/nothing-here", "not_found")):
        _assert_error(client.request(method, path), 404, code)
    _assert_error(client.put("/v1/jobs"), 405, "method_not_allowed")


def test_a_job_reports_progress_and_preview_then_serves_a_valid_bundle(service, tmp_path):
    client = service.client()
    response = client.post("/v1/jobs", json={"source": sample(3), "settings": {**TINY, "steps_scale": 0.1}})
    assert response.status_code == 201, response.text
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["state"] in ("queued", "running") and job["settings"]["steps_scale"] == 0.1
    seen: list[dict] = []
    preview = None
    deadline = time.monotonic() + 180
    while not finished(job):
        job = wait_for_job(client, job["id"], lambda j: True, seen=seen)
        if preview is None and job["state"] == "running" and job["progress"]["preview_url"]:
            preview = client.get(job["progress"]["preview_url"])
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert job["state"] == "succeeded", job
    steps = [s["progress"]["step"] for s in seen if s["state"] == "running"]
    assert steps == sorted(steps)
    total = job["progress"]["total_steps"]
    assert total > 0 and any(0 < step < total for step in steps), steps
    assert any(s["progress"]["eta_seconds"] is not None for s in seen if s["state"] == "running")
    assert any((s["progress"]["stage"] or "").startswith("stage 1: ") for s in seen), seen
    assert job["progress"]["fraction"] == 1.0 and job["error"] is None

    # A preview during the fit: a small PNG of the current estimate.
    assert preview is not None and preview.status_code == 200, "no preview seen while running"
    assert preview.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(preview.content)).size == (64, 64)

    download = client.get(job["result"]["bundle_url"])
    assert download.status_code == 200 and download.headers["content-type"] == "application/zip"
    assert len(download.content) == job["result"]["bundle_bytes"]
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        archive.extractall(tmp_path / "unzipped")
    (folder,) = (tmp_path / "unzipped").iterdir()
    manifest = validate_bundle(folder)
    assert manifest["provenance"]["seed"] == 3 and manifest["provenance"]["generator"] == "synthetic:faces"
    assert job["result"]["metrics"]["rerender_psnr_db"] > 10

    listed = client.get("/v1/jobs").json()["jobs"]
    assert job["id"] in [item["id"] for item in listed]
    assert client.get("/v1/jobs", params={"state": "succeeded", "limit": 1}).json()["jobs"][0]["state"] == "succeeded"

    assert client.delete(f"/v1/jobs/{job['id']}").status_code == 204
    _assert_error(client.get(f"/v1/jobs/{job['id']}"), 404, "job_not_found")
    _assert_error(client.get(f"/v1/jobs/{job['id']}/bundle.zip"), 404)
    assert not (service.data_dir / "jobs" / job["id"]).exists()


def test_cancel_a_queued_job_at_once_and_a_running_one_within_seconds(service):
    client = service.client()
    running = client.post("/v1/jobs", json={"source": sample(4), "settings": LONG}).json()
    queued = client.post("/v1/jobs", json={"source": sample(5), "settings": TINY}).json()
    running = wait_for_job(client, running["id"], running_with_progress)
    assert client.get(f"/v1/jobs/{queued['id']}").json()["queue_position"] == 1
    _assert_error(client.get(f"/v1/jobs/{queued['id']}/bundle.zip"), 409, "bundle_not_ready")
    _assert_error(client.delete(f"/v1/jobs/{running['id']}"), 409, "job_running")

    cancelled = client.post(f"/v1/jobs/{queued['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"

    worker_pid = running["worker_pid"]
    started = time.monotonic()
    answer = client.post(f"/v1/jobs/{running['id']}/cancel").json()
    assert answer["cancel_requested"] is True
    job = wait_for_job(client, running["id"], finished, timeout=15)
    took = time.monotonic() - started
    assert job["state"] == "cancelled" and job["error"]["code"] == "cancelled", job
    assert took < 5, f"cancel took {took:.1f} s"
    assert process_is_gone(worker_pid), "the cancelled worker process is still alive"
    assert client.get(f"/v1/jobs/{queued['id']}").json()["started_at"] is None  # it never ran
    for job_id in (running["id"], queued["id"]):
        assert client.delete(f"/v1/jobs/{job_id}").status_code == 204


def test_a_batch_tracks_each_item_and_cancels_what_is_left(service):
    client = service.client()
    response = client.post("/v1/batches", json={"sources": [sample(7), sample(8, "synthetic:objects")],
                                                 "settings": TINY})
    assert response.status_code == 201, response.text
    batch = response.json()
    assert response.headers["location"] == f"/v1/batches/{batch['id']}"
    assert [item["batch_index"] for item in batch["items"]] == [0, 1]
    assert [item["source"]["seed"] for item in batch["items"]] == [7, 8]
    assert batch["counts"]["queued"] + batch["counts"]["running"] == 2 and batch["state"] == "active"
    deadline = time.monotonic() + 180
    while batch["state"] == "active":
        assert time.monotonic() < deadline, batch
        time.sleep(0.2)
        batch = client.get(f"/v1/batches/{batch['id']}").json()
        assert 0.0 <= batch["fraction"] <= 1.0
    assert batch["counts"]["succeeded"] == 2 and batch["fraction"] == 1.0, batch
    for item in batch["items"]:
        assert client.get(item["result"]["bundle_url"]).status_code == 200
    assert client.delete(f"/v1/batches/{batch['id']}").status_code == 204
    _assert_error(client.get(f"/v1/batches/{batch['id']}"), 404, "batch_not_found")

    # Cancelling a batch: the running item stops, the queued ones never start.
    batch = client.post("/v1/batches", json={"sources": [sample(seed) for seed in (10, 11, 12)],
                                             "settings": LONG}).json()
    wait_for_job(client, batch["items"][0]["id"], running_with_progress)
    batch = client.post(f"/v1/batches/{batch['id']}/cancel").json()
    deadline = time.monotonic() + 15
    while batch["state"] == "active":
        assert time.monotonic() < deadline, batch
        time.sleep(0.1)
        batch = client.get(f"/v1/batches/{batch['id']}").json()
    assert batch["counts"]["cancelled"] == 3, batch
    assert [item["started_at"] is None for item in batch["items"]] == [False, True, True]
    assert client.delete(f"/v1/batches/{batch['id']}").status_code == 204


def test_an_image_job_inverts_and_fits_the_upload_and_a_bad_crop_fails_clearly(service):
    client = service.client()
    assert client.get("/v1/capabilities").json()["job_kinds"]["image"]["available"] is True
    pixels = (np.random.default_rng(0).random((64, 80, 3)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    upload = client.post("/v1/uploads", content=buffer.getvalue()).json()
    job = client.post("/v1/jobs", json={"source": {"kind": "image", "upload_id": upload["id"]},
                                        "settings": TINY}).json()
    assert job["kind"] == "image"
    in_use = client.delete(f"/v1/uploads/{upload['id']}")
    if client.get(f"/v1/jobs/{job['id']}").json()["state"] in ("queued", "running"):
        _assert_error(in_use, 409, "upload_in_use")
    job = wait_for_job(client, job["id"], finished, timeout=120)
    assert job["state"] == "succeeded", job
    assert "inversion_psnr_db" in job["result"]["metrics"]
    # a crop that needs more pixels than the image has (0.5 * 64 = 32 < 64 px of the generator)
    job = client.post("/v1/jobs", json={"source": {"kind": "image", "upload_id": upload["id"], "crop_scale": 0.5},
                                        "settings": TINY}).json()
    job = wait_for_job(client, job["id"], finished, timeout=60)
    assert job["state"] == "failed" and job["error"]["code"] == "invalid_crop"
    assert "needs at least 64 px a side" in job["error"]["message"]
    assert client.delete(f"/v1/uploads/{upload['id']}").status_code == 204
