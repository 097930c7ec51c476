"""Fixtures: the real service in a subprocess on a free loopback port, with a
throwaway token file and data directory (``service_helpers.ServiceProcess``)."""
from __future__ import annotations

from pathlib import Path

import pytest

from service_helpers import EXECUTORS, ServiceProcess


@pytest.fixture
def start_service(tmp_path):
    """start_service(*args) -> ServiceProcess; every one started is stopped afterwards."""
    started: list[ServiceProcess] = []

    def start(*extra_args: str, root: Path | None = None) -> ServiceProcess:
        service = ServiceProcess(root or tmp_path / f"service{len(started)}", *extra_args)
        started.append(service)
        return service.start()

    yield start
    for service in started:
        service.stop()


@pytest.fixture(scope="session")
def queue_only_service(tmp_path_factory):
    """A service that runs no jobs (``--workers 0``), with small upload limits
    (256 KiB, 1 megapixel): for uploads, validation and the fuzz run."""
    service = ServiceProcess(tmp_path_factory.mktemp("queue-only"), "--workers", "0", "--max-upload-mb", "0.25",
                             "--max-image-pixels", "1000000")
    service.start()
    yield service
    service.stop()


@pytest.fixture(scope="module", params=EXECUTORS)
def service(request, tmp_path_factory):
    """A service with one worker, shared by a module's tests; once with local
    worker processes and once with Ray tasks on a Ray instance it starts
    (``--executor ray``, docs/scale.md)."""
    service = ServiceProcess(tmp_path_factory.mktemp(f"service-{request.param}"), "--executor", request.param)
    service.start()
    yield service
    service.stop()
