"""Export stage: fitted fields -> textured mesh -> asset bundle (docs/bundle.md).

Inputs from the fitting stage are plain numpy callables (this package never
imports torch, so it is reusable and tested with analytic shapes):

* ``sdf(points: np.ndarray[N, 3] float32) -> np.ndarray[N] float32``:
  signed distance in metres, world (bundle) frame of gan2x.conventions,
  negative inside;
* ``materials(points: np.ndarray[N, 3] float32) -> dict(albedo=[N, 3]
  linear in [0, 1], specular=[N] Phong ks, shininess=[N] Phong exponent)``,
  optionally with ``normal=[N, 3]`` (unit SDF gradient, world frame), which
  ``bake`` turns into the tangent-space normal map (frames: ``tangents``).

Both are called with at most ``chunk`` points at a time.

Steps, one module each: ``marching_cubes.extract_mesh`` -> ``uv_unwrap.unwrap``
-> ``bake.bake_textures`` -> ``ambient_occlusion.bake_ambient_occlusion``
(rays in the SDF grid of ``marching_cubes.extract_mesh_and_grid``) ->
``bundle.write_bundle`` (which uses ``ply``,
``images`` and ``gltf``); ``asset.write_asset_bundle`` runs them all.
``report.compose_report`` lays out the bundle's optional report picture.
"""
from .asset import write_asset_bundle
from .bake import bake_textures
from .bundle import SCHEMA_VERSION, CameraSpec, LightSpec, validate_bundle, write_bundle
from .datatypes import BakedTextures, BundleError, ExportError, TexturedMesh, TriangleMesh
from .gltf import read_glb, write_glb
from .marching_cubes import extract_mesh
from .ply import read_ply, write_ply
from .uv_unwrap import unwrap

__all__ = [
    "BakedTextures", "BundleError", "CameraSpec", "ExportError", "LightSpec", "SCHEMA_VERSION",
    "TexturedMesh", "TriangleMesh", "bake_textures", "extract_mesh", "read_glb", "read_ply", "unwrap",
    "validate_bundle", "write_asset_bundle", "write_bundle", "write_glb", "write_ply",
]
