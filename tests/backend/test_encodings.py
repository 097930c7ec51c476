"""Input encodings of the neural fields (backend/gan2x/fields/encodings.py):
Fourier features, SphereHead's spherical tri-plane and the multiresolution
hash grid, and the fields and asset model built on each."""
import math

import pytest
import torch

from gan2x.fields import EllipsoidPriorSDF, MaterialField
from gan2x.fields.encodings import (HASH_PRIMES, FourierFeatures, HashGridEncoding, SphericalTriplane,
                                    make_encoding, mlp)
from gan2x.fit.asset_model import AssetModel
from gan2x.fit.image_state import ImageState
from gan2x.render.volume import SamplingSettings

ENCODINGS = ["fourier", "triplane", "hashgrid"]


def _randomise(module: torch.nn.Module, seed: int = 0) -> None:
    """Unit-scale parameters, so that any discontinuity shows at full size
    (the small initialisation would hide it)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))


def _spherical(r, theta, phi) -> torch.Tensor:
    """World-frame points (+Y polar axis, phi = 0 at +Z, growing towards +X): [..., 3]."""
    r, theta, phi = (torch.as_tensor(v, dtype=torch.float64) for v in (r, theta, phi))
    return torch.stack([r * torch.sin(theta) * torch.sin(phi), r * torch.cos(theta),
                        r * torch.sin(theta) * torch.cos(phi)], dim=-1).float()


# --- shapes, factory, gradients -------------------------------------------------------------

@pytest.mark.parametrize("name", ENCODINGS)
def test_output_shape_matches_output_dim(name):
    encoding = make_encoding(name)
    points = torch.rand(2, 5, 3) * 2 - 1
    features = encoding(points)
    assert features.shape == (2, 5, encoding.output_dim)
    assert torch.isfinite(features).all()


def test_output_dims_of_each_encoding():
    assert make_encoding("fourier", num_frequencies=3).output_dim == 3 + 18
    assert SphericalTriplane(channels=8).output_dim == 3 * 8 + 3
    assert SphericalTriplane(channels=4, include_points=False).output_dim == 12
    grid = HashGridEncoding(num_levels=6, features_per_level=2)
    assert grid.output_dim == 6 * 2 + 3
    assert len(grid.resolutions) == 6 and grid.resolutions[0] == 16 and grid.resolutions[-1] == 256
    assert all(a < b for a, b in zip(grid.resolutions, grid.resolutions[1:]))
    # Coarse levels dense, fine levels hashed into the 2^T table.
    assert grid.dense_levels[0] and not grid.dense_levels[-1]
    assert grid.tables.shape == (2, sum(min((r + 1) ** 3, grid.table_size) for r in grid.resolutions))


def test_make_encoding_builds_each_kind_and_rejects_unknown_names():
    assert isinstance(make_encoding("fourier"), FourierFeatures)
    assert isinstance(make_encoding("triplane", channels=4), SphericalTriplane)
    assert isinstance(make_encoding("hashgrid", num_levels=4), HashGridEncoding)
    with pytest.raises(ValueError) as error:
        make_encoding("nerf")
    assert all(name in str(error.value) for name in ENCODINGS)
    with pytest.raises(TypeError):
        make_encoding("triplane", num_frequencies=5)  # an option of another encoding


@pytest.mark.parametrize("name", ["triplane", "hashgrid"])
def test_gradients_reach_the_learnable_features_and_the_points(name):
    torch.manual_seed(0)
    encoding = make_encoding(name, include_points=False)  # no shortcut from the raw point
    points = (torch.rand(512, 3) * 1.6 - 0.8).requires_grad_(True)
    encoding(points).pow(2).sum().backward()
    for parameter in encoding.parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0
    assert points.grad is not None and torch.isfinite(points.grad).all()
    assert (points.grad.norm(dim=-1) > 0).float().mean() > 0.99


@pytest.mark.parametrize("name", ["triplane", "hashgrid"])
def test_eikonal_loss_trains_the_encoding(name):
    """The Eikonal term differentiates the SDF's spatial gradient: the second
    derivative must reach the planes / tables."""
    torch.manual_seed(0)
    sdf = EllipsoidPriorSDF(encoding=name)
    with torch.no_grad():
        sdf.residual[-1].weight.normal_(0, 0.5)
    _, gradient = sdf.with_gradient(torch.rand(256, 3) * 1.6 - 0.8)
    (gradient.norm(dim=-1) - 1).pow(2).mean().backward()
    grads = [p.grad for p in sdf.encoding.parameters()]
    assert grads and all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)
    owned = {id(p) for p in sdf.residual_parameters()}
    assert all(id(p) in owned for p in sdf.encoding.parameters())


# --- spherical tri-plane ----------------------------------------------------------------------

def test_triplane_azimuth_seam_is_continuous():
    encoding = SphericalTriplane()
    _randomise(encoding)
    eps = 1e-4
    r = torch.tensor([0.3, 0.6, 0.9, 0.6])
    theta = torch.tensor([math.pi / 2, math.pi / 2, 1.0, 2.5])
    with torch.no_grad():
        left = encoding(_spherical(r, theta, math.pi - eps))
        right = encoding(_spherical(r, theta, -math.pi + eps))
        elsewhere = encoding(_spherical(r, theta, 1.0 - eps)) - encoding(_spherical(r, theta, 1.0 + eps))
        apart = encoding(_spherical(r, theta, 0.5)) - encoding(_spherical(r, theta, -0.5))
    seam = (left - right).abs().max()
    assert seam < 0.01  # planes are unit-scale: a jump would be ~1
    assert seam < 3 * elsewhere.abs().max() + 1e-4  # no worse than any other meridian
    assert apart.abs().max() > 0.5  # the features do vary with phi
    with torch.no_grad():  # exactly on the seam, approached from either side of the XY plane
        on_seam = encoding(torch.tensor([[1e-9, 0.0, -0.7], [-1e-9, 0.0, -0.7]]))
    assert (on_seam[0] - on_seam[1]).abs().max() < 1e-5


def test_triplane_front_and_back_read_different_features():
    """SphereHead's point: the face (+Z) and the back of the head (-Z) must not
    share features, as they do on a Cartesian tri-plane's XY plane."""
    torch.manual_seed(0)
    encoding = SphericalTriplane()  # the small initialisation
    front, back = torch.tensor([[0.0, 0.1, 0.6]]), torch.tensor([[0.0, 0.1, -0.6]])
    front_features, back_features = encoding(front), encoding(back)
    assert (front_features - back_features)[0, :-3].abs().max() > 5e-3  # init std 1e-2
    supports = []
    for features in (front_features, back_features):
        encoding.zero_grad()
        features.sum().backward()
        supports.append({name: p.grad != 0 for name, p in encoding.named_parameters()})
    for name in ("radius_azimuth", "polar_azimuth"):
        assert supports[0][name].any() and supports[1][name].any()
        assert not (supports[0][name] & supports[1][name]).any(), name


def test_triplane_is_continuous_at_the_poles_and_the_centre():
    encoding = SphericalTriplane()
    _randomise(encoding)
    phis = torch.linspace(-math.pi, math.pi, 9)
    with torch.no_grad():
        for theta in (1e-5, math.pi - 1e-5):  # round the crown and the bottom of the Y axis
            ring = encoding(_spherical(0.7, torch.full_like(phis, theta), phis))
            assert (ring - ring[:1]).abs().max() < 1e-3
            on_axis = encoding(torch.tensor([[0.0, 0.7 * math.cos(theta), 0.0]]))
            assert (ring - on_axis).abs().max() < 1e-3
        directions = torch.nn.functional.normalize(torch.randn(16, 3), dim=-1)
        centre = encoding(torch.cat([1e-4 * directions, torch.zeros(1, 3)]))
        assert (centre - centre[-1:]).abs().max() < 1e-3
    points = torch.tensor([[0.0, 0.7, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, -0.7]], requires_grad=True)
    encoding(points).sum().backward()
    assert torch.isfinite(points.grad).all()


# --- hash grid ---------------------------------------------------------------------------------

def test_hashgrid_is_exact_at_grid_vertices_and_trilinear_inside_cells():
    grid = HashGridEncoding(include_points=False)
    _randomise(grid)
    F = grid.features_per_level
    generator = torch.Generator().manual_seed(1)
    # Level 0 (dense, 16 cells per side): vertices, far faces included.
    resolution = grid.resolutions[0]
    assert grid.dense_levels[0]
    vertices = torch.randint(0, resolution + 1, (64, 3), generator=generator)
    vertices[0] = resolution
    points = 2.0 * vertices / resolution - 1.0
    with torch.no_grad():
        level0 = grid(points)[:, :F]
    rows = vertices[:, 0] + (resolution + 1) * vertices[:, 1] + (resolution + 1) ** 2 * vertices[:, 2]
    assert torch.allclose(level0, grid.tables.detach()[:, rows].T, atol=1e-6)
    # A cell's centre reads the mean of its 8 corners; a point 1/4 along x
    # reads 3/4 of the lower face plus 1/4 of the upper one.
    lower = torch.randint(0, resolution, (32, 3), generator=generator)
    corner_offsets = torch.tensor([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)])
    corners = lower[:, None, :] + corner_offsets  # [32, 8, 3]
    corner_rows = corners[..., 0] + (resolution + 1) * corners[..., 1] + (resolution + 1) ** 2 * corners[..., 2]
    corner_features = grid.tables.detach().T[corner_rows]  # [32, 8, F]
    with torch.no_grad():
        centre = grid(2.0 * (lower + 0.5) / resolution - 1.0)[:, :F]
        quarter = grid(2.0 * (lower + torch.tensor([0.25, 0.5, 0.5])) / resolution - 1.0)[:, :F]
    assert torch.allclose(centre, corner_features.mean(dim=1), atol=1e-5)
    x_weight = torch.where(corner_offsets[:, 0] == 0, 0.75, 0.25) / 4.0
    assert torch.allclose(quarter, (x_weight[None, :, None] * corner_features).sum(dim=1), atol=1e-5)
    # The finest level is hashed with Instant-NGP's primes, modulo 2^T.
    finest = grid.num_levels - 1
    resolution = grid.resolutions[finest]
    assert not grid.dense_levels[finest]
    vertices = torch.randint(0, resolution + 1, (64, 3), generator=generator)
    with torch.no_grad():
        features = grid(2.0 * vertices / resolution - 1.0)[:, finest * F:(finest + 1) * F]
    hashed = [grid.level_offsets[finest] + ((int(i) * HASH_PRIMES[0]) ^ (int(j) * HASH_PRIMES[1])
                                            ^ (int(k) * HASH_PRIMES[2])) % grid.table_size
              for i, j, k in vertices.tolist()]
    assert torch.allclose(features, grid.tables.detach()[:, hashed].T, atol=1e-6)


def test_hashgrid_is_continuous_across_cell_faces():
    grid = HashGridEncoding(include_points=False)
    _randomise(grid)
    generator = torch.Generator().manual_seed(2)
    points = torch.rand(256, 3, generator=generator) * 1.6 - 0.8
    # Put every point's x on a face of the finest level's cells, where a wrong
    # corner or weight would make the features jump.
    resolution = grid.resolutions[-1]
    points[:, 0] = 2.0 * torch.round((points[:, 0] + 1.0) / 2.0 * resolution) / resolution - 1.0
    step = torch.tensor([1e-5, 0.0, 0.0])
    with torch.no_grad():
        jump = (grid(points + step) - grid(points - step)).abs().max()
        small = (grid(points + torch.tensor([0.0, 1e-5, 0.0])) - grid(points)).abs().max()
        far = (grid(points + 0.05) - grid(points)).abs().max()
    assert jump < 0.02 and small < 0.02  # ~ 2e-5 m x 256 cells / 2 m x unit features
    assert far > 0.5


# --- fields and asset model ---------------------------------------------------------------------

def test_fourier_default_keeps_the_previous_fields():
    sdf, materials = EllipsoidPriorSDF(), MaterialField()
    assert isinstance(sdf.encoding, FourierFeatures) and sdf.encoding.output_dim == 3 + 6 * 5
    assert isinstance(materials.encoding, FourierFeatures) and materials.encoding.output_dim == 3 + 6 * 4
    assert isinstance(EllipsoidPriorSDF(encoding="hashgrid").detail_encoding, FourierFeatures)
    assert EllipsoidPriorSDF(num_frequencies=3).encoding.output_dim == 21


@pytest.mark.parametrize("name", ENCODINGS)
def test_asset_model_with_each_encoding_starts_as_the_ellipsoid_and_renders(name):
    torch.manual_seed(0)
    model = AssetModel(encoding=name)
    points = torch.rand(1024, 3) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model.sdf(points), model.sdf.prior(points))
        materials = model.materials(points)
    assert torch.allclose(materials["albedo"], torch.full_like(materials["albedo"], 0.45), atol=0.05)
    settings = SamplingSettings(coarse_samples=16, fine_samples=8, coarse_grid=0)
    out = model.render_image(ImageState(camera_fixed=True), 16, settings)
    reference = AssetModel(encoding="fourier").render_image(ImageState(camera_fixed=True), 16, settings)
    assert out["rgb"].shape == (16, 16, 3) and torch.isfinite(out["rgb"]).all()
    assert out["opacity"][8, 8] > 0.95 and out["opacity"][0, 0] < 0.05
    # Same shape at init, whatever the encoding: same silhouette and depth.
    assert torch.allclose(out["opacity"], reference["opacity"], atol=1e-5)
    hit = reference["opacity"] > 0.99
    assert torch.allclose(out["depth"][hit], reference["depth"][hit], atol=1e-4)


@pytest.mark.parametrize("name", ENCODINGS)
def test_each_encoding_learns_a_smooth_3d_function(name):
    """Fresh random points every step (as a fit's rays give), error measured
    on held-out points."""
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    encoding = make_encoding(name)
    head = mlp(encoding.output_dim, 32, 2, 1)

    def target(points):
        x, y, z = points.unbind(-1)
        return torch.sin(3 * x + 1) + torch.sin(2 * y) * torch.cos(3 * z) + 0.5 * torch.sin(4 * (x + z))

    def random_ball(count):
        points = torch.randn(count, 3, generator=generator)
        radius = 0.9 * torch.rand(count, 1, generator=generator) ** (1 / 3)
        return points / points.norm(dim=-1, keepdim=True) * radius

    def error(points):
        return (head(encoding(points)).squeeze(-1) - target(points)).pow(2).mean()

    held_out = random_ball(1024)
    optimiser = torch.optim.Adam([*encoding.parameters(), *head.parameters()], lr=1e-2)
    with torch.no_grad():
        start = error(held_out)
    for _ in range(300):
        optimiser.zero_grad()
        error(random_ball(512)).backward()
        optimiser.step()
    with torch.no_grad():
        end = error(held_out)
    assert end < 0.05 * start, (float(start), float(end))
