"""The executor setting of the service (``gan2x serve --executor``): parsing,
refusals, the install hint without Ray, and the worker's arguments being the
same for either executor. The jobs themselves run on both executors in
test_service_api.py and test_service_resilience.py."""
from __future__ import annotations

import subprocess
import sys

import pytest

from gan2x.scale.ray_runner import RayUnavailable
from gan2x.service import executors
from gan2x.service.config import ServiceConfig


@pytest.mark.parametrize("text, expected", [("local", ("local", None)), ("ray", ("ray", None)),
                                            ("ray:auto", ("ray", "auto")),
                                            ("ray:10.0.0.5:6379", ("ray", "10.0.0.5:6379"))])
def test_executor_names_parse(text, expected):
    assert executors.parse_executor(text) == expected


@pytest.mark.parametrize("text", ["dask", "ray-cluster", "processes"])
def test_an_unknown_executor_is_refused_with_the_choices(text):
    with pytest.raises(ValueError, match="local, ray"):
        executors.parse_executor(text)
    with pytest.raises(ValueError, match="unknown executor"):
        ServiceConfig(executor=text).check()


@pytest.mark.parametrize("gpus", [0.0, -1.0, 100.0])
def test_gpus_per_job_must_be_a_positive_share(gpus):
    with pytest.raises(ValueError, match="GPUs per job"):
        ServiceConfig(executor="ray", gpus_per_job=gpus).check()
    ServiceConfig(executor="ray", gpus_per_job=0.25).check()  # a quarter of a GPU is fine


def test_without_ray_the_executor_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(RayUnavailable, match=r"pip install 'gan2x\[ray\]'"):
        executors.create_executor("ray", cancel_grace_s=1.0)
    assert isinstance(executors.create_executor("local", cancel_grace_s=1.0), executors.LocalExecutor)


def test_serve_refuses_an_unknown_executor_before_starting(tmp_path):
    completed = subprocess.run([sys.executable, "-m", "gan2x.cli", "serve", "--port", "0", "--data-dir",
                                str(tmp_path / "data"), "--executor", "dask"],
                               capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert completed.returncode == 2, completed
    assert "unknown executor 'dask'" in completed.stderr
    assert not (tmp_path / "data" / "jobs.sqlite3").exists()


def test_the_worker_gets_the_same_arguments_from_either_executor(tmp_path):
    arguments = executors.worker_arguments(tmp_path, "abc", 2, "cuda", "synthetic:faces", 3, 10, 5.0, 64)
    assert arguments[:8] == ["--data-dir", str(tmp_path), "--job-id", "abc", "--attempt", "2", "--device", "cuda"]
    assert arguments[-1] == "--watch-stdin"  # the worker ends when whoever started it (process or Ray task) dies
    command = executors.worker_command(arguments)
    assert command[:3] == [sys.executable, "-m", "gan2x.service.worker"]
