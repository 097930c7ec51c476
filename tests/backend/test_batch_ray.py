"""``gan2x batch`` (gan2x.scale) on one local Ray instance shared by the
module (2 CPUs, no dashboard), with tiny fits: a batch of seeds to valid
bundles and a summary, a rerun that skips them, a bad generator that fails
its item alone, workers killed mid-fit and mid-write that Ray retries, and
Ctrl-C. The batches run through the real command line (``cli.main`` in this
process, which reuses the module's Ray connection; Ctrl-C in a subprocess
joining the instance by its address). The instance's workers inherit
``task.CRASH_ENV``, which names the two items whose first attempt kills its
own process.

Without Ray nothing here can run: scripts/setup_env.sh installs it
(``gan2x[ray]``), so its absence fails the module rather than skipping it.
"""
from __future__ import annotations

import ast
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import ray
from PIL import Image

import gan2x
from gan2x import cli
from gan2x.export.bundle import validate_bundle
from gan2x.scale import items as batch_items
from gan2x.scale import outputs
from gan2x.scale.task import (CRASH_ENV, GeneratorCache, TransientError, call_with_retries, is_transient)

TINY_ARGS = ["--preset", "draft", "--steps-scale", "0.01", "--stages", "1", "--pseudo-samples", "1",
             "--mesh-resolution", "32", "--texture-size", "64"]
CRASHING = {"killed_at_step": "step", "killed_in_write": "write"}


@pytest.fixture(scope="module")
def ray_address():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CRASH_ENV, ",".join(f"{name}:{point}" for name, point in CRASHING.items()))
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 logging_level="WARNING")
        try:
            yield ray.get_runtime_context().gcs_address
        finally:
            ray.shutdown()


def batch(*args: str) -> int:
    return cli.main(["batch", *args, *TINY_ARGS])


def read_summary(out: Path) -> dict:
    summary = json.loads((out / "summary.json").read_text())
    assert summary["format"] == "gan2x.batch-summary"
    return summary


def by_name(summary: dict) -> dict:
    return {item["name"]: item for item in summary["items"]}


def write_items(path: Path, entries: list[dict]) -> Path:
    path.write_text("".join(json.dumps(entry) + "\n" for entry in entries))
    return path


@pytest.fixture(scope="module")
def four_seeds(ray_address, tmp_path_factory):
    """A batch of 4 seeds of synthetic:faces, run once for the module."""
    out = tmp_path_factory.mktemp("batch") / "faces"
    started = time.perf_counter()
    code = batch("--generator", "synthetic:faces", "--seeds", "0-3", "--out", str(out))
    return out, code, time.perf_counter() - started


def test_a_batch_of_four_seeds_makes_four_valid_bundles_and_a_summary(four_seeds, capsys):
    out, code, _ = four_seeds
    assert code == 0
    names = [f"seed_{seed:06d}" for seed in range(4)]
    assert sorted(os.listdir(out)) == sorted(names + ["summary.json", outputs.STATE_DIR])
    summary = read_summary(out)
    assert summary["totals"]["items"] == 4
    assert summary["totals"]["succeeded"] == 4
    assert summary["totals"]["failed"] == summary["totals"]["skipped"] == summary["totals"]["cancelled"] == 0
    assert summary["interrupted"] is False
    assert summary["settings"]["steps_scale"] == 0.01 and summary["settings"]["texture_size"] == 64
    node_ids = {node["NodeID"] for node in ray.nodes() if node["Alive"]}
    items = by_name(summary)
    assert list(items) == names
    for seed, name in enumerate(names):
        item = items[name]
        manifest = validate_bundle(out / name)  # the project's validator, strict: every file read
        assert item["state"] == "succeeded" and item["error"] is None
        assert item["bundle"] == str(out / name)
        assert item["source"] == {"kind": "sample", "generator": "synthetic:faces", "seed": seed}
        assert manifest["provenance"]["seed"] == seed
        assert manifest["provenance"]["generator"] == "synthetic:faces"
        assert manifest["textures"]["albedo"]["width"] == 64
        psnr = item["metrics"]["rerender_psnr_db"]
        assert math.isfinite(psnr) and 10 < psnr < 60
        assert psnr == pytest.approx(manifest["provenance"]["metrics"]["rerender_psnr_db"])
        assert item["node"]["id"] in node_ids
        assert item["node"]["pid"] > 0 and item["node"]["host"]
        assert item["attempts"] == 1 and item["tries"] == 1
        assert item["seconds"] > 0 and item["timings"]["total"] > 0
    # the generator loads once per worker process: each worker's first item loaded it, the rest reused it
    pids = {item["node"]["pid"] for item in items.values()}
    assert len(pids) < 4, "Ray ran every item in its own process: nothing shows the cache"
    for pid in pids:
        loaded = [item["generator_cached"] for item in items.values() if item["node"]["pid"] == pid]
        assert loaded.count(False) == 1, (pid, loaded)


def test_a_rerun_skips_every_bundle_without_starting_a_task(four_seeds):
    out, _, first_seconds = four_seeds
    first = by_name(read_summary(out))
    stamps = {name: (out / name / "manifest.json").stat().st_mtime_ns for name in first}
    logs = {name: outputs.read_attempts(out, name) for name in first}
    started = time.perf_counter()
    code = batch("--generator", "synthetic:faces", "--seeds", "0-3", "--out", str(out))
    seconds = time.perf_counter() - started
    assert code == 0
    summary = read_summary(out)
    assert summary["totals"]["skipped"] == 4 and summary["totals"]["succeeded"] == 0
    assert summary["ray"]["mode"].startswith("not started")
    for name, item in by_name(summary).items():
        assert item["state"] == "skipped"
        assert item["metrics"]["rerender_psnr_db"] == pytest.approx(first[name]["metrics"]["rerender_psnr_db"])
        assert (out / name / "manifest.json").stat().st_mtime_ns == stamps[name]  # not rewritten
        assert outputs.read_attempts(out, name) == logs[name]  # no task ran
    assert seconds < 10 and seconds < first_seconds / 2


def test_an_item_with_a_bad_generator_fails_alone(ray_address, tmp_path, capsys):
    """Good items beside it succeed: a seed, and a photo fitted as ``gan2x fit --image`` does."""
    missing = tmp_path / "missing.safetensors"
    ramp = np.linspace(40, 220, 96).astype(np.uint8)  # at least the generator's 64 px a side
    Image.fromarray(np.stack([ramp[None, :].repeat(96, 0), ramp[:, None].repeat(96, 1),
                              np.full((96, 96), 128, np.uint8)], axis=-1)).save(tmp_path / "photo.png")
    listing = write_items(tmp_path / "items.jsonl", [
        {"seed": 4, "generator": "synthetic:faces"},
        {"image": "photo.png", "generator": "synthetic:faces"},
        {"seed": 5, "generator": f"stylegan2:{missing}", "name": "bad_checkpoint"},
        {"seed": 6, "generator": "nonsense:spec", "name": "bad_spec"},
    ])
    out = tmp_path / "out"
    assert batch("--items", str(listing), "--out", str(out)) == 1  # some item failed
    summary = read_summary(out)
    assert summary["totals"]["succeeded"] == 2 and summary["totals"]["failed"] == 2
    items = by_name(summary)
    assert items["seed_000004"]["state"] == "succeeded"
    validate_bundle(out / "seed_000004")
    assert items["photo"]["state"] == "succeeded"
    assert items["photo"]["source"] == {"kind": "image", "generator": "synthetic:faces",
                                        "image": str((tmp_path / "photo.png").resolve())}
    assert math.isfinite(items["photo"]["metrics"]["inversion_psnr_db"])
    assert validate_bundle(out / "photo")["provenance"]["source"]["file"] == "photo.png"
    for name, expected in (("bad_checkpoint", str(missing)), ("bad_spec", "unknown generator spec")):
        item = items[name]
        assert item["state"] == "failed" and item["bundle"] is None
        assert expected in item["error"]["message"], item["error"]
        assert item["error"]["type"] and item["error"]["traceback"]
        assert item["error"]["transient"] is False
        assert item["tries"] == 1 and item["attempts"] == 1  # not retried: a bad spec stays bad
        assert not (out / name).exists() and not outputs.stale_writes(out, name)
    printed = capsys.readouterr().out
    assert "bad_checkpoint" in printed and "2 succeeded, 2 failed" in printed


def test_a_task_killed_mid_fit_or_mid_write_is_retried_and_its_bundle_is_whole(ray_address, tmp_path):
    listing = write_items(tmp_path / "items.jsonl", [{"seed": 7, "name": "killed_at_step"},
                                                      {"seed": 8, "name": "killed_in_write"}])
    out = tmp_path / "out"
    assert batch("--items", str(listing), "--out", str(out), "--generator", "synthetic:faces",
                 "--max-retries", "1") == 0
    summary = read_summary(out)
    assert summary["totals"]["succeeded"] == 2
    items = by_name(summary)
    for name in CRASHING:
        item = items[name]
        assert item["state"] == "succeeded"
        assert item["attempts"] == 2  # the killed one and Ray's retry
        log = outputs.read_attempts(out, name)
        assert len(log) == 2 and log[1]["pid"] == item["node"]["pid"] != log[0]["pid"]
        manifest = validate_bundle(out / name)
        assert manifest["provenance"]["seed"] == {"killed_at_step": 7, "killed_in_write": 8}[name]
    # killed at the first step: nothing written yet; killed mid-write: the retry found the writer's
    # temporary folder, half full, and removed it before fitting again
    assert items["killed_at_step"]["cleaned"] == []
    assert len(items["killed_in_write"]["cleaned"]) == 1
    assert items["killed_in_write"]["cleaned"][0].startswith("killed_in_write.tmp-")
    assert sorted(os.listdir(out)) == sorted(list(CRASHING) + ["summary.json", outputs.STATE_DIR])
    # a rerun counts the two bundles done, and nothing else
    assert batch("--items", str(listing), "--out", str(out)) == 0
    assert read_summary(out)["totals"]["skipped"] == 2


def test_ctrl_c_cancels_the_remaining_tasks_and_writes_the_summary(ray_address, tmp_path):
    """``gan2x batch --ray ADDRESS`` in a subprocess, joining the module's instance; SIGINT once a fit runs."""
    out = tmp_path / "out"
    command = [sys.executable, "-m", "gan2x.cli", "batch", "--ray", ray_address, "--seeds", "20-25",
               "--out", str(out), *TINY_ARGS]
    # SIGINT as a terminal's Ctrl-C delivers it: a run in the background (nohup, `cmd &` in a script)
    # starts with SIGINT ignored, and Python then installs no KeyboardInterrupt handler; undo that.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 90
        while not list((out / outputs.STATE_DIR).glob("*.attempts")):
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "no fit started in 90 s"
            time.sleep(0.1)
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, output
    summary = read_summary(out)
    assert summary["interrupted"] is True
    assert summary["ray"]["address"] == ray_address and summary["ray"]["connected_here"] is True
    totals = summary["totals"]
    assert totals["cancelled"] >= 4 and totals["succeeded"] + totals["cancelled"] == 6, totals
    for name, item in by_name(summary).items():
        if item["state"] == "succeeded":
            validate_bundle(out / name)
        else:
            assert item["state"] == "cancelled" and not (out / name).exists()
    assert "cancelled" in output and "(interrupted)" in output
    # the cancelled fits are gone: the instance's 2 CPUs are free again
    deadline = time.monotonic() + 30
    while ray.available_resources().get("CPU", 0) < 2:
        assert time.monotonic() < deadline, ray.available_resources()
        time.sleep(0.2)


def test_the_service_runs_its_jobs_on_a_cluster_it_joins_by_address(ray_address, tmp_path):
    """``gan2x serve --executor ray:ADDRESS``: the service joins this module's
    instance (as it would a cluster's head) and a job runs there as a Ray
    task, to a valid bundle; the instance is not stopped with the service."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))
    from service_helpers import TINY, ServiceProcess, finished, sample, wait_for_job

    service = ServiceProcess(tmp_path / "service", "--executor", f"ray:{ray_address}").start()
    try:
        client = service.client()
        job = client.post("/v1/jobs", json={"source": sample(2), "settings": TINY}).json()
        job = wait_for_job(client, job["id"], finished, timeout=180)
        assert job["state"] == "succeeded", (job, service.log())
        assert f"Ray tasks on {ray_address}" in service.log()
        download = client.get(job["result"]["bundle_url"])
        assert download.status_code == 200 and len(download.content) == job["result"]["bundle_bytes"]
    finally:
        service.stop()
    assert ray.is_initialized() and ray.cluster_resources().get("CPU") == 2  # the cluster outlives the service


# --- without Ray: items, retries, the cache, the missing extra ------------------------------------

def test_items_from_seeds_images_and_an_items_file(tmp_path):
    assert [item.name for item in batch_items.seed_items("synthetic", [3, 123])] == ["seed_000003", "seed_000123"]
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("b face.png", "a.JPG", "notes.txt"):
        target = folder / name
        if name.endswith("txt"):
            target.write_text("not an image")
        else:
            Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(target, format="PNG" if "png" in name else "JPEG")
    found = batch_items.image_items("synthetic:faces", folder)
    assert [(item.name, Path(item.image).name) for item in found] == [("a", "a.JPG"), ("b_face", "b face.png")]
    assert all(Path(item.image).is_absolute() and item.seed is None for item in found)
    listing = tmp_path / "list.txt"
    listing.write_text("# photos\nphotos/a.JPG\n\n" + str(folder / "b face.png") + "\n")
    assert [item.name for item in batch_items.image_items("synthetic", listing)] == ["a", "b_face"]
    (tmp_path / "other").mkdir()
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "other" / "a.png")
    listing.write_text("photos/a.JPG\nother/a.png\n")
    with pytest.raises(ValueError, match="same bundle 'a'"):
        batch_items.image_items("synthetic", listing)
    entries = write_items(tmp_path / "items.jsonl", [{"seed": 1}, {"seed": 1, "generator": "synthetic:objects",
                                                                    "name": "pebble"},
                                                      {"image": "photos/a.JPG", "name": "alice"}])
    found = batch_items.read_items_file(entries, default_generator="synthetic:faces")
    assert [(item.name, item.generator, item.seed) for item in found] == [
        ("seed_000001", "synthetic:faces", 1), ("pebble", "synthetic:objects", 1), ("alice", "synthetic:faces", None)]
    for bad, message in (({"seed": 1, "image": "x"}, "either seed or image"), ({"seed": -1}, "seed must be"),
                         ({"seed": 2, "name": "x.tmp-1"}, "item name"), ({"seed": 2, "name": ".hidden"}, "item name"),
                         ({"seed": 2, "colour": 1}, "unknown keys")):
        with pytest.raises(ValueError, match=message):
            batch_items.read_items_file(write_items(tmp_path / "bad.jsonl", [bad]))


def test_transient_errors_are_retried_a_bounded_number_of_times_and_others_never():
    assert is_transient(TransientError("busy"))
    assert is_transient(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_transient(OSError(116, "Stale file handle"))  # ESTALE, a network filesystem's
    assert not is_transient(FileNotFoundError(2, "No such file"))
    assert not is_transient(ValueError("unknown generator spec"))
    assert not is_transient(RuntimeError("shape mismatch"))

    calls, pauses = [], []

    def flaky(failures: int, error: Exception):
        def call():
            calls.append(1)
            if len(calls) <= failures:
                raise error
            return "bundle"
        return call

    assert call_with_retries(flaky(2, TransientError("busy")), 2, sleep=pauses.append) == ("bundle", 3)
    assert len(pauses) == 2 and pauses[1] > pauses[0] > 0
    calls.clear()
    with pytest.raises(TransientError) as raised:
        call_with_retries(flaky(5, TransientError("busy")), 2, sleep=pauses.append)
    assert raised.value.tries == 3 and len(calls) == 3
    calls.clear()
    with pytest.raises(ValueError) as raised:
        call_with_retries(flaky(5, ValueError("bad spec")), 2, sleep=pauses.append)
    assert raised.value.tries == 1 and len(calls) == 1


def test_the_generator_cache_loads_a_spec_once_and_keeps_two():
    cache = GeneratorCache(size=2)
    first = cache.load("synthetic:faces", device="cpu")
    assert cache.load("synthetic:faces", device="cpu") is first and (cache.loads, cache.hits) == (1, 1)
    cache.load("synthetic:objects", device="cpu")
    cache.load("synthetic:detailed", device="cpu")  # the oldest, faces, goes
    assert cache.load("synthetic:faces", device="cpu") is not first and cache.loads == 4
    with pytest.raises(ValueError):
        cache.load("nonsense:spec")
    assert len(cache.generators) == 2


def test_without_ray_batch_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    assert cli.main(["batch", "--seeds", "0", "--out", str(tmp_path / "out")]) == 2
    assert "pip install 'gan2x[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_only_the_ray_runner_imports_ray_and_nothing_at_import_time():
    """The product works without Ray: no gan2x module imports it at module
    level, and in gan2x.scale only ray_runner imports it at all."""
    package = Path(gan2x.__file__).parent
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        everywhere = [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]
        at_top = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]

        def imports_ray(nodes):
            return any((isinstance(node, ast.Import) and any(a.name.split(".")[0] == "ray" for a in node.names))
                       or (isinstance(node, ast.ImportFrom) and not node.level
                           and (node.module or "").split(".")[0] == "ray") for node in nodes)

        assert not imports_ray(at_top), path
        if path.parent.name == "scale" and path.name != "ray_runner.py":
            assert not imports_ray(everywhere), path
