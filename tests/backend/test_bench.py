"""``gan2x bench``: rows, records and the table, on tiny settings."""
import json
from dataclasses import replace

import torch

from PIL import Image

from gan2x.bench.figure import COLUMNS, write_figure
from gan2x.bench.run import markdown_table, run_bench
from gan2x.cli import main
from gan2x.fit.asset_model import AssetModel
from gan2x.fit.schedule import PRESETS
from gan2x.render.volume import SamplingSettings

TINY = replace(PRESETS["draft"], stages=1, target_steps=5, projection_steps=2, exploitation_steps=5,
               pseudo_samples=1, rays_per_image=64, refinement_steps=3,
               sampling=SamplingSettings(coarse_samples=24, fine_samples=8, coarse_grid=24))


def test_the_lambertian_model_has_no_specular_term():
    points = torch.rand(50, 3) - 0.5
    assert AssetModel(specular=False).materials(points)["specular"].abs().max() == 0.0
    assert AssetModel().materials(points)["specular"].min() > 0.0


def test_run_bench_gives_every_metric_for_every_row(tmp_path):
    results = run_bench(["objects"], [1000], ["ellipsoid", "lambertian", "full"], TINY, torch.device("cpu"),
                        figure_seeds=1)
    records = results["records"]["objects"]
    assert [r["row"] for r in records] == ["ellipsoid", "lambertian", "no_refinement", "full"]
    for record in records:
        for key in ("side_x100", "mad_degrees", "albedo_error", "specular_error", "shininess_log_error",
                    "relight_psnr_db", "novel_view_psnr_db", "seconds"):
            assert record[key] == record[key], key  # not NaN
    assert records[0]["seconds"] == 0.0 < records[2]["seconds"] < records[3]["seconds"]
    table = markdown_table(results["summary"], [1000])
    assert table.count("| objects |") == 4 and "MAD deg" in table
    (label, panels), = results["figure_rows"]
    assert label == "synthetic:objects 1000" and len(panels) == len(COLUMNS)
    assert all(p.shape == (64, 64, 3) and 0.0 <= p.min() and p.max() <= 1.0 for p in panels)
    figure = write_figure(results["figure_rows"], tmp_path / "figure.png", cell=32)
    assert Image.open(figure).size == (120 + 32 * len(COLUMNS), 18 + 32)


def test_bench_command_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--seeds", "1000", "--categories", "faces", "--rows", "ellipsoid",
                 "--json", str(out), "--figure", str(tmp_path / "figure.png")]) == 0
    assert not (tmp_path / "figure.png").exists()  # the figure shows fits; no fit ran
    results = json.loads(out.read_text())
    assert results["settings"]["seeds"] == [1000]
    assert "mad_degrees" in results["summary"]["faces"]["ellipsoid"]
    assert "| faces | ellipsoid |" in capsys.readouterr().out
    assert main(["bench", "--rows", "nonsense"]) == 2
