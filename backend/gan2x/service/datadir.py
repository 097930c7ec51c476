"""The data directory: what lives where, one service at a time.

    <data dir>/
      jobs.sqlite3            jobs, batches, uploads (store.py); -wal and -shm beside it
      service.lock            held (flock) while a service uses this directory
      service.json            {"url", "host", "port", "pid", "version"} of the running service
      uploads/<id>.<ext>      uploaded images, under names the service chose
      jobs/<id>/bundle/       the finished asset bundle (written atomically by write_bundle)
      jobs/<id>/bundle.zip    the same, zipped (written to a temporary name, then renamed)
      jobs/<id>/preview.png   the latest preview of a running fit (replaced atomically)
      jobs/<id>/worker.log    the worker process's output

Every path is built from ids the service generated and stored; nothing a
client sends becomes part of a path.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory lock; one service per data dir is then up to the user
    fcntl = None


class DataDirBusy(RuntimeError):
    """Another service holds this data directory."""


class DataDir:
    def __init__(self, root: Path):
        self.root = Path(root)

    @property
    def database(self) -> Path:
        return self.root / "jobs.sqlite3"

    @property
    def service_info(self) -> Path:
        return self.root / "service.json"

    @property
    def uploads(self) -> Path:
        return self.root / "uploads"

    def upload_file(self, upload_id: str, extension: str) -> Path:
        return self.uploads / f"{upload_id}.{extension}"

    def job_dir(self, job_id: str) -> Path:
        return self.root / "jobs" / job_id

    def bundle_dir(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "bundle"

    def bundle_zip(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "bundle.zip"

    def preview(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "preview.png"

    def worker_log(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "worker.log"

    def create(self) -> None:
        for path in (self.root, self.uploads, self.root / "jobs"):
            path.mkdir(parents=True, exist_ok=True, mode=0o700)

    def clear_job_outputs(self, job_id: str) -> None:
        """Removes a job's bundle, zip, preview and leftovers of an interrupted
        write (temporary directories and files); keeps its worker log."""
        folder = self.job_dir(job_id)
        if not folder.is_dir():
            return
        for entry in folder.iterdir():
            if entry.name == "worker.log":
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)

    def remove_job(self, job_id: str) -> None:
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    def lock(self) -> "DataDirLock":
        return DataDirLock(self.root / "service.lock")

    def write_service_info(self, info: dict) -> None:
        write_atomically(self.service_info, (json.dumps(info, indent=2) + "\n").encode())

    def remove_service_info(self) -> None:
        self.service_info.unlink(missing_ok=True)


class DataDirLock:
    """An exclusive advisory lock held for the service's lifetime (released by
    the OS when the process dies, even by SIGKILL)."""

    def __init__(self, path: Path):
        self.path = path
        self._handle = None

    def acquire(self) -> None:
        self._handle = open(self.path, "a+")
        if fcntl is None:
            return
        try:
            fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._handle.close()
            self._handle = None
            raise DataDirBusy(f"another gan2x serve is using the data directory {self.path.parent}; stop it, "
                              "or give this one its own --data-dir") from None

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def write_atomically(path: Path, content: bytes) -> None:
    """Writes ``content`` to a temporary file beside ``path`` and renames it
    into place: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=path.name + ".tmp-", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
