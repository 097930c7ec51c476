"""The exported asset rendered as a renderer would: the textured mesh, its
baked textures and the bundle's camera and light, with Phong shading
(``gan2x.conventions``). numpy only.

This is the bundle's own re-render: what a user gets in Blender, not what
the fields looked like while fitting. Each pixel averages ``supersample^2``
samples on a regular grid (so silhouettes are anti-aliased like the
volume renderer's soft edges). Textures are read bilinearly at the
interpolated UVs; normals are the interpolated vertex normals, bent by the
tangent-space normal map (``export.tangents``) when the textures carry one.
"""
from __future__ import annotations

import numpy as np

from .. import conventions
from .bundle import CameraSpec, LightSpec
from .datatypes import BakedTextures, TexturedMesh
from .raster import rasterize_view, sample_bilinear, uv_to_texture_xy


def interpolate(values: np.ndarray, faces: np.ndarray, face: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-vertex ``values`` [V, C] at points given by face [K] and barycentric
    weights [K, 3] -> [K, C]."""
    corners = values[faces[face].astype(np.int64)]  # [K, 3, C]
    return np.einsum("kc,kcd->kd", weights, corners)


def surface_normals(mesh: TexturedMesh, textures: BakedTextures | None, face: np.ndarray,
                    weights: np.ndarray) -> np.ndarray:
    """Unit world-frame shading normals [K, 3] at the given surface points:
    the interpolated vertex normals, bent by ``textures.normal`` when it is
    not flat."""
    normals = interpolate(mesh.normals.astype(np.float64), mesh.faces, face, weights)
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    if textures is None or _is_flat(textures.normal):
        return normals
    from .tangents import apply_normal_map  # the normal map's frames live with its bake
    uv = interpolate(mesh.uvs.astype(np.float64), mesh.faces, face, weights)
    tangent_space = sample_bilinear(textures.normal.astype(np.float64), uv_to_texture_xy(uv, textures.normal.shape[0]))
    return apply_normal_map(mesh, face, weights, tangent_space)


def _is_flat(normal_map: np.ndarray) -> bool:
    return bool(np.all(np.abs(normal_map[..., :2]) < 1e-6))


def surface_samples(mesh: TexturedMesh, textures: BakedTextures, face: np.ndarray, weights: np.ndarray) -> dict:
    """The asset at surface points given by face [K] and barycentric weights
    [K, 3]: ``points`` [K, 3] metres, ``albedo`` [K, 3] linear, ``specular``
    [K], ``shininess`` [K] (textures read bilinearly) and ``normal`` [K, 3]
    (``surface_normals``)."""
    uv = interpolate(mesh.uvs.astype(np.float64), mesh.faces, face, weights)
    texture_xy = uv_to_texture_xy(uv, textures.albedo.shape[0])
    return {"points": interpolate(mesh.vertices.astype(np.float64), mesh.faces, face, weights),
            "albedo": sample_bilinear(textures.albedo.astype(np.float64), texture_xy),
            "specular": sample_bilinear(textures.specular.astype(np.float64), texture_xy),
            "shininess": sample_bilinear(textures.shininess.astype(np.float64), texture_xy),
            "normal": surface_normals(mesh, textures, face, weights)}


def unit_towards(points: np.ndarray, position) -> np.ndarray:
    """Unit vectors [K, 3] from points [K, 3] towards ``position`` [3]."""
    towards = np.asarray(position, np.float64) - points
    return towards / np.maximum(np.linalg.norm(towards, axis=1, keepdims=True), 1e-12)


def phong_terms(specular: np.ndarray, shininess: np.ndarray, normal: np.ndarray, towards_camera: np.ndarray,
                light: LightSpec) -> tuple[np.ndarray, np.ndarray]:
    """``conventions``' Phong model split in its two terms at K points:
    the diffuse shading ``ka + kd max(0, n.l)`` [K] that multiplies the
    albedo, and the highlight ``kd ks max(0, r.v)^n`` [K] (0 where n.l <= 0)
    that adds to it; ks [K], exponent [K], unit normal / towards_camera
    [K, 3], the light's direction (world frame) and strengths from ``light``."""
    towards_light = np.asarray(light.towards_light, np.float64)
    towards_light = towards_light / np.linalg.norm(towards_light)
    n_dot_l = normal @ towards_light
    mirror = 2.0 * n_dot_l[:, None] * normal - towards_light
    r_dot_v = np.clip((mirror * towards_camera).sum(axis=1), 1e-6, None)
    highlight = light.diffuse_strength * specular * np.where(n_dot_l > 0, r_dot_v ** shininess, 0.0)
    shading = light.ambient_strength + light.diffuse_strength * np.clip(n_dot_l, 0.0, None)
    return shading, highlight


def render_asset(mesh: TexturedMesh, textures: BakedTextures, camera: CameraSpec, light: LightSpec,
                 size: int | None = None, supersample: int = 2, world_from_camera: np.ndarray | None = None) -> dict:
    """The textured mesh seen by ``camera`` (or by ``world_from_camera``, same
    intrinsics) at ``size`` pixels a side (default: the camera's width).

    Returns ``radiance`` [S, S, 3] linear, the object's colour where it
    covers the pixel (0 elsewhere, premultiplied by coverage) and
    ``coverage`` [S, S] in [0, 1] (the fraction of each pixel's samples on
    the object). Composite: ``radiance + (1 - coverage) * background``."""
    size = int(size or camera.image_width)
    samples = size * int(supersample)
    pose = np.asarray(camera.world_from_camera if world_from_camera is None else world_from_camera, np.float64)
    fragments = rasterize_view(mesh.vertices.astype(np.float64), mesh.faces, pose, samples, camera.fov_y_degrees)
    covered = np.flatnonzero(fragments.covered)
    surface = surface_samples(mesh, textures, fragments.face[covered], fragments.weights[covered])
    shading, highlight = phong_terms(surface["specular"], surface["shininess"], surface["normal"],
                                     unit_towards(surface["points"], pose[:3, 3]), light)
    radiance = np.zeros((samples * samples, 3))
    radiance[covered] = surface["albedo"] * shading[:, None] + highlight[:, None]
    coverage = fragments.covered.astype(np.float64)
    s = int(supersample)
    radiance = radiance.reshape(size, s, size, s, 3).mean(axis=(1, 3))
    coverage = coverage.reshape(size, s, size, s).mean(axis=(1, 3))
    return {"radiance": radiance.astype(np.float32), "coverage": coverage.astype(np.float32)}


def surface_maps(mesh: TexturedMesh, textures: BakedTextures, camera: CameraSpec, size: int | None = None) -> dict:
    """What the camera sees of the asset at each pixel centre (no
    anti-aliasing): ``albedo`` [S, S, 3] linear, ``specular`` [S, S],
    ``shininess`` [S, S], ``normal`` [S, S, 3] unit world-frame shading
    normals (normal map included) and ``covered`` [S, S] bool; zero where
    nothing is covered."""
    size = int(size or camera.image_width)
    pose = np.asarray(camera.world_from_camera, np.float64)
    fragments = rasterize_view(mesh.vertices.astype(np.float64), mesh.faces, pose, size, camera.fov_y_degrees)
    covered = np.flatnonzero(fragments.covered)
    surface = surface_samples(mesh, textures, fragments.face[covered], fragments.weights[covered])
    out = {}
    for key in ("albedo", "specular", "shininess", "normal"):
        values = np.zeros((size * size, *surface[key].shape[1:]))
        values[covered] = surface[key]
        out[key] = values.reshape(size, size, *surface[key].shape[1:]).astype(np.float32)
    out["covered"] = fragments.covered.reshape(size, size)
    return out


def composite_srgb(render: dict, background_linear) -> np.ndarray:
    """A ``render_asset`` result over a linear background ([S, S, 3] or [3])
    -> sRGB-encoded [S, S, 3] in [0, 1]."""
    background = np.broadcast_to(np.asarray(background_linear, np.float64), render["radiance"].shape)
    linear = render["radiance"] + (1.0 - render["coverage"][..., None]) * background
    return conventions.srgb_from_linear(np.clip(linear, 0.0, None)).clip(0.0, 1.0).astype(np.float32)
