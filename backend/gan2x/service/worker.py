"""The job process: one run of one job, started by the scheduler as

    python -m gan2x.service.worker --data-dir DIR --job-id ID --attempt N --device DEV \\
        [--generator SPEC] [--threads T] [--nice K] [--watch-stdin]

It reads the job from the store, runs it, and writes everything a client
sees while it runs: progress (stage, step, total, at most every
``PROGRESS_INTERVAL_S`` seconds), a preview PNG of the current estimate
every ``--preview-interval`` seconds, and at the end the bundle directory,
its zip and the final state. Every store write names the run (``attempt``);
when the store answers that this run is no longer the current one (the
service restarted and requeued the job), the worker stops.

Memory is released by the process ending: a cancel is a SIGTERM (SIGKILL
after a grace period), and whatever the fit held, on the CPU or the GPU,
goes with it. With ``--watch-stdin`` the worker exits as soon as its stdin
closes, which happens when the service that started it dies, even by
SIGKILL; so no fit outlives its service.

Job kinds: ``JOB_RUNNERS`` maps a job's kind to the function that runs it.
``image`` (fitting an uploaded photo) calls ``gan2x.pipeline.reconstruct_image``:

    reconstruct_image(image_path: Path, request: ReconstructionRequest, out_dir: Path,
                      progress=ProgressCallback, log=callable, snapshot=SnapshotCallback) -> Reconstruction

with the source's crop (``crop_x``, ``crop_y``, ``crop_scale``) and the
inversion's steps scaled by ``steps_scale`` like the fit's. A crop the image
cannot give fails with code ``invalid_crop``.

Exit status: 0 when the job's final state was written (succeeded or failed),
3 when the parent died, anything else is a crash the scheduler reports.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import threading
import time
import traceback
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .datadir import DataDir, write_atomically
from .store import JobRecord, JobStore

PROGRESS_INTERVAL_S = 0.25
EXIT_PARENT_GONE = 3
FINISHING_STAGE = "evaluation and export"


class JobFailure(Exception):
    """A job that cannot be done, with a code and a message for the client."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class RunSuperseded(Exception):
    """The store says this run is no longer the job's current run."""


@dataclass
class JobContext:
    job: JobRecord
    data_dir: DataDir
    store: JobStore
    device: str
    generator_spec: str
    """What ``load_generator`` gets: the job's generator resolved through the
    service's allow-list (``generators.GeneratorAllowList``)."""
    progress: Callable[[str, int, int], None]
    snapshot: Callable
    log: Callable[[str], None]


class ProgressReporter:
    """The fit's ``progress`` callback: writes (stage, step, total) to the store,
    at most every ``PROGRESS_INTERVAL_S`` seconds and at every stage change."""

    def __init__(self, store: JobStore, job_id: str, attempt: int):
        self.store, self.job_id, self.attempt = store, job_id, attempt
        self.started_at = time.time()
        self._last_write = 0.0
        self._last_stage = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total:
            stage = FINISHING_STAGE
        if stage == self._last_stage and now - self._last_write < PROGRESS_INTERVAL_S and done < total:
            return
        self._last_write, self._last_stage = now, stage
        if not self.store.report_progress(self.job_id, self.attempt, stage, done, total,
                                          fit_started_at=self.started_at):
            raise RunSuperseded()


class PreviewRenderer:
    """The fit's ``snapshot`` callback: every ``interval_s`` seconds, renders the
    current estimate at the target camera, ``resolution`` pixels a side, and
    replaces the job's preview PNG."""

    def __init__(self, store: JobStore, data_dir: DataDir, job_id: str, attempt: int, sampling,
                 interval_s: float, resolution: int):
        self.store, self.data_dir, self.job_id, self.attempt = store, data_dir, job_id, attempt
        self.sampling, self.interval_s, self.resolution = sampling, interval_s, resolution
        self._last = time.monotonic()

    def __call__(self, model, target_state) -> None:
        now = time.monotonic()
        if now - self._last < self.interval_s:
            return
        write_preview(self.data_dir.preview(self.job_id), render_preview(model, target_state, self.resolution,
                                                                         self.sampling))
        self.store.report_preview(self.job_id, self.attempt)
        self._last = time.monotonic()  # after the render: its own time does not eat the interval


def render_preview(model, state, resolution: int, sampling) -> np.ndarray:
    """[R, R, 3] uint8, sRGB: the model rendered at ``state``'s camera and light."""
    rgb = model.render_image(state, resolution, sampling)["rgb"]
    return (rgb.detach().clamp(0, 1) * 255 + 0.5).to("cpu").numpy().astype(np.uint8)


def write_preview(path: Path, pixels: np.ndarray) -> None:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG")
    write_atomically(path, buffer.getvalue())


# --- job kinds ------------------------------------------------------------------------------

def job_request(job: JobRecord, device: str, generator_spec: str):
    """The job's ``ReconstructionRequest``: its stored source and settings
    (already checked by the API's models, which filled in the defaults) through
    ``pipeline.build_request``, with the service's resolved generator and device."""
    from ..pipeline import build_request

    settings = {**job.source, **job.settings, "generator": generator_spec, "device": device}
    return build_request(settings, photo=job.source.get("kind") == "image")


def run_sample_job(context: JobContext):
    from ..pipeline import reconstruct

    request = job_request(context.job, context.device, context.generator_spec)
    return reconstruct(request, context.data_dir.bundle_dir(context.job.id), progress=context.progress,
                       snapshot=context.snapshot)


def run_image_job(context: JobContext):
    from .. import pipeline

    upload = context.store.get_upload(context.job.upload_id or "")
    if upload is None:
        raise JobFailure("upload_missing", "the uploaded image of this job was deleted; upload it again and "
                                           "submit a new job")
    from ..invert import PhotoError

    request = job_request(context.job, context.device, context.generator_spec)
    try:
        return pipeline.reconstruct_image(context.data_dir.uploads / upload.file_name, request,
                                          context.data_dir.bundle_dir(context.job.id), progress=context.progress,
                                          log=context.log, snapshot=context.snapshot)
    except PhotoError as error:
        raise JobFailure("invalid_crop", str(error)) from error


JOB_RUNNERS = {"sample": run_sample_job, "image": run_image_job}


# --- the run ----------------------------------------------------------------------------------

def zip_bundle(bundle_dir: Path, zip_path: Path, folder_name: str) -> int:
    """Zips ``bundle_dir`` as ``folder_name/...`` into ``zip_path`` atomically; returns its size in bytes."""
    temporary = zip_path.with_name(zip_path.name + ".tmp-" + os.urandom(4).hex())
    try:
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(bundle_dir.rglob("*")):
                if path.is_file():
                    archive.write(path, f"{folder_name}/{path.relative_to(bundle_dir).as_posix()}")
        os.replace(temporary, zip_path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return zip_path.stat().st_size


def run_job(store: JobStore, data_dir: DataDir, job_id: str, attempt: int, device: str,
            preview_interval_s: float, preview_resolution: int, generator_spec: str | None = None) -> int:
    """Runs the job; ``generator_spec``: the spec to load (None: the job's own
    ``source.generator``, a built-in spec)."""
    job = store.get_job(job_id)
    if job is None or job.state != "running" or job.attempt != attempt:
        print(f"job {job_id} run {attempt} is not the current run; nothing to do", file=sys.stderr)
        return 0
    data_dir.clear_job_outputs(job_id)
    runner = JOB_RUNNERS.get(job.kind)
    try:
        if runner is None:
            raise JobFailure("unknown_job_kind", f"this service cannot run jobs of kind {job.kind!r}")
        from ..pipeline import resolve_settings

        sampling = resolve_settings(job.settings["preset"]).sampling
        context = JobContext(
            job=job, data_dir=data_dir, store=store, device=device,
            generator_spec=generator_spec or job.source.get("generator", "synthetic"),
            progress=ProgressReporter(store, job_id, attempt),
            snapshot=PreviewRenderer(store, data_dir, job_id, attempt, sampling, preview_interval_s,
                                     preview_resolution),
            log=lambda message: print(message, file=sys.stderr, flush=True))
        if not store.report_progress(job_id, attempt, "preparing", 0, 0):
            raise RunSuperseded()
        reconstruction = runner(context)
        bundle_bytes = zip_bundle(reconstruction.bundle, data_dir.bundle_zip(job_id), f"gan2x-{job_id[:8]}")
        rerender = reconstruction.bundle / "images" / "rerender.png"
        if rerender.is_file():
            write_atomically(data_dir.preview(job_id), rerender.read_bytes())
        result = {"bundle_bytes": bundle_bytes, "metrics": reconstruction.metrics,
                  "timings": {key: round(float(value), 3) for key, value in reconstruction.timings.items()}}
        store.finish(job_id, attempt, "succeeded", result=result)
    except RunSuperseded:
        print(f"job {job_id} run {attempt} was superseded (service restarted); stopping", file=sys.stderr)
        return 0
    except JobFailure as failure:
        store.finish(job_id, attempt, "failed", failure.code, failure.message)
    except Exception as error:
        traceback.print_exc()
        code, hint = "fit_failed", "the job's worker.log in the service's data directory has the traceback"
        if type(error).__name__ == "OutOfMemoryError" or isinstance(error, MemoryError):
            code, hint = "out_of_memory", "lower mesh_resolution, texture_size or the preset, or free the device"
        store.finish(job_id, attempt, "failed", code, f"{type(error).__name__}: {error}; {hint}")
    return 0


def _watch_parent_through_stdin() -> None:
    """Exit as soon as stdin reaches end of file: the service that holds its
    other end has gone."""
    descriptor = sys.stdin.fileno()

    def watch():
        # os.read on the descriptor, not sys.stdin: a thread blocked inside
        # sys.stdin's buffered reader holds its lock and aborts interpreter exit.
        try:
            while os.read(descriptor, 1024):
                pass
        except OSError:
            pass
        os._exit(EXIT_PARENT_GONE)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gan2x.service.worker", description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--job-id", required=True)
    parser.add_argument("--attempt", type=int, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--generator", default=None,
                        help="the generator spec to load (the service resolves the job's generator name to it)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--nice", type=int, default=0, help="niceness to add to this process")
    parser.add_argument("--preview-interval", type=float, default=5.0, help="seconds between preview renders")
    parser.add_argument("--preview-resolution", type=int, default=64)
    parser.add_argument("--watch-stdin", action="store_true", help="exit when stdin closes (the parent died)")
    parser.add_argument("--record-pid", action="store_true",
                        help="record this process's pid as the job's worker pid (a Ray task's worker)")
    args = parser.parse_args(argv)
    if args.watch_stdin:
        _watch_parent_through_stdin()
    if args.nice and hasattr(os, "nice"):
        os.nice(args.nice)
    import torch

    torch.set_num_threads(max(1, args.threads))
    data_dir = DataDir(Path(args.data_dir))
    store = JobStore(data_dir.database)
    if args.record_pid:
        store.set_worker_pid(args.job_id, args.attempt, os.getpid())
    print(f"gan2x worker pid {os.getpid()}: job {args.job_id} run {args.attempt} on {args.device}, "
          f"{torch.get_num_threads()} threads", file=sys.stderr, flush=True)
    return run_job(store, data_dir, args.job_id, args.attempt, args.device, args.preview_interval,
                   args.preview_resolution, args.generator)


if __name__ == "__main__":
    sys.exit(main())
