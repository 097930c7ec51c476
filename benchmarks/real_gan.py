"""The real-GAN track: set-up and checks against a real, pretrained GAN.

The development GAN is the DCGAN generator shipped in the PyPI wheel
``gan-face-generate==1.1.1`` (MIT licence; PyTorch's DCGAN tutorial
architecture, nz 100, ngf 64, 64 px faces trained on DigiFace-1M):
``gan_face_generate/weights.tar``, ``{"netG_state_dict": ...}``. gan2x loads
it as ``dcgan:PATH`` (docs/generators.md, "DCGAN"). Nothing here downloads at
run time of the product: only ``fetch`` does, once, with pip.

Subcommands (``SUBCOMMANDS``; one function each):

    fetch [--cache DIR]          download the wheel with pip, write DIR/dcgan_faces.tar and
                                 DIR/SOURCE.txt (idempotent); prints the weights' path
    check-sample [--cache DIR]   gan2x's dcgan: generator against the tutorial's architecture
                                 built here from the same state dict, seeds 1000-1009, float32;
                                 exits 1 when the max abs difference is >= 1e-5
    bench [--quick] [--seeds S] [--rows R] [--device D] [--json F] [--markdown F]
                                 `gan2x bench --generator dcgan:...` on held-out seeds 1000-1009
                                 (--quick: 1000-1002), rows ellipsoid,lambertian,full, one
                                 torch thread: the real-GAN table of docs/benchmark.md
    reports [--seeds S] [--out DIR] [--device D]
                                 `gan2x fit` (draft) of each held-out seed; copies each bundle's
                                 images/report.png to DIR/report_seedN.png (docs/images/real_gan)

DIR defaults to out/real_gan under the repository root (git-ignored).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/real_gan.py fetch
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/real_gan.py check-sample

Other scripts import ``ensure_weights(cache_dir) -> Path``.
"""
from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = REPO_ROOT / "out" / "real_gan"
WHEEL_REQUIREMENT = "gan-face-generate==1.1.1"
WHEEL_MEMBER = "gan_face_generate/weights.tar"
WEIGHTS_NAME = "dcgan_faces.tar"
WHEEL_SHA256 = "24102f4be41d164e44251168ede0458a45e498a888c81493e2aea48529640569"
"""The wheel ``fetch`` accepts (the one PyPI served on 2026-12-01); any other is refused."""
LICENCE = "MIT"
SAMPLE_SEEDS = tuple(range(1000, 1010))
TOLERANCE = 1e-5
"""check-sample fails at or above this max abs difference (float32, images in [-1, 1])."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ensure_weights(cache_dir=DEFAULT_CACHE) -> Path:
    """``cache_dir/dcgan_faces.tar``, downloading the wheel with pip first when
    it is missing (then also ``SOURCE.txt``: wheel, sha256 of the wheel and
    of the weights, licence). The weights are checked to load as ``dcgan:``
    before they are written."""
    cache_dir = Path(cache_dir)
    weights = cache_dir / WEIGHTS_NAME
    if weights.is_file():
        return weights
    from gan2x.generators import load_generator

    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="real_gan-") as temporary:
        temporary = Path(temporary)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                        WHEEL_REQUIREMENT, "-d", str(temporary)], check=True)
        wheels = sorted(temporary.glob("*.whl"))
        if len(wheels) != 1:
            raise RuntimeError(f"pip download {WHEEL_REQUIREMENT} gave {[p.name for p in temporary.iterdir()]}, "
                               "expected one wheel")
        wheel = wheels[0]
        if _sha256(wheel) != WHEEL_SHA256:
            raise RuntimeError(f"{wheel.name} has sha256 {_sha256(wheel)}, not the development wheel's "
                               f"{WHEEL_SHA256}; refusing it")
        with zipfile.ZipFile(wheel) as archive:
            extracted = temporary / WEIGHTS_NAME
            extracted.write_bytes(archive.read(WHEEL_MEMBER))
        generator = load_generator(f"dcgan:{extracted}")  # refuses anything that is not a DCGAN generator
        summary = (f"DCGAN nz {generator.z_dim}, {generator.img_resolution} px, "
                   f"feature layers {list(generator.feature_layers)}")
        source = (f"wheel: {wheel.name} ({WHEEL_REQUIREMENT}, https://pypi.org/project/gan-face-generate/)\n"
                  f"wheel sha256: {WHEEL_SHA256}\n"
                  f"member: {WHEEL_MEMBER}\n"
                  f"{WEIGHTS_NAME} sha256: {_sha256(extracted)}\n"
                  f"licence: {LICENCE}\n"
                  f"loads as: {summary}\n")
        partial = weights.with_suffix(".partial")
        partial.write_bytes(extracted.read_bytes())
        (cache_dir / "SOURCE.txt").write_text(source)
        partial.replace(weights)  # last: a weights file present means the set-up finished
    return weights


def tutorial_generator(state: dict):
    """The DCGAN tutorial's ``Generator.main``, written out here as the
    tutorial writes it (64 px, independently of gan2x), with ``nz``, ``ngf``
    and ``nc`` read from the state dict's shapes, the state dict loaded
    (strict) and in eval mode."""
    from torch import nn

    nz, ngf, nc = state["main.0.weight"].shape[0], state["main.9.weight"].shape[1], state["main.12.weight"].shape[1]
    main = nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())
    main.load_state_dict({key[len("main."):]: value for key, value in state.items()})
    return main.eval()


def command_fetch(args) -> int:
    print(ensure_weights(args.cache))
    return 0


def command_check_sample(args) -> int:
    import torch

    from gan2x.generators import load_generator

    torch.set_num_threads(1)
    weights = ensure_weights(args.cache)
    generator = load_generator(f"dcgan:{weights}")
    reference = tutorial_generator(torch.load(weights, map_location="cpu", weights_only=True)["netG_state_dict"])
    z = torch.cat([generator.z_from_seed(seed) for seed in SAMPLE_SEEDS])
    with torch.no_grad():
        ours = generator(z)  # mapping (w_avg + 1 * (z - w_avg): z up to rounding), then synthesis
        direct = generator.synthesis(z[:, None])
        theirs = reference(z[:, :, None, None])
    difference = float((ours - theirs).abs().max())
    print(f"{weights}: {generator.img_resolution} px, seeds {SAMPLE_SEEDS[0]}-{SAMPLE_SEEDS[-1]}, float32: "
          f"max abs difference {difference:.3g} (tolerance {TOLERANCE:g}; synthesis(z) alone "
          f"{float((direct - theirs).abs().max()):.3g}); image range "
          f"[{float(ours.min()):.3f}, {float(ours.max()):.3f}]")
    return 0 if difference < TOLERANCE else 1


HELD_OUT_SEEDS = "1000,1001,1002,1003,1004,1005,1006,1007,1008,1009"
QUICK_SEEDS = "1000,1001,1002"
REPORT_SEEDS = "1000,1001,1002,1003"


def command_bench(args) -> int:
    from gan2x.cli import main as gan2x_main

    weights = ensure_weights(args.cache)
    argv = ["bench", "--generator", f"dcgan:{weights}", "--seeds", args.seeds or (QUICK_SEEDS if args.quick
                                                                                  else HELD_OUT_SEEDS),
            "--rows", args.rows, "--device", args.device, "--threads", str(args.threads)]
    for flag, value in (("--json", args.json), ("--markdown", args.markdown),
                        ("--consistency-steps", args.consistency_steps), ("--preset", args.preset)):
        if value is not None:
            argv += [flag, str(value)]
    return gan2x_main(argv)


def command_reports(args) -> int:
    import shutil

    import torch

    from gan2x.pipeline import ReconstructionRequest, reconstruct

    torch.set_num_threads(args.threads)
    weights = ensure_weights(args.cache)
    args.out.mkdir(parents=True, exist_ok=True)
    for seed in (int(seed) for seed in args.seeds.split(",")):
        request = ReconstructionRequest(generator=f"dcgan:{weights}", seed=seed, preset=args.preset,
                                        device=args.device)
        result = reconstruct(request, args.cache / "reports" / f"seed{seed}")
        shutil.copyfile(result.report, args.out / f"report_seed{seed}.png")
        figures = ", ".join(f"{key} {result.metrics[key]:.2f}" for key in (
            "rerender_psnr_db", "rerender_ssim", "projection_fidelity_psnr_db", "projection_target_psnr_db",
            "novel_view_consistency_psnr_db") if key in result.metrics)
        print(f"seed {seed}: {args.out / f'report_seed{seed}.png'} ({figures}; fit "
              f"{sum(result.timings.get(k, 0.0) for k in ('target_fit', 'exploration', 'exploitation', 'refinement')):.0f} s)")
    return 0


SUBCOMMANDS = {
    "fetch": (command_fetch, "download the development GAN's weights once (pip download)"),
    "check-sample": (command_check_sample, "gan2x's dcgan: generator against the tutorial's architecture"),
    "bench": (command_bench, "the real-GAN benchmark table (gan2x bench on the DCGAN's held-out seeds)"),
    "reports": (command_reports, "report pictures of draft fits of held-out seeds"),
}
"""name -> (function(args) -> exit status, help). Add a subcommand here and in the module doc."""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (function, help_text) in SUBCOMMANDS.items():
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                             help=f"where the weights are kept (default: {DEFAULT_CACHE.relative_to(REPO_ROOT)})")
        command.set_defaults(handler=function)
        if name in ("bench", "reports"):
            command.add_argument("--seeds", default=None if name == "bench" else REPORT_SEEDS,
                                 help="comma-separated seeds (default: the held-out seeds, 1000-1009 for bench, "
                                      f"{REPORT_SEEDS} for reports)")
            command.add_argument("--device", default="cpu", help="torch device (default: cpu)")
            command.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
            command.add_argument("--preset", default="draft", help="fit preset (default: draft)")
        if name == "bench":
            command.add_argument("--quick", action="store_true", help=f"seeds {QUICK_SEEDS} only")
            command.add_argument("--rows", default="ellipsoid,lambertian,full", help="rows (default: %(default)s)")
            command.add_argument("--json", default=None, help="write every record and the summary here")
            command.add_argument("--markdown", default=None, help="write the table here")
            command.add_argument("--consistency-steps", type=int, default=None,
                                 help="projection steps of the novel-view consistency metric (default: gan2x's)")
        if name == "reports":
            command.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "images" / "real_gan",
                                 help="where the report pictures go (default: docs/images/real_gan)")
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
