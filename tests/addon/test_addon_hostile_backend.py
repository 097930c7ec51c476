"""A backend that lies (issue 17, defect 1): a hostile service, or something
in the middle of plain-HTTP remote use, answers the job routes with ids that
are paths (``../../../victim``, ``/abs/path``, ``a/b``, NUL, very long ...).

The fake backend here is a tiny ``http.server`` on 127.0.0.1 that answers
health, upload, submit, poll, preview and bundle like ``gan2x serve`` does,
except for the values under test. The job thread (``JobRunner``, bpy-free)
must end with a clear ``protocol`` error, post no bundle, and touch nothing
outside its work folder: a sentinel folder where each traversal points
survives, and the only files written are under the work folder."""
from __future__ import annotations

import http.server
import json
import queue
import threading
import zlib
from pathlib import Path

import pytest

from addon.client import service
from addon.client.jobs import JobRequest, JobRunner, fetch_bundle
from sample_bundles import zip_bundle

GOOD_ID = "0123456789abcdef0123456789abcdef"
REQUEST = JobRequest(source={"kind": "sample", "generator": "synthetic:faces", "seed": 3, "truncation": 1.0})
ITEM = REQUEST.name()  # the folder the runner unpacks into: work/<id>/<ITEM>


def _png(width: int = 4, height: int = 4, colour=(255, 0, 0)) -> bytes:
    """A real RGB PNG, written without PIL or bpy."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    rows = b"".join(b"\x00" + bytes(colour) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


class FakeBackend(http.server.ThreadingHTTPServer):
    """Answers /v1/health, POST /v1/uploads, POST /v1/jobs (``submit``),
    GET /v1/jobs/<anything> (``poll``, else ``submit``), .../cancel,
    .../preview.png (``preview``) and .../bundle.zip (``bundle``); records
    every request path in ``paths``."""

    def __init__(self, submit: dict, poll: dict | None = None, bundle: bytes = b"", preview: bytes | None = None,
                 upload: dict | None = None):
        self.submit, self.poll, self.bundle, self.preview = submit, poll, bundle, preview
        self.upload = upload or {"id": GOOD_ID, "format": "png", "width": 64, "height": 64, "bytes": 10}
        self.paths: list = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _send(handler, status: int, body: bytes, content_type: str = "application/json"):
                handler.send_response(status)
                handler.send_header("Content-Type", content_type)
                handler.send_header("Content-Length", str(len(body)))
                handler.end_headers()
                handler.wfile.write(body)

            def _json(handler, status: int, value):
                handler._send(status, json.dumps(value).encode())

            def do_GET(handler):
                path = handler.path
                server.paths.append(("GET", path))
                if path == "/v1/health":
                    handler._json(200, {"status": "ok", "version": "0.1.0"})
                elif path.endswith("/bundle.zip"):
                    handler._send(200, server.bundle, "application/zip")
                elif path.endswith("/preview.png"):
                    if server.preview is None:
                        handler._json(404, {"error": {"code": "no_preview", "message": "no preview yet"}})
                    else:
                        handler._send(200, server.preview, "image/png")
                elif path.startswith("/v1/jobs/"):
                    answer = server.poll
                    handler._json(200, answer if answer is not None else server.submit)
                else:
                    handler._json(404, {"error": {"code": "not_found", "message": "no route"}})

            def do_POST(handler):
                path = handler.path
                server.paths.append(("POST", path))
                handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
                if path == "/v1/uploads":
                    handler._json(201, server.upload)
                elif path == "/v1/jobs":
                    handler._json(201, server.submit)
                elif path.endswith("/cancel"):
                    handler._json(200, {**server.submit, "state": "cancelled"})
                else:
                    handler._json(404, {"error": {"code": "not_found", "message": "no route"}})

            def log_message(handler, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:{}".format(self.server_address[1])
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()


def job_answer(job_id, state: str = "succeeded", **extra) -> dict:
    return {"id": job_id, "kind": "sample", "state": state, "progress": {
        "stage": "done", "step": 1, "total_steps": 1, "fraction": 1.0, "eta_seconds": None,
        "preview_url": None}, "error": None, "result": None, **extra}


def run_job(url: str, work: Path, request: JobRequest = REQUEST, timeout: float = 30.0) -> list:
    """Runs one JobRunner to its end; returns its events."""
    events: queue.Queue = queue.Queue()
    runner = JobRunner("k" * 32, service.ServiceClient(url, "token"), request, work, events, poll_interval=0.02)
    runner.start()
    runner.join(timeout)
    assert not runner.is_alive(), "the job thread did not end"
    found = []
    while not events.empty():
        found.append(events.get_nowait())
    return found


def snapshot(root: Path) -> dict:
    """Every file and folder under ``root`` with its bytes (None: a folder)."""
    return {path.relative_to(root).as_posix(): (None if path.is_dir() else path.read_bytes())
            for path in sorted(root.rglob("*"))}


@pytest.fixture
def layout(tmp_path, sample_bundle):
    """tmp/x/y/work is the work folder; the sentinels are where the hostile
    ids point: tmp/victim/<ITEM> (``../../../victim``), tmp/x/y/<ITEM>
    (``..``) and tmp/absolute/<ITEM> (an absolute id)."""
    work = tmp_path / "x" / "y" / "work"
    work.mkdir(parents=True)
    sentinels = [tmp_path / "victim" / ITEM, tmp_path / "x" / "y" / ITEM, tmp_path / "absolute" / ITEM]
    for sentinel in sentinels:
        sentinel.mkdir(parents=True)
        (sentinel / "precious.txt").write_text("do not delete")
    bundle = zip_bundle(sample_bundle, tmp_path / "served.zip").read_bytes()
    (tmp_path / "served.zip").unlink()
    return {"root": tmp_path, "work": work, "sentinels": sentinels, "bundle": bundle}


def _outside_work(root: Path, work: Path) -> dict:
    return {name: value for name, value in snapshot(root).items()
            if not (root / name).resolve().is_relative_to(work.resolve())}


HOSTILE_IDS = [
    pytest.param("../../../victim", id="traversal"),
    pytest.param("..", id="dotdot"),
    pytest.param("ABSOLUTE", id="absolute"),
    pytest.param("a/b", id="slash"),
    pytest.param("0123456789abcdef\x000123456789abcdef", id="nul"),
    pytest.param("a" * 5000, id="very-long"),
    pytest.param("0123456789ABCDEF0123456789ABCDEF", id="uppercase"),
    pytest.param("", id="empty"),
    pytest.param(12345, id="not-a-string"),
    pytest.param(None, id="null"),
]


@pytest.mark.parametrize("hostile", HOSTILE_IDS)
@pytest.mark.parametrize("where", ["submit", "poll"])
def test_a_hostile_job_id_touches_nothing_outside_the_work_folder(layout, hostile, where):
    if hostile == "ABSOLUTE":
        hostile = str(layout["root"] / "absolute")
    if where == "submit":  # the submit answer says it is done already
        backend = FakeBackend(job_answer(hostile), bundle=layout["bundle"])
    else:  # a good id at submit, then the poll answers with another
        backend = FakeBackend(job_answer(GOOD_ID, "queued"), poll=job_answer(hostile), bundle=layout["bundle"])
    before = _outside_work(layout["root"], layout["work"])
    try:
        events = run_job(backend.url, layout["work"])
    finally:
        backend.close()
    kinds = [event.kind for event in events]
    assert "bundle" not in kinds and kinds[-1] == "finished"
    errors = [event for event in events if event.kind == "error"]
    assert len(errors) == 1, kinds
    error = errors[0]
    assert error.error_kind == "protocol"
    assert "not a GAN2X" in error.message and "32 hexadecimal digits" in error.message
    assert "\x00" not in error.message and len(error.message) < 1000
    # no job event carries the hostile id to the main thread
    assert all(event.job["id"] == GOOD_ID for event in events if event.kind == "job")
    # the sentinels survive and nothing outside the work folder changed
    for sentinel in layout["sentinels"]:
        assert (sentinel / "precious.txt").read_text() == "do not delete"
    assert _outside_work(layout["root"], layout["work"]) == before
    # and no request went out with the hostile id in its path
    assert all(path.startswith(("/v1/health", "/v1/jobs", "/v1/uploads")) for _, path in backend.paths)
    assert not any(".." in path or "\x00" in path or "%00" in path for _, path in backend.paths)
    assert not any(path.endswith("/bundle.zip") for _, path in backend.paths)


@pytest.mark.parametrize("hostile", ["../../../victim", "a/b", None])
def test_a_hostile_upload_id_is_refused_before_submitting(layout, hostile, tmp_path):
    image = tmp_path / "face.png"
    image.write_bytes(_png(64, 64))
    backend = FakeBackend(job_answer(GOOD_ID), upload={"id": hostile, "format": "png"}, bundle=layout["bundle"])
    try:
        events = run_job(backend.url, layout["work"], JobRequest(image_path=str(image)))
    finally:
        backend.close()
    error = next(event for event in events if event.kind == "error")
    assert error.error_kind == "protocol" and "upload id" in error.message
    assert ("POST", "/v1/jobs") not in backend.paths


@pytest.mark.parametrize("answer, expected", [
    (["not", "a", "job"], "not a job"),
    ({**job_answer(GOOD_ID), "state": "exploded"}, "state"),
    ({**job_answer(GOOD_ID), "progress": {"fraction": "lots"}}, "progress"),
    ({**job_answer(GOOD_ID), "progress": "everything"}, "progress"),
])
def test_a_malformed_job_answer_is_a_clear_protocol_error(layout, answer, expected):
    backend = FakeBackend(answer, bundle=layout["bundle"])
    try:
        events = run_job(backend.url, layout["work"])
    finally:
        backend.close()
    error = next(event for event in events if event.kind == "error")
    assert error.error_kind == "protocol" and expected in error.message, error.message
    assert "bundle" not in [event.kind for event in events]


def test_a_poll_answer_about_another_job_is_refused(layout):
    other = "f" * 32
    backend = FakeBackend(job_answer(GOOD_ID, "queued"), poll=job_answer(other), bundle=layout["bundle"])
    try:
        events = run_job(backend.url, layout["work"])
    finally:
        backend.close()
    error = next(event for event in events if event.kind == "error")
    assert error.error_kind == "protocol" and other in error.message and GOOD_ID in error.message
    assert not (layout["work"] / other).exists()


def test_an_honest_answer_still_downloads_into_the_work_folder(layout):
    backend = FakeBackend(job_answer(GOOD_ID), bundle=layout["bundle"])
    try:
        events = run_job(backend.url, layout["work"])
    finally:
        backend.close()
    bundle_event = next(event for event in events if event.kind == "bundle")
    assert Path(bundle_event.bundle_dir) == layout["work"] / GOOD_ID / ITEM
    assert (Path(bundle_event.bundle_dir) / "manifest.json").is_file()
    assert not [event for event in events if event.kind == "error"]


def test_the_id_pattern_is_the_services():
    store = pytest.importorskip("gan2x.service.store")
    for _ in range(20):
        assert service.ID_PATTERN.fullmatch(store.new_id())
    for bad in ("../x", "a" * 33, GOOD_ID + "\n", GOOD_ID.upper(), "", "g" * 32):
        with pytest.raises(service.ServiceError) as raised:
            service.check_id(bad, "job id", "http://127.0.0.1:1")
        assert raised.value.kind == "protocol"


def test_client_never_puts_a_bad_id_in_a_request(tmp_path):
    client = service.ServiceClient("http://127.0.0.1:9", "token")  # nothing listens: a request would say so
    for call in (lambda: client.job("../x"), lambda: client.cancel_job("a/b"),
                 lambda: client.download_bundle("..", tmp_path / "b.zip"),
                 lambda: client.preview("../../etc", 1000)):
        with pytest.raises(service.ServiceError) as raised:
            call()
        assert raised.value.kind == "protocol"
    assert not (tmp_path / "b.zip").exists()


def test_fetch_bundle_keeps_to_its_root(layout):
    backend = FakeBackend(job_answer(GOOD_ID), bundle=layout["bundle"])
    outside = layout["sentinels"][0]
    try:
        client = service.ServiceClient(backend.url, "token")
        with pytest.raises(service.ServiceError, match="outside"):
            fetch_bundle(client, GOOD_ID, layout["work"] / GOOD_ID / "bundle.zip", outside, root=layout["work"])
    finally:
        backend.close()
    assert (outside / "precious.txt").read_text() == "do not delete"


# --- the live preview's download (the thread's side) ------------------------------------

def _running(fraction: float) -> dict:
    return job_answer(GOOD_ID, "running", progress={
        "stage": "stage 1: exploitation", "step": 1, "total_steps": 4, "fraction": fraction, "eta_seconds": 1.0,
        "preview_url": "/elsewhere/../../not-followed.png"})


class _Sequence(FakeBackend):
    """Polls answer running a few times, then succeeded."""

    def __init__(self, polls: int, **kwargs):
        super().__init__(_running(0.0), **kwargs)
        self.remaining = polls
        self.lock = threading.Lock()

    @property
    def poll(self):
        with self.lock:
            self.remaining -= 1
            return _running(0.5) if self.remaining > 0 else job_answer(GOOD_ID)

    @poll.setter
    def poll(self, value):
        pass


@pytest.mark.parametrize("served, shown", [
    pytest.param(_png(), True, id="png"),
    pytest.param(b"GIF89a" + b"\x00" * 100, False, id="not-png"),
    pytest.param(_png()[:40], False, id="truncated"),
    pytest.param(_png(100_000, 1), False, id="too-wide"),
    pytest.param(b"\x89PNG\r\n\x1a\n" + b"\x00" * (3 << 20), False, id="too-big"),
    pytest.param(None, False, id="none-yet"),
])
def test_the_thread_downloads_previews_into_the_work_folder(layout, served, shown):
    backend = _Sequence(6, preview=served, bundle=layout["bundle"])
    request = JobRequest(source=REQUEST.source)
    events: queue.Queue = queue.Queue()
    runner = JobRunner("k" * 32, service.ServiceClient(backend.url, "token"), request, layout["work"], events,
                       poll_interval=0.02)
    runner.preview_interval = 0.0
    try:
        runner.start()
        runner.join(30)
    finally:
        backend.close()
    found = []
    while not events.empty():
        found.append(events.get_nowait())
    kinds = [event.kind for event in found]
    assert "bundle" in kinds, [event.message for event in found]  # a bad preview never stops the job
    previews = [event for event in found if event.kind == "preview"]
    assert bool(previews) == shown
    # the preview URL from the answer is never followed: the client builds its own
    assert not any("not-followed" in path for _, path in backend.paths)
    if shown:
        assert len(previews) == 1  # the same bytes again are not posted again
        path = Path(previews[0].preview_path)
        assert path == layout["work"] / GOOD_ID / "preview.png" and path.read_bytes() == served
    else:
        assert not (layout["work"] / GOOD_ID / "preview.png").exists()
    assert not list(layout["work"].rglob("*.part"))
