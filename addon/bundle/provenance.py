"""Provenance as text for people (the sidebar panel, reports). bpy-free."""
from __future__ import annotations

import json
import math


def generator_text(provenance: dict) -> str:
    """The generator spec ('' when absent); a structured spec as compact JSON."""
    generator = provenance.get("generator")
    if generator is None:
        return ""
    if isinstance(generator, str):
        return generator
    return json.dumps(generator, sort_keys=True, separators=(",", ":"))


def seed_text(provenance: dict) -> str:
    seed = provenance.get("seed")
    return "none" if seed is None else str(seed)


def _value_text(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, float):
        return "{:.4g}".format(value) if math.isfinite(value) else str(value)
    if isinstance(value, (int, str)):
        return str(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def metric_lines(provenance: dict) -> list:
    """[(name, value text)] for provenance.metrics, sorted by name; nested
    objects are flattened one level as 'outer.inner'."""
    metrics = provenance.get("metrics")
    if not isinstance(metrics, dict):
        return []
    lines = []
    for name, value in sorted(metrics.items()):
        if isinstance(value, dict):
            lines.extend(("{}.{}".format(name, inner), _value_text(inner_value))
                         for inner, inner_value in sorted(value.items()))
        else:
            lines.append((str(name), _value_text(value)))
    return lines
