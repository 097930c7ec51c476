"""``/v1/health`` (public) and ``/v1/capabilities``."""
from __future__ import annotations

from dataclasses import fields

import torch
from fastapi import APIRouter

from ... import __version__
from ...fit.schedule import PRESETS
from ...generators import KNOWN_SPECS
from .. import schemas
from ..state import Service
from .views import error_responses

public = APIRouter(tags=["system"])
router = APIRouter(tags=["system"])


@public.get("/v1/health", response_model=schemas.Health, summary="Is the service up? (no token needed)")
def health() -> schemas.Health:
    return schemas.Health(status="ok", version=__version__)


def _range(field_name: str, model) -> schemas.Range:
    info = model.model_fields[field_name]
    bounds = {type(item).__name__: item for item in info.metadata}
    return schemas.Range(minimum=bounds["Ge"].ge, maximum=bounds["Le"].le, default=info.default)


@router.get("/v1/capabilities", response_model=schemas.Capabilities, responses=error_responses(),
            summary="Version, device, generators, presets, setting ranges and limits")
def capabilities(service: Service) -> schemas.Capabilities:
    config = service.config
    presets = {name: schemas.PresetInfo(total_steps=preset.total_steps(),
                                        **{f.name: getattr(preset, f.name) for f in fields(preset)
                                           if f.name in schemas.PresetInfo.model_fields})
               for name, preset in PRESETS.items()}
    allowed = service.generators
    generator_info = [schemas.GeneratorInfo(name=name, kind=allowed.resolve(name).partition(":")[0],
                                            builtin=name in KNOWN_SPECS,
                                            resolution=service.generator_resolutions[name])
                      for name in allowed.names()]
    return schemas.Capabilities(
        version=__version__, torch_version=torch.__version__, device=config.device,
        worker_devices=service.devices[:config.workers], workers=config.workers,
        cuda_available=torch.cuda.is_available(), generators=allowed.names(),
        generator_info=generator_info, presets=presets,
        job_kinds={
            "sample": schemas.JobKindInfo(available=True, note="a generator sample by spec and seed"),
            "image": schemas.JobKindInfo(
                available=True, note="an uploaded image: cropped (crop_x, crop_y, crop_scale), inverted into "
                                     "the generator's latent space, then fitted"),
        },
        settings={name: _range(name, schemas.JobSettings)
                  for name in ("steps_scale", "stages", "pseudo_samples", "mesh_resolution", "texture_size")},
        source={name: _range(name, schemas.SampleSource) for name in ("seed", "truncation")},
        max_batch_items=schemas.MAX_BATCH_ITEMS,
        uploads=schemas.UploadLimitsInfo(max_bytes=config.uploads.max_bytes, max_pixels=config.uploads.max_pixels,
                                         min_side=config.uploads.min_side, formats=list(config.uploads.formats)))
