"""The fit in its stages (backend/gan2x/fit/stages, fit/settings.py): the
settings' checks and learning rates, each stage's optimiser and what it
changes, and that ``fit_target`` is their composition and deterministic.

A recorded reference of a whole fit cannot be compared across torch versions,
so the stages are tested one by one, and the schedule against the same stages
composed by hand (every value equal: same random draws, same order)."""
import math
from dataclasses import replace

import pytest
import torch

from gan2x.fit.asset_model import AssetModel
# every name the rest of the code base imports from fit.schedule is still there
from gan2x.fit.schedule import (PRESETS, REFINEMENT_FIELDS, FitResult, FitSettings, LearningRates,  # noqa: F401
                                ProgressCallback, SnapshotCallback, fit_target)
from gan2x.fit.stages import (FitContext, exploit, exploitation_optimiser, explore, fit_to_target,
                              no_exploration, refine, sample_pseudo_states, target_fit_optimiser)
from gan2x.generators import load_generator
from gan2x.render.volume import SamplingSettings

SAMPLING = SamplingSettings(coarse_samples=16, fine_samples=8, coarse_grid=16)
TINY = dict(stages=2, target_steps=3, projection_steps=2, exploitation_steps=4, pseudo_samples=2,
            rays_per_image=48, refinement_steps=3, sampling=SAMPLING)


@pytest.fixture(scope="module")
def sample():
    """The built-in faces at 16 px: generator, ws [1, num_ws, w_dim], image [3, 16, 16]."""
    generator = load_generator("synthetic:faces", resolution=16, supersample=1)
    with torch.no_grad():
        ws = generator.mapping(generator.z_from_seed(1))
        return generator, ws, generator.synthesis(ws)[0]


def _context(sample, calls=None, **changes) -> FitContext:
    generator, ws, target = sample
    settings = replace(PRESETS["draft"], **{**TINY, **changes})
    progress = (lambda name, done, total: calls.append((name, done, total))) if calls is not None else None
    return FitContext.start(generator, ws, target, settings, progress=progress)


def _values(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def _changed(module: torch.nn.Module, before: dict[str, torch.Tensor]) -> set[str]:
    return {name for name, p in module.named_parameters() if not torch.equal(p, before[name])}


# --- settings -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, value, message", [
    ("shading", "glossy", r"unknown shading 'glossy'; choose 'phong' or 'lambertian'"),
    ("encoding", "nerf", r"unknown encoding 'nerf'; known: fourier, triplane, hashgrid"),
    ("exploration", "sideways", r"unknown exploration 'sideways'; choose one of \['projection', 'style_mixing'"),
    ("refinement_field", "normals", r"unknown refinement_field 'normals'; choose one of \['residual', 'detail'\]"),
])
def test_settings_refuse_unknown_string_options_when_made(name, value, message):
    with pytest.raises(ValueError, match=message):
        FitSettings(**{name: value})
    with pytest.raises(ValueError, match=message):
        replace(PRESETS["draft"], **{name: value})
    changed = replace(PRESETS["draft"])
    setattr(changed, name, value)       # changed after it was made: validate() (and so the fit) still says so
    with pytest.raises(ValueError, match=message):
        changed.validate()


def test_learning_rates_keep_their_values_and_the_settings_their_fields():
    rates = FitSettings().learning_rates
    assert (rates.target_light, rates.target_background, rates.light, rates.background, rates.camera,
            rates.shape_axes, rates.density, rates.projection) == (2e-2, 5e-2, 1e-2, 5e-2, 5e-3, 1e-2, 1e-2, 5e-2)
    settings = FitSettings(learning_rate=1e-3, stages=3, exploration="mixed")
    assert settings.learning_rate == 1e-3 and settings.refinement_learning_rate == 1e-3
    as_dict = settings.to_dict()
    assert as_dict["learning_rates"]["camera"] == 5e-3 and as_dict["sampling"]["coarse_grid"] == 64
    assert FitSettings(**as_dict) == settings                  # nested dicts are taken back as dataclasses
    assert REFINEMENT_FIELDS == ("residual", "detail")


def test_specular_joins_at_its_stage_and_always_in_the_last():
    phong = FitSettings(stages=3, specular_start_stage=1)
    assert [phong.specular_in_stage(s) for s in range(3)] == [False, True, True]
    late = FitSettings(stages=3, specular_start_stage=7)
    assert [late.specular_in_stage(s) for s in range(3)] == [False, False, True]
    lambertian = FitSettings(stages=3, shading="lambertian")
    assert not any(lambertian.specular_in_stage(s) for s in range(3))


def test_set_specular_switches_ks_without_touching_the_weights():
    torch.manual_seed(0)
    model = AssetModel()
    points = torch.rand(64, 3) - 0.5
    with torch.no_grad():
        on = model.materials(points)["specular"]
        model.set_specular(False)
        assert torch.equal(model.materials(points)["specular"], torch.zeros(64))
        model.set_specular(True)
        assert torch.equal(model.materials(points)["specular"], on)
    assert AssetModel(specular=False).materials.max_specular == 0.0


# --- each stage's optimiser ------------------------------------------------------------------------------

def _groups(optimiser) -> list[tuple[list[int], float]]:
    return [([id(p) for p in group["params"]], group["lr"]) for group in optimiser.param_groups]


def test_the_target_fits_optimiser_takes_its_rates_from_the_settings():
    model, settings = AssetModel(), FitSettings(learning_rate=3e-3, learning_rates=LearningRates(target_light=0.7,
                                                                                                 target_background=0.9))
    from gan2x.fit.image_state import ImageState

    state = ImageState(camera_fixed=True)
    groups = _groups(target_fit_optimiser(model, state, settings))
    assert groups == [([id(p) for p in model.material_parameters()], 3e-3),
                      ([id(p) for p in state.light_parameters()], 0.7),
                      ([id(p) for p in state.background_parameters()], 0.9)]


def test_the_exploitation_optimiser_groups_in_order_and_leaves_the_target_camera_out():
    from gan2x.fit.image_state import ImageState, pseudo_state

    model = AssetModel()
    target = ImageState(camera_fixed=True)
    states = [target, pseudo_state(target, 0.2, -0.1)]
    rates = LearningRates(light=0.11, background=0.12, camera=0.13, shape_axes=0.14, density=0.15)
    groups = _groups(exploitation_optimiser(model, states, FitSettings(learning_rate=0.1, learning_rates=rates)))
    ids = lambda params: [id(p) for p in params]  # noqa: E731
    assert groups == [(ids(model.sdf.residual_parameters()), 0.1),
                      (ids([model.sdf.log_semi_axes]), 0.14),
                      (ids(model.density.parameters()), 0.15),
                      (ids(model.material_parameters()), 0.1),
                      (ids(states[1].camera_parameters()), 0.13),          # the target's camera is fixed
                      (ids(target.light_parameters() + states[1].light_parameters()), 0.11),
                      (ids(target.background_parameters() + states[1].background_parameters()), 0.12)]


# --- each stage: what it changes --------------------------------------------------------------------------

def test_the_target_fit_changes_materials_light_and_background_only(sample):
    calls = []
    fit = _context(sample, calls)
    model_before, state_before = _values(fit.model), _values(fit.target_state)
    coarse, entry = fit_to_target(fit, 0)
    changed = _changed(fit.model, model_before)
    assert changed and all(name.startswith("materials.") for name in changed), changed
    assert _changed(fit.target_state, state_before) == {"light_vector", "log_ambient", "log_diffuse",
                                                        "background_logit"}
    assert fit.model.materials.max_specular == 0.0              # draft: Lambertian before stage 2
    assert coarse is not None and entry["step"] == "target_fit" and entry["stage"] == 1 and entry["loss"] > 0
    assert calls == [("stage 1: target fit", n, fit.settings.total_steps()) for n in (1, 2, 3)]
    fit_to_target(fit, 1)
    assert fit.model.materials.max_specular == 1.0              # the last stage has ks


def test_exploration_projects_rendered_pseudo_samples(sample):
    calls = []
    fit = _context(sample, calls)
    before = _values(fit.model)
    explored = explore(fit, 0, None)
    assert not _changed(fit.model, before)                      # nothing of the asset learns here
    assert len(explored.states) == 2 and explored.projected.shape == explored.pseudo_images.shape == (2, 3, 16, 16)
    assert len(explored.yaws_degrees) == 2 and all(abs(y) <= 30.0 for y in explored.yaws_degrees)
    assert set(explored.record) == {"stage", "step", "exploration", "projection_l1", "reach_weights"}
    assert explored.weights.shape == (2,) and ((explored.weights >= 0) & (explored.weights <= 1)).all()
    assert explored.record["reach_weights"] == [round(w, 4) for w in explored.weights.tolist()]
    assert [c[0] for c in calls] == ["stage 1: exploration"] * 2


def test_reach_weights_favour_projections_that_follow_their_render():
    from gan2x.fit.stages.exploration import reach_weights

    target = torch.zeros(3, 8, 8)
    render = torch.full((2, 3, 8, 8), 0.5)
    projected = torch.stack([render[0] - 0.02, target + 0.02])  # the first followed its render, the second did not
    weights, to_render, to_target = reach_weights(projected, render, target, margin_db=2.0)
    assert weights.tolist() == [1.0, 0.0]
    assert to_render[0] > to_target[0] and to_target[1] > to_render[1]  # tensors [N]
    same = reach_weights(render, render, render[0], margin_db=2.0)[0]  # as close to both: half weight
    assert torch.allclose(same, torch.full((2,), 0.5))


def test_the_density_ceiling_is_kept_by_projection_and_lets_beta_shrink():
    from gan2x.render.volume import LaplaceDensity

    density = LaplaceDensity(initial_beta=0.2, maximum_beta=0.02)
    assert float(density.beta) == pytest.approx(0.202)
    density.keep_under_ceiling()
    assert float(density.beta) == pytest.approx(0.02)
    optimiser = torch.optim.SGD(density.parameters(), lr=0.5)
    density.beta.backward()  # a loss that wants a sharper surface: beta moves down from the ceiling
    optimiser.step()
    density.keep_under_ceiling()
    assert float(density.beta) < 0.02
    free = LaplaceDensity(initial_beta=0.2)
    free.keep_under_ceiling()
    assert float(free.beta) == pytest.approx(0.202)


def test_exploration_by_style_mixing_projects_nothing(sample):
    calls = []
    fit = _context(sample, calls, exploration="style_mixing")
    explored = explore(fit, 0, None)
    assert explored.pseudo_images is None and explored.projected.shape == (2, 3, 16, 16)
    assert "view_search_l1" in explored.record and "projection_l1" not in explored.record
    assert len(calls) == fit.settings.projection_steps           # its steps count as done


def test_pseudo_states_come_from_the_fits_rng_in_order(sample):
    fit = _context(sample)
    first = sample_pseudo_states(fit.target_state, fit.settings, torch.Generator().manual_seed(5))
    again = sample_pseudo_states(fit.target_state, fit.settings, torch.Generator().manual_seed(5))
    assert [(s.yaw.item(), s.pitch.item()) for s in first] == [(s.yaw.item(), s.pitch.item()) for s in again]
    assert all(torch.equal(a.light_vector, b.light_vector) for a, b in zip(first, again))


def test_exploitation_changes_shape_materials_and_the_pseudo_cameras_not_the_target_camera(sample):
    fit = _context(sample)
    explored = explore(fit, 0, None)
    model_before, target_before = _values(fit.model), _values(fit.target_state)
    pseudo_before = [_values(s) for s in explored.states]
    entry = exploit(fit, 0, explored)
    changed = _changed(fit.model, model_before)
    assert {name.split(".")[0] for name in changed} == {"sdf", "materials", "density"}
    assert float(fit.model.density.beta) <= fit.settings.max_beta_metres + 1e-6  # FitSettings.max_beta_metres
    assert "sdf.log_semi_axes" in changed
    assert "yaw" not in _changed(fit.target_state, target_before)
    assert all({"yaw", "pitch"} <= _changed(s, b) for s, b in zip(explored.states, pseudo_before))
    assert entry["step"] == "exploitation" and "eikonal" in entry


def test_refinement_changes_only_the_residual_field_and_unfreezes_everything(sample):
    fit = _context(sample)
    model_before, state_before = _values(fit.model), _values(fit.target_state)
    entry = refine(fit)
    changed = _changed(fit.model, model_before)
    assert changed and all(name.startswith("sdf.residual.") for name in changed), changed
    assert not _changed(fit.target_state, state_before)
    assert all(p.requires_grad for p in fit.model.parameters())
    assert entry["step"] == "refinement" and entry["stage"] == 2 and entry["sdf_change_rms_metres"] > 0


# --- the schedule ---------------------------------------------------------------------------------------------

def _all_values(result: FitResult) -> list[torch.Tensor]:
    tensors = [p.detach() for p in result.model.parameters()] + [p.detach() for p in result.target_state.parameters()]
    tensors += [p.detach() for s in result.pseudo_states for p in s.parameters()]
    return tensors + [result.projected_images, result.pseudo_images]


@pytest.mark.parametrize("changes", [{}, {"exploration": "mixed", "shading": "lambertian"}])
def test_fit_target_is_the_stages_composed_and_deterministic(sample, changes):
    generator, ws, target = sample
    settings = replace(PRESETS["draft"], **{**TINY, **changes})
    result = fit_target(generator, ws, target, settings)
    torch.manual_seed(123)                                       # torch's global generator plays no part
    again = fit_target(generator, ws, target, settings)
    assert all(torch.equal(a, b) for a, b in zip(_all_values(result), _all_values(again), strict=True))
    assert result.history == again.history

    # by hand: the same stages in the same order give the same values
    fit = FitContext.start(generator, ws, target, settings)
    history, explored = [], no_exploration(fit)
    for stage in range(settings.stages):
        coarse, entry = fit_to_target(fit, stage)
        explored = explore(fit, stage, coarse)
        history += [entry, explored.record, exploit(fit, stage, explored)]
    history.append(refine(fit))
    by_hand = FitResult(model=fit.model, target_state=fit.target_state, pseudo_states=explored.states,
                        projected_images=explored.projected, timings={}, history=history,
                        pseudo_images=explored.pseudo_images)
    assert all(torch.equal(a, b) for a, b in zip(_all_values(result), _all_values(by_hand), strict=True))
    assert result.history == history
    assert [(h["stage"], h["step"]) for h in history] == [
        (1, "target_fit"), (1, "exploration"), (1, "exploitation"),
        (2, "target_fit"), (2, "exploration"), (2, "exploitation"), (2, "refinement")]


def test_the_learning_rates_reach_the_fit(sample):
    """A camera rate of 0 leaves every pseudo sample's camera where exploration put it."""
    generator, ws, target = sample
    settings = replace(PRESETS["draft"], **{**TINY, "stages": 1, "refinement_steps": 0},
                       learning_rates=LearningRates(camera=0.0))

    def yaws(result):
        return [math.degrees(float(s.yaw.detach()) - float(result.target_state.yaw.detach()))
                for s in result.pseudo_states]

    still = fit_target(generator, ws, target, settings)
    assert yaws(still) == pytest.approx(still.pseudo_yaws_degrees, abs=1e-5)
    moved = fit_target(generator, ws, target, replace(settings, learning_rates=LearningRates()))
    assert yaws(moved) != pytest.approx(moved.pseudo_yaws_degrees, abs=1e-4)
