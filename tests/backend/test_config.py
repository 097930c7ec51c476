"""gan2x.config: the request-level settings' ranges and defaults, stated
once; their users (the fit, the API's models, the CLI, the benchmark) agree
with it, and ``pipeline.build_request`` is the one way to a request."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import fields

import pytest

from gan2x import config
from gan2x.cli import main
from gan2x.config import parse_seeds


def test_config_imports_without_torch():
    code = "import gan2x.config, gan2x.cli, sys; assert 'torch' not in sys.modules, sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_fit_and_the_api_use_the_config_names():
    from gan2x.fit.settings import PRESETS, FitSettings
    from gan2x.fit.style_mixing import EXPLORATIONS
    from gan2x.service.schemas import JobSettings

    assert config.PRESET_NAMES == tuple(PRESETS)
    assert config.PRESET.default in PRESETS
    assert EXPLORATIONS is config.EXPLORATIONS
    assert FitSettings().exploration in config.EXPLORATIONS
    with pytest.raises(ValueError, match="unknown exploration"):
        FitSettings(exploration="sideways")
    defaults = JobSettings()
    assert (defaults.preset, defaults.steps_scale, defaults.mesh_resolution, defaults.texture_size) == (
        config.PRESET.default, config.STEPS_SCALE.default, config.MESH_RESOLUTION.default,
        config.TEXTURE_SIZE.default)


def test_the_metric_and_bench_defaults_are_the_config_ones():
    from gan2x import pipeline
    from gan2x.bench.run import DEFAULT_ENTANGLEMENT

    assert pipeline.CONSISTENCY.steps == config.CONSISTENCY_STEPS.default
    assert DEFAULT_ENTANGLEMENT == config.ENTANGLEMENT.default
    export = pipeline.ExportSettings()
    assert (export.mesh_resolution, export.texture_size) == (config.MESH_RESOLUTION.default,
                                                             config.TEXTURE_SIZE.default)


def test_the_tree_holds_every_setting():
    tree = config.RECONSTRUCTION
    assert tree.export.texture_size is config.TEXTURE_SIZE and tree.fit.exploration.choices == config.EXPLORATIONS
    assert [f.name for f in fields(tree)] == ["source", "crop", "fit", "export", "consistency_steps", "device"]
    assert config.CROP_SCALE.exclusive_minimum
    with pytest.raises(ValueError, match="more than 0.0"):
        config.CROP_SCALE.check(0.0, "crop_scale")
    assert config.TEXTURE_SIZE.check(64) == 64


@pytest.mark.parametrize("text, seeds", [
    ("1-4,7", [1, 2, 3, 4, 7]), ("0", [0]), (" 3 , 1 ", [3, 1]), ("5-5", [5]), ("1,,2,", [1, 2]),
    ("4294967295", [4294967295]),
])
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text, message", [
    ("", "no seeds"), ("-1", "not '-1'"), ("a", "not 'a'"), ("4-1", "runs backwards"), ("1.5", "not '1.5'"),
    ("4294967296", "past the largest"), ("²", "not"),
])
def test_parse_seeds_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_seeds(text)


@pytest.mark.parametrize("option, value, message", [
    ("--texture-size", "8192", "argument --texture-size: must be at least 64 and at most 4096, not 8192"),
    ("--texture-size", "32", "argument --texture-size: must be at least 64 and at most 4096, not 32"),
    ("--mesh-resolution", "16", "argument --mesh-resolution: must be at least 32 and at most 512, not 16"),
    ("--mesh-resolution", "big", "'big' is not an integer"),
])
def test_the_cli_checks_export_sizes_at_parse_time(tmp_path, capsys, option, value, message):
    with pytest.raises(SystemExit) as done:
        main(["fit", option, value, "--out", str(tmp_path / "x")])
    assert done.value.code == 2 and message in capsys.readouterr().err


def test_the_cli_reads_seed_lists_with_parse_seeds(tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["sample", "--generator", "synthetic", "--seeds", "4-1", "--out", str(tmp_path / "x.png")])
    assert done.value.code == 2 and "runs backwards" in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:
        main(["bench", "--seeds", "1000-x", "--json", str(tmp_path / "x.json")])
    assert done.value.code == 2 and "1000-x" in capsys.readouterr().err


def _cli_request(argv):
    """The request ``gan2x fit`` builds (the parser, then cli._request)."""
    from gan2x import cli

    captured = {}

    def fake_fit(args):
        captured["request"] = cli._request(args)
        return 0

    original = cli.command_fit
    cli.command_fit = fake_fit
    try:
        assert cli.main(["fit", "--device", "cpu", "--out", "unused", *argv]) == 0
    finally:
        cli.command_fit = original
    return captured["request"]


def test_the_cli_and_the_worker_build_the_same_request():
    from gan2x.pipeline import build_request
    from gan2x.service.schemas import ImageSource, JobSettings, SampleSource
    from gan2x.service.worker import job_request

    cli = _cli_request(["--seed", "5", "--steps-scale", "0.5", "--exploration", "mixed", "--texture-size", "512"])
    job = type("Job", (), {})()
    job.source = SampleSource(kind="sample", seed=5).model_dump()
    job.settings = JobSettings(steps_scale=0.5, exploration="mixed", texture_size=512).model_dump()
    worker = job_request(job, "cpu", "synthetic")
    assert worker == cli
    assert cli.fit_overrides["exploration"] == "mixed" and cli.fit_overrides["target_steps"] >= 1
    assert cli.consistency_overrides and not cli.inversion_overrides and cli.export.texture_size == 512

    photo = _cli_request(["--image", "photo.png", "--crop-x", "0.25", "--steps-scale", "0.5"])
    job.source = ImageSource(kind="image", upload_id="0" * 32, crop_x=0.25).model_dump()
    job.settings = JobSettings(steps_scale=0.5).model_dump()
    worker = job_request(job, "cpu", "synthetic")
    assert photo.crop == worker.crop and photo.crop.centre_x == 0.25
    assert photo.inversion_overrides == worker.inversion_overrides != {}
    # a stored job's defaults and an empty mapping agree
    assert build_request({}) == build_request({"steps_scale": 1.0, "stages": None, "exploration": None})
    with pytest.raises(ValueError, match="unknown preset"):
        build_request({"preset": "ultra"})
