"""Headless batch conversion through the backend:

    blender -b --command gan2x convert --generator synthetic:faces --seeds 1-4 --out DIR
    blender -b --command gan2x convert --images FOLDER --out DIR
    blender -b -P <add-on folder>/headless.py -- convert (the same options)

Every item (a seed of a generator, or an image of the folder, uploaded) is
submitted as one job; they run in the backend's queue while this process
polls them. Each finished job's bundle is downloaded (``DIR/<item>.zip``)
and unpacked (``DIR/<item>/``), imported into an empty scene (lights,
camera, world) that is saved as ``DIR/<item>.blend``, and rendered with
Cycles at the bundle's camera to ``DIR/<item>.png``; ``<item>`` is
``synthetic_faces_seed3`` or the image's name. A progress line
is printed whenever an item's state or stage changes, a summary at the end
(also written to ``DIR/summary.json``). The exit status is 0 when every item
was converted, 1 when any failed (one failed item never stops the others),
2 for bad arguments.

The backend URL and token default to the add-on's preferences when it is
enabled (``--command``), else to the local backend and its token file.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import bpy

from .blender import render as render_setup
from .blender.scene import ImportOptions, import_bundle
from .bundle.reader import BundleError, read_bundle
from .client.jobs import JobRequest, fetch_bundle
from .client.service import (FINAL_STATES, ServiceClient, ServiceError, check_backend, describe_progress,
                             format_seconds)
from .client.token import TokenError, resolve_token
from .preferences import preferences

COMMAND = "gan2x"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
_MAX_POLL_FAILURES = 20


@dataclass
class Item:
    """One thing to convert and what became of it."""
    label: str
    name: str
    source: dict | None = None
    image_path: Path | None = None
    job_id: str = ""
    state: str = "pending"
    """pending, then the job's states, then converted or failed."""
    message: str = ""
    outputs: dict = field(default_factory=dict)
    last_line: str = ""
    started: float = 0.0


# --- arguments --------------------------------------------------------------------

SEED_MAX = 2 ** 32 - 1
"""= the backend's ``gan2x.config.SEED.maximum`` (a test checks)."""


def parse_seeds(text: str) -> list:
    """``"1,2,5-7"`` -> ``[1, 2, 5, 6, 7]``. A copy of the backend's
    ``gan2x.config.parse_seeds`` (the add-on cannot import the backend);
    tests/addon/test_settings_match_backend.py checks they agree."""
    seeds = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        match = re.fullmatch(r"([0-9]+)(?:-([0-9]+))?", part)
        if match is None:
            raise argparse.ArgumentTypeError("seeds are numbers and ranges like 1,2,5-7, not {!r}".format(part))
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        if last < first:
            raise argparse.ArgumentTypeError("the range {!r} runs backwards".format(part))
        if last > SEED_MAX:
            raise argparse.ArgumentTypeError("seed {} is past the largest, {}".format(last, SEED_MAX))
        seeds.extend(range(first, last + 1))
    if not seeds:
        raise argparse.ArgumentTypeError("no seeds given")
    return seeds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="blender -b --command gan2x",
        description="GAN2X batch conversion through the backend service (gan2x serve).")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    convert = commands.add_parser(
        "convert", help="convert seeds of a generator, or a folder of images, into bundles, .blend files "
                        "and preview renders",
        description="Convert seeds of a generator, or a folder of images, into bundles, .blend files and "
                    "preview renders. Exit status: 0 all converted, 1 any failed, 2 bad arguments.")
    source = convert.add_mutually_exclusive_group(required=True)
    source.add_argument("--seeds", type=parse_seeds, help="seeds of --generator: 1,2,5-7")
    source.add_argument("--images", type=Path, help="a folder of PNG, JPEG or WEBP images")
    convert.add_argument("--generator", default="synthetic:faces",
                         help="generator spec for --seeds (default: synthetic:faces)")
    convert.add_argument("--truncation", type=float, default=1.0, help="truncation psi (default: 1)")
    convert.add_argument("--out", required=True, type=Path, help="output folder")
    convert.add_argument("--backend-url", default=None,
                         help="the backend (default: the add-on's preferences, else http://127.0.0.1:8765)")
    convert.add_argument("--token", default=None, help="the backend's token (default: the preferences', "
                                                       "else the local backend's token file)")
    convert.add_argument("--token-file", type=Path, default=None, help="read the token from this file")
    convert.add_argument("--preset", default="draft", help="quality preset: draft, standard, high (default: draft)")
    convert.add_argument("--steps-scale", type=float, default=None, help="multiplies every step count")
    convert.add_argument("--stages", type=int, default=None, help="rounds of the fit (default: the preset's)")
    convert.add_argument("--pseudo-samples", type=int, default=None, help="default: the preset's")
    convert.add_argument("--mesh-resolution", type=int, default=None, help="marching-cubes cells a side")
    convert.add_argument("--texture-size", type=int, default=None, help="texture pixels a side")
    convert.add_argument("--render-size", type=int, default=256, help="preview render size (default: 256)")
    convert.add_argument("--samples", type=int, default=32, help="Cycles samples of the preview (default: 32)")
    convert.add_argument("--no-render", action="store_true", help="skip the preview renders")
    convert.add_argument("--ao-strength", type=float, default=None,
                         help="how much a bundle's ambient occlusion texture darkens the albedo, 0 to 1 "
                              "(default: the import's, 0.5)")
    convert.add_argument("--poll-interval", type=float, default=0.5, help="seconds between status polls")
    return parser


def parse_arguments(argv) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(list(argv))
    if args.command is None:
        parser.error("give a command: convert (see --help)")
    if args.render_size <= 0 or args.samples <= 0:
        parser.error("--render-size and --samples must be positive")
    if args.ao_strength is not None and not 0.0 <= args.ao_strength <= 1.0:
        parser.error("--ao-strength must be from 0 to 1")
    if args.images is not None and not args.images.is_dir():
        parser.error("--images {} is not a folder".format(args.images))
    return args


def job_settings(args) -> dict:
    settings = {"preset": args.preset}
    for key in ("steps_scale", "stages", "pseudo_samples", "mesh_resolution", "texture_size"):
        value = getattr(args, key)
        if value is not None:
            settings[key] = value
    return settings


def make_items(args) -> list:
    if args.seeds is not None:
        requests = [JobRequest(source={"kind": "sample", "generator": args.generator, "seed": seed,
                                       "truncation": args.truncation}) for seed in args.seeds]
    else:
        requests = [JobRequest(image_path=str(path)) for path in sorted(args.images.iterdir())
                    if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES]
    items, names = [], set()
    for request in requests:
        name = request.name()
        while name in names:
            name += "_"
        names.add(name)
        items.append(Item(request.label(), name, source=request.source,
                          image_path=Path(request.image_path) if request.image_path else None))
    return items


def make_client(args) -> ServiceClient:
    prefs = preferences()
    url = args.backend_url or (prefs.backend_url if prefs is not None else "http://127.0.0.1:8765")
    token = args.token
    if token is None and args.token_file is not None:
        try:
            token = args.token_file.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise ServiceError("cannot read the token file {}: {}".format(
                args.token_file, error.strerror or error), "auth") from None
    if token is None:
        try:
            token, _ = resolve_token(url, prefs.token if prefs is not None else "",
                                     prefs.backend_command if prefs is not None else "")
        except TokenError as error:
            raise ServiceError(str(error), "auth") from None
    return ServiceClient(url, token, online_access=bpy.app.online_access)


# --- the run ----------------------------------------------------------------------

def cli_command(argv) -> int:
    """The function registered with ``bpy.utils.register_cli_command``."""
    try:
        args = parse_arguments(argv)
    except SystemExit as exit_:  # argparse: --help (0) or bad arguments (2)
        return exit_.code if isinstance(exit_.code, int) else 2
    return convert(args)


def convert(args, out=None) -> int:
    out = out or sys.stdout

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    items = make_items(args)
    if not items:
        say("gan2x convert: error: no PNG, JPEG or WEBP images in {}".format(args.images))
        return 1
    out_dir = args.out.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        client = make_client(args)
        status = check_backend(client)
    except ServiceError as error:
        status = None
        failure = str(error)
    else:
        failure = "" if status.ok else status.message
    if failure:
        for item in items:
            item.state, item.message = "failed", failure
        say("gan2x convert: error: {}".format(failure))
        return _finish(items, out_dir, started, say)
    say("gan2x convert: {} item(s) through {}".format(len(items), status.message))

    settings = job_settings(args)
    for index, item in enumerate(items):
        item.label = "[{}/{}] {}".format(index + 1, len(items), item.label)
        _submit(client, item, settings, say)
    try:
        _follow(client, items, args, out_dir, say)
    except KeyboardInterrupt:
        say("gan2x convert: interrupted; cancelling the jobs still under way")
        for item in items:
            if item.job_id and item.state in ("queued", "running"):
                try:
                    client.cancel_job(item.job_id)
                except ServiceError:
                    pass
                item.state, item.message = "failed", "interrupted (cancelled on the backend)"
        _finish(items, out_dir, started, say)
        return 130
    return _finish(items, out_dir, started, say)


def _submit(client: ServiceClient, item: Item, settings: dict, say) -> None:
    try:
        source = item.source
        if item.image_path is not None:
            upload = client.upload_image(item.image_path)
            source = {"kind": "image", "upload_id": upload["id"]}
        job = client.submit_job(source, settings)
    except ServiceError as error:
        item.state, item.message = "failed", str(error)
        say("{}: failed: {}".format(item.label, error))
        return
    item.job_id, item.state, item.started = job["id"], job["state"], time.monotonic()
    _report(item, job, say)


def _report(item: Item, job: dict, say) -> None:
    """Prints the item's line when its state, stage or tenth of progress changed."""
    progress = job.get("progress") or {}
    tenth = int(10 * (progress.get("fraction") or 0.0))
    key = "{}|{}|{}".format(job["state"], progress.get("stage"), tenth)
    if key != item.last_line:
        item.last_line = key
        say("{}: {}".format(item.label, describe_progress(job)))


def _follow(client: ServiceClient, items: list, args, out_dir: Path, say) -> None:
    failures = 0
    while True:
        pending = [item for item in items if item.job_id and item.state not in FINAL_STATES
                   and item.state not in ("converted", "failed")]
        if not pending:
            return
        time.sleep(args.poll_interval)
        for item in pending:
            try:
                job = client.job(item.job_id)
                failures = 0
            except ServiceError as error:
                failures += 1
                if error.kind != "unreachable" or failures >= _MAX_POLL_FAILURES:
                    item.state, item.message = "failed", str(error)
                    say("{}: failed: {}".format(item.label, error))
                continue
            item.state = job["state"]
            _report(item, job, say)
            if job["state"] == "succeeded":
                _convert_item(client, item, job, args, out_dir, say)
            elif job["state"] in FINAL_STATES:
                item.state, item.message = "failed", describe_progress(job)


def _convert_item(client: ServiceClient, item: Item, job: dict, args, out_dir: Path, say) -> None:
    try:
        bundle_dir = fetch_bundle(client, job["id"], out_dir / (item.name + ".zip"), out_dir / item.name)
        item.outputs["bundle"] = str(bundle_dir)
        item.outputs.update(bundle_to_blend(bundle_dir, out_dir / (item.name + ".blend"),
                                            None if args.no_render else out_dir / (item.name + ".png"),
                                            args.render_size, args.samples, args.ao_strength))
    except (ServiceError, BundleError, RuntimeError, OSError) as error:
        item.state, item.message = "failed", "{}: {}".format(type(error).__name__, error)
        say("{}: failed: {}".format(item.label, item.message))
        return
    item.state = "converted"
    item.message = "in {}".format(format_seconds(time.monotonic() - item.started))
    say("{}: converted {}: {}".format(item.label, item.message, item.outputs["blend"]))


def bundle_to_blend(bundle_dir: Path, blend_path: Path, preview_path: Path | None, render_size: int,
                    samples: int, ao_strength: float | None = None) -> dict:
    """An empty scene with the bundle imported (lights, camera, world; the AO
    Mix node's Factor ``ao_strength``, None: the import's default), saved
    as ``blend_path``; then, with ``preview_path``, a Cycles render at the
    bundle camera written there. Returns the paths and the import's names."""
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    options = ImportOptions() if ao_strength is None else ImportOptions(ao_strength=ao_strength)
    with read_bundle(bundle_dir) as bundle:
        result = import_bundle(bpy.context, bundle, options)
    outputs = {"blend": str(blend_path), "collection": result.collection.name,
               "objects": [obj.name for obj in result.objects], "material": result.material.name}
    blend_path.parent.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(blend_path))
    if preview_path is not None:
        render_setup.configure_cycles(scene, width=render_size, samples=samples)
        render_setup.render_to_arrays(scene, png_path=preview_path)
        outputs["preview"] = str(preview_path)
    return outputs


def _finish(items: list, out_dir: Path, started: float, say) -> int:
    converted = [item for item in items if item.state == "converted"]
    failed = [item for item in items if item.state != "converted"]
    say("gan2x convert: {} of {} converted, {} failed, in {} (output: {})".format(
        len(converted), len(items), len(failed), format_seconds(time.monotonic() - started), out_dir))
    for item in items:
        if item.state == "converted":
            say("  ok      {}: {}".format(item.label, item.outputs.get("blend")))
        else:
            say("  FAILED  {}: {}".format(item.label, item.message or item.state))
    summary = {"converted": len(converted), "failed": len(failed), "items": [
        {"label": item.label, "name": item.name, "job_id": item.job_id or None,
         "state": "converted" if item.state == "converted" else "failed", "message": item.message,
         "outputs": item.outputs} for item in items]}
    try:
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    except OSError as error:
        say("gan2x convert: could not write summary.json: {}".format(error))
    return 0 if not failed else 1
