"""Where a job's worker runs: a process on this machine (``local``, the
default) or a Ray task on a cluster (``ray`` / ``ray:ADDRESS``,
docs/scale.md). The scheduler does not care which: it starts a worker with
``Executor.start`` and then drives the handle it gets back as it would a
process (``WorkerHandle``: ``poll``, ``terminate``, ``kill``, ``wait``,
``returncode``, ``pid``, ``close``).

Either way the worker is the same program, ``python -m gan2x.service.worker``
with the same arguments (``worker_arguments``): it reads its job from the
SQLite store in the data directory and writes progress, previews, the
bundle and the final state there, so the store stays the one source of
truth for a job's state. On Ray the worker process is started by a Ray task
on whichever node has the resources (``--cpus-per-job`` CPUs, a fraction
or more of a GPU with ``--gpus-per-job``), so **the data directory must be
on a filesystem every node mounts at the same path**.

Cancel and restart behave as with local workers:

* ``terminate`` is ``ray.cancel(ref)``: Ray raises KeyboardInterrupt in the
  task, which sends the worker SIGTERM (SIGKILL after the grace period);
  ``kill`` is ``ray.cancel(ref, force=True)``: the task's Ray worker process
  is killed, the worker's stdin (a pipe from the task) closes and the
  worker exits at once (``--watch-stdin``);
* a service that dies takes its Ray tasks with it (Ray ends the tasks of a
  driver that is gone; on a local instance the whole instance shares the
  service's fate), and ``Scheduler.recover`` requeues the jobs on the next
  start, as with local workers. Ray never retries a job's task by itself
  (``max_retries=0``): the store's restart rules decide.

The worker records its own process id in the store (``--record-pid``), so
``worker_pid`` means the fitting process on either executor (on a remote
node it is that node's pid).
"""
from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

RAY_POLL_S = 0.1
"""How often a Ray task checks its worker process (and a pending cancel)."""


def parse_executor(text: str) -> tuple[str, str | None]:
    """``local`` -> ("local", None); ``ray`` -> ("ray", None): a Ray instance
    started on this machine; ``ray:auto`` or ``ray:HOST:PORT`` -> ("ray",
    address). Raises ValueError for anything else."""
    text = (text or "local").strip()
    if text == "local":
        return "local", None
    kind, _, address = text.partition(":")
    if kind != "ray":
        raise ValueError(f"unknown executor {text!r}: use local, ray (a Ray instance on this machine) or "
                         "ray:ADDRESS (ray:auto, ray:HOST:6379)")
    return "ray", address.strip() or None


def worker_arguments(data_dir: Path, job_id: str, attempt: int, device: str, generator_spec: str, threads: int,
                     nice: int, preview_interval_s: float, preview_resolution: int) -> list[str]:
    """The worker's command-line arguments (after ``python -m gan2x.service.worker``)."""
    return ["--data-dir", str(data_dir), "--job-id", job_id, "--attempt", str(attempt), "--device", device,
            "--generator", generator_spec, "--threads", str(threads), "--nice", str(nice),
            "--preview-interval", str(preview_interval_s), "--preview-resolution", str(preview_resolution),
            "--watch-stdin"]


def worker_command(arguments: list[str]) -> list[str]:
    return [sys.executable, "-m", "gan2x.service.worker", *arguments]


class LocalWorker:
    """A worker process on this machine (``subprocess.Popen``), as a ``WorkerHandle``."""

    def __init__(self, process: subprocess.Popen):
        self.process = process

    @property
    def pid(self) -> int | None:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def poll(self) -> int | None:
        return self.process.poll()

    def terminate(self) -> None:
        self.process.terminate()

    def kill(self) -> None:
        self.process.kill()

    def wait(self, timeout: float | None = None) -> int:
        return self.process.wait(timeout)

    def close(self) -> None:
        """Closes the worker's stdin pipe (it then exits: ``--watch-stdin``)."""
        try:
            self.process.stdin.close()
        except OSError:
            pass


class LocalExecutor:
    """Workers as child processes of the service, in their own session (a
    Ctrl-C at the service's terminal reaches the service only)."""

    name = "local"
    records_pid = False
    """The scheduler records the pid of the process it started."""

    def start(self, arguments: list[str], log_path: Path, cpus: int, gpus: float) -> LocalWorker:
        with open(log_path, "ab") as log_file:
            return LocalWorker(subprocess.Popen(worker_command(arguments), stdin=subprocess.PIPE, stdout=log_file,
                                                stderr=subprocess.STDOUT, close_fds=True, start_new_session=True))

    def describe(self) -> str:
        return "local worker processes"

    def shutdown(self) -> None:
        pass


def end_process(process, grace_s: float) -> None:
    """Ends ``process`` (a ``subprocess.Popen`` or a ``WorkerHandle``):
    terminate, then kill if it is still there after ``grace_s`` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_worker_task(arguments: list[str], log_path: str, grace_s: float) -> dict:
    """The body of a job's Ray task: starts the worker process on this node
    with a pipe on its stdin, waits for it, and returns its exit status and
    the node. A cancel (KeyboardInterrupt from ``ray.cancel``) ends the
    worker (SIGTERM, SIGKILL after ``grace_s``) and is re-raised."""
    import socket

    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(worker_command(arguments), stdin=subprocess.PIPE, stdout=log_file,
                                   stderr=subprocess.STDOUT, close_fds=True, start_new_session=True)
    try:
        while process.poll() is None:  # a short sleep, not wait(): the cancel's exception lands between sleeps
            time.sleep(RAY_POLL_S)
    except BaseException:
        end_process(process, grace_s)
        raise
    finally:
        try:
            process.stdin.close()
        except OSError:
            pass
    return {"returncode": process.returncode, "node": socket.gethostname()}


@dataclass
class _Exit:
    returncode: int
    reason: str | None = None


class RayWorker:
    """A job's worker running as a Ray task, as a ``WorkerHandle``. The pid
    is the one the worker recorded in the store (None here)."""

    pid = None

    def __init__(self, ray, ref):
        self._ray = ray
        self.ref = ref
        self._exit: _Exit | None = None

    @property
    def returncode(self) -> int | None:
        return self._exit.returncode if self._exit is not None else None

    @property
    def exit_reason(self) -> str | None:
        """Why the task ended when it did not end by the worker exiting (a
        cancel, a dead Ray worker or node), for the job's error message."""
        return self._exit.reason if self._exit is not None else None

    def poll(self) -> int | None:
        if self._exit is None:
            ready, _ = self._ray.wait([self.ref], timeout=0)
            if ready:
                self._exit = self._collect()
        return self.returncode

    def _collect(self) -> _Exit:
        exceptions = self._ray.exceptions
        try:
            return _Exit(int(self._ray.get(self.ref)["returncode"]))
        except exceptions.TaskCancelledError:
            return _Exit(-signal.SIGTERM, "its Ray task was cancelled")
        except exceptions.RayError as error:  # the Ray worker or its node died, the task raised
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            return _Exit(-signal.SIGKILL, f"its Ray task ended: {type(error).__name__}: {first_line[:200]}")

    def terminate(self) -> None:
        self._ray.cancel(self.ref, force=False)

    def kill(self) -> None:
        self._ray.cancel(self.ref, force=True)

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("ray task", timeout)
            time.sleep(RAY_POLL_S)
        return self.returncode

    def close(self) -> None:
        pass  # the task holds the worker's stdin; it closes when the task ends


class RayJobExecutor:
    """Workers as Ray tasks (module docstring)."""

    name = "ray"
    records_pid = True
    """The worker records its own pid (``--record-pid``)."""

    def __init__(self, address: str | None, cancel_grace_s: float):
        self.address = address
        self.cancel_grace_s = cancel_grace_s
        # ray.init installs its own SIGTERM/SIGINT handlers in the driver (exit with status 15); the
        # service has its own (a clean stop requeues the running jobs, then ends as the signal says).
        from ..scale.ray_runner import RayCluster  # the one place gan2x imports Ray

        kept = _signal_handlers() if threading.current_thread() is threading.main_thread() else {}
        try:  # a new local instance (no dashboard) for "ray", else the cluster at the address
            self._cluster = RayCluster("local" if address is None else address).__enter__()
        finally:
            for number, handler in kept.items():
                signal.signal(number, handler)
        self._ray = self._cluster._ray
        self._task = self._ray.remote(max_retries=0)(run_worker_task)

    def start(self, arguments: list[str], log_path: Path, cpus: int, gpus: float) -> RayWorker:
        ref = self._task.options(num_cpus=cpus, num_gpus=gpus).remote(
            [*arguments, "--record-pid"], str(log_path), float(self.cancel_grace_s))
        return RayWorker(self._ray, ref)

    def describe(self) -> str:
        resources = self._cluster.info.resources
        return (f"Ray tasks on {self.address or 'a Ray instance on this machine'} "
                f"({resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs)")

    def shutdown(self) -> None:
        """Disconnects; a local instance stops with it, a cluster goes on."""
        self._cluster.__exit__(None, None, None)


def _signal_handlers() -> dict:
    return {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)
            if signal.getsignal(number) is not None}


def create_executor(text: str, cancel_grace_s: float):
    """The executor ``text`` names (``parse_executor``); connects to Ray for
    ``ray`` executors (``scale.ray_runner.RayUnavailable``, with the install
    hint, without it)."""
    kind, address = parse_executor(text)
    if kind == "local":
        return LocalExecutor()
    return RayJobExecutor(address, cancel_grace_s)
