"""One item of a batch, run in a worker process: ``run_item``. No Ray here
(``ray_runner`` wraps it in a Ray task).

``run_item`` logs the attempt, returns at once when the item's bundle is
already there, removes what a killed attempt left (``outputs``), sets
torch's threads to the CPUs the task holds, fits the item with
``pipeline.reconstruct`` (a seed) or ``pipeline.reconstruct_image`` (a
photo) and writes its bundle to ``OUT/<name>`` atomically, as ``gan2x fit``
does. Every error comes back in the ``ItemResult`` (``state`` "failed",
its type and message): one bad item never stops the batch. An error marked
transient (``is_transient``: ``TransientError``, CUDA out of memory, an
I/O error of the kind a network filesystem gives) is retried in the same
process up to ``max_retries`` times, with a pause; a crash of the process
itself is Ray's to retry (``max_retries`` of the task).

Generators load once per worker process: ``GENERATOR_CACHE`` (below).

Fault injection, for the tests only: ``CRASH_ENV`` lists items whose first
attempt kills its own process with SIGKILL, as an out-of-memory kill or a
lost node would, at a point: ``NAME:step`` at the fit's first progress
step, ``NAME:write`` once the bundle writer's temporary folder has files
in it (mid-write).
"""
from __future__ import annotations

import errno
import gc
import os
import signal
import socket
import threading
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from .. import config
from . import outputs
from .items import BatchItem

REQUEST_SETTINGS = ("truncation", "preset", "steps_scale", "stages", "pseudo_samples", "exploration",
                    "mesh_resolution", "texture_size", "crop_x", "crop_y", "crop_scale")
"""The names of ``pipeline.build_request``'s settings a batch passes on
(``gan2x.config``'s flat names; the generator, the seed and the device come
from the item and the task's resources)."""

CRASH_ENV = "GAN2X_BATCH_TEST_CRASH"
TRANSIENT_PAUSE_S = 2.0
"""The pause before a transient error's retry, times the retry's number."""
TRACEBACK_LINES = 25


class TransientError(RuntimeError):
    """An error worth retrying as it is (a busy resource, a flaky mount).
    Raise it, or a subclass, from a generator's own code to ask ``gan2x
    batch`` for a retry; ``is_transient`` names the others."""


TRANSIENT_ERRNOS = frozenset({errno.EIO, errno.EAGAIN, errno.EBUSY, errno.ETIMEDOUT, errno.ESTALE,
                              errno.ECONNRESET, errno.ECONNABORTED, errno.EHOSTUNREACH, errno.ENETUNREACH})
"""OSError numbers a shared (network) filesystem gives for a while and then not."""


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` may pass on a retry: ``TransientError``; CUDA (or
    another accelerator) out of memory (``torch.OutOfMemoryError`` or a
    RuntimeError saying "out of memory": a GPU shared by fractional fits
    can be full for a while); an OSError in ``TRANSIENT_ERRNOS``. Anything
    else, a missing file or a bad spec among them, fails the item at once."""
    if isinstance(error, TransientError):
        return True
    if type(error).__name__ == "OutOfMemoryError":  # torch.OutOfMemoryError (torch.cuda.OutOfMemoryError)
        return True
    if isinstance(error, RuntimeError) and "out of memory" in str(error).lower():
        return True
    return isinstance(error, OSError) and error.errno in TRANSIENT_ERRNOS


def call_with_retries(function: Callable[[], object], max_retries: int,
                      on_retry: Callable[[int, BaseException], None] | None = None,
                      sleep: Callable[[float], None] = time.sleep):
    """``function()``, called again after a transient error (``is_transient``)
    at most ``max_retries`` times, pausing ``TRANSIENT_PAUSE_S`` times the
    retry's number first. Returns ``(value, tries)``; an error that is not
    transient, or the last one, is raised with ``tries`` set on it."""
    tries = 0
    while True:
        tries += 1
        try:
            return function(), tries
        except Exception as error:
            if not is_transient(error) or tries > max_retries:
                error.tries = tries
                raise
            if on_retry is not None:
                on_retry(tries, error)
            sleep(TRANSIENT_PAUSE_S * tries)


# --- generators, once per worker process --------------------------------------------------------

class GeneratorCache:
    """Generators loaded in this process, by (spec, device, options), the
    most recently used last, at most ``size`` of them (a worker that meets a
    third spec drops the oldest, so GPU memory holds two at most).
    ``load`` has ``generators.load_generator``'s signature; a load that
    raises is not cached. ``hits`` and ``loads`` count."""

    def __init__(self, size: int = 2):
        self.size = size
        self.generators: OrderedDict = OrderedDict()
        self.hits = 0
        self.loads = 0

    def load(self, spec: str = config.DEFAULT_GENERATOR, device="cpu", **options):
        key = (str(spec).strip(), str(device), tuple(sorted((name, repr(value)) for name, value in options.items())))
        if key in self.generators:
            self.generators.move_to_end(key)
            self.hits += 1
            return self.generators[key]
        from ..generators import load_generator

        generator = load_generator(spec, device=device, **options)
        self.loads += 1
        self.generators[key] = generator
        while len(self.generators) > self.size:
            self.generators.popitem(last=False)
        return generator


GENERATOR_CACHE = GeneratorCache()
"""The one piece of process-wide state of the backend, and on purpose: a
Ray worker process runs item after item, and loading a checkpoint (seconds
for a StyleGAN2, more from a network disk) once per item would cost more
than a small fit. It lives as long as the worker process and only in
processes that run batch items (``run_item``). A fit never changes its
generator (``gan2x bench`` too fits every seed with one loaded generator)."""


# --- one item ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class BatchJob:
    """What every item of a batch shares: the reconstruction settings
    (``REQUEST_SETTINGS``, for ``pipeline.build_request``) and the task's
    resources and retries (``config.BATCH``)."""
    settings: dict = field(default_factory=dict)
    cpus_per_fit: float = config.CPUS_PER_FIT.default
    gpus_per_fit: float = config.GPUS_PER_FIT.default
    max_retries: int = config.MAX_RETRIES.default

    def __post_init__(self):
        config.CPUS_PER_FIT.check(self.cpus_per_fit, "cpus per fit")
        config.GPUS_PER_FIT.check(self.gpus_per_fit, "gpus per fit")
        config.MAX_RETRIES.check(self.max_retries, "max retries")
        if self.gpus_per_fit > 1 and self.gpus_per_fit != int(self.gpus_per_fit):
            raise ValueError(f"gpus per fit above 1 must be a whole number (Ray's rule), not {self.gpus_per_fit}")
        unknown = sorted(set(self.settings) - set(REQUEST_SETTINGS))
        if unknown:
            raise ValueError(f"unknown settings {unknown}; a batch passes on {list(REQUEST_SETTINGS)}")
        preset = self.settings.get("preset")
        if preset is not None and preset not in config.PRESET_NAMES:
            raise ValueError(f"unknown preset {preset!r}; choose one of {list(config.PRESET_NAMES)}")

    @classmethod
    def from_settings(cls, settings: dict, **resources) -> "BatchJob":
        """From flat settings such as the CLI's ``vars(args)``: the request's
        names among them (``REQUEST_SETTINGS``) and ``resources``."""
        return cls(settings={name: settings[name] for name in REQUEST_SETTINGS if settings.get(name) is not None},
                   **resources)

    @property
    def device(self) -> str:
        """Where a fit runs: the GPU Ray gave the task (``CUDA_VISIBLE_DEVICES``
        holds it, so it is ``cuda``) when the job asks for GPUs, else the CPU."""
        return "cuda" if self.gpus_per_fit > 0 else "cpu"

    @property
    def threads(self) -> int:
        """torch's CPU threads in a task: the whole part of its CPUs, at least one."""
        return max(1, int(self.cpus_per_fit))


@dataclass
class ItemResult:
    """What one item came to; ``summary`` writes it. ``state``: "succeeded",
    "failed", "skipped" (its bundle was there) or, set by the driver,
    "cancelled"."""
    name: str
    state: str
    source: dict
    seconds: float = 0.0
    metrics: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    attempts: int = 0
    """Ray's attempts at the item in this run (a crashed worker's included)."""
    tries: int = 0
    """Fits started in the last attempt (1 + transient retries)."""
    host: Optional[str] = None
    pid: Optional[int] = None
    node_id: Optional[str] = None
    generator_cached: Optional[bool] = None
    """Whether the item's generator came from the worker's cache."""
    cleaned: list = field(default_factory=list)
    """Temporary folders of a killed write, removed before the fit."""
    error: Optional[dict] = None
    """{"type", "message", "transient", "traceback"} of a failure."""
    bundle: Optional[str] = None


def scalar_metrics(metrics: dict) -> dict:
    """The top-level numbers of a reconstruction's metrics, JSON-safe
    (non-finite ones as None); lists and nested sections are left to the
    bundle's provenance."""
    import math

    found = {}
    for key, value in (metrics or {}).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        found[key] = float(value) if math.isfinite(value) else None
    return found


def skipped_result(out_dir: Path, item: BatchItem, manifest: dict) -> ItemResult:
    """The result of an item whose bundle was already there (its manifest
    ``manifest``), with the metrics the bundle recorded."""
    metrics = scalar_metrics(((manifest.get("provenance") or {}).get("metrics")) or {})
    return ItemResult(name=item.name, state="skipped", source=item.source(), metrics=metrics,
                      bundle=str(Path(out_dir) / item.name))


def describe_error(error: BaseException) -> dict:
    lines = traceback.format_exception(type(error), error, error.__traceback__)
    text = "".join(lines).splitlines()
    return {"type": type(error).__name__, "message": str(error), "transient": is_transient(error),
            "traceback": "\n".join(text[-TRACEBACK_LINES:])}


def run_item(item: BatchItem, job: BatchJob, out_dir, on_start: Callable[[], None] | None = None) -> ItemResult:
    """Makes ``item``'s bundle at ``OUT/<item.name>`` (module docstring)."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    attempt = outputs.record_attempt(out_dir, item.name)
    result = ItemResult(name=item.name, state="failed", source=item.source(), attempts=attempt + 1,
                        host=socket.gethostname(), pid=os.getpid())
    if on_start is not None:
        on_start()
    manifest = outputs.existing_bundle(out_dir, item.name)
    if manifest is not None:  # another run made it since the driver looked
        skipped = skipped_result(out_dir, item, manifest)
        result.state, result.bundle, result.metrics = skipped.state, skipped.bundle, skipped.metrics
        result.seconds = time.perf_counter() - started
        return result
    result.cleaned = outputs.remove_stale_writes(out_dir, item.name)
    crash_point = _crash_point(item.name) if attempt == 0 else None
    if crash_point == "write":
        _kill_when_writing(out_dir, item.name)
    try:
        import torch

        torch.set_num_threads(job.threads)
        (reconstruction, loaded), result.tries = call_with_retries(
            lambda: _fit(item, job, out_dir / item.name, crash_at_step=crash_point == "step"),
            job.max_retries, on_retry=lambda tries, error: _release_memory())
    except Exception as error:
        result.tries = getattr(error, "tries", 1)
        result.error = describe_error(error)
        result.seconds = time.perf_counter() - started
        return result
    result.state, result.bundle = "succeeded", str(reconstruction.bundle)
    result.generator_cached = not loaded
    result.metrics = scalar_metrics(reconstruction.metrics)
    result.timings = {key: round(float(value), 3) for key, value in reconstruction.timings.items()}
    result.seconds = time.perf_counter() - started
    return result


def _fit(item: BatchItem, job: BatchJob, destination: Path, crash_at_step: bool = False):
    """One fit of ``item``; returns (the ``Reconstruction``, whether its generator was loaded anew)."""
    from .. import pipeline

    settings = {**job.settings, "generator": item.generator, "device": job.device}
    if item.seed is not None:
        settings["seed"] = item.seed
    request = pipeline.build_request(settings, photo=item.image is not None)
    progress = _crash_on_first_step if crash_at_step else None
    loads = GENERATOR_CACHE.loads
    generator = GENERATOR_CACHE.load(request.generator, device=request.device, **request.generator_options)
    if item.image is not None:
        reconstruction = pipeline.reconstruct_image(Path(item.image), request, destination, progress=progress,
                                                    log=None, generator=generator)
    else:
        reconstruction = pipeline.reconstruct(request, destination, progress=progress, generator=generator)
    return reconstruction, GENERATOR_CACHE.loads > loads


def _release_memory() -> None:
    """Before a transient error's retry: what the failed fit held, back."""
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - a best effort
        pass


# --- fault injection (tests) ------------------------------------------------------------------

def _crash_point(name: str) -> str | None:
    for entry in os.environ.get(CRASH_ENV, "").split(","):
        item, _, point = entry.strip().partition(":")
        if item == name:
            return point or "step"
    return None


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _crash_on_first_step(stage: str, done: int, total: int) -> None:
    _kill_self()


def _kill_when_writing(out_dir: Path, name: str) -> None:
    """A thread that kills this process once ``OUT/<name>.tmp-*`` holds a file."""
    def watch():
        while not (out_dir / name).exists():  # the write done without being caught: nothing to do
            for staging in out_dir.glob(f"{name}.tmp-*"):
                if any(path.is_file() for path in staging.rglob("*")):
                    _kill_self()
            time.sleep(0.002)

    threading.Thread(target=watch, name="gan2x-test-crash", daemon=True).start()
