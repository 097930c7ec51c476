"""The fit's ``snapshot`` hook, which the service's worker uses for its
preview: called after every step with the live model and target state, and
looking (rendering a preview) does not change the fit."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from gan2x.fit.schedule import PRESETS, fit_target
from gan2x.generators import load_generator
from gan2x.render.volume import SamplingSettings
from gan2x.service.worker import render_preview

SETTINGS = replace(PRESETS["draft"], stages=1, target_steps=3, projection_steps=2, exploitation_steps=3,
                   pseudo_samples=1, rays_per_image=64,
                   sampling=SamplingSettings(coarse_samples=16, fine_samples=8, coarse_grid=16))
if hasattr(SETTINGS, "refinement_steps"):
    SETTINGS = replace(SETTINGS, refinement_steps=2)


def _fit(snapshot=None):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: more threads only wait on each other on a busy machine
    try:
        torch.manual_seed(0)
        generator = load_generator("synthetic:faces", resolution=16, supersample=1)
        with torch.no_grad():
            ws = generator.mapping(generator.z_from_seed(1))
            target = generator.synthesis(ws)[0]
        return fit_target(generator, ws, target, SETTINGS, snapshot=snapshot)
    finally:
        torch.set_num_threads(threads)


def test_snapshot_sees_every_step_and_previews_do_not_change_the_fit():
    calls, previews = [], []

    def snapshot(model, target_state):
        calls.append((model, target_state))
        if len(calls) % 3 == 0:
            previews.append(render_preview(model, target_state, 12, SETTINGS.sampling))

    watched = _fit(snapshot)
    assert len(calls) == SETTINGS.total_steps()
    assert all(model is watched.model and state is watched.target_state for model, state in calls)
    assert previews and all(p.shape == (12, 12, 3) and p.dtype == np.uint8 for p in previews)
    assert len({p.tobytes() for p in previews}) > 1  # the estimate changes as the fit goes on

    unwatched = _fit()
    for (name, watched_value), unwatched_value in zip(watched.model.state_dict().items(),
                                                      unwatched.model.state_dict().values()):
        assert torch.equal(watched_value, unwatched_value), name
