"""Evaluation against the built-in generator's ground truth: the fit's world
frame and the generator's are related by one rotation, for cameras and
lights alike."""
import math

import torch

from gan2x.fit.asset_model import AssetModel
from gan2x.fit.image_state import ImageState
from gan2x.generators import load_generator
from gan2x.measure.ground_truth import appearance_metrics, ground_truth_maps, material_metrics
from gan2x.render.cameras import orbit_world_from_camera
from gan2x.render.volume import SamplingSettings


def _sample(seed=2):
    generator = load_generator("synthetic:faces", resolution=24, supersample=1)
    with torch.no_grad():
        ws = generator.mapping(generator.z_from_seed(seed))
    return generator, ws


def test_the_target_camera_and_light_map_back_onto_the_generators_own():
    generator, ws = _sample()
    truth = ground_truth_maps(generator, ws)
    rotation = truth["generator_from_fit"]
    with torch.no_grad():
        own = generator.ground_truth(ws)
        frontal = orbit_world_from_camera(torch.zeros(1), torch.zeros(1))[0]
        camera = frontal.clone()
        camera[:3, :] = rotation @ frontal[:3, :]
        assert torch.allclose(camera, own["world_from_camera"][0], atol=1e-5)
        light_in_fit = rotation.T @ own["towards_light"][0]
        again = generator.render(generator.scene(ws), world_from_camera=camera[None],
                                 towards_light=(rotation @ light_in_fit)[None])
    assert torch.allclose(again["image"], own["image"], atol=1e-5)


def test_metrics_of_the_prior_are_finite_and_the_material_errors_see_a_wrong_albedo():
    generator, ws = _sample()
    truth = ground_truth_maps(generator, ws)
    sampling = SamplingSettings(coarse_samples=32, fine_samples=12, coarse_grid=0)
    model, state = AssetModel(), ImageState(camera_fixed=True)
    render = model.render_image(state, 24, sampling)
    materials = material_metrics(render, truth)
    assert all(math.isfinite(v) and v >= 0 for v in materials.values())
    perfect = dict(render, albedo=truth["albedo"] * 0.7, specular=truth["specular"], shininess=truth["shininess"])
    exact = material_metrics(perfect, truth)
    assert exact.pop("albedo_psnr_db") > 100.0  # a perfect albedo: the PSNR of float rounding alone
    assert max(exact.values()) < 1e-6
    appearance = appearance_metrics(model, state, generator, ws, truth, sampling)
    assert len(appearance["relight_psnr_db_each"]) == 4 and len(appearance["novel_view_psnr_db_each"]) == 2
    assert all(5.0 < v < 60.0 for v in appearance["relight_psnr_db_each"] + appearance["novel_view_psnr_db_each"])
