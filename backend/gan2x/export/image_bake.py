"""The target image baked into the albedo texture: the detail the fields
smooth away (eyes, mouth, hair strands, freckles) comes back from the pixels.

For every covered texel (``bake.rasterize_uv``) with
surface point ``p``, shading normal ``n`` (``mesh_render.surface_normals``,
what the renderer will use) and the fitted specular texture:

1. ``p`` is projected into the target camera; it is *seen* when it lies in
   front of the mesh's own z-buffer there (a ``zbuffer_supersample`` times
   finer image, depth tolerance ``depth_tolerance_m``).
2. Its weight is the product of a facing ramp (``n . v`` from
   ``facing_min`` to ``facing_full``: grazing texels, where one pixel covers
   a long strip, get little or nothing) and the fit's object mask, eroded by
   one pixel and ramped from ``mask_min`` to ``mask_full`` (pixels on the
   silhouette mix object and background; none of their colour may reach
   the object).
3. The image's linear colour there, less the fitted highlight, divided by
   the fitted diffuse shading (``ka + kd max(0, n.l)``), is the texel's
   albedo from the image (clipped to [0, 1]; shading below
   ``min_shading`` gives no weight).
4. albedo = weight * image albedo + (1 - weight) * the fields' albedo.

Texels the image does not see keep the fields' values (the field is the
fit's estimate from every view; no smear). With ``mirror`` the texels the
target does not see, or sees at a grazing angle, take the image albedo of
their mirror point across the x = 0 plane (left-right symmetric objects,
such as faces) when that point is well seen.

Units: image colours linear RGB in [0, 1], [R, R, 3] row 0 at the top;
mask [R, R] in [0, 1]; metres; the camera and light as in the bundle.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from .bake import rasterize_uv
from .bundle import CameraSpec, LightSpec
from .datatypes import BakedTextures, TexturedMesh
from .mesh_render import interpolate, phong_terms, surface_samples, unit_towards
from .raster import project_points, rasterize_view, sample_bilinear


@dataclass(frozen=True)
class ImageBakeSettings:
    facing_min: float = 0.25
    facing_full: float = 0.55
    mask_min: float = 0.5
    mask_full: float = 0.95
    min_shading: float = 0.05
    depth_tolerance_m: float = 0.02
    zbuffer_supersample: int = 4
    mirror: bool = False
    """Fill texels the image does not see at all from their mirror point
    (x -> -x). Off by default: on the real DCGAN's tuning seeds, filling
    the grazing texels this way cost the target view about 5 dB."""

    def to_dict(self) -> dict:
        return asdict(self)


def erode_mask(mask: np.ndarray) -> np.ndarray:
    """The 3x3 minimum of mask [H, W] (edges replicated)."""
    padded = np.pad(mask, 1, mode="edge")
    height, width = mask.shape
    return np.min([padded[r:r + height, c:c + width] for r in range(3) for c in range(3)], axis=0)


def _ramp(values: np.ndarray, low: float, high: float) -> np.ndarray:
    return np.clip((values - low) / max(high - low, 1e-9), 0.0, 1.0)


def image_albedo(mesh: TexturedMesh, textures: BakedTextures, camera: CameraSpec, light: LightSpec,
                 image_linear: np.ndarray, mask: np.ndarray, points: np.ndarray, face: np.ndarray,
                 weights: np.ndarray, settings: ImageBakeSettings, zbuffer=None):
    """Albedo [K, 3] read from the image at the surface points [K, 3] (on
    faces ``face`` with ``weights``) and its weight [K] in [0, 1]."""
    resolution = image_linear.shape[0]
    pose = np.asarray(camera.world_from_camera, np.float64)
    if zbuffer is None:
        zbuffer = rasterize_view(mesh.vertices.astype(np.float64), mesh.faces, pose,
                                 resolution * settings.zbuffer_supersample, camera.fov_y_degrees)
    xy, depth = project_points(points, pose, resolution, camera.fov_y_degrees)
    fine = np.clip(np.floor(xy * settings.zbuffer_supersample).astype(np.int64), 0, zbuffer.size - 1)
    nearest = zbuffer.depth[fine[:, 1] * zbuffer.size + fine[:, 0]]
    inside = (xy >= 0).all(axis=1) & (xy <= resolution).all(axis=1)
    seen = inside & (depth <= nearest + settings.depth_tolerance_m)

    surface = surface_samples(mesh, textures, face, weights)
    towards_camera = unit_towards(points, pose[:3, 3])
    facing = (surface["normal"] * towards_camera).sum(axis=1)
    shading, highlight = phong_terms(surface["specular"], surface["shininess"], surface["normal"], towards_camera,
                                     light)

    colour = sample_bilinear(image_linear.astype(np.float64), xy)
    albedo = np.clip((colour - highlight[:, None]) / np.maximum(shading, 1e-6)[:, None], 0.0, 1.0)
    mask_weight = _ramp(sample_bilinear(erode_mask(mask.astype(np.float64)), xy), settings.mask_min,
                        settings.mask_full)
    weight = (seen * _ramp(facing, settings.facing_min, settings.facing_full) * mask_weight
              * (shading >= settings.min_shading))
    return albedo, weight


def bake_image_into_albedo(mesh: TexturedMesh, textures: BakedTextures, camera: CameraSpec, light: LightSpec,
                           image_linear: np.ndarray, mask: np.ndarray,
                           settings: ImageBakeSettings = ImageBakeSettings(), raster=None):
    """A copy of ``textures`` whose albedo carries the image (module
    docstring), and the bake's weight [S, S] in [0, 1] (1: the texel's
    albedo is the image's; 0: the fields'). ``raster``:
    ``bake.rasterize_uv(mesh, S)`` when the caller has it."""
    size = textures.albedo.shape[0]
    texels, face, weights = raster if raster is not None else rasterize_uv(mesh, size)
    points = interpolate(mesh.vertices.astype(np.float64), mesh.faces, face, weights)
    pose = np.asarray(camera.world_from_camera, np.float64)
    zbuffer = rasterize_view(mesh.vertices.astype(np.float64), mesh.faces, pose,
                             image_linear.shape[0] * settings.zbuffer_supersample, camera.fov_y_degrees)
    albedo_image, weight = image_albedo(mesh, textures, camera, light, image_linear, mask, points, face, weights,
                                        settings, zbuffer)
    flat_albedo = textures.albedo.reshape(-1, 3).astype(np.float64)
    field = flat_albedo[texels]
    if settings.mirror:
        mirrored = points * np.array([-1.0, 1.0, 1.0])
        mirror_face, mirror_weights = _closest_surface(mesh, mirrored, face, weights)
        if mirror_face is not None:
            albedo_mirror, weight_mirror = image_albedo(mesh, textures, camera, light, image_linear, mask,
                                                        mirrored, mirror_face, mirror_weights, settings, zbuffer)
            use = weight_mirror * (weight == 0)
            albedo_image = (weight[:, None] * albedo_image + use[:, None] * albedo_mirror) / np.maximum(
                weight + use, 1e-9)[:, None]
            weight = weight + use
    blended = weight[:, None] * albedo_image + (1.0 - weight[:, None]) * field
    albedo = flat_albedo.copy()
    albedo[texels] = blended
    weight_map = np.zeros(size * size)
    weight_map[texels] = weight
    return (replace(textures, albedo=albedo.reshape(textures.albedo.shape).astype(np.float32)),
            weight_map.reshape(size, size).astype(np.float32))


def _closest_surface(mesh: TexturedMesh, points: np.ndarray, face: np.ndarray, weights: np.ndarray):
    """The mesh point nearest each of ``points`` (the mirror images of
    surface points), as (face, weights): through the mirror vertex, found by
    a nearest-vertex search, and the barycentrics of its own face's corner.
    Returns (None, None) when scipy's KD-tree is not available."""
    try:
        from scipy.spatial import cKDTree
    except ImportError:  # scipy comes with scikit-image; without it, no mirror fill
        return None, None
    vertices = mesh.vertices.astype(np.float64)
    _, vertex = cKDTree(vertices).query(points)
    # one face holding each nearest vertex, with the weight all on that corner
    owner_face = np.full(len(vertices), -1, np.int64)
    owner_corner = np.zeros(len(vertices), np.int64)
    for corner in range(3):
        owner_face[mesh.faces[:, corner]] = np.arange(len(mesh.faces))
        owner_corner[mesh.faces[:, corner]] = corner
    mirror_face = owner_face[vertex]
    mirror_weights = np.zeros((len(points), 3))
    mirror_weights[np.arange(len(points)), owner_corner[vertex]] = 1.0
    return mirror_face, mirror_weights
