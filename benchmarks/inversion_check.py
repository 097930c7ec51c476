"""How well does inversion (``gan2x.invert.invert_image``) reach an image, per generator kind?

Cases (``--cases``, comma-separated):

* ``dcgan-self``: the DCGAN's own samples (seed s, truncation 1);
* ``dcgan-photo``: a perturbed DCGAN sample standing in for a photo: shifted
  2 px (edges replicated), colour-jittered (brightness, contrast and
  saturation each by a factor in [0.95, 1.05]), composited outside a soft
  central face ellipse over another background (even seeds: another seed's
  image; odd seeds: a smooth two-colour gradient), then JPEG-compressed at
  quality 75 (PIL). The PSNR is against that perturbed image;
* ``synthetic``: the built-in ``synthetic:faces`` generator's own samples (64 px);
* ``stylegan2``: the own samples (truncation 0.7) of a small random-weight
  StyleGAN2 with a discriminator, written by tests/backend/stylegan2_checkpoints.py
  at ``--stylegan2-resolution`` px (seed 2);
* ``dcgan-off``: a diagnostic, not a goal: the built-in generator's images
  (rendered ellipsoids, not faces), resized to the DCGAN's 64 px. A high
  PSNR there means the inversion can make images the GAN does not.

Every inversion uses ``InversionSettings()`` with ``--set key=value``
overrides. Prints, per case, the mean (and min) PSNR of the final image and
of the latent alone against the target, and seconds per inversion; ``--json``
writes every figure, ``--grid`` a PNG of targets (top row), final images and
latent-only images (bottom row) for the first ``--grid-seeds`` seeds of each case.

Tune on seeds 0-99; the reported figures use the held-out seeds 1000-1009:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/inversion_check.py --seeds 1000-1009 \\
        --json /tmp/inversion.json --grid /tmp/inversion.png
"""
from __future__ import annotations

import argparse
import io
import json
import math
import sys
import time
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))
sys.path.insert(0, str(ROOT / "tests" / "backend"))

from gan2x.generators import load_generator  # noqa: E402
from gan2x.invert import InversionSettings, invert_image  # noqa: E402

DEFAULT_DCGAN = "/tmp/real_gan/dcgan_faces.tar"
CASES = ("dcgan-self", "dcgan-photo", "synthetic", "stylegan2")


def parse_seeds(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        seeds += list(range(int(first), int(last) + 1)) if last else [int(first)]
    return seeds


def parse_value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def psnr(image: torch.Tensor, target: torch.Tensor) -> float:
    """[3, R, R] in [-1, 1] each, compared as sRGB in [0, 1]."""
    mse = float((((image + 1) / 2).clamp(0, 1) - ((target + 1) / 2).clamp(0, 1)).square().mean())
    return 10 * math.log10(1.0 / max(mse, 1e-12))


# --- the stand-in photo --------------------------------------------------------------------------------

def shifted(image: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """[3, R, R] moved dx px right and dy px down, the edges replicated."""
    pad = max(abs(dx), abs(dy))
    padded = F.pad(image[None], (pad, pad, pad, pad), mode="replicate")[0]
    size = image.shape[-1]
    return padded[:, pad - dy:pad - dy + size, pad - dx:pad - dx + size]


def colour_jittered(rgb: torch.Tensor, brightness: float, contrast: float, saturation: float) -> torch.Tensor:
    """[3, R, R] sRGB in [0, 1], jittered as torchvision's ColorJitter does (factors near 1)."""
    rgb = (rgb * brightness).clamp(0, 1)
    grey = (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2])
    rgb = (contrast * rgb + (1 - contrast) * grey.mean()).clamp(0, 1)
    grey = (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2])[None]
    return (saturation * rgb + (1 - saturation) * grey).clamp(0, 1)


def face_ellipse(size: int, softness: float = 0.08) -> torch.Tensor:
    """[R, R] in [0, 1]: 1 inside a central ellipse (semi-axes 0.36 x 0.46 of the side, centre 47% down), 0
    outside, a smoothstep edge ``softness`` of the side wide."""
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    radius = torch.sqrt(((x - 0.5) / 0.36) ** 2 + ((y - 0.47) / 0.46) ** 2)
    t = ((1 + softness / 0.4 - radius) / (2 * softness / 0.4)).clamp(0, 1)
    return t * t * (3 - 2 * t)


def gradient_background(size: int, rng: np.random.RandomState) -> torch.Tensor:
    colours = torch.from_numpy(rng.uniform(0.05, 0.95, (2, 3))).float()
    angle = rng.uniform(0, 2 * math.pi)
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size - 0.5
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    t = ((x * math.cos(angle) + y * math.sin(angle)) / math.sqrt(0.5) + 0.5).clamp(0, 1)
    return colours[0][:, None, None] * (1 - t) + colours[1][:, None, None] * t


def jpeg(rgb: torch.Tensor, quality: int = 75) -> torch.Tensor:
    from PIL import Image

    pixels = (rgb.permute(1, 2, 0).numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        values = np.asarray(decoded.convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(values).permute(2, 0, 1)


def perturbed(generator, seed: int) -> torch.Tensor:
    """The stand-in photo of seed ``seed`` (module doc), [3, R, R] in [-1, 1]."""
    rng = np.random.RandomState(seed + 7919)
    with torch.no_grad():
        sample = generator(generator.z_from_seed(seed))[0]
        other = generator(generator.z_from_seed(seed + 100_000))[0]
    size = sample.shape[-1]
    shift = [(2, 0), (-2, 0), (0, 2), (0, -2)][rng.randint(4)]
    rgb = ((shifted(sample, *shift) + 1) / 2).clamp(0, 1)
    rgb = colour_jittered(rgb, *rng.uniform(0.95, 1.05, 3))
    background = ((other + 1) / 2).clamp(0, 1) if seed % 2 == 0 else gradient_background(size, rng)
    alpha = face_ellipse(size)
    rgb = alpha * rgb + (1 - alpha) * background
    return jpeg(rgb) * 2 - 1


# --- cases ---------------------------------------------------------------------------------------------------

def stylegan2_generator(resolution: int):
    import stylegan2_checkpoints as checkpoints

    path = Path(f"/tmp/inversion_check_stylegan2_{resolution}.pkl")
    if not path.is_file():
        checkpoints.RESOLUTION = resolution
        checkpoints.write_nvidia_pickle(path, seed=2)
    return load_generator(f"stylegan2:{path}")


def targets(case: str, args, cache: dict):
    """(generator, [(seed, target [3, R, R])...]) of a case."""
    if case.startswith("dcgan"):
        if "dcgan" not in cache:
            cache["dcgan"] = load_generator(f"dcgan:{args.dcgan}")
        generator = cache["dcgan"]
    elif case == "synthetic":
        generator = load_generator("synthetic:faces", resolution=64)
    elif case == "stylegan2":
        generator = stylegan2_generator(args.stylegan2_resolution)
    else:
        raise SystemExit(f"unknown case {case!r}; cases: {', '.join(CASES)}, dcgan-off")
    out = []
    for seed in args.seeds:
        if case == "dcgan-photo":
            target = perturbed(generator, seed)
        elif case == "dcgan-off":
            if "synthetic" not in cache:
                cache["synthetic"] = load_generator("synthetic:faces", resolution=generator.img_resolution)
            with torch.no_grad():
                target = cache["synthetic"](cache["synthetic"].z_from_seed(seed))[0]
        else:
            with torch.no_grad():
                psi = 0.7 if case == "stylegan2" else 1.0
                target = generator.synthesis(generator.mapping(generator.z_from_seed(seed), truncation_psi=psi))[0]
        out.append((seed, target))
    return generator, out


def latent_image(generator, result) -> torch.Tensor:
    with torch.no_grad():
        return generator.synthesis(result.ws)[0]


def save_grid(path: Path, rows: list[list[torch.Tensor]], scale: int) -> None:
    from PIL import Image

    tiles = [[((t.detach().cpu() + 1) / 2).clamp(0, 1) for t in row] for row in rows]
    size = max(t.shape[-1] for row in tiles for t in row)
    columns = max(len(row) for row in tiles)
    canvas = torch.ones(3, len(tiles) * (size + 2), columns * (size + 2))
    for i, row in enumerate(tiles):
        for j, tile in enumerate(row):
            if tile.shape[-1] != size:
                tile = F.interpolate(tile[None], size=(size, size), mode="nearest")[0]
            canvas[:, i * (size + 2):i * (size + 2) + size, j * (size + 2):j * (size + 2) + size] = tile
    pixels = (canvas.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")
    image.resize((image.width * scale, image.height * scale), Image.NEAREST).save(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated: {', '.join(CASES)}, dcgan-off")
    parser.add_argument("--seeds", default="1000-1009", help="e.g. 0-19 or 1,2,5 (tune on 0-99 only)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an InversionSettings override (repeatable)")
    parser.add_argument("--dcgan", default=DEFAULT_DCGAN, help="the DCGAN checkpoint (dcgan: spec path)")
    parser.add_argument("--stylegan2-resolution", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--grid", type=Path, help="write a PNG of targets / results / latent-only images here")
    parser.add_argument("--grid-seeds", type=int, default=4)
    parser.add_argument("--label", default="", help="a name stored in the JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.seeds = parse_seeds(args.seeds)
    known = {f.name for f in fields(InversionSettings)}
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in known:
            raise SystemExit(f"--set {key}: not an InversionSettings field ({', '.join(sorted(known))})")
        overrides[key] = parse_value(value)
    settings = InversionSettings(**overrides)

    report = {"label": args.label, "settings": settings.to_dict(), "seeds": args.seeds, "cases": {}}
    grid_rows: list[list[torch.Tensor]] = []
    cache: dict = {}
    print(f"{'case':<12} {'n':>3} {'PSNR dB':>8} {'min':>6} {'latent dB':>9} {'min':>6} {'s/inv':>6}  starts chosen")
    for case in args.cases.split(","):
        generator, items = targets(case, args, cache)
        rows = []
        images = [[], [], []]
        for seed, target in items:
            started = time.perf_counter()
            result = invert_image(generator, target, settings)
            seconds = time.perf_counter() - started
            start = getattr(result, "start", None)
            rows.append({"seed": seed, "psnr_db": psnr(result.image, target),
                         "latent_psnr_db": psnr(latent_image(generator, result), target),
                         "reported_psnr_db": result.psnr_db, "reported_w_psnr_db": result.w_psnr_db,
                         "seconds": seconds, "start": start.get("chosen") if isinstance(start, dict) else None,
                         "stages": getattr(result, "stages", None)})
            if len(images[0]) < args.grid_seeds:
                images[0].append(target)
                images[1].append(result.image)
                images[2].append(latent_image(generator, result))
            print(f"  {case} seed {seed}: {rows[-1]['psnr_db']:.2f} dB (latent {rows[-1]['latent_psnr_db']:.2f}), "
                  f"{seconds:.1f} s, start {rows[-1]['start']}", file=sys.stderr, flush=True)
        grid_rows += images
        mean = lambda key: sum(r[key] for r in rows) / len(rows)  # noqa: E731
        chosen: dict = {}
        for r in rows:
            kind = str(r["start"]).split(" ")[0]
            chosen[kind] = chosen.get(kind, 0) + 1
        report["cases"][case] = {"psnr_db": mean("psnr_db"), "min_psnr_db": min(r["psnr_db"] for r in rows),
                                 "latent_psnr_db": mean("latent_psnr_db"),
                                 "min_latent_psnr_db": min(r["latent_psnr_db"] for r in rows),
                                 "seconds": mean("seconds"), "starts_chosen": chosen, "rows": rows}
        c = report["cases"][case]
        print(f"{case:<12} {len(rows):>3} {c['psnr_db']:8.2f} {c['min_psnr_db']:6.2f} {c['latent_psnr_db']:9.2f} "
              f"{c['min_latent_psnr_db']:6.2f} {c['seconds']:6.2f}  "
              + ", ".join(f"{k} x{v}" for k, v in sorted(chosen.items())), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
    if args.grid and grid_rows:
        save_grid(args.grid, grid_rows, scale=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
