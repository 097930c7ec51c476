"""Jobs, batches and uploads in SQLite: the service's durable state.

One database file in the data directory (``datadir.py``), in WAL mode so the
HTTP server reads while a worker writes progress. ``PRAGMA user_version``
holds ``SCHEMA_VERSION``; a database from a newer version is refused.

Job states: ``queued`` -> ``running`` -> ``succeeded`` | ``failed`` |
``cancelled``; a running job whose run is cut by a service stop goes back to
``queued`` (``interruptions`` + 1), or to ``interrupted`` once it has been
cut more than ``max_interruptions`` times. Each run of a job has an
``attempt`` number; a worker's writes name the attempt and are ignored once
it is no longer the current running one, so a worker left over from a
killed service can never overwrite the state of a later run.

Times are seconds since the epoch (float, UTC). Every method opens its own
short transaction; connections are per thread.
"""
from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    file_name TEXT NOT NULL,
    format TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE batches (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL
);
CREATE TABLE jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    batch_id TEXT REFERENCES batches(id),
    batch_index INTEGER,
    source TEXT NOT NULL,
    settings TEXT NOT NULL,
    upload_id TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    attempt INTEGER NOT NULL DEFAULT 0,
    interruptions INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    worker_pid INTEGER,
    device TEXT,
    stage TEXT,
    step INTEGER NOT NULL DEFAULT 0,
    total_steps INTEGER NOT NULL DEFAULT 0,
    fit_started_at REAL,
    progress_at REAL,
    preview_at REAL,
    error_code TEXT,
    error_message TEXT,
    result TEXT
);
CREATE INDEX jobs_by_state ON jobs(state, seq);
CREATE INDEX jobs_by_batch ON jobs(batch_id, batch_index);
CREATE INDEX jobs_by_upload ON jobs(upload_id);
"""

ACTIVE_STATES = ("queued", "running")


class StoreError(RuntimeError):
    """The database cannot be used; the message says why."""


@dataclass
class UploadRecord:
    id: str
    file_name: str
    """Inside the data directory's uploads/ folder; chosen by the service."""
    format: str
    width: int
    height: int
    bytes: int
    created_at: float


@dataclass
class JobRecord:
    seq: int
    id: str
    kind: str
    state: str
    batch_id: str | None
    batch_index: int | None
    source: dict
    settings: dict
    upload_id: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    attempt: int
    interruptions: int
    cancel_requested: bool
    worker_pid: int | None
    device: str | None
    stage: str | None
    step: int
    total_steps: int
    fit_started_at: float | None
    progress_at: float | None
    preview_at: float | None
    error_code: str | None
    error_message: str | None
    result: dict | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "JobRecord":
        values = dict(row)
        for key in ("source", "settings"):
            values[key] = json.loads(values[key])
        values["result"] = json.loads(values["result"]) if values["result"] else None
        values["cancel_requested"] = bool(values["cancel_requested"])
        return cls(**values)


@dataclass
class NewJob:
    kind: str
    source: dict
    settings: dict
    upload_id: str | None = None


def new_id() -> str:
    return uuid.uuid4().hex


class JobStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._local = threading.local()
        self._initialise()

    # --- connections and schema -------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=15.0, isolation_level=None, check_same_thread=False)
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.execute("PRAGMA foreign_keys = ON")
            self._local.connection = connection
        return connection

    def _transaction(self):
        return _Transaction(self._connection())

    def _initialise(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = self._connection()
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            with self._transaction() as db:
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version == 0:
                    db.executescript_in_transaction(_SCHEMA)
                    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                elif version > SCHEMA_VERSION:
                    raise StoreError(f"{self.path} was written by a newer gan2x (job store schema {version}; "
                                     f"this version knows {SCHEMA_VERSION}): upgrade gan2x, or use another "
                                     "--data-dir")
        except sqlite3.DatabaseError as error:
            raise StoreError(f"{self.path} is not a usable job database ({error}); move it away to start "
                             "afresh (the bundles under jobs/ stay readable by hand)") from None

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    # --- uploads ----------------------------------------------------------------------

    def add_upload(self, upload: UploadRecord) -> None:
        with self._transaction() as db:
            db.execute("INSERT INTO uploads (id, file_name, format, width, height, bytes, created_at) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (upload.id, upload.file_name, upload.format, upload.width, upload.height, upload.bytes,
                        upload.created_at))

    def get_upload(self, upload_id: str) -> UploadRecord | None:
        row = self._connection().execute("SELECT * FROM uploads WHERE id = ?", (upload_id,)).fetchone()
        return UploadRecord(**dict(row)) if row else None

    def delete_upload(self, upload_id: str) -> str:
        """'deleted', 'missing', or 'in_use' (a queued or running job needs it)."""
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM uploads WHERE id = ?", (upload_id,)).fetchone() is None:
                return "missing"
            if db.execute("SELECT 1 FROM jobs WHERE upload_id = ? AND state IN ('queued', 'running') LIMIT 1",
                          (upload_id,)).fetchone():
                return "in_use"
            db.execute("DELETE FROM uploads WHERE id = ?", (upload_id,))
            return "deleted"

    # --- jobs and batches: the API's side ---------------------------------------------

    def add_jobs(self, jobs: list[NewJob], batch: bool = False) -> tuple[str | None, list[JobRecord]]:
        """Queues ``jobs`` in order, in one transaction; with ``batch`` they form
        one batch. Returns (batch id or None, the new records)."""
        now = time.time()
        batch_id = new_id() if batch else None
        ids = []
        with self._transaction() as db:
            if batch_id:
                db.execute("INSERT INTO batches (id, created_at) VALUES (?, ?)", (batch_id, now))
            for index, job in enumerate(jobs):
                job_id = new_id()
                db.execute("INSERT INTO jobs (id, kind, state, batch_id, batch_index, source, settings, upload_id, "
                           "created_at) VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?)",
                           (job_id, job.kind, batch_id, index if batch_id else None, json.dumps(job.source),
                            json.dumps(job.settings), job.upload_id, now))
                ids.append(job_id)
        return batch_id, [self.get_job(job_id) for job_id in ids]

    def get_job(self, job_id: str) -> JobRecord | None:
        row = self._connection().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return JobRecord.from_row(row) if row else None

    def list_jobs(self, state: str | None = None, limit: int = 100, offset: int = 0) -> list[JobRecord]:
        """Newest first."""
        query, parameters = "SELECT * FROM jobs", []
        if state is not None:
            query += " WHERE state = ?"
            parameters.append(state)
        query += " ORDER BY seq DESC LIMIT ? OFFSET ?"
        rows = self._connection().execute(query, (*parameters, limit, offset)).fetchall()
        return [JobRecord.from_row(row) for row in rows]

    def queue_position(self, job: JobRecord) -> int | None:
        """1 for the next job to run; None unless ``job`` is queued."""
        if job.state != "queued":
            return None
        ahead = self._connection().execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND seq <= ?",
                                           (job.seq,)).fetchone()[0]
        return max(1, ahead)  # 0: it was claimed since ``job`` was read; it was next

    def batch_created_at(self, batch_id: str) -> float | None:
        row = self._connection().execute("SELECT created_at FROM batches WHERE id = ?", (batch_id,)).fetchone()
        return row[0] if row else None

    def batch_jobs(self, batch_id: str) -> list[JobRecord]:
        rows = self._connection().execute("SELECT * FROM jobs WHERE batch_id = ? ORDER BY batch_index",
                                          (batch_id,)).fetchall()
        return [JobRecord.from_row(row) for row in rows]

    def request_cancel(self, job_id: str) -> JobRecord | None:
        """A queued job is cancelled at once; a running one is flagged for the
        scheduler to stop; a finished one is left as it is."""
        now = time.time()
        with self._transaction() as db:
            db.execute("UPDATE jobs SET state = 'cancelled', finished_at = ?, stage = 'cancelled', "
                       "error_code = 'cancelled', error_message = 'cancelled while queued' "
                       "WHERE id = ? AND state = 'queued'", (now, job_id))
            db.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND state = 'running'", (job_id,))
        return self.get_job(job_id)

    def delete_job(self, job_id: str) -> str:
        """'deleted', 'missing', or 'running' (cancel it first)."""
        with self._transaction() as db:
            row = db.execute("SELECT state, batch_id FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return "missing"
            if row["state"] == "running":
                return "running"
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            if row["batch_id"] and not db.execute("SELECT 1 FROM jobs WHERE batch_id = ? LIMIT 1",
                                                  (row["batch_id"],)).fetchone():
                db.execute("DELETE FROM batches WHERE id = ?", (row["batch_id"],))
            return "deleted"

    def delete_batch(self, batch_id: str) -> tuple[str, list[str]]:
        """('deleted', its job ids), ('missing', []) or ('running', []) (cancel it first)."""
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM batches WHERE id = ?", (batch_id,)).fetchone() is None:
                return "missing", []
            rows = db.execute("SELECT id, state FROM jobs WHERE batch_id = ?", (batch_id,)).fetchall()
            if any(row["state"] == "running" for row in rows):
                return "running", []
            db.execute("DELETE FROM jobs WHERE batch_id = ?", (batch_id,))
            db.execute("DELETE FROM batches WHERE id = ?", (batch_id,))
            return "deleted", [row["id"] for row in rows]

    # --- the scheduler's side ---------------------------------------------------------

    def claim_next(self, device: str) -> JobRecord | None:
        """Marks the oldest queued job running (a new attempt) and returns it."""
        now = time.time()
        with self._transaction() as db:
            row = db.execute("SELECT id FROM jobs WHERE state = 'queued' ORDER BY seq LIMIT 1").fetchone()
            if row is None:
                return None
            db.execute("UPDATE jobs SET state = 'running', attempt = attempt + 1, started_at = ?, "
                       "finished_at = NULL, stage = 'starting', step = 0, total_steps = 0, fit_started_at = NULL, "
                       "progress_at = ?, preview_at = NULL, device = ?, worker_pid = NULL, error_code = NULL, "
                       "error_message = NULL, result = NULL WHERE id = ?", (now, now, device, row["id"]))
        return self.get_job(row["id"])

    def set_worker_pid(self, job_id: str, attempt: int, pid: int) -> None:
        with self._transaction() as db:
            db.execute("UPDATE jobs SET worker_pid = ? WHERE id = ? AND attempt = ? AND state = 'running'",
                       (pid, job_id, attempt))

    def running_jobs(self) -> list[JobRecord]:
        rows = self._connection().execute("SELECT * FROM jobs WHERE state = 'running' ORDER BY seq").fetchall()
        return [JobRecord.from_row(row) for row in rows]

    def interrupt(self, job_id: str, attempt: int | None, max_interruptions: int, reason: str) -> str | None:
        """The run ``attempt`` (None: whatever run is current) of a running job
        was cut by a service stop: requeue it, or mark it ``interrupted`` after
        too many such cuts, or ``cancelled`` if a cancel was pending. Returns
        the new state, or None if the job was not in that run."""
        now = time.time()
        with self._transaction() as db:
            row = db.execute("SELECT attempt, interruptions, cancel_requested FROM jobs "
                             "WHERE id = ? AND state = 'running'", (job_id,)).fetchone()
            if row is None or (attempt is not None and row["attempt"] != attempt):
                return None
            interruptions = row["interruptions"] + 1
            if row["cancel_requested"]:
                state, code, message = "cancelled", "cancelled", f"cancelled ({reason})"
            elif interruptions > max_interruptions:
                state, code = "interrupted", "interrupted"
                message = (f"{reason}; the job was interrupted {interruptions} times by service stops, so it is "
                           "not retried again: submit it anew if you still want it")
            else:
                state, code, message = "queued", None, None
            db.execute("UPDATE jobs SET state = ?, interruptions = ?, cancel_requested = 0, worker_pid = NULL, "
                       "stage = ?, step = 0, total_steps = 0, fit_started_at = NULL, progress_at = ?, "
                       "preview_at = NULL, finished_at = ?, error_code = ?, error_message = ? WHERE id = ?",
                       (state, interruptions, "requeued after a service stop" if state == "queued" else state, now,
                        None if state == "queued" else now, code, message, job_id))
            return state

    # --- the worker's side (every write names its attempt) ----------------------------

    def report_progress(self, job_id: str, attempt: int, stage: str, step: int, total_steps: int,
                        fit_started_at: float | None = None) -> bool:
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE jobs SET stage = ?, step = ?, total_steps = ?, progress_at = ?, "
                "fit_started_at = COALESCE(?, fit_started_at) WHERE id = ? AND attempt = ? AND state = 'running'",
                (stage, step, total_steps, time.time(), fit_started_at, job_id, attempt))
            return cursor.rowcount == 1

    def report_preview(self, job_id: str, attempt: int) -> None:
        with self._transaction() as db:
            db.execute("UPDATE jobs SET preview_at = ? WHERE id = ? AND attempt = ? AND state = 'running'",
                       (time.time(), job_id, attempt))

    def finish(self, job_id: str, attempt: int, state: str, error_code: str | None = None,
               error_message: str | None = None, result: dict | None = None) -> bool:
        """Ends run ``attempt`` as ``state`` (succeeded, failed or cancelled);
        False if that run is no longer the current running one."""
        assert state in ("succeeded", "failed", "cancelled")
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE jobs SET state = ?, finished_at = ?, stage = ?, error_code = ?, error_message = ?, "
                "result = ?, worker_pid = NULL WHERE id = ? AND attempt = ? AND state = 'running'",
                (state, time.time(), "done" if state == "succeeded" else state, error_code, error_message,
                 json.dumps(_finite(result), allow_nan=False) if result is not None else None, job_id, attempt))
            return cursor.rowcount == 1


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error): the write
    lock is taken up front, so two writers never deadlock mid-transaction.

    A failed write must leave the connection usable for the next one (a full
    disk that is freed later): a transaction left open by a failed ``COMMIT``
    is rolled back, and the original error is never masked by a ``ROLLBACK``
    of a transaction SQLite already rolled back itself (it does on SQLITE_FULL)."""

    def __init__(self, connection: sqlite3.Connection):
        self.connection = connection

    def __enter__(self) -> "_Transaction":
        if self.connection.in_transaction:  # left open by an earlier failure
            self._rollback_quietly()
        self.connection.execute("BEGIN IMMEDIATE")
        return self

    def execute(self, sql: str, parameters: tuple = ()) -> sqlite3.Cursor:
        return self.connection.execute(sql, parameters)

    def executescript_in_transaction(self, script: str) -> None:
        for statement in script.split(";"):
            if statement.strip():
                self.connection.execute(statement)

    def __exit__(self, kind, value, traceback) -> None:
        if kind is not None:
            self._rollback_quietly()
            return
        try:
            self.connection.execute("COMMIT")
        except BaseException:
            self._rollback_quietly()
            raise

    def _rollback_quietly(self) -> None:
        if self.connection.in_transaction:
            try:
                self.connection.execute("ROLLBACK")
            except sqlite3.Error:
                pass


def _finite(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become None."""
    if isinstance(value, dict):
        return {str(key): _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
