"""One reconstruction job run from a background thread: submit (uploading
the image first for an image source), poll, download the latest preview of
a running fit, cancel on request, download and unpack the bundle. The
thread never touches bpy; it reports through a queue of ``JobEvent`` that
the main thread drains (``session.poll``).

Everything it writes lies inside its work folder, ``work_dir/<job id>/``:
the job id is checked against the API's id format when it comes back from
the network (``service.check_id``), and every path is resolved and checked
to be inside the work folder before anything is written or removed there
(``inside``).
"""
from __future__ import annotations

import hashlib
import os
import queue
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..bundle.reader import BundleError, unpack_bundle_zip
from .service import FINAL_STATES, ServiceClient, ServiceError, check_compatible

POLL_INTERVAL_S = 0.5
MAX_POLL_FAILURES = 10
"""Consecutive failed polls (about 5 s with no answer) before a job is given up on."""
PREVIEW_INTERVAL_S = 1.0
"""At most one preview download this often (the service renders one every
``--preview-interval`` seconds, 5 by default)."""
MAX_PREVIEW_BYTES = 2 << 20
MAX_PREVIEW_SIDE = 1024
PREVIEW_NAME = "preview.png"


@dataclass
class JobRequest:
    """What to reconstruct: ``source`` as the API takes it (``{"kind": "sample",
    "generator", "seed", "truncation"}``), or ``image_path`` (uploaded first,
    then an image source); ``settings`` as ``JobSettings`` in the API."""
    source: dict | None = None
    image_path: str | None = None
    settings: dict = field(default_factory=dict)

    def label(self) -> str:
        if self.image_path:
            return Path(self.image_path).name
        source = self.source or {}
        return "{} seed {}".format(source.get("generator", "?"), source.get("seed", "?"))

    def name(self) -> str:
        """The asset's name: ``synthetic_faces_seed3``, or the image's stem."""
        if self.image_path:
            return slug(Path(self.image_path).stem, "image")
        source = self.source or {}
        return "{}_seed{}".format(slug(str(source.get("generator", "")), "sample"), source.get("seed", 0))


@dataclass
class JobEvent:
    """``kind``: ``job`` (a job status, in ``job``), ``preview`` (a new
    preview PNG of the running fit at ``preview_path``, replaced in place by
    the next one), ``bundle`` (the bundle downloaded and unpacked into
    ``bundle_dir``), ``error`` (the job cannot go on; ``message`` and
    ``error_kind`` say why), ``finished`` (the thread ends; always last)."""
    key: str
    kind: str
    job: dict | None = None
    message: str = ""
    error_kind: str = ""
    bundle_dir: str = ""
    preview_path: str = ""


def slug(text: str, fallback: str = "asset") -> str:
    """A file and datablock name from free text: ``synthetic:faces`` -> ``synthetic_faces``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.") or fallback


def inside(root: Path, *parts) -> Path:
    """``root/parts...`` resolved (an absolute part replaces what is before
    it, as in ``Path.joinpath``), if that is strictly inside ``root``, resolved
    too (so a symbolic link out of it does not count); otherwise raises
    ServiceError (``protocol``). Guards every path built from a network answer."""
    base = Path(root).resolve()
    try:
        path = base.joinpath(*parts).resolve()
    except (OSError, ValueError) as error:  # a NUL, a name too long, a link loop
        raise ServiceError("refusing the path {!r} under {} ({})".format(
            "/".join(map(str, parts))[:80], base, error), "protocol") from None
    if path == base or not path.is_relative_to(base):
        raise ServiceError("refusing to write {} outside the folder {}".format(path, base), "protocol")
    return path


def fetch_bundle(client: ServiceClient, job_id: str, zip_path: Path, bundle_dir: Path,
                 root: Path | None = None) -> Path:
    """Downloads a succeeded job's bundle zip to ``zip_path`` and unpacks it
    so that ``bundle_dir`` holds the bundle (replacing an earlier download);
    returns ``bundle_dir``. The folder's name becomes the imported asset's.
    With ``root``, both paths must lie inside it (``inside``), checked before
    anything is written or removed. Raises ServiceError or BundleError."""
    zip_path, bundle_dir = Path(zip_path), Path(bundle_dir)
    if root is not None:
        zip_path, bundle_dir = inside(root, zip_path), inside(root, bundle_dir)
    client.download_bundle(job_id, zip_path)
    if bundle_dir.is_symlink():
        bundle_dir.unlink()  # never follow it
    elif bundle_dir.exists():
        shutil.rmtree(bundle_dir)
    return unpack_bundle_zip(zip_path, bundle_dir)


class JobRunner(threading.Thread):
    """Runs one ``JobRequest`` against ``client``; files go under
    ``work_dir/<job id>/`` (the bundle's zip and folder, ``preview.png``) and
    nowhere else. ``cancel()`` may be called from any thread."""

    def __init__(self, key: str, client: ServiceClient, request: JobRequest, work_dir: Path,
                 events: queue.Queue, poll_interval: float = POLL_INTERVAL_S):
        super().__init__(name="gan2x-job-" + key[:8], daemon=True)
        self.key = key
        self.client = client
        self.request = request
        self.work_dir = Path(work_dir)
        self.events = events
        self.poll_interval = poll_interval
        self.preview_interval = PREVIEW_INTERVAL_S
        self.job_id: str | None = None
        self.preview_problem = ""
        """Why the last preview was not taken (none yet, not a PNG, ...); previews never stop a job."""
        self._preview_at = float("-inf")
        self._preview_digest = b""
        self._cancel = threading.Event()
        self._abandoned = threading.Event()

    def cancel(self) -> None:
        """Cancels the job on the backend (the thread then reports its end)."""
        self._cancel.set()

    def abandon(self) -> None:
        """Stops following the job (the add-on is going away); the job itself
        goes on on the backend. The thread ends within a poll interval."""
        self._abandoned.set()
        self._cancel.set()  # wakes the wait

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def _post(self, kind: str, **values) -> None:
        if not self._abandoned.is_set():
            self.events.put(JobEvent(self.key, kind, **values))

    def run(self) -> None:
        try:
            self._run()
        except ServiceError as error:
            self._post("error", message=str(error), error_kind=error.kind)
        except BundleError as error:
            self._post("error", message="the downloaded bundle is unusable: {}".format(error),
                       error_kind="bundle")
        except Exception as error:  # a bug: say so rather than leave the job hanging
            self._post("error", message="unexpected {}: {}".format(type(error).__name__, error),
                       error_kind="internal")
        finally:
            self._post("finished")

    def _run(self) -> None:
        check_compatible(str(self.client.health()["version"]), self.client.url)
        if self._cancel.is_set():
            self._post("error", message="cancelled before it was submitted", error_kind="cancelled")
            return
        source = self.request.source
        if self.request.image_path:
            upload = self.client.upload_image(self.request.image_path)
            source = {"kind": "image", "upload_id": upload["id"]}
        job = self.client.submit_job(source, self.request.settings)  # its id is checked (service.check_job)
        self.job_id = job["id"]
        inside(self.work_dir, self.job_id)  # the job's folder, before anything is written there
        self._post("job", job=job)
        job = self._poll_until_final(job)
        if job["state"] != "succeeded" or self._abandoned.is_set():
            return  # the last "job" event carries the state and the error
        bundle_dir = fetch_bundle(self.client, self.job_id, self.work_dir / self.job_id / "bundle.zip",
                                  self.work_dir / self.job_id / self.request.name(), root=self.work_dir)
        self._post("bundle", job=job, bundle_dir=str(bundle_dir))

    def _fetch_preview(self, job: dict) -> None:
        """Downloads the running fit's latest preview (at most once per
        ``preview_interval``) to ``work_dir/<job id>/preview.png`` (a
        ``.part`` file renamed over it) and posts a ``preview`` event when its
        bytes changed. A missing, oversized or non-PNG preview is skipped:
        it never stops the job."""
        if job["state"] != "running" or not (job.get("progress") or {}).get("preview_url"):
            return
        now = time.monotonic()
        if now - self._preview_at < self.preview_interval or self._cancel.is_set():
            return
        self._preview_at = now
        try:
            data = self.client.preview(self.job_id, MAX_PREVIEW_BYTES, MAX_PREVIEW_SIDE)
        except ServiceError as error:
            self.preview_problem = str(error)
            return
        digest = hashlib.sha256(data).digest()
        if digest == self._preview_digest:
            return
        path = inside(self.work_dir, self.job_id, PREVIEW_NAME)
        partial = path.with_name(path.name + ".part")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(data)
            os.replace(partial, path)
        except OSError as error:
            partial.unlink(missing_ok=True)
            self.preview_problem = "cannot write {}: {}".format(path, error)
            return
        self._preview_digest = digest
        self.preview_problem = ""
        self._post("preview", job=job, preview_path=str(path))

    def _poll_until_final(self, job: dict) -> dict:
        cancel_sent = False
        failures = 0
        while job["state"] not in FINAL_STATES:
            self._cancel.wait(self.poll_interval)  # wakes at once on cancel
            if self._abandoned.is_set():
                return job
            try:
                if self._cancel.is_set() and not cancel_sent:
                    job = self.client.cancel_job(self.job_id)  # the answer must be about this job
                    cancel_sent = True
                else:
                    job = self.client.job(self.job_id)
                failures = 0
            except ServiceError as error:
                failures += 1
                if error.kind not in ("unreachable",) or failures >= MAX_POLL_FAILURES:
                    if error.kind == "unreachable":
                        raise ServiceError("lost contact with the backend while job {} was {} ({}); it may "
                                           "still run there".format(job["id"], job["state"], error),
                                           error.kind) from None
                    raise
                time.sleep(self.poll_interval)
                continue
            self._post("job", job=job)
            self._fetch_preview(job)
        return job
