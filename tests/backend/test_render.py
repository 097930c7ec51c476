"""Cameras, Phong shading and volume rendering of the SDF (backend/gan2x/render)."""
import math

import numpy as np
import pytest
import torch

from gan2x import conventions
from gan2x.fields import EllipsoidPriorSDF, MaterialField
from gan2x.fit.asset_model import AssetModel
from gan2x.fit.image_state import ImageState
from gan2x.measure import metrics
from gan2x.render.cameras import camera_rays, orbit_world_from_camera, pixel_directions_camera
from gan2x.render.phong import phong
from gan2x.render.volume import SamplingSettings, SDFGridCache, sphere_interval


@pytest.mark.parametrize("yaw,pitch", [(0.0, 0.0), (0.4, -0.2), (-0.7, 0.3)])
def test_torch_orbit_camera_matches_the_shared_convention(yaw, pitch):
    expected = conventions.orbit_world_from_camera(yaw, pitch)
    actual = orbit_world_from_camera(torch.tensor([yaw], dtype=torch.float64),
                                     torch.tensor([pitch], dtype=torch.float64))[0].numpy()
    np.testing.assert_allclose(actual, expected, atol=1e-12)
    # The camera looks at the origin: its -Z axis points from its position to it.
    position = expected[:3, 3]
    np.testing.assert_allclose(-expected[:3, 2], -position / np.linalg.norm(position), atol=1e-12)


def test_pixel_directions_follow_the_field_of_view():
    resolution = 64
    directions = pixel_directions_camera(resolution, dtype=torch.float64).reshape(resolution, resolution, 3)
    # Row 0 is the top of the image: +Y in the camera frame; column 0 is the left (-X).
    assert directions[0, 32, 1] > 0 and directions[32, 0, 0] < 0
    # The left edge of the image is half the field of view away from the axis.
    focal = conventions.focal_length_px(resolution)
    edge = torch.tensor([-resolution / 2 / focal, 0.0, -1.0], dtype=torch.float64)
    edge = edge / edge.norm()
    angle = math.degrees(math.acos(float(-edge[2])))
    assert angle == pytest.approx(conventions.FOV_DEGREES / 2, rel=1e-9)


def test_phong_terms():
    albedo = torch.tensor([[0.5, 0.4, 0.3]])
    up = torch.tensor([[0.0, 0.0, 1.0]])
    ones = torch.ones(1)
    # Light and viewer along the normal: full diffuse plus the whole highlight.
    head_on = phong(albedo, 0.2 * ones, 30.0 * ones, up, up, up, 0.3 * ones, 0.6 * ones)
    torch.testing.assert_close(head_on, albedo * 0.9 + 0.6 * 0.2)
    # Light behind the surface: ambient only, no highlight.
    behind = phong(albedo, 0.2 * ones, 30.0 * ones, up, -up, up, 0.3 * ones, 0.6 * ones)
    torch.testing.assert_close(behind, albedo * 0.3)
    # Light at 60 degrees, viewer on the mirror direction: diffuse halves, highlight stays whole.
    light = torch.tensor([[math.sin(math.pi / 3), 0.0, 0.5]])
    mirror = torch.tensor([[-math.sin(math.pi / 3), 0.0, 0.5]])
    tilted = phong(albedo, 0.2 * ones, 30.0 * ones, up, light, mirror, 0.3 * ones, 0.6 * ones)
    torch.testing.assert_close(tilted, albedo * (0.3 + 0.6 * 0.5) + 0.6 * 0.2)


def test_sphere_interval():
    origins = torch.tensor([[0.0, 0.0, 12.0], [0.0, 2.0, 12.0]])
    directions = torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, -1.0]])
    near, far, hit = sphere_interval(origins, directions, 1.0)
    assert hit.tolist() == [True, False]
    assert near[0].item() == pytest.approx(11.0) and far[0].item() == pytest.approx(13.0)


def _analytic_ellipsoid_hits(semi_axes, origins, directions):
    """Exact ray-ellipsoid intersections: distance, unit normal, hit."""
    a = torch.tensor(semi_axes, dtype=torch.float64)
    o, d = origins.double() / a, directions.double() / a
    qa, qb, qc = (d * d).sum(-1), 2 * (o * d).sum(-1), (o * o).sum(-1) - 1
    disc = qb * qb - 4 * qa * qc
    hit = disc > 0
    t = (-qb - disc.clamp(min=0).sqrt()) / (2 * qa)
    points = origins.double() + t[..., None] * directions.double()
    normal = points / a ** 2
    return t, normal / normal.norm(dim=-1, keepdim=True), hit


def test_volume_render_of_the_ellipsoid_prior_matches_ray_casting():
    torch.manual_seed(0)
    semi_axes = (0.6, 0.75, 0.5)
    model = AssetModel(semi_axes=semi_axes)  # residual starts at exactly zero
    state = ImageState(yaw=0.3, pitch=-0.1)
    resolution = 32
    out = model.render_image(state, resolution, SamplingSettings(coarse_grid=0))
    world_from_camera = state.world_from_camera().detach()[None]
    origins, directions = camera_rays(world_from_camera, pixel_directions_camera(resolution))
    t, normal, hit = _analytic_ellipsoid_hits(semi_axes, origins[0], directions[0])
    hit = hit.reshape(resolution, resolution)
    # Silhouette: opaque inside, clear outside, away from the one-pixel edge
    # (where the density's width, ~beta, decides).
    padded = torch.nn.functional.pad(hit.float()[None, None], (1, 1, 1, 1), mode="replicate")
    neighbours = torch.nn.functional.max_pool2d(padded, 3, 1)[0, 0], -torch.nn.functional.max_pool2d(-padded, 3, 1)[0, 0]
    inside, outside = neighbours[1] > 0.5, neighbours[0] < 0.5
    assert inside.sum() > 100 and outside.sum() > 100
    assert (out["opacity"][inside] > 0.95).all()
    assert (out["opacity"][outside] < 0.2).all() and (out["opacity"][outside] < 0.02).float().mean() > 0.9
    interior = hit & (out["opacity"] > 0.99)
    distance_error = (out["distance"] - t.reshape(resolution, resolution).float()).abs()[interior]
    assert distance_error.max() < 0.02  # metres
    mad = metrics.mean_angle_deviation(out["normal"], normal.reshape(resolution, resolution, 3), interior)
    assert mad < 3.0


def test_sdf_grid_cache_tracks_the_field_near_the_surface():
    sdf = EllipsoidPriorSDF()
    with torch.no_grad():
        sdf.residual[-1].weight.normal_(0, 0.5)  # a non-trivial shape
    cache = SDFGridCache(sdf, resolution=64)
    points = torch.rand(4096, 3) * 1.6 - 0.8
    with torch.no_grad():
        exact = sdf(points)
    near_surface = exact.abs() < 0.1
    assert (cache(points)[near_surface] - exact[near_surface]).abs().max() < 0.02


def test_material_field_respects_its_ranges():
    field = MaterialField()
    values = field(torch.rand(256, 3) * 2 - 1)
    assert values["albedo"].min() >= 0 and values["albedo"].max() <= 1
    assert values["specular"].min() >= 0 and values["specular"].max() <= 1
    assert values["shininess"].min() >= conventions.SHININESS_MIN
    assert values["shininess"].max() <= conventions.SHININESS_MAX
