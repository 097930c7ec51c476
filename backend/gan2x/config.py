"""The request-level settings of a reconstruction: each one's range and
default, stated once.

The CLI (``gan2x.cli``), the service's API models (``gan2x.service.schemas``)
and the benchmark (``gan2x.bench``) read their defaults and bounds from
here; ``gan2x.pipeline.build_request`` turns the settings into a
``ReconstructionRequest``. The Blender add-on cannot import the backend: a
test (tests/addon/test_settings_match_backend.py) checks that
addon/properties.py states the same ranges and defaults, and that the add-on's
seed parser agrees with ``parse_seeds``.

This module imports neither torch nor anything from the fit, so parsers are
built without them; ``gan2x.fit.settings`` validates its string options
against the tuples here, and a test checks ``PRESET_NAMES`` against the
fit's ``PRESETS``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Generic, Optional, TypeVar

Number = TypeVar("Number", int, float)


@dataclass(frozen=True)
class Range(Generic[Number]):
    """A numeric setting: ``minimum <= value <= maximum`` (``minimum <
    value`` when ``exclusive_minimum``; no upper bound when ``maximum`` is
    None) and its default (None: the preset's value)."""
    minimum: Number
    maximum: Optional[Number]
    default: Optional[Number]
    exclusive_minimum: bool = False

    def check(self, value, name: str = "value"):
        """``value`` if it is in range, else a ValueError naming ``name`` and the range."""
        below = value <= self.minimum if self.exclusive_minimum else value < self.minimum
        if below or (self.maximum is not None and value > self.maximum):
            raise ValueError(f"{name} must be {self.describe()}, not {value}")
        return value

    def describe(self) -> str:
        low = f"more than {self.minimum}" if self.exclusive_minimum else f"at least {self.minimum}"
        return low if self.maximum is None else f"{low} and at most {self.maximum}"


@dataclass(frozen=True)
class Choice:
    """A string setting: one of ``choices``; ``default`` None: the preset's."""
    choices: tuple[str, ...]
    default: Optional[str]


# --- the source: which image the fit inverts --------------------------------------------------

SEED = Range(0, 2 ** 32 - 1, 0)
"""A sample's seed (as for StyleGAN: non-negative, 32 bits)."""
CLI_SEED_DEFAULT = 2
"""The CLI's and the add-on's default seed: a near-frontal face of the
built-in generator (docs/performance.md); the API's default is ``SEED.default``."""
TRUNCATION = Range(0.0, 2.0, 1.0)
CROP_X = Range(0.0, 1.0, 0.5)
"""Photos: crop centre, a fraction of the width from the left."""
CROP_Y = Range(0.0, 1.0, 0.5)
"""Photos: crop centre, a fraction of the height from the top."""
CROP_SCALE = Range(0.0, 1.0, 1.0, exclusive_minimum=True)
"""Photos: crop side, a fraction of the photo's shorter side."""
DEFAULT_GENERATOR = "synthetic"

# --- the fit ------------------------------------------------------------------------------

PRESET_NAMES = ("draft", "standard", "high")
"""= the keys of ``gan2x.fit.settings.PRESETS`` (a test checks)."""
PRESET = Choice(PRESET_NAMES, "draft")
EXPLORATIONS = ("projection", "style_mixing", "mixed")
"""``FitSettings.exploration`` values (``gan2x.fit.settings`` and
``gan2x.fit.style_mixing`` check against this tuple)."""
EXPLORATION = Choice(EXPLORATIONS, None)
STEPS_SCALE = Range(0.01, 4.0, 1.0)
"""Multiplies every step count of the preset (and of the inversion and of
the consistency metric's projection)."""
STAGES = Range(1, 6, None)
PSEUDO_SAMPLES = Range(1, 32, None)

# --- the export -----------------------------------------------------------------------------

MESH_RESOLUTION = Range(32, 512, 192)
"""Marching-cubes grid cells a side over the bounding cube."""
TEXTURE_SIZE = Range(64, 4096, 1024)
"""Texture width and height in pixels (the bundle allows up to 8192)."""

# --- the metrics and the benchmark --------------------------------------------------------------

CONSISTENCY_STEPS = Range(0, None, 200)
"""Projection steps of the novel-view GAN consistency metric (0: leave it
out); = ``gan2x.evaluation.consistency.CONSISTENCY.steps`` (a test checks)."""
ENTANGLEMENT = Range(0.0, 1.0, 0.15)
"""Identity drift of the built-in generator with view and light (the benchmark's)."""

# --- where it runs --------------------------------------------------------------------------

DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
"""The device forms ``gan2x.devices.resolve_device`` accepts (cuda:N: any index)."""
DEFAULT_DEVICE = "auto"


# --- many items on a Ray cluster (gan2x batch, gan2x.scale; docs/scale.md) ----------------------

RAY_MODES = ("local", "auto")
"""``--ray``: ``local`` starts a Ray instance on this machine, ``auto``
joins the cluster this machine belongs to; anything else is a cluster's
address (HEAD:6379 or ray://HEAD:10001)."""
RAY_DEFAULT = "local"
CPUS_PER_FIT = Range(0.0, None, 1.0, exclusive_minimum=True)
"""Ray CPUs a fit reserves (fractions allowed); its torch threads are the
whole part, at least one."""
GPUS_PER_FIT = Range(0.0, None, 0.0)
"""Ray GPUs a fit reserves: 0 fits on the CPU; a fraction below 1 lets
several fits share a GPU; above 1 a whole number (Ray's rule)."""
MAX_RETRIES = Range(0, 10, 2)
"""Retries of one item: Ray's, of a task whose worker died, and as many of
an error marked transient (``gan2x.scale.task.is_transient``)."""


# --- the tree ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class SourceConfig:
    generator: str = DEFAULT_GENERATOR
    seed: Range = SEED
    truncation: Range = TRUNCATION


@dataclass(frozen=True)
class CropConfig:
    x: Range = CROP_X
    y: Range = CROP_Y
    scale: Range = CROP_SCALE


@dataclass(frozen=True)
class FitConfig:
    preset: Choice = PRESET
    steps_scale: Range = STEPS_SCALE
    exploration: Choice = EXPLORATION
    stages: Range = STAGES
    pseudo_samples: Range = PSEUDO_SAMPLES


@dataclass(frozen=True)
class ExportConfig:
    mesh_resolution: Range = MESH_RESOLUTION
    texture_size: Range = TEXTURE_SIZE


@dataclass(frozen=True)
class ReconstructionConfig:
    """Every request-level setting, as a tree. ``steps_scale`` (in ``fit``)
    also scales the inversion's steps (photos) and the consistency metric's."""
    source: SourceConfig = field(default_factory=SourceConfig)
    crop: CropConfig = field(default_factory=CropConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    consistency_steps: Range = CONSISTENCY_STEPS
    device: str = DEFAULT_DEVICE


RECONSTRUCTION = ReconstructionConfig()


@dataclass(frozen=True)
class BatchConfig:
    """``gan2x batch``'s own settings (each item's reconstruction settings
    are ``RECONSTRUCTION``'s)."""
    ray: Choice = Choice(RAY_MODES, RAY_DEFAULT)
    cpus_per_fit: Range = CPUS_PER_FIT
    gpus_per_fit: Range = GPUS_PER_FIT
    max_retries: Range = MAX_RETRIES


BATCH = BatchConfig()


# --- seeds ------------------------------------------------------------------------------------

SEED_ITEM = re.compile(r"([0-9]+)(?:-([0-9]+))?")


def parse_seeds(text: str) -> list[int]:
    """``"1-4,7"`` -> ``[1, 2, 3, 4, 7]``: comma-separated seeds or inclusive
    ranges (spaces around items and empty items are ignored). Raises
    ValueError on a malformed item (a negative or non-numeric seed), a range
    that runs backwards, a seed past ``SEED.maximum`` or no seeds at all.
    (addon/convert.py holds a copy, since the add-on cannot import the
    backend; tests/addon/test_settings_match_backend.py checks they agree.)"""
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        match = SEED_ITEM.fullmatch(part)
        if match is None:
            raise ValueError(f"seeds are numbers and ranges like 1,2,5-7, not {part!r}")
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        if last < first:
            raise ValueError(f"the range {part!r} runs backwards")
        if last > SEED.maximum:
            raise ValueError(f"seed {last} is past the largest, {SEED.maximum}")
        seeds.extend(range(first, last + 1))
    if not seeds:
        raise ValueError("no seeds given")
    return seeds
