"""The FastAPI application factory: ``create_app(config)``.

Everything the endpoints use (configuration, store, data directory,
scheduler) hangs off ``app.state.service`` (``state.ServiceState``, which the
routers reach through ``state.Service``); nothing is module-global, so
two apps with two configurations can live in one process (the tests do).
The scheduler starts and stops with the app's lifespan.
"""
from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from .. import __version__
from .auth import bearer_token_dependency, load_or_create_token
from .config import ServiceConfig
from .datadir import DataDir
from .errors import RequestBodyLimit, install_error_handlers
from .generators import GeneratorAllowList
from ..devices import check_device
from .routes import batches, jobs, system, uploads
from .executors import create_executor, parse_executor
from .scheduler import Scheduler, worker_devices
from .state import ServiceState
from .store import JobStore
from .uploads import apply_pil_limits

UPLOADS_PATH = "/v1/uploads"

DESCRIPTION = """\
Fitting jobs for GAN2X: one generator sample (or, later, one photo) in, a
relightable asset bundle (docs/bundle.md) out, as a zip.

Submit a job (`POST /v1/jobs`) or a batch (`POST /v1/batches`), poll its
status (`GET /v1/jobs/{id}`: state, stage, step, fraction, ETA, preview),
download `bundle.zip` when it has succeeded. Every endpoint but
`/v1/health` and this description needs `Authorization: Bearer <token>`,
the contents of the service's token file. Errors are
`{"error": {"code": ..., "message": ...}}`. See docs/service.md.
"""


def create_app(config: ServiceConfig) -> FastAPI:
    """The service as an ASGI app. Raises ValueError (``config.check()``, token
    file problems, a listed generator that does not load) or
    ``store.StoreError`` when it cannot run."""
    config.check()
    executor_kind, cluster_address = parse_executor(config.executor)
    if cluster_address is None:  # on a cluster the fits run on other nodes, whose devices this one cannot check
        check_device(config.device)
    generators = GeneratorAllowList(config.generators)
    resolutions = generators.check()
    token = load_or_create_token(config.token_file) if config.require_token else None
    data_dir = DataDir(config.data_dir)
    data_dir.create()
    store = JobStore(data_dir.database)
    # Locally each slot gets its GPU; on Ray the cluster picks a node and GPU (CUDA_VISIBLE_DEVICES).
    devices = (worker_devices(config.device, config.workers) if executor_kind == "local"
               else [config.device] * max(1, config.workers))
    executor = create_executor(config.executor, config.cancel_grace_s)
    scheduler = Scheduler(config, store, data_dir, devices, generators, executor)
    apply_pil_limits(config.uploads)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        scheduler.start()
        try:
            yield
        finally:
            scheduler.stop()
            executor.shutdown()

    app = FastAPI(title="GAN2X service", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.service = ServiceState(config=config, store=store, data_dir=data_dir, scheduler=scheduler,
                                     devices=devices, generators=generators, generator_resolutions=resolutions)
    install_error_handlers(app)

    def body_limit(path: str) -> tuple[int, str]:
        if path.rstrip("/") == UPLOADS_PATH:
            return config.uploads.max_bytes, "the upload"
        return config.max_json_bytes, "the request body"

    app.add_middleware(RequestBodyLimit, limit_for=body_limit)

    protected = [Depends(bearer_token_dependency(token))]
    app.include_router(system.public)
    app.include_router(system.router, dependencies=protected)
    app.include_router(uploads.router, dependencies=protected)
    app.include_router(jobs.router, dependencies=protected)
    app.include_router(batches.router, dependencies=protected)
    return app
