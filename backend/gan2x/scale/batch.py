"""The batch's driver: ``run_batch`` (what ``gan2x batch`` runs).

1. Items whose bundle is already in ``OUT`` (``outputs.existing_bundle``)
   are skipped, their metrics read back from their manifests; when nothing
   is left, Ray is not even started (a rerun of a finished batch takes a
   second).
2. The others are submitted at once, one Ray task each (``ray_runner``);
   Ray queues what the cluster cannot run yet.
3. A tqdm bar counts finished items (ETA from their pace), with done,
   failed, running and skipped counts, driven by ``ray.wait``.
4. Ctrl-C (KeyboardInterrupt) cancels the tasks not finished
   (``ray.cancel(force=True)``: a fit stops where it is; its bundle writer
   never renamed a partial folder into place, and the next run removes its
   temporary folder) and records them as cancelled.
5. ``OUT/summary.json`` (``summary``) is written in every case.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Iterable

from .. import config
from . import outputs
from .items import BatchItem, check_unique
from .ray_runner import RayCluster, import_ray
from .summary import BatchSummary
from .task import BatchJob, ItemResult, skipped_result

WAIT_S = 0.5
"""How often the bar updates while nothing finishes."""


def run_batch(items: Iterable[BatchItem], job: BatchJob, out_dir, ray: str = config.RAY_DEFAULT,
              local_cpus: int | None = None, show_progress: bool = True) -> BatchSummary:
    """Converts ``items`` into bundles under ``out_dir`` (module docstring);
    returns the summary, also written to ``OUT/summary.json``. ``ray``: the
    ``--ray`` mode or address; ``local_cpus``: the CPUs a local instance
    offers (default: all)."""
    import_ray()  # the message on how to install it, whatever is left to do
    items = check_unique(list(items))
    out_dir = Path(out_dir).expanduser().resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    started_at, started = time.time(), time.perf_counter()
    results: dict[str, ItemResult] = {}
    to_run = []
    for item in items:
        manifest = outputs.existing_bundle(out_dir, item.name)
        if manifest is not None:
            results[item.name] = skipped_result(out_dir, item, manifest)
        else:
            to_run.append(item)
    settings = {**job.settings, "cpus_per_fit": job.cpus_per_fit, "gpus_per_fit": job.gpus_per_fit,
                "max_retries": job.max_retries, "device": job.device}
    ray_info = {"mode": "not started (nothing to run)"}
    interrupted = False
    if to_run:
        with RayCluster(ray, local_cpus=local_cpus) as cluster:
            ray_info = cluster.info.to_dict()
            cluster.check_fits(job)
            interrupted = _drive(cluster.executor(job, out_dir), to_run, results, out_dir,
                                 skipped=len(items) - len(to_run), show_progress=show_progress)
    ordered = [results[item.name] for item in items]
    summary = BatchSummary(out=str(out_dir), results=ordered, settings=settings, ray=ray_info, started=started_at,
                           wall_seconds=time.perf_counter() - started, interrupted=interrupted)
    outputs.write_json_atomically(out_dir / outputs.SUMMARY_NAME, summary.to_dict())
    return summary


def _drive(executor, to_run: list[BatchItem], results: dict, out_dir: Path, skipped: int,
           show_progress: bool) -> bool:
    """Submits ``to_run``, collects its results into ``results``; True when
    interrupted (Ctrl-C)."""
    from tqdm import tqdm

    bar = tqdm(total=len(to_run), desc="batch", unit="item", dynamic_ncols=True, file=sys.stderr,
               disable=not show_progress, mininterval=0.5 if sys.stderr.isatty() else 10.0)
    pending: dict = {}
    counts = {"done": 0, "failed": 0}
    interrupted = False
    try:
        for item in to_run:
            outputs.clear_attempts(out_dir, item.name)
            pending[executor.submit(item)] = item
        while pending:
            done, _ = executor.wait(list(pending), timeout=WAIT_S)
            for ref in done:
                item = pending.pop(ref)
                result = results[item.name] = _with_attempts(executor.result(ref, item), out_dir)
                counts["done" if result.state in ("succeeded", "skipped") else "failed"] += 1
                bar.update(1)
            started = executor.started()
            running = sum(1 for item in pending.values() if item.name in started)
            bar.set_postfix(done=counts["done"], failed=counts["failed"], running=running, skipped=skipped,
                            refresh=False)
            bar.update(0)  # redraws at the bar's pace (mininterval) even when nothing finished
    except KeyboardInterrupt:
        interrupted = True
        executor.cancel(list(pending))
        for item in pending.values():
            results[item.name] = _with_attempts(ItemResult(name=item.name, state="cancelled",
                                                           source=item.source()), out_dir)
        for item in to_run:  # never submitted: Ctrl-C came while submitting
            results.setdefault(item.name, ItemResult(name=item.name, state="cancelled", source=item.source()))
    finally:
        bar.close()
        executor.close()
    return interrupted


def _with_attempts(result: ItemResult, out_dir: Path) -> ItemResult:
    """``result`` with the attempts its log holds (a crashed worker's, whose
    result never came back, included) and, when the task's own result is
    missing, the host and pid of its last attempt."""
    attempts = outputs.read_attempts(out_dir, result.name)
    result.attempts = max(result.attempts, len(attempts))
    if result.host is None and attempts:
        result.host, result.pid = attempts[-1].get("host"), attempts[-1].get("pid")
    return result
