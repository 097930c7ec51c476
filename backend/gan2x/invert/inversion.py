"""GAN inversion: the latent whose image matches a photo.

Two stages, as StyleGAN2's projector (Karras et al. 2020, appendix D) and
its successors do:

1. **W**: one style vector ``w`` (broadcast to every layer), from ``w_avg``;
   stays on the generator's manifold, so the fit's projections of pseudo
   samples behave as for a sample.
2. **W+**: one ``w`` per layer, from the W result, with a smaller learning
   rate: matches details W cannot.

The loss is the pixel MSE plus an L1 over a 2x and 4x downsampled pyramid
(low frequencies first), plus, when the checkpoint holds a discriminator,
its feature distance (``feature_loss.py``). For a StyleGAN2 the per-layer
noise images are optimised too, under StyleGAN2's noise regulariser (the
squared autocorrelation of each noise image with its one-pixel shifts, over
a pyramid, so noise cannot carry the image) and renormalised to zero mean,
unit variance after every step; the result is kept in the generator's
constant noise, so every later ``synthesis`` (the fit's projections)
uses it.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
from torch.nn import functional as F

from ..bench import metrics
from ..fit.optim import guarded_step
from .feature_loss import FeatureLoss

Tensor = torch.Tensor


@dataclass
class InversionSettings:
    w_steps: int = 150
    wplus_steps: int = 150
    learning_rate: float = 0.05
    wplus_learning_rate: float = 0.01
    pyramid_weight: float = 1.0
    feature_weight: float = 0.5
    """Weight of the discriminator feature distance (used only when D exists)."""
    optimise_noise: bool = True
    """Optimise a StyleGAN2's noise images (ignored for other generators)."""
    noise_weight: float = 1e4
    """Weight of the noise regulariser."""
    seed: int = 0

    def total_steps(self) -> int:
        return self.w_steps + self.wplus_steps

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class InversionResult:
    ws: Tensor
    """[1, num_ws, w_dim], the W+ latent."""
    image: Tensor
    """[3, R, R] in [-1, 1]: the generator's image of ``ws``."""
    psnr_db: float
    """PSNR of ``image`` against the target (sRGB in [0, 1], all pixels)."""
    w_psnr_db: float
    """The same after the W stage alone."""
    used_discriminator: bool
    optimised_noise: bool
    timings: dict = field(default_factory=dict)
    history: list = field(default_factory=list)


def noise_regulariser(noises: list[Tensor]) -> Tensor:
    """Sum over noise images and pyramid levels (down to 8x8) of the squared
    mean products with one-pixel shifts in x and y."""
    total = noises[0].new_zeros(()) if noises else torch.zeros(())
    for noise in noises:
        level = noise[None, None]
        while True:
            total = total + (level * torch.roll(level, 1, dims=3)).mean().square()
            total = total + (level * torch.roll(level, 1, dims=2)).mean().square()
            if level.shape[-1] <= 8:
                break
            level = F.avg_pool2d(level, 2)
    return total


def image_loss(images: Tensor, target: Tensor, pyramid_weight: float) -> Tensor:
    """[B, 3, R, R] vs [1 or B, 3, R, R] -> scalar."""
    loss = (images - target).square().mean()
    if pyramid_weight:
        a, b = images, target
        for _ in range(2):
            if a.shape[-1] < 8:
                break
            a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
            loss = loss + pyramid_weight * (a - b).abs().mean()
    return loss


def _psnr(image: Tensor, target: Tensor) -> float:
    to_rgb = lambda x: ((x.detach() + 1) / 2).clamp(0, 1).permute(1, 2, 0)  # noqa: E731
    return metrics.masked_psnr(to_rgb(image), to_rgb(target), torch.ones(image.shape[-2:]))


def invert_image(generator, target: Tensor, settings: InversionSettings | None = None,
                 progress: Callable[[str, int, int], None] | None = None,
                 log: Callable[[str], None] | None = None) -> InversionResult:
    """Inverts ``target`` [3, R, R] (sRGB-encoded in [-1, 1], R = the
    generator's resolution) into W, then W+."""
    settings = settings or InversionSettings()
    resolution = generator.img_resolution
    if tuple(target.shape) != (3, resolution, resolution):
        raise ValueError(f"the image to invert is {tuple(target.shape)}; the generator needs [3, {resolution}, "
                         f"{resolution}]")
    device = generator.w_avg.device
    target = target.to(device)[None]
    for parameter in generator.parameters():
        parameter.requires_grad_(False)
    feature_loss = FeatureLoss.for_generator(generator) if settings.feature_weight > 0 else None
    target_features = None
    if feature_loss is not None:
        with torch.no_grad():
            target_features = feature_loss.features(target)
    layers = list(generator.noise_layers()) if settings.optimise_noise and hasattr(generator, "noise_layers") else []
    noises = []
    for layer in layers:
        noise = layer.noise_const.detach().clone()
        noise = (noise - noise.mean()) / noise.std().clamp(min=1e-8)
        noises.append(noise.requires_grad_(True))   # a plain leaf tensor: the buffer stays a buffer
        layer.noise_const = noises[-1]

    started = time.perf_counter()
    done, total = 0, settings.total_steps()
    history: list[dict] = []
    skipped = [0, 0]

    def run_stage(name: str, latent: torch.nn.Parameter, expand, steps: int, learning_rate: float):
        nonlocal done
        optimiser = torch.optim.Adam([{"params": [latent], "lr": learning_rate},
                                      {"params": noises, "lr": learning_rate}] if noises else [latent],
                                     betas=(0.9, 0.999))
        terms = {}
        for _ in range(steps):
            images = generator.synthesis(expand(latent))
            loss = image_loss(images, target, settings.pyramid_weight)
            terms = {"image": loss.detach()}  # read back once, after the stage
            if feature_loss is not None:
                features = feature_loss(images, target, target_features).mean()
                loss = loss + settings.feature_weight * features
                terms["features"] = features.detach()
            if noises:
                regulariser = noise_regulariser(list(noises))
                loss = loss + settings.noise_weight * regulariser
                terms["noise"] = regulariser.detach()
            guarded_step(optimiser, loss, skipped)
            with torch.no_grad():
                for noise in noises:
                    noise.sub_(noise.mean()).div_(noise.std().clamp(min=1e-8))
            done += 1
            if progress is not None:
                progress(f"inversion ({name})", done, total)
        history.append({"stage": name, **{key: float(value) for key, value in terms.items()}})

    try:
        with torch.no_grad():
            w = torch.nn.Parameter(generator.w_avg.detach().clone()[None])       # [1, w_dim]
        run_stage("W", w, lambda latent: latent[:, None, :].expand(-1, generator.num_ws, -1),
                  settings.w_steps, settings.learning_rate)
        with torch.no_grad():
            w_ws = w.detach()[:, None, :].expand(-1, generator.num_ws, -1).clone()
            w_psnr = _psnr(generator.synthesis(w_ws)[0], target[0])
        w_plus = torch.nn.Parameter(w_ws.clone())
        run_stage("W+", w_plus, lambda latent: latent, settings.wplus_steps, settings.wplus_learning_rate)
    finally:
        for layer, noise in zip(layers, noises):
            layer.noise_const = noise.detach().clone()
    with torch.no_grad():
        ws = w_plus.detach().clone()
        image = generator.synthesis(ws)[0]
    psnr = _psnr(image, target[0])
    if log is not None:
        log(f"inversion: PSNR {w_psnr:.2f} dB after W, {psnr:.2f} dB after W+")
    return InversionResult(ws=ws, image=image, psnr_db=psnr, w_psnr_db=w_psnr,
                           used_discriminator=feature_loss is not None, optimised_noise=bool(noises),
                           timings={"inversion": time.perf_counter() - started}, history=history)
