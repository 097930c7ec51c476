"""Runs queued jobs in worker processes: ``workers`` at a time, in the order
they were submitted, each worker slot on its own device. The workers are
processes on this machine or Ray tasks on a cluster (``executors``); the
scheduler drives either through the same handle.

One thread in the service process loops every ``POLL_INTERVAL_S`` (or at
once when ``wake()`` is called after a submission or a cancel):

1. reap: a worker that has exited without writing its job's final state
   crashed or was killed; its job is marked ``failed`` with the exit status
   or signal in the message (``cancelled`` if a cancel was pending). The
   worker stays listed until that write succeeds: a write that fails (a
   full disk) is retried on the next pass, never forgotten;
2. cancel: a running job with a cancel request gets SIGTERM, then SIGKILL
   after ``cancel_grace_s``; the process's end releases its memory;
3. fill: free slots take the oldest queued jobs. A job's generator name is
   resolved to its spec through the allow-list here, at start (so a job
   queued under a name the operator has since dropped fails with
   ``generator_not_allowed``), and the worker gets the spec.

Workers are started in their own session, so a Ctrl-C at the service's
terminal reaches the service only, which then requeues what was running
(``stop()``). Their stdin is a pipe from this process: when the service
dies, even by SIGKILL, the pipe closes and the workers exit
(``worker.py``). On the next start ``recover()`` requeues the jobs the dead
service left ``running`` (or marks them ``interrupted``, see ``store.py``).
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .config import ServiceConfig
from .datadir import DataDir
from .executors import LocalExecutor, end_process, worker_arguments
from .generators import GeneratorAllowList
from .store import JobStore

POLL_INTERVAL_S = 0.25
log = logging.getLogger("gan2x.service")


def worker_devices(device: str, workers: int) -> list[str]:
    """The device of each worker slot: ``cuda`` on a machine with k GPUs gives
    slot i ``cuda:(i mod k)``; any other device is shared by every slot."""
    count = max(1, workers)
    if device == "cuda":
        import torch

        gpus = torch.cuda.device_count()
        if gpus > 1:
            return [f"cuda:{slot % gpus}" for slot in range(count)]
    return [device] * count


@dataclass
class _RunningWorker:
    job_id: str
    attempt: int
    slot: int
    process: object
    """The worker's handle (``executors.WorkerHandle``: a local process or a Ray task)."""
    terminate_sent_at: float | None = None


class Scheduler:
    def __init__(self, config: ServiceConfig, store: JobStore, data_dir: DataDir, devices: list[str],
                 generators: GeneratorAllowList | None = None, executor=None):
        self.config = config
        self.executor = executor or LocalExecutor()
        self.generators = generators or GeneratorAllowList()
        self.store = store
        self.data_dir = data_dir
        self.devices = devices
        self._running: dict[int, _RunningWorker] = {}
        self._pending_finishes: list[tuple[str, int, str, str]] = []
        """(job id, attempt, error code, message) of claimed jobs that got no
        worker and whose ``failed`` state could not be written yet."""
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # --- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        self.recover()
        self._thread = threading.Thread(target=self._loop, name="gan2x-scheduler", daemon=True)
        self._thread.start()

    def recover(self) -> None:
        """Jobs left ``running`` by a service that is gone: their workers are
        ended if still alive, their partial outputs removed, and they are
        requeued (or marked interrupted, or cancelled if a cancel was pending)."""
        for job in self.store.running_jobs():
            if job.worker_pid:
                _kill_leftover_worker(job.worker_pid, job.id)
            self.data_dir.clear_job_outputs(job.id)
            state = self.store.interrupt(job.id, None, self.config.max_interruptions,
                                         "the service stopped while the job was running")
            log.warning("job %s was running when the service stopped: now %s", job.id, state)

    def stop(self) -> None:
        """Stops the loop and every worker; their jobs are requeued (``recover``'s rule)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            workers = list(self._running.values())
            self._running.clear()
        for worker in workers:
            _end_process(worker.process, self.config.cancel_grace_s)
            try:
                self.data_dir.clear_job_outputs(worker.job_id)
                state = self.store.interrupt(worker.job_id, worker.attempt, self.config.max_interruptions,
                                             "the service was stopped while the job was running")
            except Exception as error:  # a full disk: the next start's recover() requeues it
                log.error("job %s: could not requeue it as the service stops (%s); the next start will",
                          worker.job_id, error)
                continue
            log.info("job %s stopped with the service: now %s", worker.job_id, state)
        self._retry_pending_finishes()

    def wake(self) -> None:
        self._wake.set()

    def running_count(self) -> int:
        with self._lock:
            return len(self._running)

    # --- the loop -------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._reap()
                self._enforce_cancels()
                self._fill_slots()
            except Exception:  # keep scheduling; the next pass retries
                log.exception("scheduler pass failed")
            self._wake.wait(POLL_INTERVAL_S)
            self._wake.clear()

    def _reap(self) -> None:
        """Writes the final state of each job whose worker exited without
        writing it. A worker leaves the running list only once its job's state
        is written: a store write that fails (a full disk) is retried on the
        next pass, so a job never stays ``running`` with its worker gone."""
        self._retry_pending_finishes()
        with self._lock:
            finished = [(slot, worker) for slot, worker in self._running.items() if worker.process.poll() is not None]
        for slot, worker in finished:
            self._close_pipe(worker)
            try:
                self._finish_exited(worker)
            except Exception as error:  # the store or the disk failed: keep the worker listed, retry next pass
                log.error("job %s: could not record the end of its worker (%s); retrying", worker.job_id, error)
                continue
            with self._lock:
                if self._running.get(slot) is worker:
                    del self._running[slot]

    def _finish_exited(self, worker: _RunningWorker) -> None:
        job = self.store.get_job(worker.job_id)
        if job is None or job.state != "running" or job.attempt != worker.attempt:
            return  # the worker wrote its final state (or the job was requeued/deleted)
        self.data_dir.clear_job_outputs(worker.job_id)
        if job.cancel_requested:
            self.store.finish(worker.job_id, worker.attempt, "cancelled", "cancelled", "cancelled while running")
            log.info("job %s cancelled", worker.job_id)
        else:
            reason = self._crash_reason(worker)
            self.store.finish(worker.job_id, worker.attempt, "failed", "worker_crashed", reason)
            log.warning("job %s failed: %s", worker.job_id, reason)

    def _finish_unstarted(self, job_id: str, attempt: int, code: str, message: str) -> bool:
        """Fails a claimed job that got no worker. When the store write fails,
        the job is kept to be failed by a later pass (``_retry_pending_finishes``),
        cancelled instead if a cancel arrives meanwhile; returns False then."""
        try:
            self.store.finish(job_id, attempt, "failed", code, message)
            return True
        except Exception as error:
            log.error("job %s: could not record that it failed (%s: %s); retrying: %s", job_id, code, message, error)
            self._pending_finishes.append((job_id, attempt, code, message))
            return False

    def _retry_pending_finishes(self) -> None:
        pending, self._pending_finishes = self._pending_finishes, []
        for index, (job_id, attempt, code, message) in enumerate(pending):
            try:
                job = self.store.get_job(job_id)
                if job is not None and job.cancel_requested:
                    self.store.finish(job_id, attempt, "cancelled", "cancelled", "cancelled before it started")
                else:
                    self.store.finish(job_id, attempt, "failed", code, message)
            except Exception as error:
                log.error("job %s: could not record that it failed (%s); retrying", job_id, error)
                self._pending_finishes.extend(pending[index:])
                return

    def _crash_reason(self, worker: _RunningWorker) -> str:
        status = worker.process.returncode
        exit_reason = getattr(worker.process, "exit_reason", None)  # a Ray task's end, when not the worker's
        if exit_reason:
            what = f"the worker was stopped: {exit_reason}"
        elif status < 0:
            try:
                name = signal.Signals(-status).name
            except ValueError:
                name = f"signal {-status}"
            what = f"the worker process was killed by {name}"
            if -status == getattr(signal, "SIGKILL", 9):
                what += " (out of memory, or killed by a person or the system)"
        else:
            what = f"the worker process exited with status {status} before finishing"
        last_line = _last_line(self.data_dir.worker_log(worker.job_id))
        detail = f"; its last words: {last_line!r}" if last_line else ""
        return f"{what}{detail}; the job's worker.log in the service's data directory has its output"

    def _enforce_cancels(self) -> None:
        with self._lock:
            workers = list(self._running.values())
        now = time.monotonic()
        for worker in workers:
            if worker.process.poll() is not None:
                continue
            if worker.terminate_sent_at is None:
                job = self.store.get_job(worker.job_id)
                if job is not None and job.cancel_requested and job.attempt == worker.attempt:
                    worker.process.terminate()
                    worker.terminate_sent_at = now
            elif now - worker.terminate_sent_at > self.config.cancel_grace_s:
                worker.process.kill()

    def _fill_slots(self) -> None:
        while not self._stopping.is_set() and not self._pending_finishes:  # pending: the store is failing
            with self._lock:
                free = [slot for slot in range(self.config.workers) if slot not in self._running]
            if not free:
                return
            slot = free[0]
            job = self.store.claim_next(self.devices[slot])
            if job is None:
                return
            requested = job.source.get("generator", "synthetic")
            spec = self.generators.resolve(requested)
            if spec is None:
                self._finish_unstarted(job.id, job.attempt, "generator_not_allowed",
                                       self.generators.refusal(requested))
                continue
            try:
                process = self._spawn(job.id, job.attempt, self.devices[slot], spec)
            except Exception as error:  # no process (OSError), or the Ray cluster refused the task
                self._finish_unstarted(job.id, job.attempt, "worker_start_failed",
                                       f"could not start a worker ({self.executor.name}): {error}")
                continue
            with self._lock:  # listed first: whatever fails next, the reaper knows this worker
                self._running[slot] = _RunningWorker(job.id, job.attempt, slot, process)
            if not self.executor.records_pid:  # else the worker records its own
                try:
                    self.store.set_worker_pid(job.id, job.attempt, process.pid)
                except Exception as error:  # only for display and for recover(); the worker runs anyway
                    log.error("job %s: could not record its worker's pid %d: %s", job.id, process.pid, error)
            log.info("job %s run %d started (%s, pid %s) on %s", job.id, job.attempt, self.executor.name,
                     process.pid, self.devices[slot])

    def _spawn(self, job_id: str, attempt: int, device: str, generator_spec: str):
        """Starts the job's worker through the executor; returns its handle."""
        self.data_dir.job_dir(job_id).mkdir(parents=True, exist_ok=True)
        threads = self.config.resolved_worker_threads()
        arguments = worker_arguments(self.data_dir.root, job_id, attempt, device, generator_spec, threads,
                                     self.config.worker_nice, self.config.preview_interval_s,
                                     self.config.preview_resolution)
        gpus = self.config.gpus_per_job if device.startswith("cuda") else 0.0
        return self.executor.start(arguments, self.data_dir.worker_log(job_id), cpus=threads, gpus=gpus)

    @staticmethod
    def _close_pipe(worker: _RunningWorker) -> None:
        worker.process.close()


def _end_process(process, grace_s: float) -> None:
    """Ends a worker (a handle, ``executors.end_process``) and closes its pipe."""
    end_process(process, grace_s)
    process.close()


def _kill_leftover_worker(pid: int, job_id: str) -> None:
    """SIGKILL ``pid`` if it is still this job's worker (checked from its
    command line, so a reused pid is left alone; Linux only, elsewhere the
    worker's own stdin watch ends it)."""
    command_line = Path(f"/proc/{pid}/cmdline")
    try:
        words = command_line.read_bytes().split(b"\0")
    except OSError:
        return
    if b"gan2x.service.worker" in words and job_id.encode() in words:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _last_line(path: Path, tail_bytes: int = 2048) -> str | None:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - tail_bytes))
            lines = [line.strip() for line in handle.read().decode("utf-8", "replace").splitlines()]
    except OSError:
        return None
    lines = [line for line in lines if line]
    return lines[-1][:300] if lines else None
