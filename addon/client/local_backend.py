"""A ``gan2x serve`` the add-on starts on this machine: a child process whose
output goes to a log file, started only when none of ours is running, and
stopped on request, when the add-on is disabled and when Blender exits."""
from __future__ import annotations

import shlex
import subprocess
import threading
from pathlib import Path
from urllib.parse import urlsplit

STOP_GRACE_S = 5.0
"""After SIGTERM (the service requeues a running job and exits cleanly), seconds before SIGKILL."""


class LocalBackendError(Exception):
    """The command cannot be started; the message says what to change."""


def command_arguments(command: str, url: str) -> list:
    """The command line for ``command`` (shell-like quoting), with
    ``--port`` taken from ``url`` when the command names no port, so the
    backend listens where the add-on will look for it."""
    try:
        arguments = shlex.split(command)
    except ValueError as error:
        raise LocalBackendError("the backend command cannot be parsed ({}): {}".format(error, command)) from None
    if not arguments:
        raise LocalBackendError("the backend command is empty; set it in the add-on's preferences "
                                "(for example: /path/to/.venv/bin/gan2x serve)")
    if not any(argument == "--port" or argument.startswith("--port=") for argument in arguments):
        port = urlsplit(url).port
        if port is not None:
            arguments += ["--port", str(port)]
    return arguments


class LocalBackend:
    """At most one child process at a time."""

    def __init__(self):
        self.process: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self.arguments: list = []
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def describe(self) -> str:
        if self.process is None:
            return "not started by Blender"
        status = self.process.poll()
        if status is None:
            return "running (pid {}), log: {}".format(self.process.pid, self.log_path)
        return "exited with status {}; its log: {}".format(status, self.log_path)

    def start(self, command: str, url: str, log_path: Path) -> subprocess.Popen:
        """Starts the command unless ours is still running (then returns it)."""
        with self._lock:
            if self.running:
                return self.process
            arguments = command_arguments(command, url)
            log_path = Path(log_path)
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log = open(log_path, "ab")
            try:
                log.write("\n--- starting: {}\n".format(shlex.join(arguments)).encode("utf-8"))
                log.flush()
                self.process = subprocess.Popen(arguments, stdin=subprocess.DEVNULL, stdout=log,
                                                stderr=subprocess.STDOUT, start_new_session=True)
            except FileNotFoundError:
                raise LocalBackendError(
                    "cannot start the backend: no program {!r}; give its full path in the add-on's preferences "
                    "(for example: /path/to/.venv/bin/gan2x serve)".format(arguments[0])) from None
            except OSError as error:
                raise LocalBackendError("cannot start the backend ({}): {}".format(
                    error.strerror or error, shlex.join(arguments))) from None
            finally:
                log.close()  # the child holds its own copy
            self.log_path = log_path
            self.arguments = arguments
            return self.process

    def stop(self, wait: bool = True, grace: float = STOP_GRACE_S) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds. With ``wait`` False
        the waiting happens on a background thread."""
        with self._lock:
            process = self.process
            if process is None or process.poll() is not None:
                return
            process.terminate()
        if wait:
            _reap(process, grace)
        else:
            threading.Thread(target=_reap, args=(process, grace), name="gan2x-backend-stop",
                             daemon=True).start()


def _reap(process: subprocess.Popen, grace: float) -> None:
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
