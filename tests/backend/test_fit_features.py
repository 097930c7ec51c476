"""The discriminator's feature loss in the fit (backend/gan2x/fit/features.py,
FitSettings.feature_weight): composites, the projection, a StyleGAN2 fit
with D, and the synthetic generator's fit unchanged without D."""
from dataclasses import replace

import pytest
import torch

import stylegan2_checkpoints as checkpoints
from gan2x.export import validate_bundle
from gan2x.fit.features import FitFeatureLoss, composite_images
from gan2x.fit.projection import project_to_generator
from gan2x.fit.schedule import PRESETS, fit_target
from gan2x.generators import load_generator
from gan2x.generators.feature_loss import FeatureLoss
from gan2x.pipeline import ExportSettings, ReconstructionRequest, reconstruct
from gan2x.render.volume import SamplingSettings

SAMPLING = SamplingSettings(coarse_samples=24, fine_samples=8, coarse_grid=24)
TINY = dict(stages=1, target_steps=4, projection_steps=3, exploitation_steps=4, pseudo_samples=2,
            rays_per_image=64, refinement_steps=0, sampling=SAMPLING)


@pytest.fixture(scope="module")
def stylegan2(tmp_path_factory):
    path = tmp_path_factory.mktemp("features") / "network.pkl"
    checkpoints.write_nvidia_pickle(path, seed=1)   # with D
    return path


def test_composite_writes_the_rendered_pixels_in_and_only_they_get_gradients():
    images = torch.rand(2, 16, 3)                       # [B, R*R, 3], R = 4
    pixel_ids = torch.tensor([[0, 5, 15], [3, 4, 9]])
    rendered = torch.rand(2, 3, 3, requires_grad=True)
    composite = composite_images(images, pixel_ids, rendered, 4)
    assert composite.shape == (2, 3, 4, 4)
    flat = (composite.permute(0, 2, 3, 1).reshape(2, 16, 3) + 1) / 2
    for b in range(2):
        others = [i for i in range(16) if i not in pixel_ids[b].tolist()]
        assert torch.allclose(flat[b, pixel_ids[b]], rendered[b])
        assert torch.allclose(flat[b, others], images[b, others])
    composite.sum().backward()
    assert torch.allclose(rendered.grad, torch.full_like(rendered, 2.0))


def test_feature_steps_follow_every(stylegan2):
    generator = load_generator(f"stylegan2:{stylegan2}")
    features = FitFeatureLoss.for_generator(generator, weight=0.1, every=3)
    images = torch.rand(1, 16 * 16, 3)
    ids = torch.arange(10)[None]
    got = [features(images[:, :10] * 0.5, ids, images, 16) for _ in range(6)]
    assert [g is not None for g in got] == [True, False, False, True, False, False]
    assert got[0].shape == (1,) and float(got[0]) > 0
    assert FitFeatureLoss.for_generator(generator, weight=0.0) is None
    assert FitFeatureLoss.for_generator(load_generator("synthetic:faces", resolution=16), weight=0.1) is None


def test_projection_adds_the_discriminator_features(stylegan2, monkeypatch):
    generator = load_generator(f"stylegan2:{stylegan2}")
    with torch.no_grad():
        target_ws = generator.mapping(generator.z_from_seed(3), truncation_psi=0.7)
        pseudo = generator.synthesis(generator.mapping(torch.cat([generator.z_from_seed(4), generator.z_from_seed(5)]),
                                                       truncation_psi=0.7))
    calls = []
    features_of = generator.discriminator_features
    monkeypatch.setattr(generator, "discriminator_features", lambda images: calls.append(len(images)) or
                        features_of(images))
    record = {}
    with_d, _ = project_to_generator(generator, target_ws, pseudo, steps=5, feature_loss=FeatureLoss(generator),
                                     feature_weight=1.0, record=record)
    assert calls == [2] * 6                 # the pseudo samples once, then every step's images
    assert record["projection_features"] > 0 and record["projection_l1"] > 0
    without, _ = project_to_generator(generator, target_ws, pseudo, steps=5, record=(plain := {}))
    assert "projection_features" not in plain and len(calls) == 6
    assert not torch.allclose(with_d, without)


def test_a_stylegan2_fit_with_d_uses_the_features_end_to_end(stylegan2, tmp_path):
    spec = f"stylegan2:{stylegan2}"
    request = ReconstructionRequest(generator=spec, seed=3, fit_overrides=dict(TINY, feature_every=1),
                                    export=ExportSettings(mesh_resolution=32, texture_size=64))
    result = reconstruct(request, tmp_path / "bundle")
    assert validate_bundle(result.bundle)["provenance"]["generator"] == spec
    steps = {entry["step"]: entry for entry in result.fit.history}
    assert steps["target_fit"]["features"] > 0 and steps["exploitation"]["features"] > 0
    assert steps["exploration"]["projection_features"] > 0


def test_without_d_the_synthetic_fit_is_unchanged_by_the_feature_option():
    generator = load_generator("synthetic:faces", resolution=16, supersample=1)
    with torch.no_grad():
        ws = generator.mapping(generator.z_from_seed(2))
        target = generator.synthesis(ws)[0]
    results = []
    for weight in (0.0, 0.5):
        torch.manual_seed(0)   # the Eikonal term's free points come from torch's global generator
        results.append(fit_target(generator, ws, target, replace(PRESETS["draft"], feature_weight=weight, **TINY)))
    off, on = results
    assert on.history == off.history
    assert not any("features" in key for entry in on.history for key in entry)
    for (name, a), (_, b) in zip(off.model.named_parameters(), on.model.named_parameters()):
        assert torch.equal(a, b), name
    assert torch.equal(off.projected_images, on.projected_images)
