"""GAN inversion: the latent whose image matches a photo.

Three parts, for every generator kind:

0. **Starts**: ``starts`` random latents drawn from the generator's own
   prior (``z ~ N(0, I)`` through ``mapping``, from a ``torch.Generator``
   seeded with ``seed``, never the global RNG), plus ``w_avg`` when it is a
   sound start: the loss and its gradient there are finite and the gradient
   does not vanish (a norm above ``VANISHING_GRADIENT`` times the largest of
   the candidates'; a DCGAN's ``z = 0`` or a dead-ReLU point fails). The
   candidates are optimised together, batched, for ``start_steps`` steps of
   the first stage's loss; the one with the lowest loss continues
   (``InversionResult.start`` records every candidate and the choice).
1. **The latent** (stage "W", or "z" for a generator whose latent is z):
   one style vector ``w`` broadcast to every layer; it stays on the
   generator's manifold, so the fit's projections of pseudo samples behave
   as for a sample. A generator without a mapping network (``num_ws`` 1 and
   ``mapping(z) == z``: a DCGAN, a TorchScript module without ``mapping``)
   is optimised in z (at ``z_learning_rate``) under a prior that keeps z a
   typical latent (``latent_prior``: by default the Gaussian log-density).
2. **Details** (``wplus_steps`` steps, at ``wplus_learning_rate``):
   * "W+" (a generator with ``num_ws`` > 1: StyleGAN2, the built-in one):
     one ``w`` per layer, from the W result (Karras et al. 2020, appendix D);
   * "features" (a generator with one style vector and ``feature_layers``,
     the DCGAN): an offset added to the activations of ``feature_layer``
     (``synthesis_features`` / ``synthesis_from_features``), the way W+
     extends W: the latent stays, the image gains details the latent cannot
     make. The offset is parametrised in units of the activations' RMS and
     penalised by ``feature_offset_weight`` times its mean square in those
     units, so the result stays an image the generator's later layers make
     from plausible activations, not an arbitrary one;
   * otherwise (one style vector, no feature layers) W again, at the lower rate.

The image loss is the pixel MSE plus an L1 over a 2x and 4x downsampled
pyramid (low frequencies first), plus, when the checkpoint holds a
discriminator, its feature distance (``feature_loss.py``). For a StyleGAN2
the per-layer noise images are optimised in stages 1 and 2 too, under
StyleGAN2's noise regulariser (the squared autocorrelation of each noise
image with its one-pixel shifts, over a pyramid, so noise cannot carry the
image) and renormalised to zero mean, unit variance after every step; the
result is kept in the generator's constant noise, so every later
``synthesis`` (the fit's projections) uses it.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
from torch.nn import functional as F

from ..conventions import unit_rgb_from_generator
from ..generators.feature_loss import FeatureLoss
from ..measure import metrics
from ..optim import SkipCounter, guarded_step

Tensor = torch.Tensor

LATENT_PRIORS = ("shell", "gaussian", "none")
VANISHING_GRADIENT = 1e-4
"""``w_avg`` is no start when its loss gradient's norm is at most this
fraction of the largest candidate's (or zero, or not finite)."""


@dataclass
class InversionSettings:
    w_steps: int = 150
    """Steps of stage 1 (one ``w``, or z)."""
    wplus_steps: int = 150
    """Steps of stage 2 (W+, or the feature offset)."""
    learning_rate: float = 0.05
    """Learning rate of the starts and stage 1 in W."""
    z_learning_rate: float = 0.1
    """The same for a generator whose latent is z (unit scale per coordinate)."""
    wplus_learning_rate: float = 0.01
    """Learning rate of stage 2 (W+, or the feature offset in units of the activations' RMS)."""
    pyramid_weight: float = 1.0
    feature_weight: float = 0.5
    """Weight of the discriminator feature distance (used only when D exists)."""
    optimise_noise: bool = True
    """Optimise a StyleGAN2's noise images (ignored for other generators)."""
    noise_weight: float = 1e4
    """Weight of the noise regulariser."""
    seed: int = 0
    """Seed of the random starts."""
    starts: int = 4
    """Random starts drawn from the prior, besides ``w_avg`` (0: ``w_avg``
    alone, as before multiple starts, unless it is unsound: then one random)."""
    start_steps: int = 20
    """Batched steps that evaluate the candidates (0: compare their initial losses)."""
    use_w_avg: bool = True
    """Whether ``w_avg`` is a candidate (when sound)."""
    latent_prior: str = "gaussian"
    """Prior on z, for generators whose latent is z: "shell" (``(|z|^2/n - 1)^2``:
    z stays on the shell where N(0, I) latents lie), "gaussian" (``|z|^2 / (2 n)``,
    the negative log-density per coordinate), or "none"."""
    latent_prior_weight: float = 0.1
    feature_layer: int | None = 1
    """Which of ``generator.feature_layers`` stage 2 offsets (a DCGAN's block
    k is 4 * 2**k px a side: 1 is 8x8), None for no feature stage; a layer the
    generator does not have falls back to the nearest one it has."""
    feature_offset_weight: float = 5.0
    """Penalty on the feature offset's mean square, in units of the activations' mean square."""

    def total_steps(self) -> int:
        """The optimiser steps ``invert_image`` reports through ``progress``:
        the start evaluation's (when there are random starts), then both stages'."""
        return (self.start_steps if self.starts > 0 else 0) + self.w_steps + self.wplus_steps

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class InversionResult:
    ws: Tensor
    """[1, num_ws, w_dim]: the latent (W+, or the stage-1 w / z); what the fit starts its projections from."""
    image: Tensor
    """[3, R, R] in [-1, 1]: the generator's final image (of ``ws``, plus the feature offset when there is one)."""
    psnr_db: float
    """PSNR of ``image`` against the target (sRGB in [0, 1], all pixels)."""
    w_psnr_db: float
    """The same for the image of the stage-1 latent alone (one ``w`` or z; no W+, no feature offset)."""
    used_discriminator: bool
    optimised_noise: bool
    timings: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    latent: str = "W"
    """"W" (a style vector through a mapping network) or "z" (the generator's input itself)."""
    stages: list = field(default_factory=list)
    """The stages run, in order, e.g. ["starts", "W", "W+"] or ["starts", "z", "features"]."""
    start: dict = field(default_factory=dict)
    """The candidates (name, initial and final loss, gradient norm, sound) and ``chosen``, the one kept."""
    features: Tensor | None = None
    """[1, C, h, w]: the activations of ``feature_layer`` the image is made from (with the offset), or None."""
    feature_layer: int | None = None
    feature_offset_rms: float | None = None
    """The offset's RMS in units of the activations' RMS (None without a feature stage)."""


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


def image_losses(images: Tensor, target: Tensor, pyramid_weight: float) -> Tensor:
    """[B, 3, R, R] vs [1 or B, 3, R, R] -> [B]: pixel MSE plus the pyramid L1."""
    loss = (images - target).square().mean(dim=(1, 2, 3))
    if pyramid_weight:
        a, b = images, target
        for _ in range(2):
            if a.shape[-1] < 8:
                break
            a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
            loss = loss + pyramid_weight * (a - b).abs().mean(dim=(1, 2, 3))
    return loss


def image_loss(images: Tensor, target: Tensor, pyramid_weight: float) -> Tensor:
    """[B, 3, R, R] vs [1 or B, 3, R, R] -> scalar (the batch mean of ``image_losses``)."""
    return image_losses(images, target, pyramid_weight).mean()


def latent_prior(z: Tensor, kind: str) -> Tensor:
    """[B, n] -> [B]: "shell" ``(|z|^2/n - 1)^2``, "gaussian" ``|z|^2 / (2 n)``, "none" 0."""
    if kind not in LATENT_PRIORS:
        raise ValueError(f"unknown latent prior {kind!r}; choose one of {LATENT_PRIORS}")
    mean_square = z.square().mean(dim=1)
    if kind == "shell":
        return (mean_square - 1).square()
    if kind == "gaussian":
        return mean_square / 2
    return torch.zeros_like(mean_square)


def latent_is_z(generator) -> bool:
    """Whether the generator has no mapping network: one style vector that is z itself."""
    if generator.num_ws != 1 or generator.w_dim != generator.z_dim:
        return False
    z = torch.randn(2, generator.z_dim, generator=torch.Generator().manual_seed(0)).to(generator.w_avg.device)
    with torch.no_grad():
        ws = generator.mapping(z)
    return tuple(ws.shape) == (2, 1, generator.z_dim) and torch.allclose(ws[:, 0], z, atol=1e-5, rtol=1e-5)


def feature_layer_for(generator, wanted: int | None) -> int | None:
    """The feature layer stage 2 offsets: ``wanted`` if the generator has it,
    else the nearest it has; None when it has none (or ``wanted`` is None)."""
    layers = tuple(getattr(generator, "feature_layers", ()) or ())
    if wanted is None or not layers or not (hasattr(generator, "synthesis_features")
                                            and hasattr(generator, "synthesis_from_features")):
        return None
    return min(layers, key=lambda layer: (abs(layer - wanted), layer))


def _psnr(image: Tensor, target: Tensor) -> float:
    return metrics.masked_psnr(unit_rgb_from_generator(image.detach()), unit_rgb_from_generator(target.detach()),
                               torch.ones(image.shape[-2:]))


def choose_start(generator, settings: InversionSettings, expand, losses, with_prior: bool, learning_rate: float,
                 tick, skipped: SkipCounter, device) -> tuple[dict, torch.nn.Parameter]:
    """The start of stage 1 (module doc, part 0): (the record of the
    candidates and the choice, the chosen latent after the evaluation [1, w_dim])."""
    names, candidates = [], []
    if settings.use_w_avg or settings.starts <= 0:
        names.append("w_avg")
        candidates.append(generator.w_avg.detach().clone()[None].float())

    def random_latents(count: int) -> Tensor:
        rng = torch.Generator().manual_seed(int(settings.seed))
        z = torch.randn(count, generator.z_dim, generator=rng).to(device)
        with torch.no_grad():
            return generator.mapping(z)[:, 0].float()

    if settings.starts > 0:
        names += [f"random {index}" for index in range(settings.starts)]
        candidates.append(random_latents(settings.starts))
    candidates = torch.cat(candidates)
    probe = candidates.clone().requires_grad_(True)
    start_loss, _ = losses(generator.synthesis(expand(probe)), None)     # the image's gradient, not the prior's
    gradient, = torch.autograd.grad(start_loss.sum(), probe)
    start_loss, norms = start_loss.detach(), gradient.norm(dim=1)
    finite = torch.isfinite(start_loss) & torch.isfinite(norms)
    largest = float(norms[finite].max()) if bool(finite.any()) else 0.0
    sound = finite & (norms > VANISHING_GRADIENT * largest) & (norms > 0)
    record = [{"name": name, "initial_loss": float(start_loss[index]), "gradient_norm": float(norms[index]),
               "sound": bool(sound[index])} for index, name in enumerate(names)]
    if not bool(sound.any()):
        if settings.starts > 0:
            sound = torch.ones_like(sound)             # nothing better: keep them all
        else:                                          # w_avg alone, unsound: one random start instead
            names.append("random 0")
            record.append({"name": "random 0", "sound": True})
            candidates = torch.cat([candidates, random_latents(1)])
            sound = torch.cat([sound, sound.new_ones(1)])
    keep = [index for index in range(len(names)) if bool(sound[index])]
    kept = torch.nn.Parameter(candidates[keep].clone())
    best = 0
    if settings.starts > 0:
        # the sound candidates together (each its own loss: Adam's steps are per coordinate)
        optimiser = torch.optim.Adam([kept], lr=learning_rate, betas=(0.9, 0.999))
        final = start_loss[keep]
        for _ in range(settings.start_steps):
            loss, _ = losses(generator.synthesis(expand(kept)), kept if with_prior else None)
            final = loss.detach()
            guarded_step(optimiser, loss.sum(), skipped)
            tick("starts")
        final = final.nan_to_num(nan=float("inf"))
        for position, index in enumerate(keep):
            record[index]["loss"] = float(final[position])
        best = int(final.argmin())
    return {"candidates": record, "chosen": names[keep[best]]}, torch.nn.Parameter(kept.detach()[best:best + 1].clone())


def invert_image(generator, target: Tensor, settings: InversionSettings | None = None,
                 progress: Callable[[str, int, int], None] | None = None,
                 log: Callable[[str], None] | None = None) -> InversionResult:
    """Inverts ``target`` [3, R, R] (sRGB-encoded in [-1, 1], R = the
    generator's resolution): starts, then the latent, then W+ or a feature
    offset (module doc)."""
    settings = settings or InversionSettings()
    if settings.latent_prior not in LATENT_PRIORS:
        raise ValueError(f"unknown latent prior {settings.latent_prior!r}; choose one of {LATENT_PRIORS}")
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
    z_latent = latent_is_z(generator)
    prior_weight = settings.latent_prior_weight if z_latent and settings.latent_prior != "none" else 0.0
    feature_layer = feature_layer_for(generator, settings.feature_layer) if generator.num_ws == 1 else None
    first_stage = "z" if z_latent else "W"
    first_rate = settings.z_learning_rate if z_latent else settings.learning_rate
    second_stage = "W+" if generator.num_ws > 1 else "features" if feature_layer is not None else first_stage
    layers = list(generator.noise_layers()) if settings.optimise_noise and hasattr(generator, "noise_layers") else []
    noises: list[Tensor] = []
    for layer in layers:
        noise = layer.noise_const.detach().clone()
        noise = (noise - noise.mean()) / noise.std().clamp(min=1e-8)
        noises.append(noise)   # a plain tensor: the buffer stays a buffer
        layer.noise_const = noise

    started = time.perf_counter()
    done, total = 0, settings.total_steps()
    history: list[dict] = []
    skipped = SkipCounter()

    def expand(latent: Tensor) -> Tensor:
        return latent[:, None, :].expand(-1, generator.num_ws, -1)

    def losses(images: Tensor, latent: Tensor | None) -> tuple[Tensor, dict]:
        """Per-image loss [B] (without the noise regulariser) and its terms."""
        loss = image_losses(images, target, settings.pyramid_weight)
        terms = {"image": loss.detach()}
        if feature_loss is not None:
            features = feature_loss(images, target, target_features)
            loss = loss + settings.feature_weight * features
            terms["features"] = features.detach()
        if prior_weight and latent is not None:
            prior = latent_prior(latent, settings.latent_prior)
            loss = loss + prior_weight * prior
            terms["prior"] = prior.detach()
        return loss, terms

    def tick(name: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(f"inversion ({name})", done, total)

    def run_stage(name: str, parameter: torch.nn.Parameter, render, steps: int, learning_rate: float,
                  prior: bool, extra=None) -> None:
        optimiser = torch.optim.Adam([parameter, *noises], lr=learning_rate, betas=(0.9, 0.999))
        terms: dict = {}
        for _ in range(steps):
            loss, terms = losses(render(parameter), parameter if prior else None)
            loss = loss.mean()
            if extra is not None:
                penalty = extra(parameter)
                loss = loss + penalty
                terms["offset"] = penalty.detach()
            if noises:
                regulariser = noise_regulariser(noises)
                loss = loss + settings.noise_weight * regulariser
                terms["noise"] = regulariser.detach()
            guarded_step(optimiser, loss, skipped)
            with torch.no_grad():
                for noise in noises:
                    noise.sub_(noise.mean()).div_(noise.std().clamp(min=1e-8))
            tick(name)
        history.append({"stage": name, **{key: float(value.mean()) for key, value in terms.items()}})

    try:
        # 0. starts: w_avg (when sound) and random latents from the prior, evaluated together
        start, w = choose_start(generator, settings, expand, losses, prior_weight > 0, first_rate, tick, skipped,
                                device)
        stages = ["starts"] if settings.starts > 0 else []

        # 1. the latent: one w (or z), under the prior when it is z
        for noise in noises:
            noise.requires_grad_(True)
        stages.append(first_stage)
        run_stage(first_stage, w, lambda latent: generator.synthesis(expand(latent)), settings.w_steps,
                  first_rate, prior_weight > 0)
        with torch.no_grad():
            w_ws = expand(w.detach()).clone()
            w_psnr = _psnr(generator.synthesis(w_ws)[0], target[0])

        # 2. details: W+, or a feature offset, or the latent again
        features = offset_rms = None
        stages.append(second_stage)
        if second_stage == "W+":
            w_plus = torch.nn.Parameter(w_ws.clone())
            run_stage("W+", w_plus, generator.synthesis, settings.wplus_steps, settings.wplus_learning_rate, False)
            ws = w_plus.detach().clone()
        elif feature_layer is not None:
            ws = w_ws
            with torch.no_grad():
                base = generator.synthesis_features(ws, feature_layer)
                scale = base.square().mean().sqrt().clamp(min=1e-8)
            offset = torch.nn.Parameter(torch.zeros_like(base))
            run_stage(second_stage, offset,
                      lambda delta: generator.synthesis_from_features(base + scale * delta, feature_layer),
                      settings.wplus_steps, settings.wplus_learning_rate, False,
                      extra=lambda delta: settings.feature_offset_weight * delta.square().mean())
            features = (base + scale * offset.detach()).clone()
            offset_rms = float(offset.detach().square().mean().sqrt())
        else:
            w_again = torch.nn.Parameter(w.detach().clone())
            run_stage(second_stage, w_again, lambda latent: generator.synthesis(expand(latent)),
                      settings.wplus_steps, settings.wplus_learning_rate, prior_weight > 0)
            ws = expand(w_again.detach()).clone()
    finally:
        for layer, noise in zip(layers, noises):
            layer.noise_const = noise.detach().clone()
    with torch.no_grad():
        image = (generator.synthesis_from_features(features, feature_layer) if features is not None
                 else generator.synthesis(ws))[0]
    psnr = _psnr(image, target[0])
    if log is not None:
        log(f"inversion: start {start['chosen']} of {len(start['candidates'])}; PSNR {w_psnr:.2f} dB after "
            f"{first_stage}, {psnr:.2f} dB after {second_stage}")
    return InversionResult(ws=ws, image=image, psnr_db=psnr, w_psnr_db=w_psnr,
                           used_discriminator=feature_loss is not None, optimised_noise=bool(noises),
                           timings={"inversion": time.perf_counter() - started}, history=history,
                           latent=first_stage, stages=stages, start=start, features=features,
                           feature_layer=feature_layer if features is not None else None,
                           feature_offset_rms=offset_rms)
