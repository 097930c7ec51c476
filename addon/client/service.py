"""HTTP + JSON calls to ``gan2x serve`` (docs/service.md) with urllib.

Every failure is a ``ServiceError`` whose message says what happened and
what a person can do about it; ``kind`` sorts them for the user interface:

- ``unreachable``: nothing answers at the URL (or it timed out);
- ``auth``: 401, a missing or wrong token;
- ``incompatible``: not a GAN2X service, or one of a version this add-on
  cannot talk to;
- ``offline``: Blender's online access is off and the URL is not loopback;
- ``refused``: the service answered with an error (a bad setting, an
  unknown job, ...);
- ``protocol``: an answer that is not what the API describes (an id that is
  not one, a job of an unknown state, a preview that is not a PNG, ...).

Nothing that comes back from the network is trusted as a path or a URL:
every id is checked against ``ID_PATTERN`` before it goes into a request or
a file name (``check_id``), job answers are checked for their shape
(``check_job``), and the client builds its own URLs from checked ids rather
than follow the ``preview_url`` / ``bundle_url`` an answer carries.
"""
from __future__ import annotations

import json
import os
import re
import socket
import struct
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .token import is_loopback_url

API_PREFIX = "/v1"
SUPPORTED_MAJOR = 0
"""The backend major version this add-on speaks to (0.x: the v1 API below)."""
MIN_VERSION = (0, 1, 0)
FINAL_STATES = frozenset({"succeeded", "failed", "cancelled", "interrupted"})
JOB_STATES = frozenset({"queued", "running"}) | FINAL_STATES
ID_PATTERN = re.compile(r"[0-9a-f]{32}")
"""The ids the service gives jobs, uploads and batches: ``uuid.uuid4().hex``
(``new_id`` in backend/gan2x/service/store.py). The one place the add-on
says what an id is; ``check_id`` applies it."""
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_DEFAULT_TIMEOUT_S = 10.0
_DOWNLOAD_CHUNK = 1 << 20


class ServiceError(Exception):
    """A failed call; ``str()`` is the message for the person, ``kind`` one
    of the module docstring's, ``code`` the service's error code if any."""

    def __init__(self, message: str, kind: str, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.code = code


def _shown(value, limit: int = 80) -> str:
    """``repr`` of a value from the network, cut short (it goes into messages)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def check_id(value, what: str = "job id", url: str = "the backend") -> str:
    """``value`` if it is an id as the service makes them (``ID_PATTERN``);
    otherwise raises ServiceError (``protocol``): an id that is a path
    (``../x``, ``/abs``, ``a/b``), holds a NUL, is too long or is not a
    string never reaches a URL or a file name."""
    if isinstance(value, str) and ID_PATTERN.fullmatch(value):
        return value
    raise ServiceError(
        "{} gave {} as a {}, and a GAN2X id is 32 hexadecimal digits: it is not a GAN2X backend, or something "
        "between this machine and it changed its answer (for a remote backend use an SSH tunnel or HTTPS, "
        "docs/service.md); the add-on stopped following the job and wrote nothing for it".format(
            url, _shown(value), what), "protocol")


def _number(value) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def check_job(answer, url: str = "the backend", expected_id: str | None = None) -> dict:
    """``answer`` if it is a job as docs/service.md describes it (a checked
    id, a known state, a progress of the right types), the job asked about
    when ``expected_id`` is given; otherwise raises ServiceError (``protocol``)."""
    def refuse(why: str):
        raise ServiceError("{} answered with {}; it is not a GAN2X backend, or something between this machine "
                           "and it changed its answer".format(url, why), "protocol")

    if not isinstance(answer, dict):
        refuse("{}, not a job".format(_shown(answer)))
    job_id = check_id(answer.get("id"), "job id", url)
    if expected_id is not None and job_id != expected_id:
        refuse("job {} when asked about job {}".format(job_id, expected_id))
    if answer.get("state") not in JOB_STATES:
        refuse("a job in the unknown state {}".format(_shown(answer.get("state"))))
    progress = answer.get("progress")
    if progress is not None and not (
            isinstance(progress, dict) and isinstance(progress.get("stage") or "", str)
            and all(_number(progress.get(name)) for name in ("step", "total_steps", "fraction", "eta_seconds"))):
        refuse("a job progress that is not one ({})".format(_shown(progress)))
    error = answer.get("error")
    if error is not None and not (isinstance(error, dict) and isinstance(error.get("message") or "", str)):
        refuse("a job error that is not one ({})".format(_shown(error)))
    if answer.get("queue_position") is not None and not _number(answer["queue_position"]):
        refuse("a queue position that is not a number ({})".format(_shown(answer["queue_position"])))
    return answer


def png_size(data: bytes, max_side: int = 4096) -> tuple[int, int] | None:
    """(width, height) from the start of a PNG file (its signature and an
    IHDR chunk with a good checksum, each side 1..``max_side``), or None when
    ``data`` does not start like one."""
    if len(data) < 33 or not data.startswith(PNG_SIGNATURE) or data[8:16] != b"\x00\x00\x00\x0dIHDR":
        return None
    if zlib.crc32(data[12:29]) != struct.unpack(">I", data[29:33])[0]:
        return None
    width, height = struct.unpack(">II", data[16:24])
    if not (1 <= width <= max_side and 1 <= height <= max_side):
        return None
    return width, height


def check_png(data: bytes, max_side: int = 4096) -> tuple[int, int] | None:
    """``png_size`` of a whole PNG file, which must also end with IEND."""
    return png_size(data, max_side) if data.endswith(_PNG_END) else None


def parse_version(text: str) -> tuple[int, ...] | None:
    """``"0.1.0"`` -> ``(0, 1, 0)``; None when it is not dotted numbers."""
    parts = str(text).split("+")[0].split(".")
    try:
        return tuple(int(part) for part in parts)
    except ValueError:
        return None


class ServiceClient:
    """One backend: its base URL (``http://host:port``) and token.

    Safe to use from any thread; holds no connection between calls."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = _DEFAULT_TIMEOUT_S,
                 online_access: bool = True):
        self.url = url.strip().rstrip("/")
        self.token = token or None
        self.timeout = timeout
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ServiceError("the backend URL {!r} is not an http:// address; the local default is "
                               "http://127.0.0.1:8765".format(url), "unreachable")
        self.loopback = is_loopback_url(self.url)
        if not self.loopback and not online_access:
            raise ServiceError(
                "Blender's online access is off, so the add-on will not connect to {} (not this machine). "
                "Turn on Preferences > System > Network > Allow Online Access (or run Blender with "
                "--online-mode), or use a backend on this machine (http://127.0.0.1:8765)".format(self.url),
                "offline")
        # A loopback address never goes through a proxy from the environment.
        handlers = [urllib.request.ProxyHandler({})] if self.loopback else []
        self._opener = urllib.request.build_opener(*handlers)

    # --- the endpoints ----------------------------------------------------------

    def health(self) -> dict:
        """``GET /v1/health`` (no token): ``{"status": "ok", "version"}``."""
        try:
            answer = self._json("GET", "/health", authorised=False)
        except ServiceError as error:
            if error.status == 404:
                raise ServiceError("something answers at {} but it is not a GAN2X backend (no /v1/health); "
                                   "check the backend URL and port".format(self.url), "incompatible",
                                   error.status) from None
            raise
        if not isinstance(answer, dict) or answer.get("status") != "ok" or "version" not in answer:
            raise ServiceError("{} answered /v1/health with {!r}, not a GAN2X backend's answer; check the "
                               "backend URL".format(self.url, answer), "incompatible")
        return answer

    def capabilities(self) -> dict:
        return self._json("GET", "/capabilities")

    def upload_image(self, path) -> dict:
        """``POST /v1/uploads`` with the file's bytes; returns the upload."""
        path = Path(path)
        try:
            content = path.read_bytes()
        except OSError as error:
            raise ServiceError("cannot read the image {}: {}".format(path, error.strerror or error),
                               "refused") from None
        answer = self._json("POST", "/uploads", body=content, content_type="application/octet-stream")
        if not isinstance(answer, dict):
            raise ServiceError("{} answered the upload with {}, not an upload; it is not a GAN2X backend".format(
                self.url, _shown(answer)), "protocol")
        check_id(answer.get("id"), "upload id", self.url)
        return answer

    def submit_job(self, source: dict, settings: dict) -> dict:
        return check_job(self._json("POST", "/jobs", body={"source": source, "settings": settings}), self.url)

    def job(self, job_id: str) -> dict:
        path = "/jobs/" + self._id(job_id)
        return check_job(self._json("GET", path), self.url, job_id)

    def cancel_job(self, job_id: str) -> dict:
        path = "/jobs/{}/cancel".format(self._id(job_id))
        return check_job(self._json("POST", path), self.url, job_id)

    def preview(self, job_id: str, max_bytes: int, max_side: int = 4096) -> bytes:
        """``GET /v1/jobs/{id}/preview.png``: the PNG's bytes, at most
        ``max_bytes``; raises ServiceError (``protocol``) for a bigger answer
        or one that is not a PNG (``check_png``), ``refused`` (404) when the
        job has no preview yet. The URL is built from the checked id, never
        taken from the job's ``preview_url``."""
        path = "/jobs/{}/preview.png".format(self._id(job_id))
        with self._open("GET", path) as response:
            try:
                data = response.read(max_bytes + 1)
            except (OSError, socket.timeout) as error:
                raise self._connection_error(error) from None
        if len(data) > max_bytes:
            raise ServiceError("{}'s preview of job {} is larger than {} bytes; not taking it".format(
                self.url, job_id, max_bytes), "protocol")
        if check_png(data, max_side) is None:
            raise ServiceError("{}'s preview of job {} is not a PNG of at most {} pixels a side".format(
                self.url, job_id, max_side), "protocol")
        return data

    def download_bundle(self, job_id: str, destination: Path, timeout: float = 300.0) -> Path:
        """Streams the job's ``bundle.zip`` to ``destination`` (written to a
        ``.part`` file, then renamed, so a broken download leaves nothing)."""
        path = "/jobs/{}/bundle.zip".format(self._id(job_id))
        destination = Path(destination)
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial = destination.with_name(destination.name + ".part")
        response = self._open("GET", path, timeout=timeout)
        try:
            with response, open(partial, "wb") as stream:
                while True:
                    chunk = response.read(_DOWNLOAD_CHUNK)
                    if not chunk:
                        break
                    stream.write(chunk)
            os.replace(partial, destination)
        except (OSError, socket.timeout) as error:
            partial.unlink(missing_ok=True)
            raise ServiceError("the download of job {}'s bundle from {} broke off ({}); import it again from "
                               "the job list, or submit the job again".format(job_id, self.url, error),
                               "unreachable") from None
        return destination

    # --- plumbing ---------------------------------------------------------------

    def _id(self, job_id) -> str:
        """A job id checked before it goes into a request's path."""
        return check_id(job_id, "job id", self.url)

    def _json(self, method: str, path: str, *, body=None, content_type: str = "application/json",
              authorised: bool = True):
        if body is not None and not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode("utf-8")
        with self._open(method, path, body=body, content_type=content_type, authorised=authorised) as response:
            content = response.read()
        try:
            return json.loads(content.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise ServiceError("{} answered {} {} with something that is not JSON; is the backend URL right?"
                               .format(self.url, method, API_PREFIX + path), "incompatible") from None

    def _open(self, method: str, path: str, *, body: bytes | None = None,
              content_type: str = "application/json", authorised: bool = True, timeout: float | None = None):
        request = urllib.request.Request(self.url + API_PREFIX + path, data=body, method=method)
        request.add_header("Accept", "application/json")
        if body is not None:
            request.add_header("Content-Type", content_type)
        if authorised and self.token:
            request.add_header("Authorization", "Bearer " + self.token)
        try:
            return self._opener.open(request, timeout=timeout or self.timeout)
        except urllib.error.HTTPError as error:
            raise self._http_error(error, method, path) from None
        except urllib.error.URLError as error:
            raise self._connection_error(error.reason) from None
        except (socket.timeout, TimeoutError, ConnectionError) as error:
            raise self._connection_error(error) from None

    def _connection_error(self, reason) -> ServiceError:
        if isinstance(reason, ConnectionRefusedError):
            why = "connection refused: nothing is listening there"
        elif isinstance(reason, (socket.timeout, TimeoutError)):
            why = "no answer within {:g} s".format(self.timeout)
        else:
            why = str(getattr(reason, "strerror", None) or reason)
        if self.loopback:
            advice = ("start it: Edit > Preferences > Add-ons > GAN2X > Start, or run 'gan2x serve' in a "
                      "terminal; or check the backend URL")
        else:
            advice = ("check that 'gan2x serve' runs on that machine and that the URL (or your SSH tunnel, "
                      "docs/service.md) is right")
        return ServiceError("cannot reach the GAN2X backend at {} ({}); {}".format(self.url, why, advice),
                            "unreachable")

    def _http_error(self, error: urllib.error.HTTPError, method: str, path: str) -> ServiceError:
        try:
            detail = json.loads(error.read().decode("utf-8")).get("error") or {}
        except (OSError, UnicodeDecodeError, ValueError, AttributeError):
            detail = {}
        finally:
            error.close()
        code = detail.get("code") if isinstance(detail, dict) else None
        message = detail.get("message") if isinstance(detail, dict) else None
        if error.code == 401:
            if code == "missing_token":
                what = "the backend at {} needs a token and none was found".format(self.url)
            else:
                what = "the backend at {} refused the token".format(self.url)
            advice = ("for a backend on this machine leave the token empty in the add-on's preferences (it is "
                      "read from the backend's token file); otherwise paste the contents of the token file "
                      "of the machine that runs gan2x serve (~/.config/gan2x/token by default)")
            return ServiceError("{} ({}); {}".format(what, code or "401", advice), "auth", 401, code)
        if message is None:
            return ServiceError("{} answered {} {} with HTTP {}; is it a GAN2X backend?".format(
                self.url, method, API_PREFIX + path, error.code), "incompatible" if error.code == 404 else
                "refused", error.code)
        return ServiceError("the backend refused {} {} ({} {}): {}".format(
            method, API_PREFIX + path, error.code, code, message), "refused", error.code, code)


@dataclass
class BackendStatus:
    """The result of ``check_backend``: ``state`` is ``ok`` or a ServiceError
    kind; ``message`` one line for the person."""
    state: str
    message: str
    version: str = ""
    capabilities: dict = field(default_factory=dict)
    code: str | None = None
    """The service's error code, if it answered with one."""

    @property
    def ok(self) -> bool:
        return self.state == "ok"


def check_compatible(version: str, url: str) -> None:
    """Raises ServiceError (``incompatible``) for a backend version this
    add-on cannot talk to."""
    parsed = parse_version(version)
    if parsed is None or parsed[0] != SUPPORTED_MAJOR or parsed < MIN_VERSION:
        raise ServiceError(
            "the backend at {} is gan2x {}, and this add-on talks to gan2x {}.x from {}; install matching "
            "versions of the add-on and the backend".format(
                url, version, SUPPORTED_MAJOR, ".".join(map(str, MIN_VERSION))), "incompatible")


def check_backend(client: ServiceClient) -> BackendStatus:
    """Health, version and token in two calls; never raises ServiceError."""
    try:
        version = str(client.health()["version"])
        check_compatible(version, client.url)
        capabilities = client.capabilities()
    except ServiceError as error:
        return BackendStatus(error.kind, str(error), code=error.code)
    workers = capabilities.get("workers")
    device = capabilities.get("device", "?")
    summary = "gan2x {} at {} on {}".format(version, client.url, device)
    if workers == 0:
        summary += "; it runs no jobs (--workers 0): they will wait in its queue"
    return BackendStatus("ok", summary, version, capabilities)


def describe_progress(job: dict) -> str:
    """One line for a job's state: ``running: stage 1: exploitation, 38%, ETA 9 s``."""
    state = job.get("state", "?")
    progress = job.get("progress") or {}
    if state == "queued":
        position = job.get("queue_position")
        return "queued" + (" (next)" if position == 1 else " ({} ahead)".format(position - 1) if position else "")
    if state == "running":
        parts = [progress.get("stage") or "starting"]
        if progress.get("total_steps"):
            parts.append("{:.0%}".format(progress.get("fraction") or 0.0))
        eta = progress.get("eta_seconds")
        if eta is not None:
            parts.append("ETA {}".format(format_seconds(eta)))
        return "running: " + ", ".join(parts)
    error = job.get("error") or {}
    if state in ("failed", "cancelled", "interrupted") and error.get("message"):
        return "{}: {}".format(state, error["message"])
    return state


def format_seconds(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return "{:.0f} s".format(seconds)
    minutes, rest = divmod(int(round(seconds)), 60)
    return "{} min {:02d} s".format(minutes, rest)
