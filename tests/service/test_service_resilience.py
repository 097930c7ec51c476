"""The service survives its workers and itself: a killed worker fails its
job with a reason and the queue goes on; a killed service keeps its queue,
its finished bundles, and requeues the job that was running; the token file
and the bind address are guarded."""
from __future__ import annotations

import io
import os
import signal
import stat
import subprocess
import sys
import zipfile

import pytest

from gan2x.export.bundle import validate_bundle

from service_helpers import EXECUTORS, LONG, TINY, finished, process_is_gone, running_with_progress, sample, wait_for_job


def _serve_fails(tmp_path, *args: str) -> str:
    """Runs ``gan2x serve`` expecting it to refuse to start; returns its stderr."""
    command = [sys.executable, "-m", "gan2x.cli", "serve", "--port", "0", "--data-dir", str(tmp_path / "data"),
               *args]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert completed.returncode == 2, completed
    return completed.stderr


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_killed_worker_fails_its_job_with_the_reason_and_the_next_job_runs(start_service, executor):
    service = start_service("--executor", executor)
    client = service.client()
    doomed = client.post("/v1/jobs", json={"source": sample(20), "settings": LONG}).json()
    following = client.post("/v1/jobs", json={"source": sample(21), "settings": TINY}).json()
    doomed = wait_for_job(client, doomed["id"], running_with_progress)
    os.kill(doomed["worker_pid"], signal.SIGKILL)
    doomed = wait_for_job(client, doomed["id"], finished, timeout=15)
    assert doomed["state"] == "failed", doomed
    assert doomed["error"]["code"] == "worker_crashed"
    assert "killed by SIGKILL" in doomed["error"]["message"]
    following = wait_for_job(client, following["id"], finished)
    assert following["state"] == "succeeded", following
    assert client.get("/v1/health").status_code == 200


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_killed_service_keeps_its_queue_and_bundles_and_requeues_the_running_job(start_service, executor, tmp_path):
    service = start_service("--executor", executor)
    client = service.client()
    done = client.post("/v1/jobs", json={"source": sample(30), "settings": TINY}).json()
    assert wait_for_job(client, done["id"], finished)["state"] == "succeeded"
    cut = client.post("/v1/jobs", json={"source": sample(31), "settings": {**TINY, "steps_scale": 0.05}}).json()
    queued = [client.post("/v1/jobs", json={"source": sample(32), "settings": TINY}).json()]
    cut = wait_for_job(client, cut["id"], running_with_progress)

    service.kill(signal.SIGKILL)
    # The worker notices its service is gone (its stdin closes) and exits.
    assert process_is_gone(cut["worker_pid"]), "the worker outlived its killed service"

    service.start()
    client = service.client()
    after = client.get(f"/v1/jobs/{cut['id']}").json()
    assert after["interruptions"] == 1, after
    assert after["state"] in ("queued", "running"), after
    for job in queued:
        assert client.get(f"/v1/jobs/{job['id']}").json()["state"] in ("queued", "running")

    # The bundle finished before the kill is still served, whole.
    archive = client.get(f"/v1/jobs/{done['id']}/bundle.zip")
    assert archive.status_code == 200
    with zipfile.ZipFile(io.BytesIO(archive.content)) as bundle_zip:
        bundle_zip.extractall(tmp_path / "unzipped")
    validate_bundle(next((tmp_path / "unzipped").iterdir()))

    # Then everything runs, the requeued job first (it kept its place).
    results = [wait_for_job(client, job["id"], finished, timeout=180) for job in (cut, *queued)]
    assert [job["state"] for job in results] == ["succeeded"] * 2, results
    starts = [job["started_at"] for job in results]
    assert starts == sorted(starts)
    assert results[0]["interruptions"] == 1


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_service_stopped_cleanly_requeues_its_running_job(start_service, executor):
    service = start_service("--executor", executor)
    client = service.client()
    job = client.post("/v1/jobs", json={"source": sample(40), "settings": LONG}).json()
    job = wait_for_job(client, job["id"], running_with_progress)
    service.kill(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert service.process.returncode in (0, -signal.SIGTERM), service.log()
    assert "Application shutdown complete" in service.log()
    assert process_is_gone(job["worker_pid"])
    service.extra_args = ["--workers", "0"]  # local: nothing runs, so no executor is needed  # look at the queue without running it
    service.start()
    after = service.client().get(f"/v1/jobs/{job['id']}").json()
    assert after["state"] == "queued" and after["interruptions"] == 1 and after["queue_position"] == 1, after


def test_one_service_per_data_directory(start_service):
    service = start_service("--workers", "0")
    stderr = _serve_fails(service.root, "--token-file", str(service.token_file))
    assert "another gan2x serve is using the data directory" in stderr


def test_the_token_file_is_created_owner_only_and_a_loose_one_is_refused(start_service, tmp_path):
    service = start_service("--workers", "0")
    mode = stat.S_IMODE(service.token_file.stat().st_mode)
    assert mode == 0o600
    assert stat.S_IMODE(service.token_file.parent.stat().st_mode) == 0o700
    assert len(service.token) >= 32

    loose = tmp_path / "loose" / "token"
    loose.parent.mkdir()
    loose.write_text("a-long-enough-token-for-the-test\n")
    loose.chmod(0o644)
    stderr = _serve_fails(tmp_path / "other", "--token-file", str(loose))
    assert "chmod 600" in stderr


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "example.org"])
def test_listening_beyond_loopback_without_a_token_is_refused(tmp_path, host):
    stderr = _serve_fails(tmp_path, "--host", host, "--no-token")
    assert "refusing to listen" in stderr and "SSH tunnel" in stderr


def test_a_device_the_fits_cannot_use_is_refused_at_start(tmp_path):
    import torch

    stderr = _serve_fails(tmp_path / "a", "--device", "cuda:99" if torch.cuda.is_available() else "cuda")
    assert "--device cuda" in stderr and ("no CUDA device" in stderr or "only" in stderr)
    assert "unknown device 'warp-drive'" in _serve_fails(tmp_path / "b", "--device", "warp-drive")
