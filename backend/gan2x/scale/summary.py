"""``OUT/summary.json`` and the table ``gan2x batch`` prints at the end.

    {"format": "gan2x.batch-summary", "version": 1,
     "out": "/shared/out", "started": "2026-12-02T10:00:00Z", "wall_seconds": 812.4, "interrupted": false,
     "ray": {"mode": "auto", "address": "10.0.0.1:6379", "start_seconds": 1.2, "nodes": [...], "resources": {...}},
     "settings": {"preset": "draft", ..., "cpus_per_fit": 4, "gpus_per_fit": 0.5, "max_retries": 2},
     "totals": {"items": 100, "succeeded": 97, "failed": 1, "skipped": 2, "cancelled": 0,
                "fit_seconds": 9120.5, "attempts": 99},
     "items": [{"name": "seed_000000", "state": "succeeded", "source": {...}, "seconds": 93.1,
                "metrics": {"rerender_psnr_db": 27.1, ...}, "timings": {...},
                "node": {"id": "...", "host": "gpu-3", "pid": 4242}, "attempts": 1, "tries": 1,
                "generator_cached": true, "cleaned": [], "bundle": "/shared/out/seed_000000", "error": null}, ...]}

``state`` is succeeded, failed, skipped (its bundle was already there) or
cancelled (Ctrl-C); ``attempts``: Ray's attempts in this run (a crashed
worker's included); ``tries``: fits in the last attempt (transient errors'
retries); ``error``: {"type", "message", "transient", "traceback"}.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from .task import ItemResult

FORMAT = "gan2x.batch-summary"
VERSION = 1
STATES = ("succeeded", "failed", "skipped", "cancelled")
TABLE_ROWS = 40
"""Rows of the printed table; failures are always listed, the rest up to this."""


@dataclass
class BatchSummary:
    out: str
    results: list[ItemResult]
    settings: dict
    ray: dict
    started: float = field(default_factory=time.time)
    wall_seconds: float = 0.0
    interrupted: bool = False

    def count(self, state: str) -> int:
        return sum(1 for result in self.results if result.state == state)

    @property
    def failed(self) -> int:
        return self.count("failed")

    def totals(self) -> dict:
        totals = {"items": len(self.results)}
        totals.update({state: self.count(state) for state in STATES})
        totals["fit_seconds"] = round(sum(result.seconds for result in self.results
                                          if result.state in ("succeeded", "failed")), 3)
        totals["attempts"] = sum(result.attempts for result in self.results)
        return totals

    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "out": self.out,
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
                "wall_seconds": round(self.wall_seconds, 3), "interrupted": self.interrupted,
                "ray": self.ray, "settings": self.settings, "totals": self.totals(),
                "items": [item_record(result) for result in self.results]}


def item_record(result: ItemResult) -> dict:
    return _json_safe({
        "name": result.name, "state": result.state, "source": result.source, "seconds": round(result.seconds, 3),
        "metrics": result.metrics, "timings": result.timings,
        "node": {"id": result.node_id, "host": result.host, "pid": result.pid},
        "attempts": result.attempts, "tries": result.tries, "generator_cached": result.generator_cached,
        "cleaned": list(result.cleaned), "bundle": result.bundle, "error": result.error})


def _json_safe(value):
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def format_table(summary: BatchSummary, rows: int = TABLE_ROWS) -> str:
    """The items as a text table (failures first, then the others in order,
    ``rows`` in all at most beyond the failures), and the totals."""
    header = ("item", "state", "seconds", "PSNR dB", "attempts", "node", "error")
    failed = [result for result in summary.results if result.state == "failed"]
    others = [result for result in summary.results if result.state != "failed"]
    shown = failed + others[:max(0, rows - len(failed))]
    lines = []
    for result in shown:
        psnr = result.metrics.get("rerender_psnr_db")
        error = ""
        if result.error:
            error = f"{result.error.get('type')}: {result.error.get('message', '')}".splitlines()[0][:100]
        lines.append((result.name, result.state, f"{result.seconds:.1f}",
                      f"{psnr:.2f}" if isinstance(psnr, (int, float)) else "-", str(result.attempts or "-"),
                      result.host or "-", error))
    widths = [max(len(row[index]) for row in [header] + lines) for index in range(len(header) - 1)]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths)) + "  " + row[-1]
            for row in [header] + lines]
    if len(shown) < len(summary.results):
        text.append(f"... {len(summary.results) - len(shown)} more items in summary.json")
    totals = summary.totals()
    text.append(", ".join(f"{totals[state]} {state}" for state in STATES)
                + f" of {totals['items']}; wall {summary.wall_seconds:.1f} s"
                + (f", Ray start {summary.ray.get('start_seconds', 0):.1f} s" if summary.ray else "")
                + (" (interrupted)" if summary.interrupted else ""))
    return "\n".join(line.rstrip() for line in text)
