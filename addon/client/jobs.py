"""One reconstruction job run from a background thread: submit (uploading
the image first for an image source), poll, cancel on request, download and
unpack the bundle. The thread never touches bpy; it reports through a queue
of ``JobEvent`` that the main thread drains (``session.poll``).
"""
from __future__ import annotations

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
    """``kind``: ``job`` (a job status, in ``job``), ``bundle`` (the bundle
    downloaded and unpacked into ``bundle_dir``), ``error`` (the job cannot
    go on; ``message`` and ``error_kind`` say why), ``finished`` (the
    thread ends; always last)."""
    key: str
    kind: str
    job: dict | None = None
    message: str = ""
    error_kind: str = ""
    bundle_dir: str = ""


def slug(text: str, fallback: str = "asset") -> str:
    """A file and datablock name from free text: ``synthetic:faces`` -> ``synthetic_faces``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.") or fallback


def fetch_bundle(client: ServiceClient, job_id: str, zip_path: Path, bundle_dir: Path) -> Path:
    """Downloads a succeeded job's bundle zip to ``zip_path`` and unpacks it
    so that ``bundle_dir`` holds the bundle (replacing an earlier download);
    returns ``bundle_dir``. The folder's name becomes the imported asset's.
    Raises ServiceError or BundleError."""
    client.download_bundle(job_id, Path(zip_path))
    bundle_dir = Path(bundle_dir)
    if bundle_dir.exists():
        shutil.rmtree(bundle_dir)
    return unpack_bundle_zip(zip_path, bundle_dir)


class JobRunner(threading.Thread):
    """Runs one ``JobRequest`` against ``client``; files go under
    ``work_dir/<job id>/``. ``cancel()`` may be called from any thread."""

    def __init__(self, key: str, client: ServiceClient, request: JobRequest, work_dir: Path,
                 events: queue.Queue, poll_interval: float = POLL_INTERVAL_S):
        super().__init__(name="gan2x-job-" + key[:8], daemon=True)
        self.key = key
        self.client = client
        self.request = request
        self.work_dir = Path(work_dir)
        self.events = events
        self.poll_interval = poll_interval
        self.job_id: str | None = None
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
        job = self.client.submit_job(source, self.request.settings)
        self.job_id = job["id"]
        self._post("job", job=job)
        job = self._poll_until_final(job)
        if job["state"] != "succeeded" or self._abandoned.is_set():
            return  # the last "job" event carries the state and the error
        job_dir = self.work_dir / job["id"]
        bundle_dir = fetch_bundle(self.client, job["id"], job_dir / "bundle.zip", job_dir / self.request.name())
        self._post("bundle", job=job, bundle_dir=str(bundle_dir))

    def _poll_until_final(self, job: dict) -> dict:
        cancel_sent = False
        failures = 0
        while job["state"] not in FINAL_STATES:
            self._cancel.wait(self.poll_interval)  # wakes at once on cancel
            if self._abandoned.is_set():
                return job
            try:
                if self._cancel.is_set() and not cancel_sent:
                    job = self.client.cancel_job(job["id"])
                    cancel_sent = True
                else:
                    job = self.client.job(job["id"])
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
        return job
