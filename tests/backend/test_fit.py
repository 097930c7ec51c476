"""The fit (backend/gan2x/fit): projection through the generator and the
stage loop, on tiny images of the built-in generator."""
from dataclasses import replace

import torch

from gan2x.fit.image_state import ImageState
from gan2x.fit.projection import project_to_generator
from gan2x.fit.schedule import PRESETS, fit_target
from gan2x.generators import load_generator
from gan2x.render.volume import SamplingSettings


def _tiny_generator():
    return load_generator("synthetic:faces", resolution=24, supersample=1)


def test_projection_brings_the_generator_closer_to_pseudo_samples():
    torch.manual_seed(0)
    generator = _tiny_generator()
    with torch.no_grad():
        target_ws = generator.mapping(generator.z_from_seed(3))
        # Pseudo samples that the generator can reach: other samples' images.
        pseudo = generator.synthesis(generator.mapping(torch.cat([generator.z_from_seed(4),
                                                                   generator.z_from_seed(5)])))
        before = (generator.synthesis(target_ws.expand(2, -1, -1)) - pseudo).abs().mean()
    projected, ws = project_to_generator(generator, target_ws, pseudo, steps=30, learning_rate=0.05,
                                         offset_weight=0.0)
    after = (projected - pseudo).abs().mean()
    assert ws.shape == (2, generator.num_ws, generator.w_dim)
    assert after < 0.7 * before


def test_a_short_fit_explains_the_target_better_than_the_prior():
    torch.manual_seed(0)
    generator = _tiny_generator()
    with torch.no_grad():
        ws = generator.mapping(generator.z_from_seed(1))
        target = generator.synthesis(ws)[0]
    settings = replace(PRESETS["draft"], stages=1, target_steps=30, projection_steps=5, exploitation_steps=40,
                       pseudo_samples=2, rays_per_image=128,
                       sampling=SamplingSettings(coarse_samples=32, fine_samples=12, coarse_grid=32))
    calls = []
    result = fit_target(generator, ws, target, settings, progress=lambda stage, done, total: calls.append(done))
    assert calls == list(range(1, settings.total_steps() + 1))
    assert result.projected_images.shape == (2, 3, 24, 24)
    assert len(result.pseudo_states) == 2

    target_rgb = ((target + 1) / 2).permute(1, 2, 0)
    fitted = result.model.render_image(result.target_state, 24, settings.sampling)["rgb"]
    from gan2x.fit.asset_model import AssetModel

    prior = AssetModel().render_image(ImageState(camera_fixed=True), 24, settings.sampling)["rgb"]
    fitted_error = (fitted - target_rgb).abs().mean()
    prior_error = (prior - target_rgb).abs().mean()
    assert fitted_error < 0.6 * prior_error
    # The target's camera defines the world frame and never moves.
    assert result.target_state.yaw.item() == 0.0 and result.target_state.pitch.item() == 0.0
