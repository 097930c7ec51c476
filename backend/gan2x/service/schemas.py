"""Request and response models: the API's contract and its OpenAPI description.

Ranges and defaults come from ``gan2x.config`` (the ``*_RANGE`` constants
here are its (minimum, maximum) pairs), enforced by pydantic (422 with the
field named) and reported by ``GET /v1/capabilities``.
Unknown fields are refused, so a misspelt setting is an error, not a default.
"""
from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from .. import config
from ..config import EXPLORATIONS, PRESET_NAMES

SEED_RANGE = (config.SEED.minimum, config.SEED.maximum)
TRUNCATION_RANGE = (config.TRUNCATION.minimum, config.TRUNCATION.maximum)
STEPS_SCALE_RANGE = (config.STEPS_SCALE.minimum, config.STEPS_SCALE.maximum)
STAGES_RANGE = (config.STAGES.minimum, config.STAGES.maximum)
PSEUDO_SAMPLES_RANGE = (config.PSEUDO_SAMPLES.minimum, config.PSEUDO_SAMPLES.maximum)
MESH_RESOLUTION_RANGE = (config.MESH_RESOLUTION.minimum, config.MESH_RESOLUTION.maximum)
TEXTURE_SIZE_RANGE = (config.TEXTURE_SIZE.minimum, config.TEXTURE_SIZE.maximum)
_CROP = config.RECONSTRUCTION.crop
MAX_BATCH_ITEMS = 256
ID_PATTERN = r"^[0-9a-f]{32}$"

GENERATOR_MAX_LENGTH = 1000
GENERATOR_DESCRIPTION = ("a generator this service allows, by name: a built-in spec (synthetic, synthetic:faces, "
                         "synthetic:objects) or one its operator listed (gan2x serve --generator); "
                         "GET /v1/capabilities lists them, anything else is refused with 422")
PresetName = Literal[PRESET_NAMES]
ExplorationName = Literal[EXPLORATIONS]


class JobState(str, Enum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
    interrupted = "interrupted"
    """Its run was cut by service stops more often than the service retries (docs/service.md)."""


FINAL_STATES = frozenset({JobState.succeeded, JobState.failed, JobState.cancelled, JobState.interrupted})


class _Strict(BaseModel):
    # NaN and infinity (which Python's JSON parser accepts) are refused as "must be a finite number"
    # (errors.py), not with a misleading range message.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# --- requests ---------------------------------------------------------------------------

class SampleSource(_Strict):
    """A sample of a built-in generator, by seed: the image the fit inverts."""
    kind: Literal["sample"]
    generator: str = Field(config.DEFAULT_GENERATOR, min_length=1, max_length=GENERATOR_MAX_LENGTH,
                           description=GENERATOR_DESCRIPTION)
    seed: int = Field(config.SEED.default, ge=SEED_RANGE[0], le=SEED_RANGE[1], description="the sample's seed")
    truncation: float = Field(config.TRUNCATION.default, ge=TRUNCATION_RANGE[0], le=TRUNCATION_RANGE[1],
                              description="truncation psi of the generator's mapping")


class ImageSource(_Strict):
    """An uploaded image (``POST /v1/uploads``): cropped to the generator's
    framing, inverted into its latent space, then fitted
    (``gan2x.pipeline.reconstruct_image``, docs/generators.md)."""
    kind: Literal["image"]
    upload_id: str = Field(pattern=ID_PATTERN, description="the id returned by POST /v1/uploads")
    generator: str = Field(config.DEFAULT_GENERATOR, min_length=1, max_length=GENERATOR_MAX_LENGTH,
                           description=GENERATOR_DESCRIPTION)
    crop_x: float = Field(_CROP.x.default, ge=_CROP.x.minimum, le=_CROP.x.maximum,
                          description="crop centre, a fraction of the width from the left")
    crop_y: float = Field(_CROP.y.default, ge=_CROP.y.minimum, le=_CROP.y.maximum,
                          description="crop centre, a fraction of the height from the top")
    crop_scale: float = Field(_CROP.scale.default, gt=_CROP.scale.minimum, le=_CROP.scale.maximum,
                              description="crop side, a fraction of the image's shorter side; the crop must "
                                          "hold at least the generator's resolution in pixels")


JobSource = Annotated[Union[SampleSource, ImageSource], Field(discriminator="kind")]


class JobSettings(_Strict):
    preset: PresetName = Field(config.PRESET.default, description="quality preset (step counts: /v1/capabilities)")
    steps_scale: float = Field(config.STEPS_SCALE.default, ge=STEPS_SCALE_RANGE[0], le=STEPS_SCALE_RANGE[1],
                               description="multiplies every step count of the preset (at least one step "
                                           "each); 0.01 makes a smoke test of a few seconds")
    stages: int | None = Field(None, ge=STAGES_RANGE[0], le=STAGES_RANGE[1],
                               description="rounds of target fit, exploration and exploitation; "
                                           "null: the preset's")
    pseudo_samples: int | None = Field(None, ge=PSEUDO_SAMPLES_RANGE[0], le=PSEUDO_SAMPLES_RANGE[1],
                                       description="pseudo samples rendered and projected in each exploration; "
                                                   "null: the preset's")
    exploration: ExplorationName | None = Field(
        None, description="how each exploration makes its pseudo samples: projection (the preset's), style_mixing "
                          "(the generator's view layers swapped: generators with per-layer view latents, such as "
                          "synthetic and stylegan2; others fail the job) or mixed (style mixing, then projection); "
                          "null: the preset's")
    mesh_resolution: int = Field(config.MESH_RESOLUTION.default, ge=MESH_RESOLUTION_RANGE[0], le=MESH_RESOLUTION_RANGE[1],
                                 description="marching-cubes grid cells a side")
    texture_size: int = Field(config.TEXTURE_SIZE.default, ge=TEXTURE_SIZE_RANGE[0], le=TEXTURE_SIZE_RANGE[1],
                              description="texture width and height in pixels")


class JobRequest(_Strict):
    source: JobSource
    settings: JobSettings = Field(default_factory=JobSettings)


class BatchRequest(_Strict):
    """Many sources with the same settings; each becomes one job, queued in order."""
    sources: list[JobSource] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)
    settings: JobSettings = Field(default_factory=JobSettings)


# --- responses --------------------------------------------------------------------------

class ErrorDetail(BaseModel):
    code: str = Field(description="stable, machine-readable, snake_case")
    message: str = Field(description="what happened and what to do")
    fields: list[dict[str, Any]] | None = Field(None, description="validation errors: location and message")


class ErrorResponse(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: Literal["ok"]
    version: str


class Range(BaseModel):
    minimum: int | float
    maximum: int | float
    default: int | float | None = Field(description="null: the preset's value")


class PresetInfo(BaseModel):
    stages: int
    target_steps: int
    projection_steps: int
    exploitation_steps: int
    pseudo_samples: int
    rays_per_image: int
    total_steps: int


class JobKindInfo(BaseModel):
    available: bool
    note: str


class UploadLimitsInfo(BaseModel):
    max_bytes: int
    max_pixels: int
    min_side: int
    formats: list[str]


class GeneratorInfo(BaseModel):
    name: str = Field(description="what to send as source.generator")
    kind: Literal["synthetic", "stylegan2", "torchscript", "python"]
    builtin: bool = Field(description="true: built into gan2x; false: listed by the service's operator")
    resolution: int = Field(description="the generator's image size, pixels a side")


class Capabilities(BaseModel):
    version: str
    torch_version: str
    device: str = Field(description="the torch device fits run on")
    worker_devices: list[str] = Field(description="the device of each worker slot")
    workers: int = Field(description="fits that run at once")
    cuda_available: bool
    generators: list[str] = Field(description="the generator names clients may send as source.generator")
    generator_info: list[GeneratorInfo] = Field(description="the same generators, with their kind and resolution")
    presets: dict[str, PresetInfo]
    job_kinds: dict[str, JobKindInfo]
    settings: dict[str, Range]
    source: dict[str, Range]
    max_batch_items: int
    uploads: UploadLimitsInfo


class Upload(BaseModel):
    id: str
    format: str = Field(description="PNG, JPEG or WEBP, as sniffed from the content")
    width: int
    height: int
    bytes: int
    created_at: datetime


class JobProgress(BaseModel):
    stage: str | None = Field(None, description="what the job is doing now")
    step: int = Field(0, description="fit steps done")
    total_steps: int = Field(0, description="fit steps in all (0 until the worker has started)")
    fraction: float = Field(0.0, ge=0.0, le=1.0, description="step / total_steps")
    eta_seconds: float | None = Field(None, description="estimated seconds until the fit's last step "
                                                         "(export follows; running jobs only)")
    preview_url: str | None = Field(None, description="a small PNG render of the current estimate")
    updated_at: datetime | None = None


class JobError(BaseModel):
    code: str
    message: str


class JobResult(BaseModel):
    bundle_url: str = Field(description="the asset bundle as a zip (docs/bundle.md)")
    bundle_bytes: int
    metrics: dict[str, Any]
    timings: dict[str, Any] = Field(description="seconds per stage")


class Job(BaseModel):
    id: str
    kind: Literal["sample", "image"]
    state: JobState
    batch_id: str | None = None
    batch_index: int | None = None
    source: dict[str, Any]
    settings: JobSettings
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    queue_position: int | None = Field(None, description="1 = next to run (queued jobs only)")
    cancel_requested: bool = False
    interruptions: int = Field(0, description="runs cut short by a service stop (then requeued)")
    worker_pid: int | None = Field(None, description="the worker process (running jobs only)")
    device: str | None = None
    progress: JobProgress
    error: JobError | None = None
    result: JobResult | None = None


class JobList(BaseModel):
    jobs: list[Job]


class Batch(BaseModel):
    id: str
    created_at: datetime
    state: Literal["active", "finished"] = Field(description="active while any item is queued or running")
    counts: dict[str, int] = Field(description="items per job state")
    fraction: float = Field(ge=0.0, le=1.0, description="finished items count 1, running ones their fraction")
    items: list[Job]


class BatchList(BaseModel):
    batches: list[Batch]
