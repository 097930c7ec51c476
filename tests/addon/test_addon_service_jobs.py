"""The extension as a person gets it, against a real backend on loopback.

The zip from build.py is installed the way Blender installs extensions
(``bpy.ops.extensions.package_install_files`` into the sandboxed user
directory the add-on tests' conftest sets up) and enabled. Its Preferences >
Start launches a real ``gan2x serve`` (a free loopback port, a throwaway
data directory and token file); the sidebar's operators then run whole jobs
through it: reconstruct and import, cancel, and the failure modes (backend
down, wrong token, a job that fails, a corrupt bundle, a newer schema, an
incompatible server), each leaving the scene as it was. The batch command
converts two seeds into .blend files that reopen with the expected objects
and materials.

Timers never fire in Blender-as-a-module, so the tests call the timer
function the add-on registered (``session.poll``) themselves, as Blender's
event loop would.
"""
from __future__ import annotations

import http.server
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from sample_bundles import ROOT, data_counts
from ui_recording import draw, draw_list_items, labels

sys.path.insert(0, str(ROOT))
import build  # noqa: E402  (the repository's build.py)

MODULE = "bl_ext.user_default.gan2x"
TINY = {"steps_scale": 0.01, "stages": 1, "pseudo_samples": 1, "mesh_resolution": 32, "texture_size": 64}
"""A job of a few seconds on a 2-core CPU."""
LONG = {"steps_scale": 1.0, "stages": 0, "pseudo_samples": 0, "mesh_resolution": 32, "texture_size": 64}
"""A job of minutes: long enough to be caught running and cancelled."""
JOB_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def drive(package, until, timeout: float = JOB_TIMEOUT_S, on_poll=None):
    """Calls the add-on's timer function as Blender's event loop would, until
    ``until()`` is true; returns what it returned."""
    deadline = time.monotonic() + timeout
    while True:
        package.session.poll()
        if on_poll is not None:
            on_poll()
        result = until()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached in {} s".format(timeout))
        time.sleep(0.05)


def jobs():
    import bpy

    return bpy.context.window_manager.gan2x.jobs


def prefs():
    import bpy

    return bpy.context.preferences.addons[MODULE].preferences


def set_scene_settings(**values) -> None:
    import bpy

    settings = bpy.context.scene.gan2x
    for name, value in values.items():
        setattr(settings, name, value)


def reconstruct_and_wait(package, timeout: float = JOB_TIMEOUT_S, on_poll=None):
    """Reconstruct from the sidebar, then the timer until the job is over; returns the job's item."""
    import bpy

    assert bpy.ops.gan2x.reconstruct() == {'FINISHED'}
    item = jobs()[-1]
    key = item.key
    drive(package, lambda: not _job(key).active, timeout, on_poll)
    return _job(key)


def _job(key):
    return next(item for item in jobs() if item.key == key)


def scene_state():
    import bpy

    scene = bpy.context.scene
    return (data_counts(), scene.world, scene.camera, len(scene.collection.children))


# --- fixtures ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def extension(tmp_path_factory):
    """The built zip installed and enabled as Blender does it; the module object."""
    import addon_utils
    import bpy

    zip_path = build.build_extension(tmp_path_factory.mktemp("dist"))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    result = bpy.ops.extensions.package_install_files(filepath=str(zip_path), repo="user_default",
                                                      enable_on_install=True)
    assert result == {'FINISHED'}
    assert MODULE in bpy.context.preferences.addons
    yield sys.modules[MODULE]
    if MODULE in bpy.context.preferences.addons:
        addon_utils.disable(MODULE, default_set=True)


@pytest.fixture(scope="module")
def backend(extension, tmp_path_factory):
    """A real gan2x serve started by the extension's Preferences > Start."""
    import bpy

    root = tmp_path_factory.mktemp("backend")
    token_file = root / "config" / "token"
    command = [sys.executable, "-m", "gan2x.cli", "serve", "--data-dir", str(root / "data"),
               "--token-file", str(token_file), "--preview-interval", "1"]
    preferences = prefs()
    preferences.backend_url = "http://127.0.0.1:{}".format(free_port())
    preferences.backend_command = shlex.join(command)
    preferences.token = ""
    assert bpy.ops.gan2x.backend_start() == {'FINISHED'}
    state = bpy.context.window_manager.gan2x
    drive(extension, lambda: state.backend_state != 'CHECKING', timeout=90)
    assert state.backend_state == 'OK', state.backend_message + "\n" + \
        extension.session.local_backend.log_path.read_text()[-3000:]
    info = {"url": preferences.backend_url, "token_file": token_file, "process":
            extension.session.local_backend.process}
    yield info
    extension.session.local_backend.stop()


@pytest.fixture
def backend_client(backend):
    with httpx.Client(base_url=backend["url"], timeout=30,
                      headers={"Authorization": "Bearer " + backend["token_file"].read_text().strip()}) as client:
        yield client


@pytest.fixture
def restore_preferences(backend):
    yield prefs()
    prefs().backend_url = backend["url"]
    prefs().token = ""


@pytest.fixture(scope="module")
def imported_job(extension, backend):
    """A whole tiny job, reconstructed from the sidebar and imported; with
    what the panel drew while it ran."""
    import bpy

    set_scene_settings(source_kind='SAMPLE', generator="synthetic:faces", seed=3, truncation=1.0,
                       preset='draft', import_world=False, **TINY)
    drawn, states = [], []

    def look():
        item = jobs()[-1]
        states.append(item.state)
        if item.state == 'RUNNING' and not any(entry[0] == "progress" for entry in drawn):
            drawn.extend(draw(bpy.types.VIEW3D_PT_gan2x, bpy.context))

    started = time.monotonic()
    key = reconstruct_and_wait(extension, on_poll=look).key
    # Python references to collection items go stale when the collection grows: keep the key
    return {"key": key, "drawn": drawn, "states": states, "seconds": time.monotonic() - started}


def _index(key) -> int:
    return [item.key for item in jobs()].index(key)


# --- the extension and the backend --------------------------------------------------------

def test_start_launches_the_backend_once_and_reads_its_token(extension, backend):
    import bpy

    state = bpy.context.window_manager.gan2x
    assert "gan2x 0.1.0 at " + backend["url"] in state.backend_message
    # Start again: the running one is kept, not restarted
    assert bpy.ops.gan2x.backend_start() == {'FINISHED'}
    assert extension.session.local_backend.process is backend["process"]
    assert backend["process"].poll() is None
    # its log is in the extension's user directory, not in the add-on's folder
    log_path = extension.session.local_backend.log_path
    user_dir = Path(bpy.utils.extension_path_user(MODULE))
    assert user_dir in log_path.parents and "listening on " + backend["url"] in log_path.read_text()
    assert Path(extension.__file__).parent not in log_path.parents
    shown = labels(_draw_preferences())
    assert "Token: read from {}".format(backend["token_file"]) in shown
    assert "Backend: Connected" in shown
    assert any(text.startswith("Process: running (pid {})".format(backend["process"].pid)) for text in shown)


class _WithLayout:
    """The preferences as their draw() sees them, with a RecordingLayout."""

    def __init__(self, target, layout):
        self.__dict__.update(_target=target, layout=layout)

    def __getattr__(self, name):
        return getattr(self._target, name)


def _draw_preferences():
    import bpy

    from ui_recording import RecordingLayout

    layout = RecordingLayout()
    type(prefs()).draw(_WithLayout(prefs(), layout), bpy.context)
    return layout.log


def test_reconstruct_runs_a_whole_job_and_imports_the_asset(extension, imported_job):
    import bpy

    item = _job(imported_job["key"])
    assert item.state == 'IMPORTED', item.message
    assert 'RUNNING' in imported_job["states"]
    # the panel showed the stage, a progress bar and Cancel while it ran
    drawn = imported_job["drawn"]
    assert ("operator", "gan2x.cancel_job", "Cancel") in drawn
    bars = [entry for entry in drawn if entry[0] == "progress"]
    assert bars and "%" in bars[0][2]
    # the asset is in the scene, with its material, sun and camera (no world: the options said so)
    assert item.collection_name == "synthetic_faces_seed3"
    collection = bpy.data.collections[item.collection_name]
    assert collection.name in bpy.context.scene.collection.children
    mesh_objects = [obj for obj in collection.objects if obj.type == 'MESH']
    assert len(mesh_objects) == 1 and len(mesh_objects[0].data.polygons) > 100
    material = mesh_objects[0].data.materials[0]
    assert any(node.bl_idname == "ShaderNodeBsdfPrincipled" for node in material.node_tree.nodes)
    assert {obj.type for obj in collection.objects} == {'MESH', 'LIGHT', 'CAMERA'}
    assert bpy.context.scene.camera.name in collection.objects
    assert bpy.context.scene.gan2x.last_import == collection
    assert bpy.context.view_layer.objects.active == mesh_objects[0]
    assert not [world for world in bpy.data.worlds if world.name.startswith("synthetic_faces_seed3")]
    # the bundle was downloaded into the extension's user directory
    bundle_dir = Path(item.bundle_dir)
    assert (bundle_dir / "manifest.json").is_file()
    assert Path(bpy.utils.extension_path_user(MODULE)) in bundle_dir.parents
    # nothing is under way any more: the timer function asks to stop
    assert extension.session.poll() is None
    print("\n  whole job from Reconstruct to imported: {:.1f} s".format(imported_job["seconds"]))


def test_jobs_list_draws_and_reimports(extension, imported_job):
    import bpy

    state = bpy.context.window_manager.gan2x
    drawn = draw(bpy.types.VIEW3D_PT_gan2x_jobs, bpy.context)
    assert ("template_list", "GAN2X_UL_jobs", "jobs") in drawn
    assert ("operator", "gan2x.reimport_job", "Import Again") in drawn
    rows = labels(draw_list_items(bpy.types.GAN2X_UL_jobs, bpy.context, state, "jobs"))
    assert "synthetic:faces seed 3" in rows and "Imported" in rows
    for panel in ("VIEW3D_PT_gan2x_fit", "VIEW3D_PT_gan2x_import", "VIEW3D_PT_gan2x_asset"):
        draw(getattr(bpy.types, panel), bpy.context)

    state.active_job_index = _index(imported_job["key"])
    before = len(bpy.context.scene.collection.children)
    assert bpy.ops.gan2x.reimport_job() == {'FINISHED'}
    assert len(bpy.context.scene.collection.children) == before + 1


def test_cancel_stops_a_running_job_and_leaves_the_scene(extension, backend, backend_client):
    import bpy

    set_scene_settings(seed=11, **LONG)
    before = scene_state()
    assert bpy.ops.gan2x.reconstruct() == {'FINISHED'}
    key = jobs()[-1].key
    assert bpy.app.timers.is_registered(extension.session.poll)
    drive(extension, lambda: _job(key).state == 'RUNNING' and _job(key).fraction > 0)
    assert bpy.ops.gan2x.cancel_job.poll()
    assert bpy.ops.gan2x.cancel_job() == {'FINISHED'}
    drive(extension, lambda: not _job(key).active, timeout=30)
    item = _job(key)
    assert item.state == 'CANCELLED', item.message
    assert backend_client.get("/v1/jobs/" + item.job_id).json()["state"] == "cancelled"
    assert scene_state() == before
    assert not bpy.ops.gan2x.cancel_job.poll()


def test_a_job_that_fails_on_the_backend_says_why(extension, backend, backend_client):
    """The worker process dies mid-fit (what an out-of-memory kill does):
    the job fails with the service's reason, the scene is left alone."""
    import bpy

    set_scene_settings(seed=13, **LONG)
    before = scene_state()
    assert bpy.ops.gan2x.reconstruct() == {'FINISHED'}
    key = jobs()[-1].key
    drive(extension, lambda: _job(key).state == 'RUNNING' and _job(key).fraction > 0)
    worker_pid = backend_client.get("/v1/jobs/" + _job(key).job_id).json()["worker_pid"]
    os.kill(worker_pid, signal.SIGKILL)
    drive(extension, lambda: not _job(key).active, timeout=30)
    item = _job(key)
    assert item.state == 'FAILED'
    assert "the worker process was killed by SIGKILL" in item.message and "worker.log" in item.message
    assert scene_state() == before
    shown = " ".join(labels(draw(bpy.types.VIEW3D_PT_gan2x, bpy.context)))
    assert "killed by SIGKILL" in shown


def test_an_image_file_is_uploaded_and_submitted(extension, backend, backend_client, tmp_path):
    import bpy

    image = tmp_path / "face.png"
    pixels = np.full((64, 64, 3), 128, np.uint8)  # the built-in generators make 64-pixel images
    pixels[16:48, 20:44] = (200, 150, 120)
    Image.fromarray(pixels).save(image)
    set_scene_settings(source_kind='IMAGE', image_path=str(image), **TINY)
    try:
        item = reconstruct_and_wait(extension)
    finally:
        set_scene_settings(source_kind='SAMPLE')
    job = backend_client.get("/v1/jobs/" + item.job_id).json()
    assert job["kind"] == "image" and job["state"] == "succeeded", job
    assert item.state == 'IMPORTED', item.message
    collection = bpy.data.collections[item.collection_name]
    assert item.collection_name.startswith("face") and any(obj.type == 'MESH' for obj in collection.objects)

    small = tmp_path / "small.png"  # too small for the crop: the backend's reason reaches the panel
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(small)
    set_scene_settings(source_kind='IMAGE', image_path=str(small))
    try:
        item = reconstruct_and_wait(extension)
    finally:
        set_scene_settings(source_kind='SAMPLE')
    job = backend_client.get("/v1/jobs/" + item.job_id).json()
    assert job["state"] == "failed" and item.state == 'FAILED'
    assert item.message == job["error"]["message"] and "at least 64 px a side" in item.message

    set_scene_settings(source_kind='IMAGE', image_path=str(tmp_path / "missing.png"))
    try:
        with pytest.raises(RuntimeError, match="Choose an image file first"):
            bpy.ops.gan2x.reconstruct()
    finally:
        set_scene_settings(source_kind='SAMPLE')


def test_a_wrong_token_is_refused_with_advice(extension, restore_preferences):
    import bpy

    restore_preferences.token = "not-the-token-of-this-backend"
    before = scene_state()
    item = reconstruct_and_wait(extension)
    assert item.state == 'FAILED'
    assert "refused the token (invalid_token)" in item.message and "token file" in item.message
    state = bpy.context.window_manager.gan2x
    assert state.backend_state == 'AUTH'
    assert scene_state() == before
    # and the preferences' Check says the same
    bpy.ops.gan2x.check_backend()
    drive(extension, lambda: state.backend_state != 'CHECKING', timeout=30)
    assert state.backend_state == 'AUTH'


def test_a_backend_that_is_down_is_reported_with_what_to_do(extension, restore_preferences):
    import bpy

    restore_preferences.backend_url = "http://127.0.0.1:{}".format(free_port())
    before = scene_state()
    item = reconstruct_and_wait(extension, timeout=30)
    assert item.state == 'FAILED'
    assert "connection refused" in item.message and "Preferences > Add-ons > GAN2X > Start" in item.message
    assert bpy.context.window_manager.gan2x.backend_state == 'UNREACHABLE'
    assert scene_state() == before


class _FakeServer(http.server.ThreadingHTTPServer):
    """Another HTTP server on the backend's URL: one that is not GAN2X, or a
    GAN2X of a version this add-on does not know."""

    def __init__(self, health: dict | None):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(handler):
                if health is None or handler.path != "/v1/health":
                    handler.send_error(404)
                    return
                body = json.dumps(health).encode()
                handler.send_response(200)
                handler.send_header("Content-Type", "application/json")
                handler.send_header("Content-Length", str(len(body)))
                handler.end_headers()
                handler.wfile.write(body)

            def log_message(handler, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.mark.parametrize("health, expected", [
    ({"status": "ok", "version": "9.0.0"}, "is gan2x 9.0.0, and this add-on talks to gan2x 0.x"),
    (None, "not a GAN2X backend"),
])
def test_an_incompatible_server_is_reported(extension, restore_preferences, health, expected):
    import bpy

    server = _FakeServer(health)
    try:
        restore_preferences.backend_url = "http://127.0.0.1:{}".format(server.server_address[1])
        state = bpy.context.window_manager.gan2x
        bpy.ops.gan2x.check_backend()
        drive(extension, lambda: state.backend_state != 'CHECKING', timeout=30)
        assert state.backend_state == 'INCOMPATIBLE'
        assert expected in state.backend_message
        before = scene_state()
        item = reconstruct_and_wait(extension, timeout=30)
        assert item.state == 'FAILED' and expected in item.message
        assert scene_state() == before
    finally:
        server.shutdown()
        server.server_close()


def test_reimport_of_a_corrupt_or_newer_bundle_changes_nothing(extension, imported_job, tmp_path):
    import shutil

    import bpy

    item = _job(imported_job["key"])
    original = Path(item.bundle_dir)
    state = bpy.context.window_manager.gan2x
    state.active_job_index = _index(imported_job["key"])
    copy = tmp_path / "bundle"
    shutil.copytree(original, copy)
    item.bundle_dir = str(copy)
    try:
        manifest_path = copy / "manifest.json"
        manifest = json.loads(manifest_path.read_text())
        manifest_path.write_text(json.dumps({**manifest, "schema_version": 2}))
        before = scene_state()
        with pytest.raises(RuntimeError, match="newer GAN2X backend"):
            bpy.ops.gan2x.reimport_job()
        assert scene_state() == before

        manifest_path.write_text(json.dumps(manifest))
        mesh = copy / manifest["mesh"]["file"]
        mesh.write_bytes(mesh.read_bytes()[:-64])
        with pytest.raises(RuntimeError, match="mesh.ply"):
            bpy.ops.gan2x.reimport_job()
        assert scene_state() == before

        shutil.rmtree(copy)
        with pytest.raises(RuntimeError, match="gone"):
            bpy.ops.gan2x.open_job_folder()
    finally:
        item.bundle_dir = str(original)


def _cli_arguments(out_dir: Path, *source: str) -> list:
    return ["convert", *source, "--out", str(out_dir), "--steps-scale", "0.01", "--stages", "1",
            "--pseudo-samples", "1", "--mesh-resolution", "32", "--texture-size", "64",
            "--render-size", "24", "--samples", "2", "--poll-interval", "0.2"]


def test_cli_command_converts_two_seeds_into_blend_files(extension, backend, tmp_path, capsys):
    import bpy

    assert extension._cli_command is not None  # registered with bpy.utils.register_cli_command
    out_dir = tmp_path / "batch"
    started = time.monotonic()
    # the backend URL and token come from the add-on's preferences
    status = extension.convert.cli_command(_cli_arguments(out_dir, "--generator", "synthetic:objects",
                                                          "--seeds", "1,2"))
    seconds = time.monotonic() - started
    output = capsys.readouterr().out
    assert status == 0, output
    assert "[1/2] synthetic:objects seed 1: running" in output
    assert "gan2x convert: 2 of 2 converted, 0 failed" in output
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["converted"] == 2 and summary["failed"] == 0
    for seed in (1, 2):
        name = "synthetic_objects_seed{}".format(seed)
        blend = out_dir / (name + ".blend")
        with Image.open(out_dir / (name + ".png")) as preview:
            assert preview.size == (24, 24)
        assert (out_dir / name / "manifest.json").is_file() and (out_dir / (name + ".zip")).is_file()
        bpy.ops.wm.open_mainfile(filepath=str(blend))
        assert {obj.name for obj in bpy.data.objects} == {name, name + "_sun", name + "_camera"}
        mesh = bpy.data.objects[name].data
        assert len(mesh.polygons) > 100
        material = mesh.materials[0]
        textures = {node.image.name for node in material.node_tree.nodes if node.bl_idname == "ShaderNodeTexImage"}
        assert textures == {name + suffix for suffix in ("_albedo", "_normal", "_roughness", "_specular_tint",
                                                         "_ambient_occlusion")}
        assert all(image.packed_file is not None for image in bpy.data.images)
        assert bpy.context.scene.camera.name == name + "_camera"
        assert bpy.context.scene.world.name == name + "_world"
        provenance = json.loads(bpy.data.collections[name]["gan2x_provenance"])
        assert provenance["seed"] == seed and provenance["generator"] == "synthetic:objects"
    bpy.ops.wm.read_homefile(use_empty=True)
    print("\n  batch of two tiny seeds with previews: {:.1f} s".format(seconds))


def test_script_entry_reports_each_failed_item_and_exits_non_zero(backend, tmp_path):
    """``blender -b -P headless.py -- convert ...`` (here: this Python with
    bpy, running the installed extension's script) on a folder of images:
    the first is not an image and is refused at upload; the next is still
    submitted and converted into a bundle, a .blend and a preview; the
    failure is reported and the exit status is 1."""
    import bpy

    images = tmp_path / "images"
    images.mkdir()
    (images / "a_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(images / "b_face.png")
    script = Path(bpy.utils.extension_path_user(MODULE)).parents[2] / "user_default" / "gan2x" / "headless.py"
    assert script.is_file(), script
    out_dir = tmp_path / "out"
    command = [sys.executable, str(script), "--", *_cli_arguments(out_dir, "--images", str(images)),
               "--backend-url", backend["url"], "--token-file", str(backend["token_file"])]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=tmp_path,
                               env={**os.environ, "PYTHONPATH": ""})
    assert completed.returncode == 1, completed.stdout + completed.stderr
    output = completed.stdout
    assert "[1/2] a_broken.png: failed: the backend refused POST /v1/uploads" in output
    assert "[2/2] b_face.png: converted" in output, output
    assert "gan2x convert: 1 of 2 converted, 1 failed" in output
    summary = json.loads((out_dir / "summary.json").read_text())
    assert [entry["state"] for entry in summary["items"]] == ["failed", "converted"]
    assert summary["items"][0]["job_id"] is None and summary["items"][0]["message"]  # refused at upload
    assert summary["items"][1]["job_id"]  # still submitted and converted after the first one failed
    assert (out_dir / "b_face" / "manifest.json").is_file() and (out_dir / "b_face.zip").is_file()
    assert (out_dir / "b_face.blend").is_file() and (out_dir / "b_face.png").is_file()


def test_disabling_leaves_nothing_behind(extension, backend):
    import addon_utils
    import bpy

    process = backend["process"]
    session = extension.session
    set_scene_settings(seed=12, **LONG)  # a job under way when the add-on goes
    assert bpy.ops.gan2x.reconstruct() == {'FINISHED'}
    runner = next(iter(session.runners.values()))
    addon_utils.disable(MODULE, default_set=True)

    assert MODULE not in bpy.context.preferences.addons
    left = [name for name in dir(bpy.types) if name.startswith(("GAN2X_", "VIEW3D_PT_gan2x"))]
    assert not left, left
    assert not hasattr(bpy.types.Scene, "gan2x") and not hasattr(bpy.types.WindowManager, "gan2x")
    assert extension._cli_command is None
    assert not bpy.app.timers.is_registered(session.poll)
    assert not session.runners and not runner.is_alive()
    assert process.poll() is not None, "the local backend was not stopped"
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("gan2x-")]
