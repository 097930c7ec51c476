"""This Blender session's side of the backend: its jobs, its status checks
and the local backend process, all on the main thread.

Network calls run on background threads (``client.jobs.JobRunner`` and the
status check here) that never touch bpy; they put plain events on
``events``. ``poll`` (a ``bpy.app.timers`` function, registered while
anything is under way) drains that queue on the main thread, updates
``window_manager.gan2x`` (what the sidebar draws), loads the running
fits' previews and the finished jobs' report pictures into a
``bpy.utils.previews`` collection (``preview_entry``) and imports finished
bundles into the scene they were asked for.
"""
from __future__ import annotations

import atexit
import queue
import threading
import time
import traceback
import uuid
from pathlib import Path
from types import SimpleNamespace

import bpy
import bpy.utils.previews
import numpy as np

from .blender.scene import ImportOptions, import_bundle, select_imported
from .bundle.reader import BundleError, read_bundle
from .client.jobs import JobEvent, JobRequest, JobRunner
from .client.local_backend import LocalBackend
from .client.service import (BackendStatus, ServiceClient, ServiceError, check_backend, describe_progress,
                             png_size)
from .client.token import TokenError, resolve_token
from .preferences import preferences
from .properties import set_known_generators

POLL_INTERVAL_S = 0.25
STARTUP_WAIT_S = 60.0
"""How long a status check waits for a backend Blender has just started."""
_MAX_EVENTS_PER_POLL = 200
LIVE_PREVIEW_SIDE = 256
"""Previews wider or taller than this are scaled down (the service's are 64 px)."""
REPORT_PREVIEW_SIDE = 512
MAX_REPORT_PREVIEWS = 8
"""Report pictures kept loaded (the most recently shown); a job's is loaded
again when it is selected in the jobs list."""
MAX_PICTURE_BYTES = 64 << 20
MAX_PICTURE_SIDE = 4096

events: queue.Queue = queue.Queue()
runners: dict = {}
"""JobRunner by the job's key (``GAN2X_PG_job.key``), while its thread runs."""
local_backend = LocalBackend()
_checks: list = []
_previews = None
"""The ``bpy.utils.previews`` collection: ``live:<key>`` (a running job's
latest preview) and ``report:<key>`` (a finished job's report picture);
created on first use, closed by ``unregister``."""
_report_keys: list = []
"""Keys of the loaded report pictures, least recently loaded first."""
_STATE_OF_KIND = {"ok": 'OK', "unreachable": 'UNREACHABLE', "auth": 'AUTH', "incompatible": 'INCOMPATIBLE',
                  "offline": 'OFFLINE'}
_JOB_STATES = {"queued": 'QUEUED', "running": 'RUNNING', "succeeded": 'DOWNLOADING', "failed": 'FAILED',
               "cancelled": 'CANCELLED', "interrupted": 'FAILED'}


# --- where things are -----------------------------------------------------------

def user_dir(*parts: str) -> Path:
    """A folder of the extension's user directory (never the add-on's own
    folder). Outside an extension (the add-on imported from a checkout) it is
    under Blender's user data files, ``gan2x/``."""
    subpath = "/".join(parts)
    try:
        path = bpy.utils.extension_path_user(__package__, path=subpath, create=True)
    except ValueError:  # not installed as an extension
        path = bpy.utils.user_resource('DATAFILES', path="/".join(("gan2x",) + parts), create=True)
    return Path(path)


def backend_settings(context=None) -> tuple:
    """(url, token, local command) from the preferences, or the defaults."""
    prefs = preferences(context)
    if prefs is None:
        return "http://127.0.0.1:8765", "", ""
    return prefs.backend_url, prefs.token, prefs.backend_command


def make_client(context=None) -> ServiceClient:
    """A client for the backend the preferences name; raises ServiceError."""
    return _client(*backend_settings(context), bpy.app.online_access)


def _client(url: str, token: str, command: str, online_access: bool) -> ServiceClient:
    """bpy-free (safe on a background thread): resolves the token now."""
    try:
        resolved, _ = resolve_token(url, token, command)
    except TokenError as error:
        raise ServiceError(str(error), "auth") from None
    return ServiceClient(url, resolved, online_access=online_access)


def session_state(context=None):
    return (context or bpy.context).window_manager.gan2x


# --- jobs -----------------------------------------------------------------------

def submit(context, request: JobRequest):
    """Starts a job for ``request`` (network on a background thread) and adds
    it to the session's list; returns the list item. Import options and the
    target scene are taken from ``context.scene.gan2x`` now."""
    state = session_state(context)
    settings = context.scene.gan2x
    item = state.jobs.add()
    item.key = uuid.uuid4().hex
    item.name = request.label()
    item.scene_name = context.scene.name
    for name in ("import_lights", "import_camera", "import_world", "world_mode", "replace_previous",
                 "ao_strength"):
        setattr(item, name, getattr(settings, name))
    state.active_job_index = len(state.jobs) - 1
    try:
        client = make_client(context)
    except ServiceError as error:
        _fail(item, str(error))
        _set_backend_status(state, BackendStatus(error.kind, str(error)))
        return item
    item.backend_url = client.url
    runner = JobRunner(item.key, client, request, user_dir("jobs"), events)
    runners[item.key] = runner
    item.state = 'SUBMITTING'
    item.message = "submitting to " + client.url
    runner.start()
    ensure_timer()
    return item


def cancel(item) -> bool:
    """Asks the job's thread to cancel it on the backend; False if it is not running."""
    runner = runners.get(item.key)
    if runner is None or not runner.is_alive():
        return False
    runner.cancel()
    item.message = "cancelling"
    return True


def find_job(state, key: str):
    for item in state.jobs:
        if item.key == key:
            return item
    return None


def import_job(item, context=None):
    """Imports a job's downloaded bundle with the job's import options into
    its scene (the current one if that is gone). Raises BundleError, leaving
    the scene as it was."""
    if not item.bundle_dir or not Path(item.bundle_dir).is_dir():
        raise BundleError("job {} has no downloaded bundle{}".format(
            item.name, " (its folder {} is gone)".format(item.bundle_dir) if item.bundle_dir else ""))
    context = context or bpy.context
    scene = bpy.data.scenes.get(item.scene_name) or context.scene
    with read_bundle(item.bundle_dir) as bundle:
        result = import_bundle(SimpleNamespace(scene=scene), bundle, ImportOptions.from_settings(item))
        report = getattr(bundle, "report_path", None) or bundle.images.get("rerender")
    view_layer = context.view_layer if scene == context.scene else scene.view_layers[0]
    select_imported(view_layer, result)
    item.collection_name = result.collection.name
    item.report_path = str(report) if report else ""
    load_report_preview(item)
    return result


def _fail(item, message: str) -> None:
    item.state = 'FAILED'
    item.message = message
    print("GAN2X: job {!r} failed: {}".format(item.name, message))


def _apply(state, event: JobEvent) -> None:
    item = find_job(state, event.key)
    if event.kind == "finished":
        runners.pop(event.key, None)
        _drop_preview("live", event.key)
        if item is not None and item.active:  # the thread ended without a final word
            _fail(item, item.message or "the job's thread ended unexpectedly")
        return
    if item is None:
        return  # its list was cleared (a new file was loaded)
    if event.kind == "preview":
        if item.active:
            _load_png_preview(_preview_name("live", item.key), event.preview_path, LIVE_PREVIEW_SIDE)
        return
    if event.kind == "job":
        job = event.job
        item.job_id = job["id"]
        item.state = _JOB_STATES.get(job["state"], 'FAILED')
        progress = job.get("progress") or {}
        item.stage = progress.get("stage") or ""
        item.fraction = min(1.0, max(0.0, float(progress.get("fraction") or 0.0)))
        eta = progress.get("eta_seconds")
        item.eta_seconds = -1.0 if eta is None else float(eta)
        item.message = describe_progress(job)
        if item.state == 'FAILED':
            _fail(item, (job.get("error") or {}).get("message") or describe_progress(job))
    elif event.kind == "error":
        if event.error_kind == "cancelled":
            item.state, item.message = 'CANCELLED', event.message
        else:
            _fail(item, event.message)
        if event.error_kind in _STATE_OF_KIND:
            _set_backend_status(state, BackendStatus(event.error_kind, event.message))
    elif event.kind == "bundle":
        item.bundle_dir = event.bundle_dir
        item.fraction = 1.0
        try:
            result = import_job(item)
        except BundleError as error:
            _fail(item, "the bundle could not be imported: {}".format(error))
            return
        item.state = 'IMPORTED'
        item.message = "imported as {}".format(result.collection.name)
        _push_undo("Import GAN2X asset")


def _push_undo(message: str) -> None:
    try:
        bpy.ops.ed.undo_push(message=message)
    except RuntimeError:
        pass  # no undo stack (background mode)


# --- previews -------------------------------------------------------------------------

def _preview_name(kind: str, key: str) -> str:
    return "{}:{}".format(kind, key)


def preview_entry(kind: str, key: str):
    """The ``bpy.types.ImagePreview`` of a job (``kind`` ``live``: its running
    fit's latest preview; ``report``: its bundle's report picture), or None.
    For draw(): never loads anything."""
    if _previews is None:
        return None
    return _previews.get(_preview_name(kind, key))


def _load_png_preview(name: str, path, max_side: int) -> bool:
    """Main thread only. Reads the PNG at ``path`` with Blender (one image
    datablock, removed at once: none pile up), scaled down to at most
    ``max_side`` pixels a side, into the preview ``name``, replacing the
    earlier one (so a collection holds one entry per name however often it
    is updated). False, leaving the earlier preview, for a file that is
    missing, too big or not a PNG."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_PICTURE_BYTES:
            return False
        with open(path, "rb") as stream:
            head = stream.read(33)
    except OSError:
        return False
    if png_size(head, MAX_PICTURE_SIDE) is None:
        return False
    image = None
    try:
        image = bpy.data.images.load(str(path), check_existing=False)
        width, height = image.size
        if not width or not height:
            return False  # Blender could not decode it
        if max(width, height) > max_side:
            factor = max_side / max(width, height)
            image.scale(max(1, round(width * factor)), max(1, round(height * factor)))
            width, height = image.size
        pixels = np.empty(width * height * 4, dtype=np.float32)
        image.pixels.foreach_get(pixels)
    except (RuntimeError, ValueError) as error:
        print("GAN2X: cannot show the picture {}: {}".format(path, error))
        return False
    finally:
        if image is not None:
            bpy.data.images.remove(image)
    global _previews
    if _previews is None:
        _previews = bpy.utils.previews.new()
    if name in _previews:
        del _previews[name]
    entry = _previews.new(name)
    entry.image_size = (width, height)
    entry.image_pixels_float.foreach_set(pixels)
    return True


def load_report_preview(item) -> bool:
    """Loads the job's report picture (``item.report_path``) for the jobs
    list's detail, unless it is loaded already; keeps the most recent
    ``MAX_REPORT_PREVIEWS``. Main thread, not from draw()."""
    if not item.report_path:
        return False
    if item.key in _report_keys and preview_entry("report", item.key) is not None:
        _report_keys.remove(item.key)
        _report_keys.append(item.key)
        return True
    if not _load_png_preview(_preview_name("report", item.key), item.report_path, REPORT_PREVIEW_SIDE):
        return False
    if item.key in _report_keys:
        _report_keys.remove(item.key)
    _report_keys.append(item.key)
    while len(_report_keys) > MAX_REPORT_PREVIEWS:
        _drop_preview("report", _report_keys.pop(0))
    return True


def active_job_changed(state) -> None:
    """``active_job_index``'s update: the selected job's report picture."""
    if 0 <= state.active_job_index < len(state.jobs):
        load_report_preview(state.jobs[state.active_job_index])


def _drop_preview(kind: str, key: str) -> None:
    name = _preview_name(kind, key)
    if _previews is not None and name in _previews:
        del _previews[name]
    if kind == "report" and key in _report_keys:
        _report_keys.remove(key)


def _prune_previews(state) -> None:
    """Drops the previews of jobs no longer in the list, and the live
    previews of jobs that are over."""
    if not _previews:
        return
    jobs = {item.key: item for item in state.jobs}
    for name in list(_previews.keys()):
        kind, _, key = name.partition(":")
        item = jobs.get(key)
        if item is None or (kind == "live" and not item.active):
            _drop_preview(kind, key)


def close_previews() -> None:
    global _previews
    if _previews is not None:
        bpy.utils.previews.remove(_previews)
        _previews = None
    _report_keys.clear()


# --- the backend's status ----------------------------------------------------------

def check_backend_async(context=None, wait_for_start: bool = False) -> None:
    """Checks the backend on a background thread; ``poll`` shows the result.
    With ``wait_for_start`` it keeps trying while a backend Blender started
    is coming up."""
    state = session_state(context)
    state.backend_state = 'CHECKING'
    settings = (*backend_settings(context), bpy.app.online_access)
    process = local_backend.process if wait_for_start else None

    def check():
        deadline = time.monotonic() + STARTUP_WAIT_S
        while True:
            try:  # the token file of a backend that is starting appears with it
                status = check_backend(_client(*settings))
            except ServiceError as error:
                status = BackendStatus(error.kind, str(error))
            starting = process is not None and process.poll() is None
            coming_up = status.state == "unreachable" or status.code == "missing_token"
            if not coming_up or not starting or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        if process is not None and process.poll() is not None and not status.ok:
            status = BackendStatus(status.state, "the backend Blender started exited with status {}; see its "
                                   "log {}. {}".format(process.returncode, local_backend.log_path, status.message))
        events.put(status)

    thread = threading.Thread(target=check, name="gan2x-backend-check", daemon=True)
    _checks.append(thread)
    thread.start()
    ensure_timer()


def _set_backend_status(state, status: BackendStatus) -> None:
    state.backend_state = _STATE_OF_KIND.get(status.state, 'ERROR')
    state.backend_message = status.message
    if status.ok and status.capabilities.get("generators"):
        set_known_generators(status.capabilities["generators"])


# --- the timer ------------------------------------------------------------------

def busy() -> bool:
    """Anything under way whose result ``poll`` has yet to take."""
    _checks[:] = [thread for thread in _checks if thread.is_alive()]
    return bool(runners) or bool(_checks) or not events.empty()


def poll():
    """The timer: applies what the background threads reported. Returns the
    seconds to the next call, or None (the timer stops) when nothing is under way."""
    wm = bpy.context.window_manager
    state = getattr(wm, "gan2x", None) if wm is not None else None
    taken = []
    for _ in range(_MAX_EVENTS_PER_POLL):
        try:
            taken.append(events.get_nowait())
        except queue.Empty:
            break
    # of several previews of a job, only the last is worth loading (the file holds it anyway)
    last_preview = {event.key: index for index, event in enumerate(taken)
                    if isinstance(event, JobEvent) and event.kind == "preview"}
    for index, event in enumerate(taken):
        if state is None:
            continue
        if isinstance(event, JobEvent) and event.kind == "preview" and last_preview[event.key] != index:
            continue
        try:
            if isinstance(event, BackendStatus):
                _set_backend_status(state, event)
            else:
                _apply(state, event)
        except Exception:  # a bug must not stop the timer, or every other job would hang
            traceback.print_exc()
    if state is not None:
        try:
            _prune_previews(state)
        except Exception:
            traceback.print_exc()
    _redraw(wm)
    return POLL_INTERVAL_S if busy() else None


def ensure_timer() -> None:
    if not bpy.app.timers.is_registered(poll):
        bpy.app.timers.register(poll, first_interval=POLL_INTERVAL_S)


def _redraw(wm) -> None:
    if wm is None:
        return
    for window in wm.windows:
        screen = window.screen
        if screen is None:
            continue
        for area in screen.areas:
            if area.type in {'VIEW_3D', 'PREFERENCES'}:
                area.tag_redraw()


# --- the local backend --------------------------------------------------------------

def stop_local_backend() -> None:
    local_backend.stop(wait=True)


def register() -> None:
    atexit.register(stop_local_backend)


def unregister() -> None:
    """Stops everything this session started: job threads (their jobs go on
    on the backend), the timer and the local backend."""
    if bpy.app.timers.is_registered(poll):
        bpy.app.timers.unregister(poll)
    for runner in list(runners.values()):
        runner.abandon()
    for runner in list(runners.values()):
        runner.join(timeout=2.0)
    runners.clear()
    for thread in _checks:
        thread.join(timeout=0.1)
    _checks.clear()
    while not events.empty():
        events.get_nowait()
    close_previews()
    stop_local_backend()
    atexit.unregister(stop_local_backend)
