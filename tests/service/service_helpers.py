"""Helpers for the service tests: the real service in a subprocess
(``python -m gan2x.cli serve``) on a free loopback port, with a throwaway
token file and data directory; job polling."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import httpx

# Settings of a job that takes a few seconds on a 2-core CPU, and of one that
# runs long enough (minutes) to be caught, cancelled or killed while running.
TINY = {"preset": "draft", "steps_scale": 0.01, "stages": 1, "pseudo_samples": 1, "mesh_resolution": 32,
        "texture_size": 64}
LONG = {"preset": "draft", "steps_scale": 1.0, "mesh_resolution": 32, "texture_size": 64}
FINAL_STATES = {"succeeded", "failed", "cancelled", "interrupted"}
EXECUTORS = ("local", "ray")
"""Where the service runs its workers (``gan2x serve --executor``): the job tests run with both."""


def sample(seed: int, generator: str = "synthetic:faces") -> dict:
    return {"kind": "sample", "generator": generator, "seed": seed}


class ServiceProcess:
    """``gan2x serve`` started as a subprocess; ``client`` talks to it with the token."""

    def __init__(self, root: Path, *extra_args: str):
        self.root = root
        self.data_dir = root / "data"
        self.token_file = root / "config" / "token"
        self.extra_args = list(extra_args)
        self.process: subprocess.Popen | None = None
        self.url = ""
        self._starts = 0

    def start(self, timeout: float = 90.0) -> "ServiceProcess":
        self._starts += 1
        self.root.mkdir(parents=True, exist_ok=True)
        self.log_path = self.root / f"service-{self._starts}.log"
        info = self.data_dir / "service.json"
        info.unlink(missing_ok=True)
        command = [sys.executable, "-m", "gan2x.cli", "serve", "--port", "0", "--data-dir", str(self.data_dir),
                   "--token-file", str(self.token_file), "--preview-interval", "1", *self.extra_args]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gan2x serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                details = json.loads(info.read_text())
                if details["pid"] == self.process.pid:
                    self.url = details["url"]
                    if httpx.get(self.url + "/v1/health", timeout=5).status_code == 200:
                        return self
            except (OSError, ValueError, KeyError, httpx.HTTPError):
                pass
            time.sleep(0.1)
        raise TimeoutError(f"gan2x serve did not come up in {timeout} s:\n{self.log()}")

    @property
    def token(self) -> str:
        return self.token_file.read_text().strip()

    def client(self, token: str | None = "default") -> httpx.Client:
        headers = {}
        if token == "default":
            token = self.token
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        self.process.send_signal(sig)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_for_job(client: httpx.Client, job_id: str, until: Callable[[dict], bool], timeout: float = 120.0,
                 seen: list | None = None) -> dict:
    """Polls the job every 0.1 s until ``until(job)``; ``seen`` collects every status read."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job = response.json()
        if seen is not None:
            seen.append(job)
        if until(job):
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} did not reach the condition in {timeout} s; last: {job}")
        time.sleep(0.1)


def finished(job: dict) -> bool:
    return job["state"] in FINAL_STATES


def running_with_progress(job: dict) -> bool:
    if job["state"] in FINAL_STATES:
        raise AssertionError(f"job ended before it could be caught running: {job}")
    return job["state"] == "running" and job["progress"]["step"] >= 1


def process_is_gone(pid: int, timeout: float = 15.0) -> bool:
    """True once ``pid`` no longer exists (or is a zombie nobody reaped yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return True
        if "\nState:\tZ" in status:
            return True
        time.sleep(0.05)
    return False
