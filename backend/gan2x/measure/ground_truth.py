"""Evaluation of a fit against the built-in generator's ground truth.

Frames: the fit's world is the target camera's orbit frame (the target camera
is ``orbit_world_from_camera(0, 0)``), the generator's world is the object's
own. Both cameras sit on the same orbit looking at the origin, so one rotation
relates them: ``generator_world = R @ fit_world`` with ``R`` the rotation of
the generator's target ``world_from_camera`` (see ``generator_from_fit``).
Lights are directions in a world frame and rotate the same way.

Images are compared sRGB-encoded in [0, 1] over the generator's object mask
shrunk by one pixel (``metrics.erode``), where backgrounds play no part.
"""
from __future__ import annotations

import copy
import math

import torch

from ..render.volume import SamplingSettings
from . import metrics

RELIGHT_DIRECTIONS_CAMERA = (
    (-0.5, 0.5, 0.7071), (0.5, 0.5, 0.7071), (-0.5, -0.5, 0.7071), (0.5, -0.5, 0.7071))
"""Four new lights for the relighting metric, 45 degrees off the target
camera's axis towards each corner (target camera frame = the fit's world)."""

NOVEL_VIEW_YAWS_DEGREES = (-30.0, 30.0)


def ground_truth_maps(generator, ws: torch.Tensor) -> dict | None:
    """The target view's true maps, image-shaped: ``depth`` [R, R] metres,
    ``normal`` [R, R, 3] (camera frame), ``mask`` [R, R] bool, ``albedo``
    [R, R, 3] linear, ``specular`` [R, R], ``shininess`` [R, R], and
    ``generator_from_fit`` [3, 3]; None for generators without ground truth
    (real GANs)."""
    if not hasattr(generator, "ground_truth"):
        return None
    with torch.no_grad():
        truth = generator.ground_truth(ws)
    return {"depth": truth["depth"][0], "normal": truth["normal"][0].permute(1, 2, 0),
            "mask": truth["hit"][0], "albedo": truth["albedo"][0].permute(1, 2, 0),
            "specular": truth["specular"][0], "shininess": truth["shininess"][0],
            "generator_from_fit": truth["world_from_camera"][0, :3, :3]}


def shape_metrics(render: dict, truth: dict) -> dict:
    """SIDE (x 10^-2) and MAD (degrees) of a render at the target camera, and
    the MAD of the normals' high-frequency part (``metrics.detail_normal_mad``,
    over the true mask shrunk by one pixel) with the true detail's own
    magnitude beside it (``true_detail_normal_degrees``: what a smooth shape
    scores).

    The target camera is frontal (it defines the fit's world frame), so the
    render's world-frame normals are camera-frame normals."""
    inner = metrics.erode(truth["mask"])
    return {
        "side_x100": 100.0 * metrics.side(render["depth"], truth["depth"], truth["mask"]),
        "mad_degrees": metrics.mean_angle_deviation(render["normal"], truth["normal"], truth["mask"]),
        "detail_normal_mad_degrees": metrics.detail_normal_mad(render["normal"], truth["normal"], inner),
        "true_detail_normal_degrees": metrics.detail_normal_magnitude(truth["normal"], inner),
    }


def material_metrics(render: dict, truth: dict) -> dict:
    """Albedo error and PSNR (dB, linear albedo, peak 1) after a per-channel
    scale, specular (ks) error and shininess error in log space, at the
    target view over the true mask."""
    mask = truth["mask"]
    return {
        "albedo_error": metrics.scaled_albedo_error(render["albedo"], truth["albedo"], mask),
        "albedo_psnr_db": metrics.albedo_psnr(render["albedo"], truth["albedo"], mask),
        "specular_error": metrics.mean_absolute_error(render["specular"], truth["specular"], mask),
        "shininess_log_error": metrics.log_shininess_error(render["shininess"], truth["shininess"], mask),
    }


def ground_truth_metrics(render: dict, model, target_state, generator, ws: torch.Tensor, truth: dict,
                         sampling: SamplingSettings) -> dict:
    """Every ground-truth metric of a fit: shape and materials of ``render``
    (the fit's render at the target camera), relighting and novel views."""
    values = shape_metrics(render, truth)
    values.update(material_metrics(render, truth))
    values.update(appearance_metrics(model, target_state, generator, ws, truth, sampling))
    return values


def appearance_metrics(model, target_state, generator, ws: torch.Tensor, truth: dict,
                       sampling: SamplingSettings) -> dict:
    """Relighting PSNR (dB, mean over ``RELIGHT_DIRECTIONS_CAMERA``, each
    light at the target's estimated ambient and diffuse strengths) and
    novel-view PSNR (dB, mean over ``NOVEL_VIEW_YAWS_DEGREES`` of yaw about
    the object, under the target's light)."""
    relight = [_psnr(*relit_pair(model, target_state, generator, ws, truth, sampling, direction))
               for direction in RELIGHT_DIRECTIONS_CAMERA]
    novel = [_psnr(*novel_view_pair(model, target_state, generator, ws, truth, sampling, yaw))
             for yaw in NOVEL_VIEW_YAWS_DEGREES]
    return {"relight_psnr_db": sum(relight) / len(relight), "novel_view_psnr_db": sum(novel) / len(novel),
            "relight_psnr_db_each": relight, "novel_view_psnr_db_each": novel}


def relit_pair(model, target_state, generator, ws: torch.Tensor, truth: dict, sampling: SamplingSettings,
               towards_light_camera) -> tuple[dict, dict]:
    """The fit's render and the generator's truth at the target camera under
    a new light (unit direction towards it, target camera frame)."""
    rotation = truth["generator_from_fit"].to(ws.device, torch.float32)
    towards_fit = torch.tensor(towards_light_camera, dtype=torch.float32, device=ws.device)
    towards_fit = towards_fit / towards_fit.norm()
    with torch.no_grad():
        true = generator.render(generator.scene(ws), towards_light=(rotation @ towards_fit)[None])
    state = _with(target_state, towards_light=towards_fit)
    return model.render_image(state, truth["mask"].shape[-1], sampling), true


def novel_view_pair(model, target_state, generator, ws: torch.Tensor, truth: dict, sampling: SamplingSettings,
                    yaw_degrees: float) -> tuple[dict, dict]:
    """The fit's render and the generator's truth from the target camera
    orbited by ``yaw_degrees`` about the object, under the target's light."""
    rotation = truth["generator_from_fit"].to(ws.device, torch.float32)
    state = _with(target_state, yaw=math.radians(yaw_degrees))
    world_from_camera = state.world_from_camera().detach().clone()
    world_from_camera[:3, :] = rotation @ world_from_camera[:3, :]
    with torch.no_grad():
        true = generator.render(generator.scene(ws), world_from_camera=world_from_camera[None])
    return model.render_image(state, truth["mask"].shape[-1], sampling), true


def _with(state, yaw: float | None = None, towards_light: torch.Tensor | None = None):
    """A copy of an ImageState with another camera yaw or light direction."""
    changed = copy.deepcopy(state)
    with torch.no_grad():
        if yaw is not None:
            changed.yaw.fill_(yaw)
        if towards_light is not None:
            changed.light_vector.copy_(towards_light)
    return changed


def _psnr(render: dict, true: dict) -> float:
    predicted = render["rgb"]  # [R, R, 3] sRGB in [0, 1]
    expected = ((true["image"][0] + 1) / 2).clamp(0, 1).permute(1, 2, 0)
    return metrics.masked_psnr(predicted, expected, metrics.erode(true["hit"][0]))
