"""Defects from a red-team pass (issue 17), one test each:

- a store write that fails (a full disk) never leaves a job ``running`` with
  its worker gone, and a full disk answers 507 in the error shape, not 500;
- SIGTERM and SIGINT stop ``gan2x serve`` with exit status 0 and no stale
  ``service.json``;
- a PNG with less image data than its header declares is 422 ``corrupt_image``;
- a TorchScript module with a non-leaf parameter is a ``gan2x: error:`` line;
- a NaN truncation is refused as "must be a finite number";
- a PNG with a large zTXt chunk is accepted (its text chunks are dropped);
- ``serve --generator NAME=torchscript:PATH`` (or ``python:``) warns at start.

Most run in-process (the app over httpx's ASGI transport, the scheduler and
store directly, failures injected with monkeypatch); the signal test starts
the real service on loopback.
"""
from __future__ import annotations

import asyncio
import errno
import io
import json
import signal
import sqlite3
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Tuple

import httpx
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from gan2x import cli
from gan2x.service import uploads as uploads_module
from gan2x.service.app import create_app
from gan2x.service.config import ServiceConfig
from gan2x.service.datadir import DataDir
from gan2x.service.executors import LocalWorker
from gan2x.service.scheduler import Scheduler, _RunningWorker
from gan2x.service.store import JobStore, NewJob

from service_helpers import ServiceProcess

DISK_FULL = "database or disk is full"


# --- helpers ---------------------------------------------------------------------------------

def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png(width: int, height: int, rows: int | None = None, colour_type: int = 0, interlace: int = 0,
         extra_chunks: bytes = b"") -> bytes:
    """A grey (or RGB, ``colour_type`` 2) 8-bit PNG whose one IDAT holds ``rows`` rows
    (default: all of them, a valid file)."""
    channels = {0: 1, 2: 3}[colour_type]
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, interlace)
    if interlace:
        raw = b""  # Adam7: each pass's rows, in pass order
        for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
                               (0, 1, 1, 2)):
            pass_width = (width - x0 + dx - 1) // dx if width > x0 else 0
            pass_height = (height - y0 + dy - 1) // dy if height > y0 else 0
            if pass_width and pass_height:
                raw += (b"\0" + b"\x80" * (pass_width * channels)) * pass_height
        if rows is not None:
            raw = raw[:rows]
    else:
        raw = (b"\0" + b"\x80" * (width * channels)) * (height if rows is None else rows)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + extra_chunks + _chunk(b"IDAT", zlib.compress(raw, 9))
            + _chunk(b"IEND", b""))


def _noise_png(width: int = 64, height: int = 64) -> bytes:
    pixels = (np.random.default_rng(0).random((height, width, 3)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


class _App:
    """The app in-process (no lifespan: the scheduler does not run), with its token."""

    def __init__(self, tmp_path: Path, **config):
        self.config = ServiceConfig(data_dir=tmp_path / "data", token_file=tmp_path / "token", workers=0, **config)
        self.app = create_app(self.config)
        self.service = self.app.state.service
        self.headers = {"Authorization": f"Bearer {self.config.token_file.read_text().strip()}"}

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
                return await client.request(method, path, headers={**self.headers, **kwargs.pop("headers", {})},
                                            **kwargs)

        return asyncio.run(call())


@pytest.fixture
def app(tmp_path) -> _App:
    return _App(tmp_path)


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code, body
    assert "Traceback" not in response.text
    return body["error"]["message"]


# --- 2: a failed store write never strands a job as running; a full disk is 507 -------------------

def _exited_worker(job_id: str, attempt: int, status: int = 3) -> _RunningWorker:
    process = subprocess.Popen([sys.executable, "-c", f"import sys; sys.exit({status})"], stdin=subprocess.PIPE)
    process.wait(30)
    return _RunningWorker(job_id, attempt, 0, LocalWorker(process))  # the handle the local executor gives


def test_a_job_whose_final_write_failed_is_finished_by_a_later_reap(tmp_path, monkeypatch):
    data_dir = DataDir(tmp_path / "data")
    data_dir.create()
    store = JobStore(data_dir.database)
    scheduler = Scheduler(ServiceConfig(data_dir=data_dir.root, workers=1), store, data_dir, ["cpu"])
    for wanted in ("failed", "cancelled"):
        _, (job,) = store.add_jobs([NewJob("sample", {"seed": 1}, {"preset": "draft"})])
        job = store.claim_next("cpu")
        scheduler._running[0] = _exited_worker(job.id, job.attempt)

        real_finish = store.finish
        failures = []

        def full_disk(*args, **kwargs):
            failures.append(args)
            raise sqlite3.OperationalError(DISK_FULL)

        monkeypatch.setattr(store, "finish", full_disk)
        scheduler._reap()  # the write fails: the job must not be forgotten
        assert failures and store.get_job(job.id).state == "running"
        if wanted == "cancelled":
            store.request_cancel(job.id)
        assert store.delete_job(job.id) == "running"  # still running: DELETE is 409 until a reap completes it
        scheduler._reap()  # the disk is still full: still retried, not dropped
        assert len(failures) == 2

        monkeypatch.setattr(store, "finish", real_finish)  # space again
        scheduler._reap()
        finished = store.get_job(job.id)
        assert finished.state == wanted, finished
        assert finished.error_code == ("worker_crashed" if wanted == "failed" else "cancelled")
        assert scheduler.running_count() == 0
        assert store.delete_job(job.id) == "deleted"


def test_a_claimed_job_whose_failure_could_not_be_written_is_failed_by_a_later_pass(tmp_path, monkeypatch):
    data_dir = DataDir(tmp_path / "data")
    data_dir.create()
    store = JobStore(data_dir.database)
    scheduler = Scheduler(ServiceConfig(data_dir=data_dir.root, workers=1), store, data_dir, ["cpu"])
    _, (refused, waiting) = store.add_jobs([NewJob("sample", {"generator": "not-listed"}, {}),
                                            NewJob("sample", {"generator": "synthetic"}, {})])
    real_finish = store.finish

    def full_disk(*args, **kwargs):
        raise sqlite3.OperationalError(DISK_FULL)

    monkeypatch.setattr(store, "finish", full_disk)
    scheduler._fill_slots()  # claims the first job, cannot write its failure: stops claiming
    assert store.get_job(refused.id).state == "running" and store.get_job(waiting.id).state == "queued"
    scheduler._reap()
    assert store.get_job(refused.id).state == "running"
    monkeypatch.setattr(store, "finish", real_finish)
    scheduler._reap()
    job = store.get_job(refused.id)
    assert job.state == "failed" and job.error_code == "generator_not_allowed", job


def test_a_transaction_cut_by_a_full_disk_leaves_the_connection_usable(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    _, (job,) = store.add_jobs([NewJob("sample", {"seed": 1}, {"preset": "draft"})])
    # SQLite rolls a transaction back itself on SQLITE_FULL; the error must still read as a full disk.
    with pytest.raises(sqlite3.OperationalError, match=DISK_FULL):
        with store._transaction() as db:
            db.execute("ROLLBACK")
            raise sqlite3.OperationalError(DISK_FULL)
    # A failed COMMIT can leave a transaction open on the thread's connection: the next write must still work.
    store._connection().execute("BEGIN")
    assert store.claim_next("cpu").id == job.id
    assert store.finish(job.id, 1, "failed", "fit_failed", "x")


def test_a_full_disk_answers_507_in_the_error_shape(app, monkeypatch):
    # A store write that finds the disk full (SQLite's SQLITE_FULL).
    upload = app.request("POST", "/v1/uploads", content=_noise_png()).json()

    def full_disk(*args, **kwargs):
        raise sqlite3.OperationalError(DISK_FULL)

    monkeypatch.setattr(app.service.store, "delete_upload", full_disk)
    message = _error(app.request("DELETE", f"/v1/uploads/{upload['id']}"), 507, "insufficient_storage")
    assert "disk space" in message
    monkeypatch.undo()
    assert app.request("DELETE", f"/v1/uploads/{upload['id']}").status_code == 204

    # A file write that finds the disk full (ENOSPC).
    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(uploads_module, "write_atomically", no_space)
    _error(app.request("POST", "/v1/uploads", content=_noise_png()), 507, "insufficient_storage")
    monkeypatch.undo()

    monkeypatch.setattr(app.service.store, "add_jobs", full_disk)
    _error(app.request("POST", "/v1/jobs", json={"source": {"kind": "sample"}}), 507, "insufficient_storage")
    monkeypatch.undo()

    # Any other database error is still an internal error, never a traceback.
    def locked(*args, **kwargs):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(app.service.store, "list_jobs", locked)
    _error(app.request("GET", "/v1/jobs"), 500, "internal_error")


# --- 6: SIGTERM and SIGINT stop the service cleanly ----------------------------------------------

@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_service_with_status_0_and_no_service_json(tmp_path, stop_signal):
    service = ServiceProcess(tmp_path / "service", "--workers", "0")
    service.start()
    try:
        info = service.data_dir / "service.json"
        assert json.loads(info.read_text())["pid"] == service.process.pid
        service.kill(stop_signal)
        assert service.process.returncode == 0, service.log()
        assert not info.exists(), service.log()
        assert "Application shutdown complete" in service.log()
    finally:
        service.stop()


# --- 7: a PNG with too little image data is corrupt ------------------------------------------------

def test_a_png_with_less_image_data_than_its_header_declares_is_corrupt(app):
    short = _png(4000, 4000, rows=10)
    assert len(short) < 200
    message = _error(app.request("POST", "/v1/uploads", content=short), 422, "corrupt_image")
    assert "4000" in message and "10" in message
    _error(app.request("POST", "/v1/uploads", content=_png(200, 100, rows=99, colour_type=2)), 422, "corrupt_image")
    full_interlaced = _png(37, 29, interlace=1, colour_type=2)
    _error(app.request("POST", "/v1/uploads", content=_png(37, 29, interlace=1, colour_type=2, rows=900)), 422,
           "corrupt_image")
    for valid in (_png(200, 100), _png(37, 29, colour_type=2), full_interlaced, _noise_png()):
        response = app.request("POST", "/v1/uploads", content=valid)
        assert response.status_code == 201, response.text
    assert list((app.config.data_dir / "uploads").glob("*.tmp-*")) == []


# --- 8a: a TorchScript module with a non-leaf parameter -------------------------------------------

class _NonLeafParameter(nn.Module):
    """Its ``__setstate__`` computes its parameter at load time, so the loaded
    module's parameter is the result of an operation, not a leaf tensor."""

    def __init__(self):
        super().__init__()
        self.z_dim = 8
        self.img_resolution = 16
        self.weight = nn.Parameter(torch.randn(8, 3 * 16 * 16) * 0.1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(z @ self.weight).reshape(-1, 3, 16, 16)

    @torch.jit.export
    def __getstate__(self) -> Tuple[torch.Tensor, bool, int, int]:
        return self.weight, self.training, self.z_dim, self.img_resolution

    @torch.jit.export
    def __setstate__(self, state: Tuple[torch.Tensor, bool, int, int]) -> None:
        self.weight = state[0] * 2.0
        self.training = state[1]
        self.z_dim = state[2]
        self.img_resolution = state[3]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch >= 2.10 deprecates TorchScript; still a format
def test_a_torchscript_module_with_a_non_leaf_parameter_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "non_leaf.pt"
    torch.jit.save(torch.jit.script(_NonLeafParameter()), str(path))
    status = cli.main(["sample", "--generator", f"torchscript:{path}", "--seeds", "0", "--device", "cpu",
                       "--out", str(tmp_path / "grid.png")])
    error = capsys.readouterr().err
    assert status == 2, error
    assert error.startswith("gan2x: error: ") and str(path) in error and "leaf" in error, error
    assert "Traceback" not in error


# --- 8b: a NaN truncation --------------------------------------------------------------------------

def test_a_nan_truncation_is_refused_as_not_a_finite_number(app, tmp_path, capsys):
    for value in ("NaN", "Infinity"):
        body = '{"source": {"kind": "sample", "truncation": %s}}' % value
        response = app.request("POST", "/v1/jobs", content=body, headers={"Content-Type": "application/json"})
        message = _error(response, 422, "invalid_request")
        assert "truncation" in message and "must be a finite number" in message, message
        assert "<=" not in message and "less than" not in message
    body = '{"source": {"kind": "sample"}, "settings": {"steps_scale": NaN}}'
    message = _error(app.request("POST", "/v1/jobs", content=body, headers={"Content-Type": "application/json"}),
                     422, "invalid_request")
    assert "steps_scale" in message and "must be a finite number" in message

    for command in (["sample", "--generator", "synthetic", "--seeds", "0", "--out", str(tmp_path / "x.png")],
                    ["fit", "--out", str(tmp_path / "bundle")]):
        with pytest.raises(SystemExit) as exit_info:
            cli.main([*command, "--truncation", "nan"])
        assert exit_info.value.code == 2
        error = capsys.readouterr().err
        assert "--truncation" in error and "must be a finite number" in error, error


# --- 8c: a PNG with a large zTXt chunk -------------------------------------------------------------

def test_a_png_with_a_large_ztxt_chunk_is_accepted_without_its_text(app):
    text = _chunk(b"zTXt", b"comment\0\0" + zlib.compress(b"x" * (4 << 20), 9))  # 4 MiB of text, 4 KiB packed
    utf8 = _chunk(b"iTXt", b"note\0\0\0\0\0" + "fine".encode())
    content = _png(64, 48, colour_type=2, extra_chunks=text + utf8)
    assert len(content) < 20000
    response = app.request("POST", "/v1/uploads", content=content)
    assert response.status_code == 201, response.text
    upload = response.json()
    assert (upload["format"], upload["width"], upload["height"]) == ("PNG", 64, 48)
    stored = app.config.data_dir / "uploads" / f"{upload['id']}.png"
    assert upload["bytes"] == stored.stat().st_size < len(content)
    with Image.open(stored) as image:  # what the worker will read: no text chunk left to refuse
        image.load()
        assert image.size == (64, 48) and not image.text

    # A colour profile too large to read is refused naming it, not as "not a PNG".
    profile = _chunk(b"iCCP", b"icc\0\0" + zlib.compress(b"\0" * (4 << 20), 9))
    message = _error(app.request("POST", "/v1/uploads", content=_png(64, 48, extra_chunks=profile)), 415,
                     "unsupported_image")
    assert "profile" in message and "not a PNG" not in message


# --- 8e: code-running generators are named at start ------------------------------------------------

def test_serve_warns_that_listed_torchscript_and_python_generators_run_code(tmp_path, monkeypatch, capsys):
    from gan2x.service import server

    started = []
    monkeypatch.setattr(server, "serve", lambda config: started.append(config) or 0)
    module = tmp_path / "models" / "mine.pt"
    status = cli.main(["serve", "--data-dir", str(tmp_path / "data"), "--token-file", str(tmp_path / "token"),
                       "--generator", f"mine=torchscript:{module}", "--generator", "python:my_gans:load",
                       "--generator", "synthetic:faces"])
    assert status == 0 and started
    error = capsys.readouterr().err
    lines = [line for line in error.splitlines() if "warning" in line]
    assert len(lines) == 2, error
    assert str(module) in lines[0] and "trust" in lines[0]
    assert "python:my_gans:load" in lines[1] and "trust" in lines[1]
