"""``gan2x serve``: fitting jobs over HTTP (docs/service.md).

The modules, in the order a request meets them:

- ``config.py``: ``ServiceConfig`` (bind address, data directory, token file,
  workers, limits) and its defaults;
- ``auth.py``: the bearer token (created on first start, owner-only) and the
  FastAPI dependency that checks it;
- ``errors.py``: the one error shape ``{"error": {"code", "message"}}`` and
  the request-body size limit;
- ``schemas.py``: request and response models, with the documented ranges;
- ``uploads.py``: upload limits, image sniffing, storage under server names;
- ``datadir.py``: the data directory's layout, its lock and ``service.json``;
- ``store.py``: jobs, batches and uploads in SQLite (WAL);
- ``scheduler.py``: starts, watches and stops worker processes (queue order,
  cancel, crash detection, restart recovery);
- ``worker.py``: the job process (runs ``reconstruct``, writes progress,
  preview and bundle);
- ``app.py`` and ``routes.py``: the FastAPI application factory and endpoints;
- ``server.py``: binds the socket and runs uvicorn.

Nothing here is imported by ``gan2x fit``: FastAPI and uvicorn are loaded
only by ``gan2x serve``.
"""
