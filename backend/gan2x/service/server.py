"""``gan2x serve``: lock the data directory, bind, announce, run uvicorn.

The socket is bound and listening before uvicorn starts, so ``--port 0``
works (the OS picks a free port) and the address written to
``<data dir>/service.json`` accepts connections from the moment the file
appears (early ones wait in the listen backlog until the app is up).

A stop by SIGTERM or SIGINT (Ctrl-C) is a clean stop: uvicorn shuts down
gracefully, ``service.json`` is removed and ``serve`` returns 0. uvicorn
re-raises the signal it caught once it has shut down (to give the signal's
default effect); ``_StopSignals`` installs handlers that take that re-raise
(and a signal that arrives before uvicorn listens for them), so the process
is not killed before ``service.json`` is removed. Whatever starts the service
tells the two apart: after a stop, exit status 0 and no ``service.json``;
after a crash, a non-zero status (a ``service.json`` may be left, naming a
pid that is gone).
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading

from .. import __version__
from .config import ServiceConfig, is_loopback
from .datadir import DataDir


class ServeError(RuntimeError):
    """The service cannot start; the message says what to do."""


def bind_socket(host: str, port: int) -> socket.socket:
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, protocol)
    except OSError as error:
        raise ServeError(f"cannot resolve {host!r}: {error}") from None
    try:
        if os.name == "posix":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as error:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {error.strerror or error}; choose another --port, "
                         "or stop what uses it") from None
    sock.set_inheritable(False)
    return sock


class _StopSignals:
    """While active (main thread only), SIGTERM and SIGINT ask ``server`` to
    stop (or, before there is one, ask that it never start) instead of
    killing the process. uvicorn installs its own handlers while it runs and
    restores these afterwards, then re-raises what it caught: into these."""

    SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGINT") if hasattr(signal, name))

    def __init__(self):
        self.received: list[int] = []
        self.server = None
        self._previous: dict = {}

    def _handle(self, signum, frame) -> None:
        self.received.append(signum)
        if self.server is not None:
            self.server.should_exit = True

    def attach(self, server) -> None:
        self.server = server
        if self.received:
            server.should_exit = True

    def __enter__(self) -> "_StopSignals":
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def serve(config: ServiceConfig, announce=print) -> int:
    """Runs the service until SIGTERM or SIGINT (Ctrl-C); returns 0 after such
    a clean stop, with ``service.json`` removed. Raises ``ServeError``,
    ``DataDirBusy``, ``StoreError``, ValueError or OSError when it cannot start."""
    config.check()  # before the heavy imports: a refusal is immediate
    import uvicorn

    from .app import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    data_dir = DataDir(config.data_dir)
    data_dir.create()
    lock = data_dir.lock()
    lock.acquire()
    try:
        with _StopSignals() as stop:
            app = create_app(config)
            sock = bind_socket(config.host, config.port)
            try:
                port = sock.getsockname()[1]
                url_host = f"[{config.host}]" if ":" in config.host else config.host
                url = f"http://{url_host}:{port}"
                data_dir.write_service_info({"url": url, "host": config.host, "port": port, "pid": os.getpid(),
                                             "version": __version__})
                state = app.state.service
                announce(f"gan2x service {__version__} listening on {url} (API description: {url}/docs)")
                announce(f"data directory: {data_dir.root}")
                announce(f"token file: {config.token_file} (clients send 'Authorization: Bearer <its contents>')"
                         if config.require_token else "no token (--no-token): any local user can run jobs")
                announce(f"workers: {config.workers} on {', '.join(state.devices[:config.workers]) or '-'} "
                         f"({config.resolved_worker_threads()} torch threads each, nice +{config.worker_nice}); "
                         f"{state.scheduler.executor.describe()}")
                announce("generators: " + ", ".join(
                    name if state.generators.resolve(name) == name else f"{name} ({state.generators.resolve(name)})"
                    for name in state.generators.names()))
                if not is_loopback(config.host):
                    announce(f"warning: {config.host} is reachable from other machines and HTTP is not encrypted: "
                             "the token travels in clear text. Prefer binding to 127.0.0.1 and an SSH tunnel "
                             "(docs/service.md)")
                sys.stdout.flush()
                server = uvicorn.Server(uvicorn.Config(app, log_level="info", access_log=config.access_log,
                                                       timeout_graceful_shutdown=5))
                stop.attach(server)  # a signal that came during start-up stops it at once
                server.run(sockets=[sock])
            finally:
                sock.close()
                data_dir.remove_service_info()
    finally:
        lock.release()
    return 0
