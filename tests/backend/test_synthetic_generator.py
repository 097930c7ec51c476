"""Tests of the built-in procedural generator ``synthetic`` (gan2x.generators)."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from gan2x import conventions
from gan2x.generators import KNOWN_SPECS, load_generator
from gan2x.generators.protocol import Generator
from gan2x.generators.synthetic import phong
from gan2x.generators.synthetic.raycast import orbit_world_from_camera
from gan2x.generators.synthetic.shapes import fibonacci_sphere

RES = 32


@pytest.fixture(scope="module")
def faces():
    return load_generator("synthetic", resolution=RES)


@pytest.fixture(scope="module")
def objects():
    return load_generator("synthetic:objects", resolution=RES)


@pytest.fixture(scope="module")
def detailed():
    return load_generator("synthetic:detailed", resolution=RES)


def pick(category, faces, objects, detailed):
    return {"faces": faces, "objects": objects, "detailed": detailed}[category]


def seeds_z(G, seeds):
    return torch.cat([G.z_from_seed(s) for s in seeds])


def back_project(depth: torch.Tensor) -> torch.Tensor:
    """depth [B, R, R] -> camera-frame points [B, R, R, 3] (pinhole of conventions.py)."""
    R = depth.shape[-1]
    focal = conventions.focal_length_px(R)
    centres = torch.arange(R, dtype=depth.dtype) + 0.5
    x = ((centres[None, :] - R / 2.0) / focal).expand(R, R)
    y = (-(centres[:, None] - R / 2.0) / focal).expand(R, R)
    return torch.stack([x * depth, y * depth, -depth], -1)


def to_world(points_camera: torch.Tensor, world_from_camera: torch.Tensor) -> torch.Tensor:
    """[B, R, R, 3] camera-frame points -> world points."""
    rot, trans = world_from_camera[:, :3, :3], world_from_camera[:, :3, 3]
    return torch.einsum("bij,bhwj->bhwi", rot, points_camera) + trans[:, None, None, :]


def angle_deg(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))
    return torch.rad2deg(torch.acos(cos.clamp(-1.0, 1.0)))


# --- loading, protocol, determinism ---------------------------------------------------

def test_specs_and_protocol():
    assert set(KNOWN_SPECS) == {"synthetic", "synthetic:faces", "synthetic:objects", "synthetic:detailed"}
    G = load_generator("synthetic", resolution=16)
    assert isinstance(G, torch.nn.Module) and isinstance(G, Generator)
    assert G.spec == "synthetic:faces" and G.img_channels == 3 and G.img_resolution == 16
    assert load_generator("synthetic:objects", resolution=16).spec == "synthetic:objects"
    assert G.w_avg.shape == (G.w_dim,) and G.num_ws >= 6
    for bad in ("stylegan3:ffhq", "synthetic:cars", "", "faces"):
        with pytest.raises(ValueError) as info:
            load_generator(bad)
        for known in KNOWN_SPECS:
            assert known in str(info.value)
    with pytest.raises(FileNotFoundError):  # a checkpoint spec is a form of its own (test_stylegan2.py)
        load_generator("stylegan2:no-such-ffhq.pkl")
    with pytest.raises(ValueError):
        load_generator("synthetic", colour="red")


def test_determinism(faces):
    z = faces.z_from_seed(7)
    assert z.shape == (1, faces.z_dim)
    assert np.array_equal(z.numpy(), np.random.RandomState(7).randn(1, faces.z_dim).astype(np.float32))
    with torch.no_grad():
        a = faces(seeds_z(faces, [7, 8]))
        b = faces(seeds_z(faces, [7, 8]))
        assert torch.equal(a, b)
        assert (a[0] - a[1]).abs().mean() > 0.02          # different seeds, different images
        other = load_generator("synthetic", resolution=RES)  # a second load: the same network
        assert torch.equal(other(seeds_z(other, [7, 8])), a)
        for name, buf in faces.named_buffers():
            assert torch.equal(buf, dict(other.named_buffers())[name]), name
        # the objects category is another network
        objs = load_generator("synthetic:objects", resolution=RES)
        assert not torch.equal(objs(seeds_z(objs, [7, 8])), a)


def test_mapping_and_truncation(faces):
    z = seeds_z(faces, range(4))
    ws = faces.mapping(z)
    assert ws.shape == (4, faces.num_ws, faces.w_dim)
    assert torch.equal(ws[:, 0], ws[:, -1])                     # broadcast w
    w0 = faces.mapping(z, truncation_psi=0.0)
    assert torch.allclose(w0, faces.w_avg.expand_as(w0), atol=1e-6)
    half = faces.mapping(z, truncation_psi=0.5)
    assert torch.allclose(half, 0.5 * (ws + w0), atol=1e-5)
    # w_avg is the mean of W: the mean scene is frontal
    scene = faces.scene(w0[:1])
    assert abs(float(scene.yaw)) < 0.05 and abs(float(scene.pitch)) < 0.05


def test_camera_port_matches_conventions():
    yaw = torch.tensor([0.0, 0.4, -0.7, 0.2], dtype=torch.float64)
    pitch = torch.tensor([0.0, -0.2, 0.3, 0.25], dtype=torch.float64)
    ours = orbit_world_from_camera(yaw, pitch).numpy()
    for i in range(4):
        ref = conventions.orbit_world_from_camera(float(yaw[i]), float(pitch[i]))
        np.testing.assert_allclose(ours[i], ref, atol=1e-12)


# --- outputs -------------------------------------------------------------------------

@pytest.mark.parametrize("category", ["faces", "objects", "detailed"])
def test_shapes_and_ranges(category, faces, objects, detailed):
    G = pick(category, faces, objects, detailed)
    B, R = 3, RES
    with torch.no_grad():
        ws = G.mapping(seeds_z(G, range(10, 10 + B)))
        out = G.ground_truth(ws)
        assert torch.equal(G.synthesis(ws), out["image"])
    expected = dict(image=(B, 3, R, R), radiance=(B, 3, R, R), depth=(B, R, R), normal=(B, 3, R, R),
                    normal_world=(B, 3, R, R), position=(B, 3, R, R), albedo=(B, 3, R, R),
                    specular=(B, R, R), shininess=(B, R, R), mask=(B, R, R), hit=(B, R, R),
                    background=(B, 3, R, R), world_from_camera=(B, 4, 4), towards_light=(B, 3),
                    ambient=(B,), diffuse=(B,))
    for key, shape in expected.items():
        assert tuple(out[key].shape) == shape, key
        assert torch.isfinite(out[key].float()).all(), key
    assert out["hit"].dtype == torch.bool
    hit = out["hit"]
    assert 0.2 < hit.float().mean() < 0.9
    assert out["image"].min() >= -1.0 and out["image"].max() <= 1.0
    assert out["mask"].min() >= 0.0 and out["mask"].max() <= 1.0
    assert (out["mask"][hit] > 0).all() and (out["mask"][~hit] < 1).all()
    depth = out["depth"]
    assert (depth[hit] > conventions.CAMERA_DISTANCE - 1).all()
    assert (depth[hit] < conventions.CAMERA_DISTANCE + 1).all()
    assert (depth[~hit] == 0).all()
    for key in ("normal", "normal_world"):
        n = out[key].permute(0, 2, 3, 1)
        assert torch.allclose(n[hit].norm(dim=-1), torch.ones(()), atol=1e-4)
        assert (n[~hit] == 0).all()
    normal_c = out["normal"].permute(0, 2, 3, 1)[hit]
    assert (normal_c[:, 2] > -0.2).all()                          # facing the camera
    albedo = out["albedo"].permute(0, 2, 3, 1)[hit]
    assert albedo.min() >= 0.05 - 1e-5 and albedo.max() <= 0.9 + 1e-5
    ks, shin = out["specular"][hit], out["shininess"][hit]
    assert ks.min() >= 0 and ks.max() <= 1
    assert shin.min() >= conventions.SHININESS_MIN and shin.max() <= conventions.SHININESS_MAX
    assert torch.allclose(out["towards_light"].norm(dim=-1), torch.ones(()), atol=1e-5)
    assert ((out["ambient"] >= 0.2) & (out["ambient"] <= 0.5)).all()
    assert ((out["diffuse"] >= 0.5) & (out["diffuse"] <= 0.9)).all()
    # the light lies within about 60 degrees of the viewing direction
    rot = out["world_from_camera"][:, :3, :3]
    light_cam = (rot.transpose(1, 2) @ out["towards_light"][..., None])[..., 0]
    assert (light_cam[:, 2] >= math.cos(math.radians(60.5))).all()
    # position == back-projected depth
    world = to_world(back_project(depth), out["world_from_camera"])
    assert torch.allclose(world[hit], out["position"].permute(0, 2, 3, 1)[hit], atol=1e-4)


def test_glossy_and_matte_regions(faces):
    with torch.no_grad():
        out = faces.ground_truth(faces.mapping(seeds_z(faces, range(4))))
    hit = out["hit"]
    ks, shin = out["specular"][hit], out["shininess"][hit]
    assert ks.max() > 0.3 and ks.median() < 0.2                    # glossy spots on a matte base
    assert shin.max() > 40 and shin.median() < 25
    albedo = out["albedo"].permute(0, 2, 3, 1)[hit]
    assert albedo[:, 0].mean() > albedo[:, 2].mean()               # skin: red above blue


def test_object_radius_bound(faces, objects, detailed):
    u = torch.as_tensor(fibonacci_sphere(20000), dtype=torch.float32)
    for G in (faces, objects, detailed):
        with torch.no_grad():
            scene = G.scene(G.mapping(seeds_z(G, range(100, 132))))
            radius = scene.radius(u[None].expand(32, -1, -1))
        assert radius.max() <= 0.92, G.spec
        assert radius.min() > 0.2, G.spec
        assert (scene.radius_max <= 0.9 + 1e-5).all()


# --- geometry and shading ---------------------------------------------------------------

@pytest.mark.parametrize("category", ["faces", "objects", "detailed"])
def test_normals_match_depth(category, faces, objects, detailed):
    G = pick(category, faces, objects, detailed)
    with torch.no_grad():
        out = G.render(G.scene(G.mapping(seeds_z(G, [3, 4]))), resolution=96)
    depth, hit = out["depth"], out["hit"]
    P = back_project(depth)                                        # camera frame
    dx = P[:, 1:-1, 2:] - P[:, 1:-1, :-2]                          # towards +x (right)
    dy = P[:, :-2, 1:-1] - P[:, 2:, 1:-1]                          # towards +y (up)
    fd_normal = torch.cross(dx, dy, dim=-1)
    # interior pixels: all 3x3 neighbours hit, no depth discontinuity
    inner = hit.clone()
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            inner[:, 1:-1, 1:-1] &= hit[:, 1 + dr:hit.shape[1] - 1 + dr, 1 + dc:hit.shape[2] - 1 + dc]
    inner = inner[:, 1:-1, 1:-1]
    jump = torch.maximum((depth[:, 1:-1, 2:] - depth[:, 1:-1, :-2]).abs(),
                         (depth[:, :-2, 1:-1] - depth[:, 2:, 1:-1]).abs())
    inner &= jump < 0.1
    normal = out["normal"].permute(0, 2, 3, 1)[:, 1:-1, 1:-1]
    angles = angle_deg(fd_normal[inner], normal[inner])
    assert inner.sum() > 1000
    assert angles.mean() < 3.0, float(angles.mean())
    # a wrong sign / frame would be far off: the world normals are not the camera normals
    if category == "faces":
        world = out["normal_world"].permute(0, 2, 3, 1)[:, 1:-1, 1:-1]
        assert angle_deg(fd_normal[inner], world[inner]).mean() > 3.0


@pytest.mark.parametrize("category", ["faces", "objects", "detailed"])
def test_phong_equation(category, faces, objects, detailed):
    G = pick(category, faces, objects, detailed)
    with torch.no_grad():
        out = G.ground_truth(G.mapping(seeds_z(G, [5, 6])))
    R = RES
    hit = out["hit"]
    rot = out["world_from_camera"][:, :3, :3]
    # everything in the camera frame, recomputed independently
    light = (rot.transpose(1, 2) @ out["towards_light"][..., None])[..., 0]    # [B, 3]
    focal = conventions.focal_length_px(R)
    c = torch.arange(R, dtype=torch.float32) + 0.5
    rays = torch.stack([((c[None, :] - R / 2) / focal).expand(R, R),
                        (-(c[:, None] - R / 2) / focal).expand(R, R), -torch.ones(R, R)], -1)
    view = -rays / rays.norm(dim=-1, keepdim=True)                               # towards camera
    n = out["normal"].permute(0, 2, 3, 1)
    a = out["albedo"].permute(0, 2, 3, 1)
    l = light[:, None, None, :]
    n_dot_l = (n * l).sum(-1)
    r = 2 * n_dot_l[..., None] * n - l
    r_dot_v = (r * view[None]).sum(-1)
    ka, kd = out["ambient"][:, None, None], out["diffuse"][:, None, None]
    expected = a * (ka + kd * n_dot_l.clamp(min=0))[..., None] \
        + (kd * out["specular"] * r_dot_v.clamp(min=0) ** out["shininess"])[..., None]
    radiance = out["radiance"].permute(0, 2, 3, 1)
    assert torch.allclose(radiance[hit], expected[hit], atol=1e-4)
    assert (radiance[~hit] == 0).all()
    # the helper is the same equation
    again = phong(a, out["specular"], out["shininess"], n, l, view[None], ka, kd)
    assert torch.allclose(again[hit], expected[hit], atol=1e-5)
    # highlights exist somewhere (specular term not identically zero)
    spec = (kd * out["specular"] * r_dot_v.clamp(min=0) ** out["shininess"])[hit]
    assert spec.max() > 0.01


def test_image_composition_without_supersampling():
    G = load_generator("synthetic", resolution=24, supersample=1)
    with torch.no_grad():
        out = G.ground_truth(G.mapping(seeds_z(G, [1, 2])))
    hit = out["hit"]
    assert torch.equal(out["mask"], hit.float())
    lin = torch.where(hit[:, None], out["radiance"].clamp(0, 1), out["background"])
    expected = conventions.srgb_from_linear(lin) * 2 - 1
    assert torch.allclose(out["image"], expected, atol=1e-5)


def test_supersampled_edges(faces):
    with torch.no_grad():
        out = faces.ground_truth(faces.mapping(seeds_z(faces, [1])))
    mask = out["mask"]
    partial = (mask > 0) & (mask < 1)
    assert partial.sum() > 10                                      # anti-aliased silhouette
    bg = conventions.srgb_from_linear(out["background"]) * 2 - 1
    empty = mask == 0
    assert torch.allclose(out["image"].permute(0, 2, 3, 1)[empty], bg.permute(0, 2, 3, 1)[empty], atol=1e-5)


def test_faces_are_symmetric(faces, objects):
    def frontal(G):
        with torch.no_grad():
            scene = G.scene(G.mapping(seeds_z(G, [11, 12])))
            cam = orbit_world_from_camera(torch.zeros(2), torch.zeros(2))
            light = torch.tensor([[0.0, 0.0, 1.0]]).expand(2, 3)
            return G.render(scene, world_from_camera=cam, towards_light=light, resolution=48)

    out = frontal(faces)
    depth, hit = out["depth"], out["hit"]
    mirrored = depth.flip(-1)
    assert (hit != hit.flip(-1)).float().mean() < 0.005
    both = hit & hit.flip(-1)
    assert (depth - mirrored)[both].abs().max() < 1e-3
    albedo = out["albedo"]
    assert (albedo - albedo.flip(-1)).permute(0, 2, 3, 1)[both].abs().max() < 1e-3
    # the control: objects are not symmetric
    out = frontal(objects)
    both = out["hit"] & out["hit"].flip(-1)
    assert (out["depth"] - out["depth"].flip(-1))[both].abs().mean() > 1e-2


# --- latent structure ---------------------------------------------------------------------

def test_one_latent_coordinate_moves_many_parameters(faces):
    z = seeds_z(faces, [21])
    with torch.no_grad():
        base = faces.scene(faces.mapping(z))
        for k in (0, 17, faces.z_dim - 1):
            z2 = z.clone()
            z2[0, k] += 0.5
            moved = faces.scene(faces.mapping(z2))
            assert abs(float(moved.yaw - base.yaw)) > 1e-4, k
            assert abs(float(moved.pitch - base.pitch)) > 1e-4, k
            assert (moved.towards_light - base.towards_light).abs().max() > 1e-4, k
            assert (moved.base_albedo - base.base_albedo).abs().max() > 1e-4, k
            assert (moved.bump_height - base.bump_height).abs().max() > 1e-4, k
    # no coordinate of z or w is a view knob: yaw depends on many of them
    for space in ("z", "w"):
        x = (z if space == "z" else faces.mapping(z)[:, 0]).clone().requires_grad_(True)
        ws = faces.mapping(x) if space == "z" else x[:, None].expand(-1, faces.num_ws, -1)
        scene = faces.scene(ws)
        grad = torch.autograd.grad(scene.yaw.sum(), x)[0].abs()[0]
        assert (grad > 0.05 * grad.max()).sum() > 0.5 * grad.numel(), space
    # layer roles: view reads the early ws only, materials the late ones
    ws = faces.mapping(z).clone().requires_grad_(True)
    scene = faces.scene(ws)
    g_view = torch.autograd.grad(scene.yaw.sum(), ws, retain_graph=True)[0].abs().sum(-1)[0]
    g_mat = torch.autograd.grad(scene.base_albedo.sum(), ws)[0].abs().sum(-1)[0]
    assert g_view[:2].min() > 0 and g_view[2:].max() == 0
    assert g_mat[-2:].min() > 0 and g_mat[:2].max() == 0


def test_gradients_flow(faces):
    ws = faces.mapping(seeds_z(faces, [31, 32])).clone().requires_grad_(True)
    out = faces.ground_truth(ws)
    grad = torch.autograd.grad(out["image"].mean(), ws, retain_graph=True)[0]
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    # geometry: the mean depth responds to the shape layers (through the Newton step)
    hit = out["hit"]
    depth_mean = out["depth"][hit].mean()
    g_depth = torch.autograd.grad(depth_mean, ws)[0]
    assert torch.isfinite(g_depth).all()
    assert g_depth[:, 2:4].abs().sum() > 0
    # ... and the gradient is right: compare with a finite difference on the same pixels
    direction = torch.zeros_like(ws)
    direction[:, 2:4] = torch.randn(2, 2, faces.w_dim, generator=torch.Generator().manual_seed(0))
    analytic = float((g_depth * direction).sum())
    eps = 1e-2
    with torch.no_grad():
        up = faces.ground_truth(ws + eps * direction)
        down = faces.ground_truth(ws - eps * direction)
        same = hit & up["hit"] & down["hit"]
        # compare on the pixels hit in all three renders (silhouette changes excluded)
        num = float(((up["depth"] - down["depth"])[same]).sum() / (2 * eps) / hit.sum())
    assert abs(num - analytic) < 0.1 * abs(analytic) + 1e-4, (num, analytic)
    # the view is differentiable too
    g_yaw = torch.autograd.grad(faces.scene(ws).yaw.sum(), ws)[0]
    assert g_yaw[:, :2].abs().sum() > 0


# --- other views and lights ---------------------------------------------------------------

def test_render_other_view_and_light(faces):
    with torch.no_grad():
        scene = faces.scene(faces.mapping(seeds_z(faces, [41, 42])))
        front = faces.render(scene, world_from_camera=orbit_world_from_camera(torch.zeros(2), torch.zeros(2)))
        cam = orbit_world_from_camera(torch.full((2,), math.radians(25.0)), torch.full((2,), 0.1))
        side = faces.render(scene, world_from_camera=cam)
    assert torch.equal(side["world_from_camera"], cam)
    assert (side["image"] - front["image"]).abs().mean() > 0.01
    for out in (front, side):
        hit = out["hit"]
        points = to_world(back_project(out["depth"]), out["world_from_camera"])      # [B, R, R, 3]
        flat = points.reshape(2, -1, 3)
        albedo, ks, shin = scene.material(flat)
        albedo = albedo.reshape(2, RES, RES, 3)
        assert torch.allclose(albedo[hit], out["albedo"].permute(0, 2, 3, 1)[hit], atol=1e-4)
        assert torch.allclose(ks.reshape(2, RES, RES)[hit], out["specular"][hit], atol=1e-4)
        assert torch.allclose(shin.reshape(2, RES, RES)[hit], out["shininess"][hit], rtol=1e-3)
        # the back-projected points lie on the surface
        g = scene.implicit(flat).reshape(2, RES, RES)
        assert g[hit].abs().max() < 1e-3
    # a surface point seen in the side view, projected into the front view where it is
    # visible there, has the same albedo (nearest pixel; loose: albedo varies within a pixel)
    P = to_world(back_project(side["depth"]), cam)[side["hit"]]                  # [H, 3] (both samples)
    sample = torch.arange(2)[:, None, None].expand(2, RES, RES)[side["hit"]]
    front_cam = front["world_from_camera"][sample]
    local = torch.einsum("nji,nj->ni", front_cam[:, :3, :3], P - front_cam[:, :3, 3])
    focal = conventions.focal_length_px(RES)
    col = (local[:, 0] / -local[:, 2] * focal + RES / 2).floor().long().clamp(0, RES - 1)
    row = (-local[:, 1] / -local[:, 2] * focal + RES / 2).floor().long().clamp(0, RES - 1)
    visible = front["hit"][sample, row, col] & ((front["depth"][sample, row, col] + local[:, 2]).abs() < 0.01)
    assert visible.sum() > 100
    a_side = side["albedo"].permute(0, 2, 3, 1)[side["hit"]][visible]
    a_front = front["albedo"].permute(0, 2, 3, 1)[sample, row, col][visible]
    assert (a_side - a_front).abs().median() < 0.02
    # a new light changes the shading but not the geometry or the materials
    with torch.no_grad():
        relit = faces.render(scene, world_from_camera=cam,
                             towards_light=torch.tensor([[-0.5, 0.5, 0.7]]).expand(2, 3),
                             ambient=torch.full((2,), 0.3), diffuse=torch.full((2,), 0.8))
    assert torch.equal(relit["depth"], side["depth"]) and torch.equal(relit["albedo"], side["albedo"])
    assert (relit["radiance"] - side["radiance"]).abs().max() > 0.05
    assert torch.allclose(relit["ambient"], torch.full((2,), 0.3))


def test_speed_report():
    """Forward + backward of a batch of 8 at 64x64 with 2x2 supersampling (printed, not asserted)."""
    G = load_generator("synthetic", resolution=64, supersample=2)
    ws = G.mapping(seeds_z(G, range(8))).clone().requires_grad_(True)
    G.synthesis(ws).mean().backward()                          # warm-up
    times = []
    for _ in range(2):
        start = time.perf_counter()
        G.synthesis(ws).mean().backward()
        times.append(time.perf_counter() - start)
    print(f"\nsynthetic: batch 8 at 64x64, 2x2 supersampling, forward+backward: "
          f"{min(times):.3f} s (threads={torch.get_num_threads()})")


def test_entanglement_drifts_identity_with_view_and_leaves_samples_alone_at_zero():
    plain = load_generator("synthetic:faces", resolution=16, supersample=1)
    tangled = load_generator("synthetic:faces", resolution=16, supersample=1, entanglement=0.2)
    ws = plain.mapping(plain.z_from_seed(5))
    moved = ws.clone()
    moved[:, 0:2] += 0.5 * plain.w_std  # only the view-and-light layers
    for generator, drifts in ((plain, False), (tangled, True)):
        before, after = generator.parameters_from_ws(ws), generator.parameters_from_ws(moved)
        assert not torch.allclose(before["yaw"], after["yaw"])
        identity = [name for name in before if any(s.name == name and s.role in ("shape", "material")
                                                    for s in generator.specs)]
        assert identity
        changed = any(not torch.allclose(before[n], after[n]) for n in identity)
        assert changed == drifts
    # entanglement 0 is the generator as before (its own random stream)
    assert torch.equal(load_generator("synthetic:faces", resolution=16, supersample=1, entanglement=0.0)
                       .synthesis(ws), plain.synthesis(ws))
    with pytest.raises(ValueError, match="entanglement"):
        load_generator("synthetic:faces", entanglement=2.0)


@pytest.mark.parametrize("category", ["faces", "objects"])
def test_highlight_scale_multiplies_the_specular_intensity_and_nothing_else(category):
    spec = f"synthetic:{category}"
    plain = load_generator(spec, resolution=24, supersample=1)
    ws = plain.mapping(plain.z_from_seed(3))
    truth = plain.ground_truth(ws)
    for scale in (0.0, 2.0):
        scaled = load_generator(spec, resolution=24, supersample=1, highlight_scale=scale).ground_truth(ws)
        # the base's and every patch's ks are scaled and clamped to 1 before they blend
        if scale == 0.0:
            assert (scaled["specular"] == 0).all()
        else:
            assert (scaled["specular"] >= truth["specular"] - 1e-6).all()
            assert (scaled["specular"] <= scale * truth["specular"] + 1e-6).all()
            assert scaled["specular"].sum() > 0.75 * scale * truth["specular"].sum()
        for name in ("depth", "normal", "albedo", "shininess", "mask"):
            assert torch.equal(scaled[name], truth[name]), name
        hit = truth["mask"][0] > 0
        if scale == 0.0:  # no highlights: the image can only get darker where there were any
            assert (scaled["image"] <= truth["image"] + 1e-6).all()
        else:
            assert (scaled["image"] >= truth["image"] - 1e-6).all() and \
                (scaled["image"] - truth["image"])[:, :, hit].abs().max() > 0.01
    assert torch.equal(load_generator(spec, resolution=24, supersample=1, highlight_scale=1.0).synthesis(ws),
                       plain.synthesis(ws))
    for bad in (-0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="highlight_scale"):
            load_generator(spec, highlight_scale=bad)


# --- the detailed category ------------------------------------------------------------------

def laplacian_energy(images: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean squared 4-neighbour Laplacian of images [B, C, R, R] over the
    interior of mask [B, R, R] (all four neighbours inside): high-frequency energy."""
    lap = (4 * images[..., 1:-1, 1:-1] - images[..., :-2, 1:-1] - images[..., 2:, 1:-1]
           - images[..., 1:-1, :-2] - images[..., 1:-1, 2:])
    m = mask > 0.999
    inner = m[:, 1:-1, 1:-1] & m[:, :-2, 1:-1] & m[:, 2:, 1:-1] & m[:, 1:-1, :-2] & m[:, 1:-1, 2:]
    return float(lap.square().sum(1)[inner].mean())


@pytest.mark.parametrize("resolution", [64, 128])
def test_detailed_heads_hold_much_more_fine_detail_than_faces(resolution):
    from gan2x.measure import metrics

    seeds = [0, 1, 2, 3] if resolution == 64 else [0, 1]
    out = {}
    for category in ("faces", "detailed"):
        G = load_generator(f"synthetic:{category}", resolution=resolution)
        with torch.no_grad():
            out[category] = G.ground_truth(G.mapping(seeds_z(G, seeds)))
    energy = {c: laplacian_energy(o["image"], o["mask"]) for c, o in out.items()}
    albedo_energy = {c: laplacian_energy(o["albedo"], o["hit"].float()) for c, o in out.items()}
    assert energy["detailed"] > 4 * energy["faces"], energy               # the images
    assert albedo_energy["detailed"] > 10 * albedo_energy["faces"], albedo_energy
    # the ground-truth normals carry the relief: detail-normal magnitude (docs/benchmark.md)
    detail = {c: [metrics.detail_normal_magnitude(o["normal"][i].permute(1, 2, 0), metrics.erode(o["hit"][i]))
                  for i in range(len(seeds))] for c, o in out.items()}
    # (faces hold some too: their nose, lips and eye sockets are a few pixels wide)
    assert np.mean(detail["detailed"]) > 1.6 * np.mean(detail["faces"]), detail
    assert min(detail["detailed"]) > max(detail["faces"]) + 1.5, detail
    # spatially varying gloss: matte and glossy skin, sharp highlights
    hit = out["detailed"]["hit"]
    ks, shininess = out["detailed"]["specular"][hit], out["detailed"]["shininess"][hit]
    assert ks.max() > 0.5 and ks.median() < 0.2 and shininess.max() > 100


def test_detailed_is_deterministic_and_latent_controlled(detailed):
    with torch.no_grad():
        a = detailed(seeds_z(detailed, [7, 8]))
        again = load_generator("synthetic:detailed", resolution=RES)
        assert torch.equal(again(seeds_z(again, [7, 8])), a)
        assert (a[0] - a[1]).abs().mean() > 0.02
    faces = load_generator("synthetic:faces", resolution=RES)
    with torch.no_grad():
        assert not torch.equal(faces(seeds_z(faces, [7, 8])), a)
    # layer roles as in faces: the relief reads the shape layers, the paint the material ones,
    # and the view layers hold the view alone
    ws = detailed.mapping(seeds_z(detailed, [21])).clone().requires_grad_(True)
    scene = detailed.scene(ws)
    detail = slice(scene.detail_from, None)
    g_relief = torch.autograd.grad(scene.bump_height[:, detail].sum(), ws, retain_graph=True)[0].abs().sum(-1)[0]
    g_paint = torch.autograd.grad(scene.patch_albedo[:, -40:].sum(), ws, retain_graph=True)[0].abs().sum(-1)[0]
    g_view = torch.autograd.grad(scene.yaw.sum(), ws)[0].abs().sum(-1)[0]
    assert g_relief[2:4].min() > 0 and g_relief[:2].max() == 0 and g_relief[4:].max() == 0
    assert g_paint[4:6].min() > 0 and g_paint[:4].max() == 0
    assert g_view[:2].min() > 0 and g_view[2:].max() == 0
    assert detailed.view_layers == 2


def test_detailed_relief_stays_within_the_marchers_bound(detailed):
    from gan2x.generators.synthetic.shapes import DETAIL_BOUND, EXP_FLOOR

    u = torch.as_tensor(fibonacci_sphere(40000), dtype=torch.float32)
    with torch.no_grad():
        scene = detailed.scene(detailed.mapping(seeds_z(detailed, range(200, 232))))
        k = scene.detail_from
        kc = scene.bump_kappa[:, k:, None] * scene.bump_dirs[:, k:]
        bumps = torch.baddbmm(-scene.bump_kappa[:, None, k:], u[None].expand(32, -1, -1),
                              kc.transpose(1, 2)).clamp(min=EXP_FLOOR).exp()
        modulation = (bumps * scene.bump_height[:, None, k:]).sum(-1)
    assert modulation.abs().max() < 0.8 * DETAIL_BOUND
    # the marcher that skips the relief away from the surface finds the same surface
    with torch.no_grad():
        skipped = detailed.render(scene.select(slice(0, 4)))
        whole = detailed.render(scene.select(slice(0, 4)).replace(detail_from=0))
    assert torch.equal(skipped["hit"], whole["hit"])
    assert (skipped["depth"] - whole["depth"]).abs().max() < 1e-4
