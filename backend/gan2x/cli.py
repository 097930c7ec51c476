"""The ``gan2x`` command line."""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from . import __version__
from . import config
from .config import EXPLORATIONS, parse_seeds
from .devices import DEVICE_HELP, resolve_device


def _progress_bar(total_label: str = "fit"):
    """A tqdm bar driven by the fit's progress callback."""
    from tqdm import tqdm

    state: dict = {}

    def progress(stage: str, done: int, total: int):
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(total=total, desc=total_label, unit="step", dynamic_ncols=True,
                                      file=sys.stderr, mininterval=0.5 if sys.stderr.isatty() else 10.0)
        if state.get("stage") != stage:
            state["stage"] = stage
            bar.set_description(stage, refresh=False)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return progress


def _finite_float(text: str) -> float:
    """An argparse type: a float that is neither NaN nor infinite."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}")
    return value


def _in_range(kind, setting: config.Range):
    """An argparse type: a ``kind`` (int or float) within ``setting``'s range (gan2x.config)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") \
                from None
        try:
            return setting.check(value)
        except ValueError:  # argparse names the option: "argument --texture-size: must be ..."
            raise argparse.ArgumentTypeError(f"must be {setting.describe()}, not {value}") from None

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def _seeds(text: str) -> list[int]:
    """An argparse type: ``config.parse_seeds``."""
    try:
        return parse_seeds(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _add_fit_arguments(parser: argparse.ArgumentParser):
    _add_generator_argument(parser)
    parser.add_argument("--seed", type=int, default=config.CLI_SEED_DEFAULT,
                        help=f"the sample's seed (default: {config.CLI_SEED_DEFAULT}, a near-frontal face; "
                             "see docs/performance.md)")
    _add_truncation_argument(parser)
    _add_preset_argument(parser)
    parser.add_argument("--device", default=config.DEFAULT_DEVICE,
                        help=DEVICE_HELP + f" (default: {config.DEFAULT_DEVICE})")
    _add_export_and_steps_arguments(parser)


def _add_generator_argument(parser: argparse.ArgumentParser):
    parser.add_argument("--generator", default=config.DEFAULT_GENERATOR,
                        help="generator spec: synthetic[:faces|objects], stylegan2:PATH, dcgan:PATH, torchscript:PATH "
                             "or python:MODULE:CALLABLE (default: synthetic; docs/generators.md)")


def _add_truncation_argument(parser: argparse.ArgumentParser):
    parser.add_argument("--truncation", type=_finite_float, default=config.TRUNCATION.default,
                        help=f"truncation psi (default: {config.TRUNCATION.default})")


def _add_preset_argument(parser: argparse.ArgumentParser):
    parser.add_argument("--preset", default=config.PRESET.default,
                        help=f"quality preset: {', '.join(config.PRESET_NAMES)} (default: {config.PRESET.default}; "
                             "docs/performance.md, Presets)")


def _add_export_and_steps_arguments(parser: argparse.ArgumentParser):
    mesh, texture = config.MESH_RESOLUTION, config.TEXTURE_SIZE
    parser.add_argument("--mesh-resolution", type=_in_range(int, mesh), default=mesh.default,
                        help=f"marching-cubes grid, {mesh.minimum}..{mesh.maximum} (default: {mesh.default})")
    parser.add_argument("--texture-size", type=_in_range(int, texture), default=texture.default,
                        help=f"texture size in pixels, {texture.minimum}..{texture.maximum} "
                             f"(default: {texture.default})")
    parser.add_argument("--steps-scale", type=float, default=config.STEPS_SCALE.default,
                        help="multiply every step count of the preset, and the novel-view consistency "
                             "metric's projection steps (e.g. 0.1 for a smoke test)")
    _add_exploration_argument(parser)


def _add_exploration_argument(parser: argparse.ArgumentParser):
    parser.add_argument("--exploration", choices=EXPLORATIONS, default=None,
                        help="how the fit explores other views: projection (default), style_mixing (swap the "
                             "generator's view layers; needs per-layer latents with view_layers: synthetic, "
                             "stylegan2) or mixed (style mixing, then projection); docs/generators.md")


def _add_image_arguments(parser: argparse.ArgumentParser):
    parser.add_argument("--image", default=None,
                        help="fit this photo instead of a generator sample: it is cropped to the generator's "
                             "framing and inverted into its latent space first (docs/generators.md)")
    _add_crop_arguments(parser)


def _add_crop_arguments(parser: argparse.ArgumentParser):
    crop = config.RECONSTRUCTION.crop
    parser.add_argument("--crop-x", type=float, default=crop.x.default,
                        help=f"photo crop centre, a fraction of the width from the left (default: {crop.x.default})")
    parser.add_argument("--crop-y", type=float, default=crop.y.default,
                        help=f"photo crop centre, a fraction of the height from the top (default: {crop.y.default})")
    parser.add_argument("--crop-scale", type=float, default=crop.scale.default,
                        help=f"photo crop side, a fraction of the photo's shorter side (default: {crop.scale.default})")


def _request(args):
    from .pipeline import build_request

    return build_request(vars(args), photo=bool(getattr(args, "image", None)))


def _print_metrics(metrics: dict):
    if "mad_degrees" in metrics:
        prior = metrics.get("ellipsoid_prior") or {}
        print("  ground truth   SIDE x1e-2   MAD deg")
        print(f"  ellipsoid      {prior.get('side_x100', float('nan')):10.3f} {prior.get('mad_degrees', float('nan')):9.2f}")
        print(f"  fit            {metrics['side_x100']:10.3f} {metrics['mad_degrees']:9.2f}")
    if "inversion_psnr_db" in metrics:
        print(f"  inversion PSNR vs photo: {metrics['inversion_psnr_db']:.2f} dB "
              f"(first stage's w or z alone: {metrics['inversion_w_psnr_db']:.2f} dB)")
    print(f"  re-render PSNR vs target: {metrics['rerender_psnr_db']:.2f} dB, "
          f"SSIM {metrics.get('rerender_ssim', float('nan')):.3f} (the exported asset, whole image; "
          f"the fields: {metrics.get('fields_rerender_psnr_db', float('nan')):.2f} dB)")
    if "region_psnr_db" in metrics:
        print(f"  the asset alone over grey, in the prior's silhouette: {metrics['region_psnr_db']:.2f} dB, "
              f"covering {100 * metrics['region_coverage']:.1f}% of it ({100 * metrics['mask_coverage']:.1f}% "
              f"of the image)")
    if "projection_target_psnr_db" in metrics:
        count = len(metrics.get("projection_target_psnr_db_each", []))
        fidelity = (f"G(w') vs its render {metrics['projection_fidelity_psnr_db']:.2f} dB, "
                    if "projection_fidelity_psnr_db" in metrics else "")
        print(f"  projection reach ({count} pseudo samples of the last stage): {fidelity}"
              f"G(w') vs target {metrics['projection_target_psnr_db']:.2f} dB")
    if "novel_view_consistency_psnr_db" in metrics:
        yaws = "/".join(f"{yaw:+.0f}" for yaw in metrics.get("novel_view_consistency_yaws_degrees", []))
        print(f"  novel-view GAN consistency (yaw {yaws} deg, render vs its projection): "
              f"{metrics['novel_view_consistency_psnr_db']:.2f} dB")
    if "relight_psnr_db" in metrics:
        print(f"  relit under 4 new lights: {metrics['relight_psnr_db']:.2f} dB, "
              f"novel views at +-30 deg yaw: {metrics['novel_view_psnr_db']:.2f} dB (object pixels)")
        print(f"  albedo error (scaled) {metrics['albedo_error']:.4f}, specular error {metrics['specular_error']:.4f}, "
              f"log-shininess error {metrics['shininess_log_error']:.3f}")
    if "detail_normal_mad_degrees" in metrics:
        print(f"  albedo PSNR (scaled, linear) {metrics['albedo_psnr_db']:.2f} dB, detail-normal MAD "
              f"{metrics['detail_normal_mad_degrees']:.2f} deg (a smooth shape: "
              f"{metrics['true_detail_normal_degrees']:.2f})")
    if "asset_albedo_psnr_db" in metrics:
        print(f"  the exported textures: albedo PSNR {metrics['asset_albedo_psnr_db']:.2f} dB, albedo error "
              f"{metrics['asset_albedo_error']:.4f}, detail-normal MAD {metrics['asset_detail_normal_mad_degrees']:.2f} deg")


def command_fit(args) -> int:
    from .pipeline import reconstruct, reconstruct_image

    if args.image:
        result = reconstruct_image(Path(args.image), _request(args), Path(args.out), progress=_progress_bar())
    else:
        result = reconstruct(_request(args), Path(args.out), progress=_progress_bar())
    print(f"bundle: {result.bundle}")
    if result.report is not None:
        print(f"report: {result.report}")
    _print_metrics(result.metrics)
    print("timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in result.timings.items()))
    return 0


def _add_batch_arguments(parser: argparse.ArgumentParser):
    _add_generator_argument(parser)
    items = parser.add_mutually_exclusive_group(required=True)
    items.add_argument("--seeds", type=_seeds, default=None,
                       help="the generator's seeds, comma-separated seeds or ranges (0-9999); bundles "
                            "OUT/seed_000000 ...")
    items.add_argument("--images", default=None, metavar="DIR_OR_LIST",
                       help="fit photos as gan2x fit --image does: a folder's PNG, JPEG and WEBP files, or a text "
                            "file listing image paths (one a line); bundles OUT/<the image's stem>")
    items.add_argument("--items", default=None, metavar="FILE.jsonl",
                       help='one item a line, each with its own generator if it likes: {"seed": 7}, '
                            '{"image": "a.png", "generator": "stylegan2:ffhq.pkl", "name": "alice"}')
    _add_truncation_argument(parser)
    _add_preset_argument(parser)
    _add_export_and_steps_arguments(parser)
    stages, samples = config.STAGES, config.PSEUDO_SAMPLES
    parser.add_argument("--stages", type=_in_range(int, stages), default=None,
                        help=f"rounds of the fit, {stages.minimum}..{stages.maximum} (default: the preset's)")
    parser.add_argument("--pseudo-samples", type=_in_range(int, samples), default=None,
                        help=f"pseudo samples a round, {samples.minimum}..{samples.maximum} (default: the preset's)")
    _add_crop_arguments(parser)
    parser.add_argument("--out", required=True,
                        help="the folder of the bundles and summary.json; on a cluster, a path every node "
                             "reaches (shared storage; docs/scale.md)")
    batch = config.BATCH
    parser.add_argument("--ray", default=batch.ray.default, metavar="local|auto|ADDRESS",
                        help="local: start Ray on this machine (default); auto: join the cluster this machine "
                             "is a node of; or a cluster's address, HEAD:6379 (docs/scale.md)")
    parser.add_argument("--local-cpus", type=int, default=None,
                        help="with --ray local: the CPUs the instance offers (default: all)")
    parser.add_argument("--cpus-per-fit", type=_in_range(float, batch.cpus_per_fit),
                        default=batch.cpus_per_fit.default,
                        help=f"CPUs a fit holds, also its torch threads (default: {batch.cpus_per_fit.default:g})")
    parser.add_argument("--gpus-per-fit", type=_in_range(float, batch.gpus_per_fit),
                        default=batch.gpus_per_fit.default,
                        help="GPUs a fit holds; fractions (0.25) let fits share a GPU; 0 fits on the CPU "
                             f"(default: {batch.gpus_per_fit.default:g})")
    parser.add_argument("--max-retries", type=_in_range(int, batch.max_retries), default=batch.max_retries.default,
                        help=f"retries of an item whose worker died, and of a transient error, "
                             f"{batch.max_retries.minimum}..{batch.max_retries.maximum} "
                             f"(default: {batch.max_retries.default})")


def command_batch(args) -> int:
    from .scale.batch import run_batch
    from .scale.items import image_items, read_items_file, seed_items
    from .scale.ray_runner import RayUnavailable
    from .scale.summary import format_table
    from .scale.task import BatchJob

    if args.seeds is not None:
        items = seed_items(args.generator, args.seeds)
    elif args.images is not None:
        items = image_items(args.generator, args.images)
    else:
        items = read_items_file(args.items, default_generator=args.generator)
    job = BatchJob.from_settings(vars(args), cpus_per_fit=args.cpus_per_fit, gpus_per_fit=args.gpus_per_fit,
                                 max_retries=args.max_retries)
    try:
        summary = run_batch(items, job, Path(args.out), ray=args.ray, local_cpus=args.local_cpus)
    except RayUnavailable as error:
        print(f"gan2x: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before the tasks were submitted (starting Ray): nothing to cancel
        print("gan2x: interrupted", file=sys.stderr)
        return 130
    print(format_table(summary))
    print(f"summary: {Path(summary.out) / 'summary.json'}")
    if summary.interrupted:
        return 130
    return 1 if summary.failed else 0


def command_demo(args) -> int:
    from .demo import run_demo

    return run_demo(args, _request(args), _progress_bar(), _print_metrics)


def command_sample(args) -> int:
    import numpy as np
    import torch

    from .generators import load_generator

    options = {}
    if args.generator.strip().startswith("stylegan2:"):
        options["noise_mode"] = args.noise
    elif args.noise != "const":
        raise ValueError("--noise applies to StyleGAN2 generators only (the others have no noise inputs)")
    generator = load_generator(args.generator, device=args.device, **options)
    if args.z:
        z = np.load(args.z)
        if z.ndim == 1:
            z = z[None]
        if z.ndim != 2 or z.shape[1] != generator.z_dim:
            raise ValueError(f"{args.z} holds an array of shape {z.shape}; expected [N, {generator.z_dim}]")
        latents = torch.from_numpy(z.astype(np.float32)).to(args.device)
    else:
        latents = torch.cat([generator.z_from_seed(seed) for seed in args.seeds]).to(args.device)
    images = []
    with torch.no_grad():
        for start in range(0, latents.shape[0], args.batch):
            images.append(generator(latents[start:start + args.batch], truncation_psi=args.truncation).clamp(-1, 1))
    images = torch.cat(images).cpu()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".npy":
        np.save(out, images.numpy().astype(np.float32))
    else:
        from PIL import Image

        count, _, size, _ = images.shape
        columns = int(np.ceil(np.sqrt(count)))
        rows = int(np.ceil(count / columns))
        grid = np.zeros((rows * size, columns * size, 3), np.uint8)
        pixels = ((images.permute(0, 2, 3, 1).numpy() + 1) * 127.5 + 0.5).clip(0, 255).astype(np.uint8)
        for index in range(count):
            row, column = divmod(index, columns)
            grid[row * size:(row + 1) * size, column * size:(column + 1) * size] = pixels[index]
        Image.fromarray(grid).save(out)
    print(f"{images.shape[0]} images of {generator.spec} ({generator.img_resolution}px) -> {out}")
    return 0


def command_convert_checkpoint(args) -> int:
    from .generators.stylegan2 import convert_checkpoint, detect_format

    kind = detect_format(args.source)
    contents = convert_checkpoint(args.source, args.out, include_discriminator=not args.no_discriminator)
    config = contents.generator_config
    print(f"read {args.source} ({kind}): StyleGAN2 {config.img_resolution}px, z_dim {config.z_dim}, "
          f"w_dim {config.w_dim}, {config.mapping_layers} mapping layers, channels "
          f"{[config.channels[r] for r in sorted(config.channels)]}, discriminator "
          f"{'yes' if contents.discriminator_config and not args.no_discriminator else 'no'}")
    for note in contents.notes:
        print(f"  note: {note}")
    print(f"wrote {args.out} (load it with --generator stylegan2:{args.out})")
    return 0


def _add_serve_arguments(parser: argparse.ArgumentParser):
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, this machine only; docs/service.md "
                             "explains remote use)")
    parser.add_argument("--port", type=int, default=8765, help="port (default: 8765; 0 picks a free one)")
    parser.add_argument("--data-dir", default=None,
                        help="jobs, uploads and bundles (default: $GAN2X_DATA_DIR, else "
                             "$XDG_DATA_HOME/gan2x/service or ~/.local/share/gan2x/service)")
    parser.add_argument("--token-file", default=None,
                        help="the bearer token, created (0600) if missing (default: $GAN2X_TOKEN_FILE, else "
                             "$XDG_CONFIG_HOME/gan2x/token or ~/.config/gan2x/token)")
    parser.add_argument("--no-token", action="store_true",
                        help="accept requests without a token (refused unless --host is a loopback address)")
    parser.add_argument("--workers", type=int, default=1,
                        help="fits that run at once, one process each (default: 1; one per GPU; 0 queues only)")
    parser.add_argument("--device", default="auto", help="torch device of the fits; " + DEVICE_HELP + " (default: auto)")
    parser.add_argument("--executor", default="local", metavar="local|ray|ray:ADDRESS",
                        help="where the fits run: local worker processes (default), or Ray tasks on a Ray instance "
                             "started here (ray) or on a cluster (ray:auto, ray:HOST:6379; the data directory must "
                             "be on storage every node shares; docs/scale.md). Needs pip install 'gan2x[ray]'")
    parser.add_argument("--gpus-per-job", type=float, default=1.0,
                        help="GPUs each job's Ray task asks for when --device is cuda; fractions (0.5) let fits "
                             "share a GPU (default: 1)")
    parser.add_argument("--worker-threads", type=int, default=None,
                        help="torch CPU threads per worker (default: (cores - 1) / workers, at least 1)")
    parser.add_argument("--worker-nice", type=int, default=10, help="niceness added to workers (default: 10)")
    parser.add_argument("--max-upload-mb", type=float, default=20.0, help="largest upload in MiB (default: 20)")
    parser.add_argument("--max-image-pixels", type=int, default=4096 * 4096,
                        help="largest uploaded image, width * height (default: 16777216)")
    parser.add_argument("--preview-interval", type=float, default=5.0,
                        help="seconds between preview renders of a running fit (default: 5)")
    parser.add_argument("--access-log", action="store_true", help="log every request")
    parser.add_argument("--generator", action="append", default=[], metavar="[NAME=]SPEC",
                        help="allow clients this generator besides the built-in ones (repeatable): a spec such as "
                             "stylegan2:PATH, optionally named (ffhq=stylegan2:PATH) so clients send the name; "
                             "each is loaded once at start (docs/service.md)")


def command_serve(args) -> int:
    from .service.config import MIB, ServiceConfig, UploadLimits, default_data_dir, default_token_file
    from .service.datadir import DataDirBusy
    from .service.generators import parse_generator_option
    from .scale.ray_runner import RayUnavailable
    from .service.server import ServeError, serve
    from .service.store import StoreError

    config = ServiceConfig(
        host=args.host, port=args.port,
        data_dir=Path(args.data_dir).expanduser() if args.data_dir else default_data_dir(),
        token_file=Path(args.token_file).expanduser() if args.token_file else default_token_file(),
        require_token=not args.no_token, workers=args.workers, device=args.device, executor=args.executor,
        gpus_per_job=args.gpus_per_job,
        worker_threads=args.worker_threads, worker_nice=args.worker_nice,
        uploads=UploadLimits(max_bytes=int(args.max_upload_mb * MIB), max_pixels=args.max_image_pixels),
        preview_interval_s=args.preview_interval, access_log=args.access_log,
        generators=tuple(parse_generator_option(text) for text in args.generator))
    for entry in config.generators:  # both run the operator's code in this process (at start) and in the workers
        label = entry.spec if entry.name == entry.spec else f"{entry.name}={entry.spec}"
        if entry.kind == "torchscript":
            print(f"gan2x: warning: --generator {label}: loading {entry.spec.partition(':')[2].strip()} runs the "
                  "TorchScript code in it, in this service process at start and in every worker that uses it: "
                  "list only modules you trust (docs/service.md)", file=sys.stderr)
        elif entry.kind == "python":
            print(f"gan2x: warning: --generator {label}: imports and runs that Python code in this service "
                  "process at start and in every worker that uses it: list only code you trust (docs/service.md)",
                  file=sys.stderr)
    try:
        return serve(config)
    except (DataDirBusy, ServeError, StoreError, OSError, RayUnavailable) as error:  # OSError: e.g. an
        # unwritable data dir; RayUnavailable: --executor ray without Ray (the message says how to install it)
        print(f"gan2x: error: {error}", file=sys.stderr)
        return 2


def command_bench(args) -> int:
    from dataclasses import replace

    import torch
    from tqdm import tqdm

    from .bench.run import (CATEGORIES, DEFAULT_CATEGORIES, FULL_SEEDS, KNOWN_ROWS, QUICK_SEEDS, ROWS,
                            markdown_table, run_bench, run_generator_bench)
    from .evaluation.consistency import CONSISTENCY
    from .pipeline import build_request, resolve_settings

    seeds = args.seeds if args.seeds else list(QUICK_SEEDS if args.quick else FULL_SEEDS)
    if args.generator is not None:
        if args.generator.strip().partition(":")[0] == "synthetic":
            raise ValueError("the built-in generator is benchmarked against its ground truth: drop --generator "
                             "and choose it with --categories faces,objects,detailed")
        if args.categories:
            raise ValueError("--categories belongs to the built-in generator; drop it with --generator")
    categories = args.categories.split(",") if args.categories else list(DEFAULT_CATEGORIES)
    rows = args.rows.split(",") if args.rows else list(ROWS)
    unknown = sorted(set(rows) - set(KNOWN_ROWS)) + sorted(set(categories) - set(CATEGORIES))
    if unknown:
        raise ValueError(f"unknown rows or categories {unknown}; rows: {list(KNOWN_ROWS)}, "
                         f"categories: {list(CATEGORIES)}")
    request = build_request({"preset": args.preset, "exploration": args.exploration, "device": args.device})
    overrides = dict(request.fit_overrides)
    if args.refinement_steps is not None:
        overrides["refinement_steps"] = args.refinement_steps
    settings = resolve_settings(request.preset, overrides)
    consistency = CONSISTENCY
    if args.consistency_steps is not None:
        if args.consistency_steps < 0:
            raise ValueError("--consistency-steps must be 0 (off) or more")
        consistency = replace(CONSISTENCY, steps=args.consistency_steps) if args.consistency_steps > 0 else None
    if args.threads:
        torch.set_num_threads(args.threads)
    per_seed = len(rows) + (1 if "full" in rows and settings.refinement_steps > 0 else 0)
    labels = 1 if args.generator is not None else len(categories)
    bar = tqdm(total=labels * len(seeds) * per_seed, unit="row", file=sys.stderr, dynamic_ncols=True)

    def on_record(category: str, record: dict):
        bar.set_description(f"{category} seed {record['seed']} {record['row']}", refresh=False)
        bar.update(1)

    started = time.perf_counter()
    if args.generator is not None:
        results = run_generator_bench(args.generator, seeds, rows, settings, torch.device(args.device),
                                      on_record=on_record, consistency=consistency)
    else:
        results = run_bench(categories, seeds, rows, settings, torch.device(args.device), on_record=on_record,
                            entanglement=args.entanglement, figure_seeds=args.figure_seeds if args.figure else 0,
                            highlight_scale=args.highlight_scale, consistency=consistency)
    figure_rows = results.pop("figure_rows")
    bar.close()
    if args.generator is not None:
        results["settings"] = {"preset": args.preset, "generator": args.generator, "seeds": seeds, "rows": rows,
                               "device": args.device, "seconds": time.perf_counter() - started,
                               "fit": settings.to_dict(),
                               "consistency": consistency.to_dict() if consistency is not None else None}
        table = markdown_table(results["summary"], seeds, first_column="generator",
                               note="n/a: needs ground truth (reach: a fit); without it, target dB is over the "
                                    "whole image (docs/benchmark.md, \"Other generators\").")
    else:
        results["settings"] = {"preset": args.preset, "entanglement": args.entanglement,
                               "highlight_scale": args.highlight_scale, "seeds": seeds,
                               "categories": categories, "rows": rows,
                               "device": args.device, "seconds": time.perf_counter() - started,
                               "fit": settings.to_dict(),
                               "consistency": consistency.to_dict() if consistency is not None else None}
        table = markdown_table(results["summary"], seeds)
    print(table)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2))
        print(f"json: {args.json}")
    if args.figure and figure_rows:
        from .bench.figure import write_figure

        print(f"figure: {write_figure(figure_rows, Path(args.figure))}")
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(table + "\n")
        print(f"markdown: {args.markdown}")
    print(f"bench took {time.perf_counter() - started:.0f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gan2x", description="GAN2X: one GAN image to a relightable 3D asset")
    parser.add_argument("--version", action="version", version=f"gan2x {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    fit = commands.add_parser("fit", help="fit one generator sample (or a photo, --image) and write its asset bundle")
    _add_fit_arguments(fit)
    _add_image_arguments(fit)
    fit.add_argument("--out", required=True, help="bundle directory to write")
    fit.set_defaults(handler=command_fit)

    batch = commands.add_parser("batch", help="fit many seeds or photos, one Ray task each, into bundles and a "
                                              "summary (docs/scale.md)")
    _add_batch_arguments(batch)
    batch.set_defaults(handler=command_batch)

    demo = commands.add_parser("demo", help="fit, write the bundle, build the Blender scene and a comparison PNG")
    _add_fit_arguments(demo)
    demo.add_argument("--out", required=True, help="output directory")
    demo.add_argument("--render-size", type=int, default=256, help="Cycles render size (default: 256)")
    demo.add_argument("--samples", type=int, default=32, help="Cycles samples (default: 32)")
    demo.add_argument("--addon-dir", default=None, help="the add-on folder (default: the checkout's addon/)")
    demo.add_argument("--blender", default=None,
                      help="a Blender executable; default: this Python if it has the bpy module, else `blender`")
    demo.set_defaults(handler=command_demo)

    sample = commands.add_parser("sample", help="write a generator's images (a PNG grid, or .npy values in [-1, 1])")
    sample.add_argument("--generator", required=True, help="generator spec (docs/generators.md)")
    chosen = sample.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--seeds", type=_seeds, default=None,
                        help="comma-separated seeds or ranges, e.g. 0,1,2 or 0-7")
    chosen.add_argument("--z", default=None, help="a .npy file of latents [N, z_dim]")
    sample.add_argument("--truncation", type=_finite_float, default=1.0, help="truncation psi (default: 1.0)")
    sample.add_argument("--noise", choices=("const", "random"), default="const",
                        help="StyleGAN2 noise inputs: the checkpoint's constant images or fresh random ones "
                             "(default: const)")
    sample.add_argument("--device", default="auto", help=DEVICE_HELP + " (default: auto)")
    sample.add_argument("--batch", type=int, default=8, help="images per forward pass (default: 8)")
    sample.add_argument("--out", required=True,
                        help="FILE.png: a grid of the images; FILE.npy: float32 [N, 3, R, R] in [-1, 1]")
    sample.set_defaults(handler=command_sample)

    convert = commands.add_parser("convert-checkpoint",
                                  help="convert a StyleGAN2 checkpoint (NVIDIA pickle, rosinality .pt) to "
                                       "gan2x's safetensors format")
    convert.add_argument("source", help="the checkpoint (format detected from its content)")
    convert.add_argument("out", help="the .safetensors file to write")
    convert.add_argument("--no-discriminator", action="store_true", help="leave the discriminator out")
    convert.set_defaults(handler=command_convert_checkpoint)

    serve = commands.add_parser("serve", help="run fitting jobs over HTTP (docs/service.md)")
    _add_serve_arguments(serve)
    serve.set_defaults(handler=command_serve)

    bench = commands.add_parser("bench", help="ground-truth benchmark on held-out samples of the built-in generator")
    bench.add_argument("--quick", action="store_true", help="3 held-out seeds a category (default: 10)")
    bench.add_argument("--seeds", type=_seeds, default=None,
                       help="comma-separated seeds or ranges instead (e.g. 1000,1001 or 1000-1009)")
    bench.add_argument("--categories", default=None, help="comma-separated: faces,objects,detailed (default: faces,objects)")
    bench.add_argument("--rows", default=None,
                       help="comma-separated: ellipsoid,lambertian,full (default), and full:triplane, "
                            "full:hashgrid to compare field encodings")
    bench.add_argument("--generator", default=None,
                       help="bench another generator instead (stylegan2:PATH, dcgan:PATH, torchscript:PATH, "
                            "python:MODULE:CALLABLE): no ground truth, so target PSNR, SSIM, projection reach, "
                            "GAN consistency and time only")
    bench.add_argument("--preset", default=config.PRESET.default, help=f"fit preset (default: {config.PRESET.default})")
    bench.add_argument("--device", default="auto", help=DEVICE_HELP + " (default: auto)")
    bench.add_argument("--entanglement", type=float, default=config.ENTANGLEMENT.default,
                       help="identity drift of the built-in generator with view and light, 0..1 "
                            f"(default: {config.ENTANGLEMENT.default})")
    bench.add_argument("--highlight-scale", type=float, default=1.0,
                       help="multiply every specular intensity of the built-in generator's samples (clamped to 1): "
                            "a diagnostic of how strong highlights must be for the fit to use them (default: 1, "
                            "the generator as designed)")
    bench.add_argument("--refinement-steps", type=int, default=None,
                       help="shading-based refinement steps (default: the preset's, 150 for draft; 0 turns it off)")
    _add_exploration_argument(bench)
    bench.add_argument("--consistency-steps", type=int, default=None,
                       help="projection steps of the novel-view GAN consistency metric (default: its own, 200; "
                            "0 leaves the metric out; docs/benchmark.md)")
    bench.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    bench.add_argument("--json", default=None, help="write every record and the summary here")
    bench.add_argument("--markdown", default=None, help="write the table here")
    bench.add_argument("--figure", default=None, help="write a PNG of inputs, truths and fits here")
    bench.add_argument("--figure-seeds", type=int, default=2, help="seeds a category in the figure (default: 2)")
    bench.set_defaults(handler=command_bench)

    args = parser.parse_args(argv)
    try:
        if getattr(args, "device", None) is not None:
            args.device = resolve_device(args.device)
        return args.handler(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"gan2x: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
