"""The batch's output folder, which every node writes (a shared filesystem).

    OUT/<item name>/                  an item's bundle, written atomically by the bundle writer
    OUT/<item name>.tmp-XXXX/         a write in progress, or left by a task killed while writing
    OUT/summary.json                  the batch's summary (``summary``)
    OUT/.gan2x-batch/<name>.attempts  one line per attempt at the item in this run

An item is done when ``OUT/<name>/manifest.json`` passes the manifest
checks (``existing_bundle``). The bundle writer renames its temporary folder
into place only once the bundle validates, so a folder under the item's
name is whole; a temporary folder never counts (no item's name holds
``.tmp-``) and the next attempt at the item removes it
(``remove_stale_writes``).

The attempts log is how the driver learns how often Ray ran an item,
retries of crashed workers included, whose results never come back: each
attempt appends a line before it starts (``record_attempt``), and the
driver clears the log when it submits the item.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path

from ..export.datatypes import BundleError
from ..export.manifest_checks import MANIFEST_NAME, Checker, check_manifest, load_manifest
from .items import WRITER_MARKERS

STATE_DIR = ".gan2x-batch"
SUMMARY_NAME = "summary.json"


def existing_bundle(out_dir, name: str) -> dict | None:
    """The manifest of the bundle ``OUT/<name>`` if it is there and its
    manifest passes the checks (``manifest_checks.check_manifest``, strict:
    its sections and the headers of the PNGs it names; the mesh and the
    .glb are not read, so this stays cheap for thousands of items), else None."""
    manifest_path = Path(out_dir) / name / MANIFEST_NAME
    if not manifest_path.is_file():
        return None
    checker = Checker(manifest_path, error_type=BundleError, strict=True)
    try:
        return check_manifest(checker, load_manifest(checker)).manifest
    except (BundleError, OSError, ValueError):
        return None


def stale_writes(out_dir, name: str) -> list[Path]:
    """Temporary (``<name>.tmp-*``) and retired (``<name>.old-*``) folders
    the bundle writer leaves when its process is killed mid-write."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    return sorted(path for marker in WRITER_MARKERS for path in out_dir.glob(f"{name}{marker}*") if path.is_dir())


def remove_stale_writes(out_dir, name: str) -> list[str]:
    """Removes ``stale_writes``; returns the names removed. Called by the
    item's own task, the item's only writer while it runs."""
    removed = []
    for path in stale_writes(out_dir, name):
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path.name)
    return removed


def attempts_path(out_dir, name: str) -> Path:
    return Path(out_dir) / STATE_DIR / f"{name}.attempts"


def record_attempt(out_dir, name: str) -> int:
    """Appends this attempt (host, pid, time) to the item's log; returns its
    index, 0 for the first attempt of this run."""
    path = attempts_path(out_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "time": time.time()}) + "\n"
    with open(path, "a+", encoding="utf-8") as log:
        log.seek(0)
        before = sum(1 for text in log.read().splitlines() if text.strip())
        log.write(line)
        log.flush()
        os.fsync(log.fileno())
    return before


def read_attempts(out_dir, name: str) -> list[dict]:
    """The attempts logged for the item in this run (oldest first)."""
    try:
        text = attempts_path(out_dir, name).read_text(encoding="utf-8")
    except OSError:
        return []
    attempts = []
    for line in text.splitlines():
        try:
            attempts.append(json.loads(line))
        except ValueError:  # a line cut short by a kill
            attempts.append({})
    return attempts


def clear_attempts(out_dir, name: str) -> None:
    attempts_path(out_dir, name).unlink(missing_ok=True)


def write_json_atomically(path: Path, value) -> Path:
    """``value`` as JSON at ``path``, through a temporary sibling and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    staging.write_text(json.dumps(value, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(staging, path)
    return path
