"""Style-mixing exploration (backend/gan2x/fit/style_mixing.py, FitSettings.exploration):
view layers swapped, cameras and lights from a coarse search, clear errors."""
import math
from dataclasses import replace

import pytest
import torch

import stylegan2_checkpoints as checkpoints
from gan2x.cli import EXPLORATIONS as CLI_EXPLORATIONS
from gan2x.cli import main
from gan2x.fit.asset_model import AssetModel
from gan2x.fit.image_state import ImageState
from gan2x.fit.schedule import PRESETS, fit_target
from gan2x.fit.style_mixing import (EXPLORATIONS, ViewSearchGrid, check_exploration, coarse_view_search,
                                    mix_view_layers)
from gan2x.generators import load_generator
from gan2x.generators.synthetic.generator import SyntheticGenerator
from gan2x.render.volume import SamplingSettings

SAMPLING = SamplingSettings(coarse_samples=24, fine_samples=8, coarse_grid=24)
TINY = dict(stages=1, target_steps=4, projection_steps=3, exploitation_steps=4, pseudo_samples=2,
            rays_per_image=64, refinement_steps=0, sampling=SAMPLING)


def _tiny_sample(seed: int = 1):
    generator = load_generator("synthetic:faces", resolution=24, supersample=1)
    with torch.no_grad():
        ws = generator.mapping(generator.z_from_seed(seed))
        return generator, ws, generator.synthesis(ws)[0]


def test_mixing_swaps_only_the_view_layers_and_follows_the_fits_rng():
    generator, ws, _ = _tiny_sample()
    assert generator.view_layers == 2
    mixed = mix_view_layers(generator, ws, 3, torch.Generator().manual_seed(4))
    again = mix_view_layers(generator, ws, 3, torch.Generator().manual_seed(4))
    assert mixed.shape == (3, generator.num_ws, generator.w_dim) and torch.equal(mixed, again)
    assert torch.equal(mixed[:, 2:], ws.expand(3, -1, -1)[:, 2:])        # identity layers kept
    assert (mixed[:, :2] - ws[:, :2]).abs().amax(dim=(1, 2)).min() > 0.1  # view layers from other samples
    with torch.no_grad():
        target, others = generator.scene(ws), generator.scene(mixed)
    # entanglement 0: the shape is exactly the target's, the view is not
    assert torch.allclose(others.axes, target.axes.expand_as(others.axes), atol=1e-6)
    assert (others.yaw - target.yaw).abs().max() > math.radians(2)


def test_coarse_search_finds_the_view_and_light_of_a_render_of_the_estimate():
    torch.manual_seed(0)
    model = AssetModel()
    target_state = ImageState(camera_fixed=True)
    grid = ViewSearchGrid.for_ranges(30, 15, 50, resolution=12)
    lights = grid.lights_in_camera()
    truth = [(30.0, -15.0, 3), (-45.0, 15.0, 8)]   # (yaw, pitch) degrees on the grid, light index
    images = []
    for yaw, pitch, light in truth:
        state = ImageState(yaw=math.radians(yaw), pitch=math.radians(pitch))
        with torch.no_grad():
            state.light_vector.copy_(state.world_from_camera()[:3, :3] @ lights[light])
        images.append(model.render_image(state, 12, SAMPLING)["rgb"].permute(2, 0, 1) * 2 - 1)
    found = coarse_view_search(model, target_state, torch.stack(images), grid, SAMPLING)
    for index, (yaw, pitch, light) in enumerate(truth):
        assert math.degrees(found.yaw[index]) == pytest.approx(yaw, abs=1e-3)
        assert math.degrees(found.pitch[index]) == pytest.approx(pitch, abs=1e-3)
    assert found.l1.max() < 1e-4


def test_a_style_mixing_fit_runs_its_steps_and_is_deterministic():
    generator, ws, target = _tiny_sample()
    settings = replace(PRESETS["draft"], exploration="style_mixing", **TINY)
    calls = []
    torch.manual_seed(0)  # the Eikonal term's free points come from torch's global generator
    result = fit_target(generator, ws, target, settings, progress=lambda stage, done, total: calls.append(done))
    assert calls == list(range(1, settings.total_steps() + 1))
    explored = [entry for entry in result.history if entry["step"] == "exploration"]
    assert explored[0]["exploration"] == "style_mixing" and explored[0]["view_search_l1"] > 0
    assert "projection_l1" not in explored[0]
    # the pseudo samples are the generator's images of style-mixed latents, drawn from the fit's rng
    assert result.projected_images.shape == (2, 3, 24, 24)
    torch.manual_seed(0)
    again = fit_target(generator, ws, target, settings)
    assert torch.equal(result.projected_images, again.projected_images)
    assert [s.yaw.item() for s in result.pseudo_states] == [s.yaw.item() for s in again.pseudo_states]
    assert all(s.yaw.requires_grad for s in result.pseudo_states)     # exploitation may refine them
    assert result.target_state.yaw.item() == 0.0

    mixed = fit_target(generator, ws, target, replace(settings, exploration="mixed"))
    entry = [e for e in mixed.history if e["step"] == "exploration"][0]
    assert entry["exploration"] == "mixed" and "view_search_l1" in entry and "projection_l1" in entry


class _NoViewLayers(SyntheticGenerator):
    view_layers = None


def test_style_mixing_without_view_layers_or_an_unknown_exploration_is_a_clear_error():
    generator = _NoViewLayers(resolution=16, supersample=1)
    with torch.no_grad():
        ws = generator.mapping(generator.z_from_seed(0))
        target = generator.synthesis(ws)[0]
    for exploration in ("style_mixing", "mixed"):
        with pytest.raises(ValueError, match="view_layers.*use exploration 'projection'"):
            fit_target(generator, ws, target, replace(PRESETS["draft"], exploration=exploration, **TINY))
    with pytest.raises(ValueError, match=r"unknown exploration 'sideways'; choose one of \['projection'"):
        fit_target(generator, ws, target, replace(PRESETS["draft"], exploration="sideways", **TINY))
    check_exploration("projection", generator)                      # projection needs nothing
    assert CLI_EXPLORATIONS == EXPLORATIONS


def test_stylegan2_mixes_its_first_four_layers(tmp_path):
    path = tmp_path / "network.pkl"
    checkpoints.write_nvidia_pickle(path, seed=1)
    generator = load_generator(f"stylegan2:{path}")
    with torch.no_grad():
        ws = generator.mapping(generator.z_from_seed(3))
    mixed = mix_view_layers(generator, ws, 2, torch.Generator().manual_seed(0))
    assert generator.view_layers == 4
    assert torch.equal(mixed[:, 4:], ws.expand(2, -1, -1)[:, 4:])
    assert not torch.equal(mixed[:, :4], ws[:, :4].expand(2, -1, -1))


def test_cli_passes_the_exploration_to_the_fit(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--exploration", "sideways", "--out", str(tmp_path / "x")])
    assert "invalid choice: 'sideways'" in capsys.readouterr().err
    import argparse

    from gan2x.pipeline import build_request

    args = argparse.Namespace(preset="draft", steps_scale=1.0, exploration="style_mixing", generator="synthetic",
                              seed=1, truncation=1.0, device="cpu", mesh_resolution=32, texture_size=64, image=None)
    assert build_request(vars(args)).fit_overrides == {"exploration": "style_mixing"}
