"""The add-on's settings agree with the backend's ``gan2x.config``: the
panel's properties (addon/properties.py, read from the registered
PropertyGroup's bl_rna) have the API's ranges and defaults, and the batch
CLI's seed parser (addon/convert.py, a copy: the add-on cannot import the
backend) reads every seed list as ``gan2x.config.parse_seeds`` does."""
from __future__ import annotations

import argparse

import pytest

config = pytest.importorskip("gan2x.config")


def _properties():
    from addon.properties import GAN2X_PG_scene_settings

    return GAN2X_PG_scene_settings.bl_rna.properties


def _assert_range(prop, setting, *, minimum=None, default=None):
    """``prop``'s hard bounds and default are ``setting``'s (``minimum`` and
    ``default``: the add-on's own, where 0 stands for "the preset's")."""
    assert prop.hard_min == pytest.approx(setting.minimum if minimum is None else minimum, rel=1e-6), prop.identifier
    assert prop.hard_max == pytest.approx(setting.maximum, rel=1e-6), prop.identifier
    assert prop.default == pytest.approx(setting.default if default is None else default, rel=1e-6), prop.identifier


def test_the_panel_states_the_backend_ranges_and_defaults(registered_addon):
    properties = _properties()
    _assert_range(properties["truncation"], config.TRUNCATION)
    _assert_range(properties["steps_scale"], config.STEPS_SCALE)
    _assert_range(properties["mesh_resolution"], config.MESH_RESOLUTION)
    _assert_range(properties["texture_size"], config.TEXTURE_SIZE)
    # 0 in the panel: the preset's (None in the API), left out of the job's settings
    for name, setting in (("stages", config.STAGES), ("pseudo_samples", config.PSEUDO_SAMPLES)):
        assert setting.default is None and setting.minimum == 1
        _assert_range(properties[name], setting, minimum=0, default=0)
    seed = properties["seed"]
    assert seed.hard_min == config.SEED.minimum and seed.hard_max <= config.SEED.maximum
    assert seed.default == config.CLI_SEED_DEFAULT
    preset = properties["preset"]
    assert tuple(item.identifier for item in preset.enum_items) == config.PRESET_NAMES
    assert preset.default == config.PRESET.default


def test_the_job_settings_of_the_panel_defaults_are_the_api_defaults(registered_addon):
    import bpy

    from gan2x.service.schemas import JobSettings

    settings = bpy.context.scene.gan2x.job_settings()
    assert JobSettings(**settings).model_dump() == JobSettings().model_dump()


SEED_TABLE = ["0", "7", "1-4,7", " 1 , 2 ", "5-5", "0,3,5-8", "3,1,3", "1,,2", "1,", "10-12, 20",
              "4294967295", "4294967294-4294967295"]
BAD_SEEDS = ["", ",", "-1", "a", "1-", "-", "4-1", "1.5", "1-2-3", "1 - 3", "4294967296", "0-4294967296", "²",
             "١"]


@pytest.mark.parametrize("text", SEED_TABLE + BAD_SEEDS)
def test_the_batch_cli_reads_seeds_as_the_backend_does(text):
    from addon import convert

    assert convert.SEED_MAX == config.SEED.maximum
    try:
        expected = config.parse_seeds(text)
    except ValueError:
        assert text in BAD_SEEDS, text
        with pytest.raises(argparse.ArgumentTypeError):
            convert.parse_seeds(text)
    else:
        assert text in SEED_TABLE, text
        assert convert.parse_seeds(text) == expected


def test_the_batch_cli_defaults_are_the_backend_defaults():
    from addon import convert

    args = convert.build_parser().parse_args(["convert", "--seeds", "1", "--out", "x"])
    assert args.preset == config.PRESET.default
    assert args.truncation == config.TRUNCATION.default
