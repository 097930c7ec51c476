"""Ray, the one module of gan2x that imports it, and only when a batch runs
or the service's Ray executor starts (``service.executors``; Ray is the
optional extra ``gan2x[ray]``: ``import_ray`` says how to install it).

``RayCluster`` connects (``--ray``): ``local`` starts a Ray instance on this
machine (no dashboard) and stops it at the end; ``auto`` joins the cluster
this machine is a node of (``ray start`` ran here); anything else is a
cluster's address. A process already connected to Ray (``ray.init`` called
before, as the tests do) keeps its connection whatever ``--ray`` says.

``RayExecutor`` runs each item as one Ray task (``_run_on_worker`` around
``task.run_item``) holding ``cpus_per_fit`` CPUs and ``gpus_per_fit`` GPUs,
retried by Ray ``max_retries`` times when its worker dies (errors the task
catches come back in its result, never retried by Ray); a small actor
(``StartedBoard``) hears which items have started, for the progress bar's
running count; ``cancel`` stops tasks with ``ray.cancel(force=True)``.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import config
from .items import BatchItem
from .task import BatchJob, ItemResult, run_item

INSTALL_HINT = "pip install 'gan2x[ray]'"
ERROR_MESSAGE_CHARS = 2000


class RayUnavailable(RuntimeError):
    """Ray is not installed, or the cluster cannot be reached; the message says what to do."""


def import_ray():
    """The ``ray`` module, or ``RayUnavailable`` saying how to install it."""
    try:
        import ray
    except ImportError as error:
        raise RayUnavailable(f"this needs Ray, which is not installed here ({error}); install it with "
                             f"{INSTALL_HINT} (on every node of the cluster; docs/scale.md)") from None
    return ray


@dataclass
class ClusterInfo:
    mode: str
    """``local``, ``auto``, the address given, or ``connected`` (already)."""
    address: str = ""
    connected_here: bool = False
    """Whether this batch connected to Ray, and so disconnects at the end (a
    local instance stops with it); False when the process was connected already."""
    start_seconds: float = 0.0
    """``ray.init``'s wall time (a local instance's start, or joining a cluster)."""
    nodes: list = field(default_factory=list)
    """Alive nodes: {"id", "host", "resources"}."""
    resources: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"mode": self.mode, "address": self.address, "connected_here": self.connected_here,
                "start_seconds": round(self.start_seconds, 3), "nodes": self.nodes, "resources": self.resources}


class RayCluster:
    """A context manager: the connection to Ray (module docstring)."""

    def __init__(self, ray: str = config.RAY_DEFAULT, local_cpus: int | None = None):
        if not isinstance(ray, str) or not ray.strip():
            raise ValueError(f"--ray must be {' or '.join(config.RAY_MODES)} or a cluster's address")
        self.mode = ray.strip()
        self.local_cpus = local_cpus
        self.info: ClusterInfo | None = None
        self._ray = None

    def __enter__(self) -> "RayCluster":
        ray = self._ray = import_ray()
        options = {"log_to_driver": False, "logging_level": logging.WARNING}
        started = time.perf_counter()
        if ray.is_initialized():
            info = ClusterInfo(mode="connected")
        elif self.mode == "local":
            ray.init(address="local", num_cpus=self.local_cpus, include_dashboard=False, **options)
            info = ClusterInfo(mode="local", connected_here=True)
        else:
            address = "auto" if self.mode == "auto" else self.mode
            try:
                ray.init(address=address, **options)
            except (ConnectionError, RuntimeError, ValueError) as error:
                raise RayUnavailable(f"cannot join the Ray cluster at --ray {self.mode} ({error}); start one "
                                     "with `ray start --head` (docs/scale.md)") from None
            info = ClusterInfo(mode=self.mode, connected_here=True)
        info.start_seconds = time.perf_counter() - started
        info.address = ray.get_runtime_context().gcs_address
        info.nodes = [{"id": node["NodeID"], "host": node.get("NodeManagerHostname") or node.get("NodeManagerAddress"),
                       "resources": {key: value for key, value in node.get("Resources", {}).items()
                                     if key in ("CPU", "GPU", "memory")}}
                      for node in ray.nodes() if node.get("Alive")]
        info.resources = {key: value for key, value in ray.cluster_resources().items() if key in ("CPU", "GPU")}
        self.info = info
        return self

    def __exit__(self, *exc) -> None:
        if self.info is not None and self.info.connected_here and self._ray is not None:
            self._ray.shutdown()

    def check_fits(self, job: BatchJob) -> None:
        """ValueError when no node has the CPUs and GPUs one task asks for:
        its tasks would wait for ever."""
        need = {"CPU": job.cpus_per_fit, "GPU": job.gpus_per_fit}
        if not any(all(node["resources"].get(key, 0.0) >= amount for key, amount in need.items() if amount > 0)
                   for node in self.info.nodes):
            have = ", ".join(f"{node['host']}: {node['resources'].get('CPU', 0):g} CPU "
                             f"{node['resources'].get('GPU', 0):g} GPU" for node in self.info.nodes)
            raise ValueError(f"no node of the Ray cluster has {job.cpus_per_fit:g} CPUs and {job.gpus_per_fit:g} "
                             f"GPUs for one fit (nodes: {have}); lower --cpus-per-fit / --gpus-per-fit or add "
                             "nodes with `ray start --num-gpus N`")

    def executor(self, job: BatchJob, out_dir) -> "RayExecutor":
        return RayExecutor(self._ray, job, Path(out_dir))


class StartedBoard:
    """An actor (no CPU of its own) the tasks tell when they start."""

    def __init__(self):
        self.started: dict[str, int] = {}

    def start(self, name: str) -> None:
        self.started[name] = self.started.get(name, 0) + 1

    def snapshot(self) -> dict:
        return dict(self.started)


def _run_on_worker(item: BatchItem, job: BatchJob, out_dir: str, board) -> ItemResult:
    """The Ray task: ``task.run_item`` on this worker, and this node's id."""
    import ray

    on_start = (lambda: board.start.remote(item.name)) if board is not None else None
    result = run_item(item, job, out_dir, on_start=on_start)
    result.node_id = ray.get_runtime_context().get_node_id()
    return result


class RayExecutor:
    """Submits, waits for, reads and cancels the batch's tasks."""

    def __init__(self, ray, job: BatchJob, out_dir: Path):
        self._ray = ray
        self.job = job
        self.out_dir = out_dir
        self._task = ray.remote(_run_on_worker)
        self._options = {"num_cpus": job.cpus_per_fit, "num_gpus": job.gpus_per_fit,
                         "max_retries": job.max_retries, "retry_exceptions": False}
        self._board = ray.remote(StartedBoard).options(num_cpus=0).remote()
        self._snapshot_ref = None
        self._started: dict[str, int] = {}

    def submit(self, item: BatchItem):
        return self._task.options(name=f"gan2x-batch:{item.name}", **self._options).remote(
            item, self.job, str(self.out_dir), self._board)

    def wait(self, refs: list, timeout: float) -> tuple[list, list]:
        """(the refs done, the others), after at most ``timeout`` seconds, as
        soon as one is done; every ref done by then is in the first list."""
        if not refs:
            return [], []
        done, pending = self._ray.wait(refs, num_returns=1, timeout=timeout)
        if done and pending:
            more, pending = self._ray.wait(pending, num_returns=len(pending), timeout=0)
            done = done + more
        return done, pending

    def result(self, ref, item: BatchItem) -> ItemResult:
        """The task's ``ItemResult``; a task Ray could not finish (its worker
        died more than ``max_retries`` times, its node was lost, it was
        cancelled) as a failed or cancelled one."""
        exceptions = self._ray.exceptions
        try:
            return self._ray.get(ref)
        except exceptions.TaskCancelledError:
            return ItemResult(name=item.name, state="cancelled", source=item.source())
        except exceptions.RayError as error:
            message = str(error).strip()
            return ItemResult(name=item.name, state="failed", source=item.source(),
                              error={"type": type(error).__name__, "message": message[:ERROR_MESSAGE_CHARS],
                                     "transient": False, "traceback": None})

    def started(self) -> dict:
        """Items that have started (name: attempts), as the board last said;
        never waits for it."""
        if self._snapshot_ref is not None:
            ready, _ = self._ray.wait([self._snapshot_ref], timeout=0)
            if ready:
                try:
                    self._started = self._ray.get(self._snapshot_ref)
                except self._ray.exceptions.RayError:
                    pass
                self._snapshot_ref = None
        if self._snapshot_ref is None:
            self._snapshot_ref = self._board.snapshot.remote()
        return self._started

    def cancel(self, refs: list) -> None:
        for ref in refs:
            try:
                self._ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - already finished, or its node gone
                pass

    def close(self) -> None:
        try:
            self._ray.kill(self._board)
        except Exception:  # noqa: BLE001
            pass
