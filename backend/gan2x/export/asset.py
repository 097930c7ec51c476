"""The whole export stage in one call: SDF and material fields -> asset bundle.

``write_asset_bundle`` runs marching cubes, UV unwrap and baking, then
``write_bundle``. Nothing is written at the destination unless every step
succeeds (a materials callable that raises leaves no directory behind), and
the seconds each step took are added to ``provenance["timings"]`` as
``export_mesh``, ``export_unwrap``, ``export_bake``.

Inputs are plain numpy callables (see ``gan2x.export``'s docstring); this
module does not import torch.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .bake import bake_textures
from .bundle import CameraSpec, LightSpec, write_bundle
from .chunking import DEFAULT_CHUNK
from .marching_cubes import extract_mesh
from .uv_unwrap import unwrap


def write_asset_bundle(destination, *, sdf, materials, camera: CameraSpec, light: LightSpec,
                  target_image: np.ndarray, rerender_image: np.ndarray, mask: np.ndarray, provenance: dict,
                  latent: np.ndarray | None = None, report_image: np.ndarray | None = None,
                  resolution: int = 128, bound: float = 1.0,
                  texture_size: int = 1024, padding_px: int = 4, largest_component: bool = True,
                  unwrap_method: str = "auto", chunk: int = DEFAULT_CHUNK) -> Path:
    """Extracts, unwraps and bakes the asset, then writes the bundle at
    ``destination`` atomically; returns its path. ``report_image``: the
    optional picture of the fit (``write_bundle``)."""
    timings = {}
    start = time.perf_counter()
    mesh = extract_mesh(sdf, resolution=resolution, bound=bound, chunk=chunk, largest_component=largest_component)
    timings["export_mesh"] = time.perf_counter() - start

    start = time.perf_counter()
    textured = unwrap(mesh, texture_size=texture_size, padding=padding_px, method=unwrap_method)
    timings["export_unwrap"] = time.perf_counter() - start

    start = time.perf_counter()
    textures = bake_textures(textured, materials, size=texture_size, padding_px=padding_px, chunk=chunk)
    timings["export_bake"] = time.perf_counter() - start

    provenance = dict(provenance)
    provenance["timings"] = dict(provenance.get("timings") or {}, **{k: round(v, 4) for k, v in timings.items()})
    settings = dict(provenance.get("settings") or {})
    settings.setdefault("export", {"resolution": int(resolution), "bound": float(bound),
                                   "texture_size": int(texture_size), "padding_px": int(padding_px),
                                   "largest_component": bool(largest_component), "unwrap_method": unwrap_method})
    provenance["settings"] = settings
    return write_bundle(destination, mesh=textured, textures=textures, camera=camera, light=light,
                        target_image=target_image, rerender_image=rerender_image, mask=mask,
                        provenance=provenance, latent=latent, report_image=report_image)
