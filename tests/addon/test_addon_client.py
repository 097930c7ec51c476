"""The add-on's backend client (addon/client/), bpy-free: where the token
comes from (the same file the service writes), the local backend's command
line, progress text, messages for the failures a person meets, and the rule
that nothing in it (or in the bundle reader) imports bpy, since it runs on
background threads."""
from __future__ import annotations

import ast
import socket
import zipfile
from pathlib import Path

import pytest

from addon.bundle.reader import BundleError, read_bundle, unpack_bundle_zip
from addon.client import service, token
from addon.client.jobs import JobRequest
from addon.client.local_backend import LocalBackend, LocalBackendError, command_arguments
from sample_bundles import ROOT, zip_bundle

backend_config = pytest.importorskip("gan2x.service.config")


@pytest.mark.parametrize("environment", [
    {},
    {"XDG_CONFIG_HOME": "/somewhere/config"},
    {"GAN2X_TOKEN_FILE": "/elsewhere/token", "XDG_CONFIG_HOME": "/somewhere/config"},
])
def test_default_token_file_is_the_one_the_service_writes(monkeypatch, environment):
    for name in ("GAN2X_TOKEN_FILE", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert token.default_token_file() == backend_config.default_token_file()


@pytest.mark.parametrize("url, loopback", [
    ("http://127.0.0.1:8765", True), ("http://localhost:9000/", True), ("http://[::1]:8765", True),
    ("http://127.1.2.3:1", True), ("http://192.168.1.20:8765", False), ("http://gpu-box:8765", False),
])
def test_loopback_urls(url, loopback):
    assert token.is_loopback_url(url) == loopback
    assert token.is_loopback_url(url) == backend_config.is_loopback(url.split("//")[1].rsplit(":", 1)[0])


def test_token_resolution(tmp_path, monkeypatch):
    token_file = tmp_path / "token"
    token_file.write_text("abcdefghijklmnopqrstuvwxyz\n")
    command = "gan2x serve --token-file {}".format(token_file)
    assert token.resolve_token("http://127.0.0.1:8765", "", command) == ("abcdefghijklmnopqrstuvwxyz", str(token_file))
    assert token.resolve_token("http://127.0.0.1:8765", " typed ", command) == ("typed", "preferences")
    # a remote backend never gets the local token file's contents
    assert token.resolve_token("http://10.0.0.5:8765", "", command)[0] is None
    monkeypatch.setenv("GAN2X_TOKEN_FILE", str(tmp_path / "missing"))
    found, where = token.resolve_token("http://127.0.0.1:8765", "", "gan2x serve")
    assert found is None and "does not exist yet" in where


def test_local_command_gets_the_port_of_the_url():
    assert command_arguments("gan2x serve", "http://127.0.0.1:9001") == ["gan2x", "serve", "--port", "9001"]
    assert command_arguments("'/opt/my env/gan2x' serve --port 7", "http://127.0.0.1:9001") == [
        "/opt/my env/gan2x", "serve", "--port", "7"]
    with pytest.raises(LocalBackendError, match="empty"):
        command_arguments("  ", "http://127.0.0.1:8765")


def test_a_missing_backend_program_says_what_to_set(tmp_path):
    backend = LocalBackend()
    with pytest.raises(LocalBackendError, match="no program 'no-such-gan2x'; give its full path"):
        backend.start("no-such-gan2x serve", "http://127.0.0.1:8765", tmp_path / "logs" / "backend.log")
    assert not backend.running and backend.describe() == "not started by Blender"


def test_local_backend_is_started_once_and_stopped(tmp_path):
    backend = LocalBackend()
    process = backend.start("sleep 30", "http://127.0.0.1", tmp_path / "backend.log")
    try:
        assert backend.running and backend.start("sleep 30", "http://127.0.0.1", tmp_path / "other.log") is process
        assert "running (pid {})".format(process.pid) in backend.describe()
    finally:
        backend.stop()
    assert process.poll() is not None and "exited with status" in backend.describe()
    assert "--- starting: sleep 30" in (tmp_path / "backend.log").read_text()
    # once it has exited, Start starts a new one
    again = backend.start("sleep 30", "http://127.0.0.1", tmp_path / "backend.log")
    try:
        assert again is not process and again.poll() is None and backend.running
    finally:
        backend.stop()
    assert again.poll() is not None
    assert (tmp_path / "backend.log").read_text().count("--- starting: sleep 30") == 2


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_backend_message():
    client = service.ServiceClient("http://127.0.0.1:{}".format(_free_port()), "x" * 20)
    status = service.check_backend(client)
    assert status.state == "unreachable"
    assert "connection refused" in status.message and "gan2x serve" in status.message


def test_remote_backend_needs_online_access_and_urls_are_checked():
    with pytest.raises(service.ServiceError, match="Allow Online Access") as refused:
        service.ServiceClient("http://192.168.1.20:8765", online_access=False)
    assert refused.value.kind == "offline"
    service.ServiceClient("http://127.0.0.1:8765", online_access=False)  # loopback is not online access
    with pytest.raises(service.ServiceError, match="not an http:// address"):
        service.ServiceClient("127.0.0.1:8765")


@pytest.mark.parametrize("version, compatible", [("0.1.0", True), ("0.4.2", True), ("0.0.9", False),
                                                 ("1.0.0", False), ("dev", False)])
def test_version_compatibility(version, compatible):
    if compatible:
        service.check_compatible(version, "http://127.0.0.1:8765")
    else:
        with pytest.raises(service.ServiceError, match="install matching versions") as error:
            service.check_compatible(version, "http://127.0.0.1:8765")
        assert error.value.kind == "incompatible"


def test_progress_text():
    running = {"state": "running", "progress": {"stage": "stage 1: exploitation", "step": 13, "total_steps": 34,
                                                "fraction": 0.38, "eta_seconds": 9.2}}
    assert service.describe_progress(running) == "running: stage 1: exploitation, 38%, ETA 9 s"
    assert service.describe_progress({"state": "queued", "queue_position": 3}) == "queued (2 ahead)"
    assert service.describe_progress({"state": "failed", "error": {"code": "fit_failed", "message": "boom"}}) == \
        "failed: boom"
    assert service.format_seconds(125) == "2 min 05 s"


def test_job_names():
    assert JobRequest(source={"kind": "sample", "generator": "synthetic:faces", "seed": 3}).name() == \
        "synthetic_faces_seed3"
    assert JobRequest(image_path="/photos/my face (1).jpg").name() == "my_face_1"


def test_unpack_puts_the_bundle_in_the_named_folder(sample_bundle, tmp_path):
    zip_path = zip_bundle(sample_bundle, tmp_path / "download.zip", top_folder=True)
    target = unpack_bundle_zip(zip_path, tmp_path / "jobs" / "my_asset")
    assert (target / "manifest.json").is_file()
    assert read_bundle(target).name == "my_asset"
    with pytest.raises(BundleError, match="already exists"):
        unpack_bundle_zip(zip_path, target)
    # a bad archive leaves no folder and no staging folder behind
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../outside.txt", "x")
    with pytest.raises(BundleError, match="outside the bundle"):
        unpack_bundle_zip(evil, tmp_path / "jobs" / "evil")
    assert sorted(path.name for path in (tmp_path / "jobs").iterdir()) == ["my_asset"]


BPY_FREE = ["client", "bundle"]


@pytest.mark.parametrize("folder", BPY_FREE)
def test_background_thread_code_never_imports_bpy(folder):
    for path in sorted((ROOT / "addon" / folder).glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                assert name.split(".")[0] not in ("bpy", "mathutils", "bpy_extras", "torch", "gan2x"), (path, name)


def test_the_addon_uses_relative_imports_only():
    for path in sorted((ROOT / "addon").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                assert node.module.split(".")[0] not in ("addon", "gan2x"), (path, node.module)
            if isinstance(node, ast.Import):
                assert all(alias.name.split(".")[0] not in ("addon", "gan2x", "torch") for alias in node.names), path
    assert Path(ROOT / "addon" / "__init__.py").is_file()
