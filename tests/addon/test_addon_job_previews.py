"""The sidebar's pictures of a job (issue 17): the live preview of a running
fit next to the progress bar, and the finished bundle's report picture in
the jobs list's detail; and a hostile backend's job seen from the panel.

The job thread only downloads PNG bytes into the work folder; the session's
timer (``session.poll``, called here as Blender's event loop would) loads
them into one ``bpy.utils.previews`` collection, one entry per job and kind,
through a transient image datablock removed at once. So however many
updates come, neither ``bpy.data.images`` nor the collection grows.

The live test runs a real ``gan2x serve`` on loopback (a throwaway data
directory and token file, previews every 0.2 s) and a tiny job through the
add-on registered from the repository."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sample_bundles import write_bundle, zip_bundle
from test_addon_hostile_backend import FakeBackend, job_answer
from ui_recording import draw, labels

TINY = {"steps_scale": 0.01, "stages": 1, "pseudo_samples": 1, "mesh_resolution": 32, "texture_size": 64}
JOB_TIMEOUT_S = 240.0


def drive(session, until, timeout: float = JOB_TIMEOUT_S, on_poll=None):
    """Calls the add-on's timer function until ``until()`` is true."""
    deadline = time.monotonic() + timeout
    while True:
        session.poll()
        if on_poll is not None:
            on_poll()
        result = until()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached in {} s".format(timeout))
        time.sleep(0.05)


def preview_pixels(entry) -> np.ndarray:
    """An ImagePreview's pixels, [height, width, 4] floats, top row first."""
    width, height = entry.image_size
    pixels = np.empty(width * height * 4, np.float32)
    entry.image_pixels_float.foreach_get(pixels)
    return pixels.reshape(height, width, 4)[::-1]


def png_pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), np.float32) / 255.0


def save_png(path: Path, colour, size=(64, 64)) -> None:
    """Writes a PNG of one colour (``size`` as width, height), replacing ``path``."""
    Image.fromarray(np.full((size[1], size[0], 3), colour, np.uint8)).save(path, format="PNG")


def add_job(state, key: str, job_state: str = 'RUNNING', **values):
    item = state.jobs.add()
    item.key, item.name, item.state = key, "job " + key[:4], job_state
    for name, value in values.items():
        setattr(item, name, value)
    return item


def picture_images(bpy) -> list:
    """Image datablocks the previews could have left behind."""
    return [image.name for image in bpy.data.images if image.name != "Render Result"]


# --- the main thread's side, without a backend ------------------------------------------

def test_fifty_preview_updates_leave_one_entry_and_no_images(registered_addon, tmp_path, monkeypatch):
    import bpy

    from addon.client.jobs import JobEvent

    session = registered_addon.session
    state = bpy.context.window_manager.gan2x
    key = "a" * 32
    add_job(state, key, stage="stage 1: exploitation", fraction=0.3)
    state.active_job_index = 0
    images_before = picture_images(bpy)
    path = tmp_path / "preview.png"
    for n in range(50):
        colour = ((n * 5) % 256, 255 - (n * 5) % 256, 7)
        save_png(path, colour)
        session.events.put(JobEvent(key, "preview", preview_path=str(path)))
        assert session.poll() is None  # nothing else under way: the timer would stop
        entry = session.preview_entry("live", key)
        assert entry is not None and tuple(entry.image_size) == (64, 64)
        assert np.allclose(preview_pixels(entry)[..., :3], np.array(colour) / 255.0, atol=0.6 / 255)
        assert picture_images(bpy) == images_before
        assert len(session._previews) == 1
    shown = preview_pixels(session.preview_entry("live", key)).copy()

    # the sidebar shows it under the progress bar
    drawn = draw(bpy.types.VIEW3D_PT_gan2x, bpy.context)
    kinds = [entry[0] for entry in drawn]
    assert "progress" in kinds and "template_icon" in kinds
    assert kinds.index("template_icon") > kinds.index("progress")
    icon = next(entry for entry in drawn if entry[0] == "template_icon")
    assert icon[1] == session.preview_entry("live", key).icon_id

    # a burst between two timer calls loads once, the last
    loads = []
    original = session._load_png_preview
    monkeypatch.setattr(session, "_load_png_preview", lambda *args: loads.append(args) or original(*args))
    for _ in range(20):
        session.events.put(JobEvent(key, "preview", preview_path=str(path)))
    session.poll()
    assert len(loads) == 1 and len(session._previews) == 1

    # a file that is not a PNG (or is gone) keeps the last preview
    for bad in (b"not a png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64):
        path.write_bytes(bad)
        session.events.put(JobEvent(key, "preview", preview_path=str(path)))
        session.poll()
        assert np.array_equal(preview_pixels(session.preview_entry("live", key)), shown)
    session.events.put(JobEvent(key, "preview", preview_path=str(tmp_path / "missing.png")))
    session.poll()
    assert session.preview_entry("live", key) is not None
    assert picture_images(bpy) == images_before

    # the job is over: its live preview goes, and the panel no longer draws one
    state.jobs[0].state = 'CANCELLED'
    session.poll()
    assert session.preview_entry("live", key) is None and not session._previews
    assert "template_icon" not in [entry[0] for entry in draw(bpy.types.VIEW3D_PT_gan2x, bpy.context)]


def test_preview_of_a_job_no_longer_listed_is_ignored(registered_addon, tmp_path):
    import bpy

    from addon.client.jobs import JobEvent

    session = registered_addon.session
    path = tmp_path / "preview.png"
    save_png(path, (1, 2, 3))
    session.events.put(JobEvent("b" * 32, "preview", preview_path=str(path)))
    session.poll()
    assert session.preview_entry("live", "b" * 32) is None
    assert picture_images(bpy) == []


def test_report_pictures_are_bounded_and_follow_the_selection(registered_addon, tmp_path):
    import bpy

    session = registered_addon.session
    state = bpy.context.window_manager.gan2x
    count = session.MAX_REPORT_PREVIEWS + 4
    keys = ["{:032x}".format(n + 1) for n in range(count)]
    for n, key in enumerate(keys):
        report = tmp_path / "report{}.png".format(n)
        save_png(report, (n * 10, 100, 200), size=(1500, 300) if n == 0 else (80, 40))
        add_job(state, key, 'IMPORTED', report_path=str(report))
    images_before = picture_images(bpy)
    for n in range(count):
        state.active_job_index = n  # what a click in the list does
        assert session.preview_entry("report", keys[n]) is not None
    assert len(session._previews) == session.MAX_REPORT_PREVIEWS
    assert session.preview_entry("report", keys[0]) is None  # the oldest went
    # selecting it again loads it again; still bounded
    state.active_job_index = 0
    entry = session.preview_entry("report", keys[0])
    assert entry is not None and tuple(entry.image_size) == (512, 102)  # scaled down, same aspect
    assert len(session._previews) == session.MAX_REPORT_PREVIEWS
    assert picture_images(bpy) == images_before

    drawn = draw(bpy.types.VIEW3D_PT_gan2x_jobs, bpy.context)
    assert "Report" in labels(drawn)
    icon = next(entry for entry in drawn if entry[0] == "template_icon")
    assert icon[1] == session.preview_entry("report", keys[0]).icon_id
    # a job without a report draws none
    add_job(state, "c" * 32, 'FAILED')
    state.active_job_index = len(state.jobs) - 1
    assert "template_icon" not in [entry[0] for entry in draw(bpy.types.VIEW3D_PT_gan2x_jobs, bpy.context)]
    # jobs dropped from the list drop their pictures
    state.jobs.clear()
    session.poll()
    assert not session._previews


@pytest.mark.parametrize("with_report, expected", [(True, "images/report.png"), (False, "images/rerender.png")])
def test_import_takes_the_report_or_the_rerender_of_an_older_bundle(registered_addon, tmp_path, with_report,
                                                                      expected):
    import bpy

    session = registered_addon.session
    bundle = write_bundle(tmp_path / "asset", report=with_report)
    state = bpy.context.window_manager.gan2x
    item = add_job(state, "d" * 32, 'DOWNLOADING', bundle_dir=str(bundle), scene_name=bpy.context.scene.name)
    state.active_job_index = 0
    session.import_job(item)
    assert Path(item.report_path) == bundle / expected
    entry = session.preview_entry("report", item.key)
    assert entry is not None
    assert np.allclose(preview_pixels(entry)[..., :3], png_pixels(bundle / expected), atol=0.6 / 255)
    assert not [name for name in picture_images(bpy) if name.startswith(("report", "rerender"))]


def test_unregister_closes_the_previews(clean_blender, tmp_path):
    import addon
    from addon.client.jobs import JobEvent

    addon.register()
    try:
        state = clean_blender.context.window_manager.gan2x
        add_job(state, "e" * 32)
        save_png(tmp_path / "p.png", (9, 9, 9))
        addon.session.events.put(JobEvent("e" * 32, "preview", preview_path=str(tmp_path / "p.png")))
        addon.session.poll()
        assert addon.session._previews
    finally:
        addon.unregister()
    assert addon.session._previews is None and not addon.session._report_keys


# --- a hostile backend, seen from the panel ---------------------------------------------

def test_a_hostile_job_id_fails_the_job_and_spares_the_folder_it_names(registered_addon, tmp_path, monkeypatch,
                                                                        sample_bundle):
    import bpy

    session = registered_addon.session
    work = tmp_path / "user" / "data" / "jobs"
    work.mkdir(parents=True)
    victim = tmp_path / "victim" / "synthetic_faces_seed3"  # work/../../../victim/<asset name>
    victim.mkdir(parents=True)
    (victim / "precious.txt").write_text("do not delete")
    backend = FakeBackend(job_answer("../../../victim"),
                          bundle=zip_bundle(sample_bundle, tmp_path / "served.zip").read_bytes())
    monkeypatch.setattr(session, "backend_settings", lambda context=None: (backend.url, "a-token", ""))
    monkeypatch.setattr(session, "user_dir", lambda *parts: work)
    bpy.context.scene.gan2x.seed = 3
    try:
        assert bpy.ops.gan2x.reconstruct() == {'FINISHED'}
        item = bpy.context.window_manager.gan2x.jobs[-1]
        drive(session, lambda: not item.active, timeout=30)
    finally:
        backend.close()
    assert item.state == 'FAILED'
    assert "'../../../victim'" in item.message and "32 hexadecimal digits" in item.message
    assert item.job_id == "" and item.bundle_dir == ""
    assert (victim / "precious.txt").read_text() == "do not delete" and len(list(victim.iterdir())) == 1
    assert sorted(path.name for path in (tmp_path / "victim").iterdir()) == ["synthetic_faces_seed3"]
    assert not list(work.iterdir())
    shown = " ".join(labels(draw(bpy.types.VIEW3D_PT_gan2x, bpy.context)))
    assert "32 hexadecimal" in shown


# --- a real backend on loopback -------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def gan2x_serve(tmp_path_factory):
    """A real ``gan2x serve`` on a free loopback port, previews every 0.2 s."""
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("gan2x.service.app")
    root = tmp_path_factory.mktemp("serve")
    url = "http://127.0.0.1:{}".format(_free_port())
    log = open(root / "serve.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "gan2x.cli", "serve", "--port", url.rsplit(":", 1)[1],
                                "--data-dir", str(root / "data"), "--token-file", str(root / "token"),
                                "--preview-interval", "0.2"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/v1/health", timeout=2).status_code == 200 and (root / "token").is_file():
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, (root / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "gan2x serve did not come up"
            time.sleep(0.2)
        yield {"url": url, "token": (root / "token").read_text().strip(), "data": root / "data"}
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_the_panel_shows_the_live_preview_then_the_report(registered_addon, gan2x_serve, tmp_path, monkeypatch):
    import bpy

    from addon.client import jobs as client_jobs

    session = registered_addon.session
    work = tmp_path / "jobs"
    work.mkdir()
    monkeypatch.setattr(session, "backend_settings",
                        lambda context=None: (gan2x_serve["url"], gan2x_serve["token"], ""))
    monkeypatch.setattr(session, "user_dir", lambda *parts: work)
    monkeypatch.setattr(client_jobs, "PREVIEW_INTERVAL_S", 0.2)
    settings = bpy.context.scene.gan2x
    for name, value in dict(source_kind='SAMPLE', generator="synthetic:faces", seed=3, preset='draft',
                            import_world=False, **TINY).items():
        setattr(settings, name, value)
    images_before = picture_images(bpy)
    seen = {"drawn": [], "distinct": [], "matches": 0, "samples": 0, "entries": 0, "images": []}

    def look():
        item = bpy.context.window_manager.gan2x.jobs[-1]
        seen["entries"] = max(seen["entries"], len(session._previews or {}))
        if item.state != 'RUNNING':
            return
        seen["images"].append(picture_images(bpy))
        entry = session.preview_entry("live", item.key)
        if entry is None:
            return
        pixels = preview_pixels(entry)
        if not any(np.array_equal(pixels, earlier) for earlier in seen["distinct"]):
            seen["distinct"].append(pixels.copy())
            drawn = draw(bpy.types.VIEW3D_PT_gan2x, bpy.context)
            seen["drawn"].append(drawn)
            on_disk = work / item.job_id / "preview.png"
            try:
                expected = png_pixels(on_disk)
            except OSError:
                return
            seen["samples"] += 1  # the thread may have replaced the file since: count the ones that match
            seen["matches"] += int(np.allclose(pixels[..., :3], expected, atol=0.6 / 255))

    started = time.monotonic()
    assert bpy.ops.gan2x.reconstruct() == {'FINISHED'}
    item = bpy.context.window_manager.gan2x.jobs[-1]
    key = item.key
    session.runners[key].poll_interval = 0.1  # more polls (and previews) in a job of seconds
    drive(session, lambda: not item.active, on_poll=look)
    assert item.state == 'IMPORTED', item.message
    print("\n  tiny job with {} distinct live previews: {:.1f} s".format(len(seen["distinct"]),
                                                                          time.monotonic() - started))

    # while it ran: the preview under the progress bar, updated as it polled
    assert len(seen["distinct"]) >= 2, "fewer than two previews shown while the job ran"
    assert seen["matches"] >= 1, seen
    for drawn in seen["drawn"]:
        kinds = [entry[0] for entry in drawn]
        assert "progress" in kinds and kinds.index("template_icon") > kinds.index("progress")
        assert ("operator", "gan2x.cancel_job", "Cancel") in drawn
    assert seen["distinct"][0].shape == (64, 64, 4)
    # bounded: one live entry, no image datablocks left by the previews
    assert seen["entries"] <= 2  # the live preview, then the report
    assert all(names == images_before for names in seen["images"])
    # the downloaded previews stayed in the job's folder
    assert sorted(path.name for path in (work / item.job_id).iterdir()
                  if path.is_file()) == ["bundle.zip", "preview.png"]

    # after: no live preview; the report in the jobs list's detail for the selected job
    assert session.preview_entry("live", key) is None
    manifest = json.loads((Path(item.bundle_dir) / "manifest.json").read_text())
    expected = "images/report.png" if "report" in manifest["images"] else "images/rerender.png"
    assert Path(item.report_path) == Path(item.bundle_dir) / expected
    report = session.preview_entry("report", key)
    assert report is not None and max(report.image_size) <= session.REPORT_PREVIEW_SIDE
    state = bpy.context.window_manager.gan2x
    assert state.jobs[state.active_job_index].key == key
    drawn = draw(bpy.types.VIEW3D_PT_gan2x_jobs, bpy.context)
    assert "Report" in labels(drawn) and ("template_icon", report.icon_id, 12.0) in drawn
    assert "template_icon" not in [entry[0] for entry in draw(bpy.types.VIEW3D_PT_gan2x, bpy.context)]
    assert not [name for name in picture_images(bpy) if name.startswith(("preview", "report", "rerender"))]
    shutil.rmtree(work, ignore_errors=True)
