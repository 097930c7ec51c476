"""The whole export stage: SDF and material fields -> asset bundle.

``build_asset`` runs marching cubes, UV unwrap, baking, the optional bake
of the target image into the albedo (``image_bake``) and the ambient
occlusion bake (rays marched in the SDF grid marching cubes sampled:
``ambient_occlusion``), in memory; ``write_built_asset`` writes the result
with ``write_bundle``; ``write_asset_bundle`` does both. Nothing is written
at the destination unless every step succeeds (a materials callable that
raises leaves no directory behind), and the seconds each step took are
added to ``provenance["timings"]`` as ``export_mesh``, ``export_unwrap``,
``export_bake``, ``export_image_bake``, ``export_ambient_occlusion``.

Inputs are plain numpy callables (see ``gan2x.export``'s docstring); this
module does not import torch.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .ambient_occlusion import bake_ambient_occlusion
from .bake import bake_textures, rasterize_uv
from .bundle import CameraSpec, LightSpec, write_bundle
from .chunking import DEFAULT_CHUNK
from .datatypes import BakedTextures, TexturedMesh
from .image_bake import ImageBakeSettings, bake_image_into_albedo
from .marching_cubes import extract_mesh_and_grid
from .uv_unwrap import unwrap


@dataclass
class ImageBakeInput:
    """The target image to bake into the albedo (``image_bake``): linear RGB
    [R, R, 3] in [0, 1] and the fit's object mask [R, R] in [0, 1], seen by
    the bundle's camera under its light."""
    image_linear: np.ndarray
    mask: np.ndarray
    settings: ImageBakeSettings = field(default_factory=ImageBakeSettings)


@dataclass
class BuiltAsset:
    """The exported asset in memory: the textured mesh, its textures, the
    image bake's weight [S, S] (None without one), the seconds of each step
    and the export settings (provenance's ``settings.export``)."""
    mesh: TexturedMesh
    textures: BakedTextures
    image_weight: np.ndarray | None
    timings: dict
    settings: dict


def build_asset(*, sdf, materials, resolution: int = 128, bound: float = 1.0, texture_size: int = 1024,
                padding_px: int = 4, largest_component: bool = True, unwrap_method: str = "auto",
                chunk: int = DEFAULT_CHUNK, ambient_occlusion: bool = True, camera: CameraSpec | None = None,
                light: LightSpec | None = None, image_bake: ImageBakeInput | None = None) -> BuiltAsset:
    """Extracts, unwraps and bakes the asset (module docstring).
    ``image_bake`` (needs ``camera`` and ``light``): bake that image into the
    albedo; ``ambient_occlusion``: bake the optional AO texture
    (docs/bundle.md)."""
    timings = {}
    start = time.perf_counter()
    mesh, grid = extract_mesh_and_grid(sdf, resolution=resolution, bound=bound, chunk=chunk,
                                       largest_component=largest_component)
    timings["export_mesh"] = time.perf_counter() - start

    start = time.perf_counter()
    textured = unwrap(mesh, texture_size=texture_size, padding=padding_px, method=unwrap_method)
    timings["export_unwrap"] = time.perf_counter() - start

    start = time.perf_counter()
    raster = rasterize_uv(textured, texture_size)  # one texel-to-triangle map for every bake
    textures = bake_textures(textured, materials, size=texture_size, padding_px=padding_px, chunk=chunk,
                             raster=raster)
    timings["export_bake"] = time.perf_counter() - start

    image_weight = None
    if image_bake is not None:
        if camera is None or light is None:
            raise ValueError("the image bake needs the camera and the light that saw the image")
        start = time.perf_counter()
        textures, image_weight = bake_image_into_albedo(textured, textures, camera, light, image_bake.image_linear,
                                                        image_bake.mask, image_bake.settings,
                                                        raster=raster)
        timings["export_image_bake"] = time.perf_counter() - start

    if ambient_occlusion:
        start = time.perf_counter()
        textures = dataclasses.replace(textures, ambient_occlusion=bake_ambient_occlusion(
            textured, grid, size=texture_size, padding_px=padding_px, raster=raster))
        timings["export_ambient_occlusion"] = time.perf_counter() - start
    settings = {"resolution": int(resolution), "bound": float(bound), "texture_size": int(texture_size),
                "padding_px": int(padding_px), "largest_component": bool(largest_component),
                "unwrap_method": unwrap_method, "ambient_occlusion": bool(ambient_occlusion),
                "image_bake": image_bake.settings.to_dict() if image_bake is not None else None}
    return BuiltAsset(mesh=textured, textures=textures, image_weight=image_weight, timings=timings,
                      settings=settings)


def write_built_asset(destination, asset: BuiltAsset, *, camera: CameraSpec, light: LightSpec,
                      target_image: np.ndarray, rerender_image: np.ndarray, mask: np.ndarray, provenance: dict,
                      latent: np.ndarray | None = None, report_image: np.ndarray | None = None) -> Path:
    """Writes ``asset`` as a bundle at ``destination`` atomically
    (``write_bundle``, whose arguments these are); returns its path."""
    provenance = dict(provenance)
    provenance["timings"] = dict(provenance.get("timings") or {},
                                 **{k: round(v, 4) for k, v in asset.timings.items()})
    settings = dict(provenance.get("settings") or {})
    settings.setdefault("export", asset.settings)
    provenance["settings"] = settings
    return write_bundle(destination, mesh=asset.mesh, textures=asset.textures, camera=camera, light=light,
                        target_image=target_image, rerender_image=rerender_image, mask=mask,
                        provenance=provenance, latent=latent, report_image=report_image)


def write_asset_bundle(destination, *, sdf, materials, camera: CameraSpec, light: LightSpec,
                       target_image: np.ndarray, rerender_image: np.ndarray, mask: np.ndarray, provenance: dict,
                       latent: np.ndarray | None = None, report_image: np.ndarray | None = None,
                       resolution: int = 128, bound: float = 1.0,
                       texture_size: int = 1024, padding_px: int = 4, largest_component: bool = True,
                       unwrap_method: str = "auto", chunk: int = DEFAULT_CHUNK,
                       ambient_occlusion: bool = True) -> Path:
    """``build_asset`` (no image bake), then ``write_built_asset``."""
    asset = build_asset(sdf=sdf, materials=materials, resolution=resolution, bound=bound,
                        texture_size=texture_size, padding_px=padding_px, largest_component=largest_component,
                        unwrap_method=unwrap_method, chunk=chunk, ambient_occlusion=ambient_occlusion)
    return write_built_asset(destination, asset, camera=camera, light=light, target_image=target_image,
                             rerender_image=rerender_image, mask=mask, provenance=provenance, latent=latent,
                             report_image=report_image)
