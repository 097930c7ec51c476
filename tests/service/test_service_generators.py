"""The operator's generator allow-list (``gan2x serve --generator [NAME=]SPEC``):
clients may ask for the built-in specs and the listed generators only, the
listed ones run through the ordinary loader, a checkpoint that does not load
stops the service at start, and capabilities list what is allowed."""
from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from gan2x.export.bundle import validate_bundle
from gan2x.generators import KNOWN_SPECS
from gan2x.service.generators import GeneratorAllowList, parse_generator_option
from service_helpers import TINY, finished, sample, wait_for_job

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backend"))
import stylegan2_checkpoints as checkpoints  # noqa: E402  (tests/backend: tiny checkpoints written by the tests)


def test_a_listed_generator_is_allowed_by_name_or_exact_spec_and_nothing_else():
    named = parse_generator_option(" ffhq = stylegan2:/models/a=b.pkl ")
    assert (named.name, named.spec) == ("ffhq", "stylegan2:/models/a=b.pkl")
    unnamed = parse_generator_option("stylegan2:/models/x=1.pkl")  # "stylegan2:/models/x" is no name
    assert unnamed.name == unnamed.spec == "stylegan2:/models/x=1.pkl"
    allowed = GeneratorAllowList([named, unnamed])
    assert allowed.names() == [*KNOWN_SPECS, "ffhq", "stylegan2:/models/x=1.pkl"]
    assert allowed.resolve("ffhq") == allowed.resolve("stylegan2:/models/a=b.pkl") == "stylegan2:/models/a=b.pkl"
    assert allowed.resolve("synthetic:objects") == "synthetic:objects"
    for refused in ("stylegan2:/models/other.pkl", "stylegan2:/models/a=b.pkl ", "python:os:system", "FFHQ"):
        assert allowed.resolve(refused) is None, refused
    assert "ffhq" in allowed.refusal("python:os:system")
    for bad in ("ffhq=", "nonsense", "stylegan2:", "ffhq=onnx:/x.onnx"):
        with pytest.raises(ValueError, match="NAME=SPEC"):
            parse_generator_option(bad)
    with pytest.raises(ValueError, match="already taken"):
        GeneratorAllowList([parse_generator_option("a=stylegan2:/x.pkl"), parse_generator_option("a=stylegan2:/y.pkl")])
    with pytest.raises(ValueError, match="already taken"):
        GeneratorAllowList([parse_generator_option("synthetic=stylegan2:/x.pkl")])


def test_a_listed_dcgan_state_dict_is_allowed_and_loaded_at_start(tmp_path):
    import torch
    from torch import nn

    holder = nn.Module()  # the DCGAN tutorial's generator at 32 px, nz 8, ngf 4, random weights
    holder.main = nn.Sequential(
        nn.ConvTranspose2d(8, 16, 4, 1, 0, bias=False), nn.BatchNorm2d(16), nn.ReLU(True),
        nn.ConvTranspose2d(16, 8, 4, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU(True),
        nn.ConvTranspose2d(8, 4, 4, 2, 1, bias=False), nn.BatchNorm2d(4), nn.ReLU(True),
        nn.ConvTranspose2d(4, 3, 4, 2, 1, bias=False), nn.Tanh())
    checkpoint = tmp_path / "netG.pth"
    torch.save({"netG_state_dict": holder.state_dict()}, checkpoint)
    entry = parse_generator_option(f"faces=dcgan:{checkpoint}")
    assert (entry.name, entry.spec, entry.kind) == ("faces", f"dcgan:{checkpoint}", "dcgan")
    allowed = GeneratorAllowList([entry])
    assert allowed.resolve("faces") == allowed.resolve(f"dcgan:{checkpoint}") == f"dcgan:{checkpoint}"
    assert allowed.resolve(f"dcgan:{tmp_path / 'other.pth'}") is None
    assert allowed.check()["faces"] == 32
    with pytest.raises(ValueError, match="NAME=SPEC"):
        parse_generator_option("faces=dcgan:")
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=f"--generator broken=dcgan:{empty}: cannot load it: .*is empty"):
        GeneratorAllowList([parse_generator_option(f"broken=dcgan:{empty}")]).check()


def test_a_listed_stylegan2_checkpoint_runs_jobs_and_anything_unlisted_is_422(start_service, tmp_path):
    checkpoint = tmp_path / "tiny.pkl"
    checkpoints.write_nvidia_pickle(checkpoint, seed=1)
    service = start_service("--generator", f"tiny=stylegan2:{checkpoint}")
    with service.client() as client:
        body = client.get("/v1/capabilities").json()
        assert body["generators"] == [*KNOWN_SPECS, "tiny"]
        info = {item["name"]: item for item in body["generator_info"]}
        assert info["tiny"] == {"name": "tiny", "kind": "stylegan2", "builtin": False,
                                "resolution": checkpoints.RESOLUTION}
        assert info["synthetic:faces"]["builtin"] and info["synthetic:faces"]["kind"] == "synthetic"

        for generator in ("stylegan2:" + str(tmp_path / "other.pkl"), "python:os:system", "Tiny"):
            response = client.post("/v1/jobs", json={"source": sample(1, generator)})
            assert response.status_code == 422, response.text
            error = response.json()["error"]
            assert error["code"] == "invalid_request" and "tiny" in error["message"], error
            assert error["fields"][0]["location"] == ["body", "source", "generator"], error
        response = client.post("/v1/batches", json={"sources": [sample(1, "tiny"), sample(2, "python:os:system")],
                                                    "settings": TINY})
        assert response.status_code == 422, response.text
        assert response.json()["error"]["fields"][0]["location"] == ["body", "sources", "1", "generator"]
        assert client.get("/v1/jobs").json()["jobs"] == []  # nothing refused was queued

        response = client.post("/v1/jobs", json={"source": sample(3, "tiny"), "settings": TINY})
        assert response.status_code == 201, response.text
        job = wait_for_job(client, response.json()["id"], finished, timeout=180)
        assert job["state"] == "succeeded", job
        assert job["source"]["generator"] == "tiny"  # the client's name, not the path
        download = client.get(job["result"]["bundle_url"])
        assert download.status_code == 200 and len(download.content) == job["result"]["bundle_bytes"]
        with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
            archive.extractall(tmp_path / "unzipped")
        (folder,) = (tmp_path / "unzipped").iterdir()
        manifest = validate_bundle(folder)
        assert manifest["provenance"]["generator"] == f"stylegan2:{checkpoint}"  # loaded by the ordinary loader
        assert manifest["provenance"]["seed"] == 3


@pytest.mark.parametrize("problem", ["missing", "not a checkpoint"])
def test_a_listed_checkpoint_that_does_not_load_stops_the_service_at_start(tmp_path, problem):
    checkpoint = tmp_path / "broken.pkl"
    if problem == "not a checkpoint":
        checkpoint.write_bytes(b"GIF89a, not a network")
    command = [sys.executable, "-m", "gan2x.cli", "serve", "--port", "0", "--workers", "0",
               "--data-dir", str(tmp_path / "data"), "--token-file", str(tmp_path / "token"),
               "--generator", f"broken=stylegan2:{checkpoint}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"--generator broken=stylegan2:{checkpoint}: cannot load it" in result.stderr, result.stderr
    assert ("no checkpoint file" if problem == "missing" else "unknown checkpoint format") in result.stderr
    assert not (tmp_path / "data" / "service.json").exists()
