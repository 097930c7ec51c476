"""``gan2x bench``: rows, records and the table, on tiny settings."""
import json
from dataclasses import replace

import torch

from PIL import Image

from gan2x.bench.figure import COLUMNS, write_figure
from gan2x.bench.run import markdown_table, run_bench
from gan2x.cli import main
from gan2x.evaluation.consistency import ConsistencySettings
from gan2x.fit.asset_model import AssetModel
from gan2x.fit.schedule import PRESETS
from gan2x.render.volume import SamplingSettings

TINY = replace(PRESETS["draft"], stages=1, target_steps=5, projection_steps=2, exploitation_steps=5,
               pseudo_samples=1, rays_per_image=64, refinement_steps=3,
               sampling=SamplingSettings(coarse_samples=24, fine_samples=8, coarse_grid=24))
TINY_CONSISTENCY = ConsistencySettings(steps=2)
NO_TRUTH_KEYS = ("target_ssim", "novel_view_consistency_psnr_db", "novel_view_consistency_psnr_db_each",
                 "novel_view_consistency_yaws_degrees", "consistency_seconds", "asset_psnr_db", "asset_ssim",
                 "region_psnr_db", "region_coverage", "mask_coverage")
REACH_KEYS = ("projection_fidelity_psnr_db", "projection_fidelity_psnr_db_each", "projection_target_psnr_db",
              "projection_target_psnr_db_each", "projection_yaws_degrees")


def test_the_lambertian_model_has_no_specular_term():
    points = torch.rand(50, 3) - 0.5
    assert AssetModel(specular=False).materials(points)["specular"].abs().max() == 0.0
    assert AssetModel().materials(points)["specular"].min() > 0.0


def test_run_bench_gives_every_metric_for_every_row(tmp_path):
    results = run_bench(["objects"], [1000], ["ellipsoid", "lambertian", "full"], TINY, torch.device("cpu"),
                        figure_seeds=1, consistency=TINY_CONSISTENCY)
    records = results["records"]["objects"]
    assert [r["row"] for r in records] == ["ellipsoid", "lambertian", "no_refinement", "full"]
    for record in records:
        for key in ("side_x100", "mad_degrees", "albedo_error", "specular_error", "shininess_log_error",
                    "relight_psnr_db", "novel_view_psnr_db", "seconds") + NO_TRUTH_KEYS:
            assert record[key] == record[key], key  # not NaN
        assert 0.0 < record["target_ssim"] <= 1.0 and len(record["novel_view_consistency_psnr_db_each"]) == 4
        assert all(key in record for key in REACH_KEYS) == (record["row"] != "ellipsoid")  # no fit, no reach
    # no_refinement and full share their run's last stage, so its reach
    assert records[2]["projection_target_psnr_db_each"] == records[3]["projection_target_psnr_db_each"]
    assert records[0]["seconds"] == 0.0 < records[2]["seconds"] < records[3]["seconds"]
    table = markdown_table(results["summary"], [1000])
    assert table.count("| objects |") == 4 and "MAD deg" in table and "GAN consistency dB" in table
    ellipsoid_line = next(line for line in table.splitlines() if line.startswith("| objects | ellipsoid |"))
    assert ellipsoid_line.count("n/a") == 2  # the two reach columns
    (label, panels), = results["figure_rows"]
    assert label == "synthetic:objects 1000" and len(panels) == len(COLUMNS)
    assert all(p.shape == (64, 64, 3) and 0.0 <= p.min() and p.max() <= 1.0 for p in panels)
    figure = write_figure(results["figure_rows"], tmp_path / "figure.png", cell=32)
    assert Image.open(figure).size == (120 + 32 * len(COLUMNS), 18 + 32)


def test_bench_command_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--seeds", "1000", "--categories", "faces", "--rows", "ellipsoid",
                 "--json", str(out), "--figure", str(tmp_path / "figure.png"), "--consistency-steps", "0"]) == 0
    assert not (tmp_path / "figure.png").exists()  # the figure shows fits; no fit ran
    results = json.loads(out.read_text())
    assert results["settings"]["seeds"] == [1000] and results["settings"]["consistency"] is None
    assert "mad_degrees" in results["summary"]["faces"]["ellipsoid"]
    assert "novel_view_consistency_psnr_db" not in results["records"]["faces"][0]  # turned off
    assert "| faces | ellipsoid |" in capsys.readouterr().out
    assert main(["bench", "--rows", "nonsense"]) == 2


GROUND_TRUTH_KEYS = ("side_x100", "mad_degrees", "detail_normal_mad_degrees", "true_detail_normal_degrees",
                     "albedo_error", "albedo_psnr_db", "specular_error", "shininess_log_error",
                     "relight_psnr_db", "novel_view_psnr_db", "asset_albedo_psnr_db",
                     "asset_detail_normal_mad_degrees")


def _tiny_stylegan2(tmp_path) -> str:
    import stylegan2_checkpoints as checkpoints

    path = tmp_path / "tiny.pkl"
    checkpoints.write_nvidia_pickle(path, seed=1)
    return f"stylegan2:{path}"


def test_a_generator_without_ground_truth_gets_target_psnr_and_time_only(tmp_path):
    from gan2x.bench.run import run_generator_bench

    spec = _tiny_stylegan2(tmp_path)
    results = run_generator_bench(spec, [1000], ["ellipsoid", "lambertian", "full"], TINY, torch.device("cpu"),
                                  consistency=TINY_CONSISTENCY)
    records = results["records"][spec]
    assert [r["row"] for r in records] == ["ellipsoid", "lambertian", "no_refinement", "full"]
    for record in records:
        reach = REACH_KEYS if record["row"] != "ellipsoid" else ()  # no fit, no reach: absent, not zero
        assert set(record) == {"seed", "row", "seconds", "target_psnr_db", *NO_TRUTH_KEYS, *reach}, record
        assert 0.0 < record["target_psnr_db"] < 100.0
        assert 0.0 < record["novel_view_consistency_psnr_db"] < 100.0
    assert records[0]["seconds"] == 0.0 < records[1]["seconds"]
    assert results["figure_rows"] == []  # the figure shows ground truth
    assert set(results["summary"][spec]["full"]) == {"target_psnr_db", "target_ssim", "projection_fidelity_psnr_db",
                                                     "projection_target_psnr_db", "novel_view_consistency_psnr_db",
                                                     "seconds", "asset_psnr_db", "asset_ssim", "region_psnr_db",
                                                     "region_coverage"}
    table = markdown_table(results["summary"], [1000], first_column="generator")
    assert table.startswith("| generator | method |")
    full_line = next(line for line in table.splitlines() if line.startswith(f"| {spec} | full |"))
    assert full_line.count("n/a") == len(GROUND_TRUTH_KEYS) and " ± " in full_line
    ellipsoid_line = next(line for line in table.splitlines() if line.startswith(f"| {spec} | ellipsoid |"))
    assert ellipsoid_line.count("n/a") == len(GROUND_TRUTH_KEYS) + 2


def test_bench_command_with_a_generator_writes_json_without_ground_truth_columns(tmp_path, capsys):
    spec = _tiny_stylegan2(tmp_path)
    out, table = tmp_path / "bench.json", tmp_path / "bench.md"
    assert main(["bench", "--generator", spec, "--seeds", "1000", "--rows", "ellipsoid", "--json", str(out),
                 "--markdown", str(table), "--consistency-steps", "3"]) == 0
    results = json.loads(out.read_text())
    assert results["settings"]["generator"] == spec and "categories" not in results["settings"]
    assert results["settings"]["consistency"]["steps"] == 3
    assert list(results["summary"]) == [spec]
    assert set(results["summary"][spec]["ellipsoid"]) == {"target_psnr_db", "target_ssim",
                                                          "novel_view_consistency_psnr_db", "seconds",
                                                          "asset_psnr_db", "asset_ssim", "region_psnr_db",
                                                          "region_coverage"}
    assert not any(key in record for record in results["records"][spec] for key in GROUND_TRUTH_KEYS)
    written = table.read_text()
    assert f"| {spec} | ellipsoid |" in written and "n/a" in written and "whole image" in written
    capsys.readouterr()
    assert main(["bench", "--generator", "synthetic:faces", "--rows", "ellipsoid"]) == 2
    assert "--categories" in capsys.readouterr().err
    assert main(["bench", "--generator", spec, "--categories", "faces", "--rows", "ellipsoid"]) == 2


def test_bench_runs_the_detailed_category_with_the_detail_metrics(capsys):
    from gan2x.bench.run import CATEGORIES, DEFAULT_CATEGORIES

    assert "detailed" in CATEGORIES and "detailed" not in DEFAULT_CATEGORIES  # opt-in: docs/benchmark.md
    results = run_bench(["detailed"], [1000], ["ellipsoid", "full"], TINY, torch.device("cpu"), consistency=None)
    records = results["records"]["detailed"]
    assert [r["row"] for r in records] == ["ellipsoid", "no_refinement", "full"]
    for record in records:
        assert all(key in record and record[key] == record[key] for key in GROUND_TRUTH_KEYS), record
        assert 0.0 < record["target_ssim"] <= 1.0
        assert 5.0 < record["true_detail_normal_degrees"] < 20.0      # the category's relief
        assert 0.0 < record["detail_normal_mad_degrees"] < 60.0
        assert 5.0 < record["albedo_psnr_db"] < 60.0
    # the prior is smooth: its detail MAD is about the true detail's magnitude
    prior = records[0]
    assert abs(prior["detail_normal_mad_degrees"] - prior["true_detail_normal_degrees"]) \
        < 0.35 * prior["true_detail_normal_degrees"]
    table = markdown_table(results["summary"], [1000])
    for label in ("detail MAD deg", "true detail deg", "albedo dB", "SSIM"):
        assert label in table
    full_line = next(line for line in table.splitlines() if line.startswith("| detailed | full |"))
    assert full_line.count("n/a") == 1  # GAN consistency, turned off here
    assert main(["bench", "--seeds", "1000", "--categories", "detailed", "--rows", "ellipsoid",
                 "--consistency-steps", "0"]) == 0
    assert "| detailed | ellipsoid |" in capsys.readouterr().out


def test_the_baseline_row_fits_without_the_fidelity_changes_and_exports_without_the_image(tmp_path):
    """``baseline``: the fit before the density ceiling and the reach weights,
    exported with the fields' albedo alone; its asset is measured like the others."""
    from gan2x.bench.run import BASELINE_OVERRIDES, run_generator_bench

    assert BASELINE_OVERRIDES == {"max_beta_metres": None, "reach_margin_db": None}
    spec = _tiny_stylegan2(tmp_path)
    results = run_generator_bench(spec, [1000], ["baseline", "full"], TINY, torch.device("cpu"), consistency=None)
    baseline, _, full = results["records"][spec]
    assert baseline["row"] == "baseline" and full["row"] == "full"
    for record in (baseline, full):
        assert 0.0 < record["asset_psnr_db"] < 100.0 and 0.0 < record["region_psnr_db"] < 100.0
        assert 0.0 <= record["region_coverage"] <= 1.0 and 0.0 <= record["mask_coverage"] <= 1.0
