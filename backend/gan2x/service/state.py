"""What every request of the service reaches: ``ServiceState`` (the app's
configuration, store, data directory, scheduler, devices and generators,
built once by ``app.create_app`` and hung off ``app.state.service``) and the
``Service`` dependency that hands it to an endpoint.

Its own module so that ``app.py`` (which builds the state and includes the
routers) and ``routes/`` (which use it) both import it, and neither imports
the other's: ``app.py`` imports the routers, never the other way round.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from .config import ServiceConfig
from .datadir import DataDir
from .generators import GeneratorAllowList
from .scheduler import Scheduler
from .store import JobStore


@dataclass
class ServiceState:
    config: ServiceConfig
    store: JobStore
    data_dir: DataDir
    scheduler: Scheduler
    devices: list[str]
    generators: GeneratorAllowList
    generator_resolutions: dict[str, int]
    """Image resolution of each allowed generator name, pixels a side (from the start-up check)."""


def service_state(request: Request) -> ServiceState:
    """The state of the app serving ``request``."""
    return request.app.state.service


Service = Annotated[ServiceState, Depends(service_state)]
"""An endpoint's parameter ``service: Service`` receives the app's ServiceState."""
