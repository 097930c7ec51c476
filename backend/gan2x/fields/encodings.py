"""Input encodings of 3D points for the fields' MLPs, selectable by name
(``make_encoding``): Fourier features ("fourier", the default), SphereHead's
spherical tri-plane ("triplane") and a multiresolution hash grid
("hashgrid"). Each maps points [..., 3] in metres (world frame, objects
inside the unit ball) to features [..., output_dim]."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class FourierFeatures(nn.Module):
    """NeRF-style positional encoding: [x, sin(2^k pi x), cos(2^k pi x)].

    points [..., 3] metres -> features [..., 3 + 6 * num_frequencies]."""

    def __init__(self, num_frequencies: int = 6):
        super().__init__()
        self.register_buffer("frequencies", math.pi * 2.0 ** torch.arange(num_frequencies, dtype=torch.float32),
                             persistent=False)

    @property
    def output_dim(self) -> int:
        return 3 + 6 * self.frequencies.numel()

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        scaled = points.unsqueeze(-1) * self.frequencies  # [..., 3, F]
        scaled = scaled.flatten(-2)
        return torch.cat([points, torch.sin(scaled), torch.cos(scaled)], dim=-1)


class SphericalTriplane(nn.Module):
    """SphereHead's spherical tri-plane: learnable feature planes over pairs of
    spherical coordinates, read by bilinear interpolation.

    Frame: the world/bundle frame (metres, +Y up, +Z towards the target
    camera). The polar axis is +Y: polar angle ``theta`` in [0, pi] from +Y,
    azimuth ``phi = atan2(x, z)`` in (-pi, pi], 0 at +Z (the face's front),
    +-pi at -Z (the back of the head). Front and back therefore read different
    columns of the two azimuth planes: they do not share features, which is
    what SphereHead's spherical planes are for (a Cartesian tri-plane projects
    front and back onto the same texel of its XY plane: the "mirroring"
    artefact). They share only the (r, theta) plane, whose texels are rings
    around the vertical axis.

    Planes, each ``[C, H, W]`` (H indexed by the first coordinate, W by the
    second): ``radius_azimuth`` over (r, phi), ``radius_polar`` over
    (r, theta), ``polar_azimuth`` over (theta, phi). r = |x| / radius is
    clamped to [0, 1]; each coordinate is mapped linearly to [-1, 1] and
    sampled with ``grid_sample`` (bilinear, align_corners=True, border
    padding). The azimuth axis is periodic: its ``W`` columns sit at
    ``phi = -pi + 2 pi k / W`` and column 0 is appended again at phi = +pi
    before sampling, so phi = -pi and phi = +pi read the same features and
    the seam is continuous.

    The spherical chart is singular at the poles (phi undefined on the Y
    axis, which passes through the crown of a head) and at the centre (no
    angles at r = 0). So that the fields stay continuous there, the azimuth
    planes' features are weighted by ``sin(theta)`` (-> 0 on the axis, where
    only the (r, theta) plane speaks), and every plane's features by
    ``1 - exp(-(r / core_radius)^2)`` (-> 0 at the centre, deep inside the
    object). Both weights keep the spatial gradient bounded.

    Features of the three planes are **concatenated** (not summed: the MLP
    sees which chart a feature came from), then the raw point is appended
    when ``include_points`` so the MLP keeps a coarse handle on position.

    points [..., 3] metres -> features [..., output_dim], with
    output_dim = 3 * channels (+ 3), layout [radius_azimuth, radius_polar,
    polar_azimuth, (points)]."""

    def __init__(self, channels: int = 8, radial_resolution: int = 64, polar_resolution: int = 64,
                 azimuth_resolution: int = 128, radius: float = 1.0, include_points: bool = True,
                 init_std: float = 1e-2, core_radius: float = 0.05):
        super().__init__()
        self.channels = channels
        self.radius = radius
        self.include_points = include_points
        self.core_radius = core_radius
        self.radius_azimuth = nn.Parameter(init_std * torch.randn(channels, radial_resolution, azimuth_resolution))
        self.radius_polar = nn.Parameter(init_std * torch.randn(channels, radial_resolution, polar_resolution))
        self.polar_azimuth = nn.Parameter(init_std * torch.randn(channels, polar_resolution, azimuth_resolution))

    @property
    def output_dim(self) -> int:
        return 3 * self.channels + (3 if self.include_points else 0)

    def spherical_coordinates(self, points: torch.Tensor):
        """points [N, 3] metres -> r [N] in [0, 1] (units of ``radius``,
        clamped), theta [N] in [0, pi], phi [N] in (-pi, pi], sin(theta) [N].
        Finite gradients everywhere (zero where an angle is undefined)."""
        x, y, z = points.unbind(-1)
        tiny = 1e-12
        rho_squared = x * x + z * z
        on_axis = rho_squared < tiny
        rho = torch.where(on_axis, torch.ones_like(rho_squared), rho_squared).sqrt()
        rho = torch.where(on_axis, torch.zeros_like(rho), rho)
        r_squared = rho_squared + y * y
        at_centre = r_squared < tiny
        r_metres = torch.where(at_centre, torch.ones_like(r_squared), r_squared).sqrt()
        sin_theta = torch.where(at_centre, torch.ones_like(rho), rho / r_metres)
        r_metres = torch.where(at_centre, torch.zeros_like(r_metres), r_metres)
        # atan2's gradient is 0/0 at (0, 0): feed it a harmless substitute there.
        theta = torch.atan2(torch.where(at_centre, torch.ones_like(rho), rho),
                            torch.where(at_centre, torch.zeros_like(y), y))
        phi = torch.atan2(torch.where(on_axis, torch.zeros_like(x), x),
                          torch.where(on_axis, torch.ones_like(z), z))
        r = (r_metres / self.radius).clamp(max=1.0)
        return r, theta, phi, sin_theta

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        batch_shape = points.shape[:-1]
        flat = points.reshape(-1, 3)
        r, theta, phi, sin_theta = self.spherical_coordinates(flat)
        # Each coordinate in [-1, 1] for grid_sample (x indexes W, y indexes H).
        r_unit = 2.0 * r - 1.0
        theta_unit = 2.0 * theta / math.pi - 1.0
        phi_unit = phi / math.pi
        radius_azimuth = _sample_plane(_wrap_columns(self.radius_azimuth), r_unit, phi_unit)
        radius_polar = _sample_plane(self.radius_polar, r_unit, theta_unit)
        polar_azimuth = _sample_plane(_wrap_columns(self.polar_azimuth), theta_unit, phi_unit)
        core = 1.0 - torch.exp(-(r * self.radius / self.core_radius) ** 2)
        azimuth_weight = (core * sin_theta)[:, None]
        pieces = [azimuth_weight * radius_azimuth, core[:, None] * radius_polar, azimuth_weight * polar_azimuth]
        if self.include_points:
            pieces.append(flat)
        return torch.cat(pieces, dim=-1).reshape(*batch_shape, self.output_dim)


def _wrap_columns(plane: torch.Tensor) -> torch.Tensor:
    """[C, H, W] periodic along W -> [C, H, W + 1] with column 0 repeated last."""
    return torch.cat([plane, plane[:, :, :1]], dim=2)


def _sample_plane(plane: torch.Tensor, row: torch.Tensor, column: torch.Tensor) -> torch.Tensor:
    """Bilinear read of plane [C, H, W] at row/column coordinates [N] in
    [-1, 1] (-1: first row/column's centre, +1: last's) -> [N, C]."""
    grid = torch.stack([column, row], dim=-1).reshape(1, 1, -1, 2).to(plane.dtype)
    sampled = F.grid_sample(plane[None], grid, mode="bilinear", padding_mode="border", align_corners=True)
    return sampled[0, :, 0, :].transpose(0, 1)


HASH_PRIMES = (1, 2654435761, 805459861)
"""Instant-NGP's spatial hash: index = (i * p0) xor (j * p1) xor (k * p2) mod T."""


class HashGridEncoding(nn.Module):
    """Multiresolution grid encoding (Instant-NGP, Mueller et al. 2022) in
    plain PyTorch.

    ``num_levels`` grids over the cube [-bound, bound]^3 (metres, mapped to
    [0, 1]^3 and clamped), with resolutions growing geometrically from
    ``base_resolution`` to ``finest_resolution`` cells per side. Each level
    stores ``features_per_level`` learnable features at its grid vertices: a
    level whose (R + 1)^3 vertices fit in the table of ``2 ** log2_table_size``
    entries stores them densely (index i + j (R+1) + k (R+1)^2); a finer level
    hashes its vertices into the table (``HASH_PRIMES``, int64 arithmetic,
    modulo the table size). A point reads the 8 vertices of its cell at each
    level and interpolates them trilinearly. Tables start uniform in
    +-``init_range`` so fields start near their prior. The default cube
    (bound 1 m) contains the unit ball that holds every object.

    points [..., 3] metres -> features [..., output_dim], with output_dim =
    num_levels * features_per_level (+ 3), layout [level 0 features, level 1,
    ..., (points)], coarse to fine.

    The interpolation is C0 (the spatial gradient jumps across cell faces);
    normals from it are noisier than from smooth encodings."""

    def __init__(self, num_levels: int = 8, features_per_level: int = 2, log2_table_size: int = 16,
                 base_resolution: int = 16, finest_resolution: int = 256, bound: float = 1.0,
                 include_points: bool = True, init_range: float = 1e-4):
        super().__init__()
        if num_levels < 1 or base_resolution < 1 or finest_resolution < base_resolution:
            raise ValueError("need num_levels >= 1 and 1 <= base_resolution <= finest_resolution")
        if not 4 <= log2_table_size <= 30:
            raise ValueError(f"log2_table_size {log2_table_size} outside [4, 30]")
        self.num_levels = num_levels
        self.features_per_level = features_per_level
        self.table_size = 2 ** log2_table_size
        self.bound = bound
        self.include_points = include_points
        growth = (finest_resolution / base_resolution) ** (1.0 / max(num_levels - 1, 1))
        resolutions = [int(math.floor(base_resolution * growth ** level + 1e-6)) for level in range(num_levels)]
        sizes = [min((res + 1) ** 3, self.table_size) for res in resolutions]
        self.resolutions = resolutions
        """Cells per side of each level, coarse to fine."""
        self.dense_levels = [(res + 1) ** 3 <= self.table_size for res in resolutions]
        offsets = [0]
        for size in sizes[:-1]:
            offsets.append(offsets[-1] + size)
        self.level_offsets = offsets
        """Row of ``tables`` where each level's entries start."""
        self.tables = nn.Parameter(torch.empty(features_per_level, sum(sizes)).uniform_(-init_range, init_range))
        """[F, rows]: feature f of table row n is ``tables[f, n]`` (feature-major,
        so the interpolation's elementwise work runs along the points)."""
        self.num_dense = sum(self.dense_levels)
        """The first ``num_dense`` levels (the coarse ones) are dense, the rest hashed."""
        # Per-level constants shaped [L, 1] to broadcast over [..., L, N]: the
        # point axis stays innermost and contiguous, which is what makes the
        # elementwise work fast on CPU.
        self.register_buffer("_resolution", torch.tensor(resolutions, dtype=torch.float32)[:, None],
                             persistent=False)
        self.register_buffer("_row_stride", torch.tensor([res + 1 for res in resolutions])[:, None],
                             persistent=False)
        self.register_buffer("_offset", torch.tensor(offsets)[:, None], persistent=False)

    @property
    def output_dim(self) -> int:
        return self.num_levels * self.features_per_level + (3 if self.include_points else 0)

    def _corner_index(self, i: torch.Tensor, j: torch.Tensor, k: torch.Tensor) -> list[torch.Tensor]:
        """Per-axis vertex coordinates i, j, k [c, L, N] (int64) -> table rows
        of the c^3 corners [c, c, c, L', N] (axis order i, j, k), as a list:
        the dense levels (i + j (R+1) + k (R+1)^2), then the hashed ones
        ((i p0 xor j p1 xor k p2) mod T), each plus its level's offset into
        ``tables``. (Two pieces rather than one ``torch.where`` over both
        formulas: half the integer work.)"""
        d = self.num_dense
        pieces = []
        if d > 0:
            stride, offset = self._row_stride[:d], self._offset[:d]
            pieces.append((i[:, :d] + offset)[:, None, None] + (j[:, :d] * stride)[None, :, None]
                          + (k[:, :d] * (stride * stride))[None, None, :])
        if d < self.num_levels:
            hashed = ((i[:, d:] * HASH_PRIMES[0])[:, None, None]
                      ^ (j[:, d:] * HASH_PRIMES[1])[None, :, None]
                      ^ (k[:, d:] * HASH_PRIMES[2])[None, None, :])
            pieces.append((hashed & (self.table_size - 1)) + self._offset[d:])  # modulo a power of two
        return pieces

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        batch_shape = points.shape[:-1]
        flat = points.reshape(-1, 3)
        count = flat.shape[0]
        resolution = self._resolution.to(flat.dtype)  # [L, 1]
        unit = ((flat / self.bound + 1.0) * 0.5).clamp(0.0, 1.0).transpose(0, 1)  # [3, N]
        scaled = unit[:, None, :] * resolution  # [3, L, N] in cells
        # The cell's lower vertex; a point on the far face stays in the last cell.
        lower = torch.minimum(scaled.detach().floor(), resolution - 1.0)
        fraction = scaled - lower  # [3, L, N], differentiable in the points
        lower = lower.long()
        i, j, k = (torch.stack([lower[axis], lower[axis] + 1]) for axis in range(3))  # [2, L, N]
        wi, wj, wk = (torch.stack([1.0 - fraction[axis], fraction[axis]]) for axis in range(3))
        features, first = [], 0
        for index in self._corner_index(i, j, k):  # dense levels, then hashed ones
            levels = index.shape[3]
            last = first + levels
            weight = wi[:, None, None, first:last] * wj[None, :, None, first:last] * wk[None, None, :, first:last]
            # index_select: its backward (index_add) is far faster on CPU than embedding's.
            corners = torch.index_select(self.tables, 1, index.reshape(-1))
            corners = corners.reshape(self.features_per_level, 8, levels, count)
            features.append((weight.reshape(8, levels, count) * corners).sum(dim=1))  # [F, L', N]
            first = last
        features = torch.cat(features, dim=1).permute(2, 1, 0)  # [N, L, F]
        features = features.reshape(count, self.num_levels * self.features_per_level)
        if self.include_points:
            features = torch.cat([features, flat], dim=-1)
        return features.reshape(*batch_shape, self.output_dim)


ENCODINGS = ("fourier", "triplane", "hashgrid")


def make_encoding(name: str, **options) -> nn.Module:
    """An input encoding by name: "fourier" (``FourierFeatures``), "triplane"
    (``SphericalTriplane``), "hashgrid" (``HashGridEncoding``); ``options``
    go to its constructor."""
    if name == "fourier":
        return FourierFeatures(**options)
    if name == "triplane":
        return SphericalTriplane(**options)
    if name == "hashgrid":
        return HashGridEncoding(**options)
    raise ValueError(f"unknown encoding {name!r}; known: {', '.join(ENCODINGS)}")


def mlp(input_dim: int, hidden_dim: int, num_hidden: int, output_dim: int,
        activation: type[nn.Module] = nn.SiLU) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = input_dim
    for _ in range(num_hidden):
        layers += [nn.Linear(width, hidden_dim), activation()]
        width = hidden_dim
    layers.append(nn.Linear(width, output_dim))
    return nn.Sequential(*layers)
