"""Load benchmark of ``gan2x serve`` on loopback: status polling during a fit,
then a queue of many tiny jobs.

Starts the real service (a subprocess on a free loopback port, a throwaway
token and data directory, one worker), then

1. **polling during a fit**: submits a draft fit, waits until it is past its
   first steps, and lets ``--clients`` threads poll ``GET /v1/jobs/{id}``
   for ``--seconds`` seconds, each over its own keep-alive connection, every
   ``--interval`` seconds (0: back to back, as fast as the service answers).
   Reports requests/s, latency percentiles (measured by the client, request
   sent to response read), errors, and the fit's pace in steps/s while
   polled and in the 5 s before, unpolled (polling starts once the fit is in
   its exploitation phase, whose steps cost alike; it must still be running
   at the end, or the figures are not "during a fit"). The fit is then
   cancelled;
2. **a queue of tiny jobs**: submits ``--jobs`` tiny jobs as one batch,
   waits for the batch to finish, and checks every job succeeded and every
   bundle zip downloads. Reports the wall time and jobs per minute.

    .venv/bin/python benchmarks/service_load.py [--clients 8] [--seconds 20] [--interval 0]
                                                [--jobs 50] [--json out.json]

Every request stays on 127.0.0.1; each phase is bounded in time and stops
by itself. Figures and the command line go to docs/service.md.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

DRAFT_FIT = {"preset": "draft", "steps_scale": 1.0, "mesh_resolution": 64, "texture_size": 256}
TINY_JOB = {"preset": "draft", "steps_scale": 0.01, "stages": 1, "pseudo_samples": 1, "mesh_resolution": 32,
            "texture_size": 64}


class Service:
    """``gan2x serve`` in a subprocess, and a tiny JSON client for it."""

    def __init__(self, root: Path, workers: int):
        self.root = root
        self.data_dir = root / "data"
        self.token_file = root / "token"
        command = [sys.executable, "-m", "gan2x.cli", "serve", "--port", "0", "--data-dir", str(self.data_dir),
                   "--token-file", str(self.token_file), "--workers", str(workers)]
        self.log = open(root / "service.log", "wb")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while True:
            try:
                info = json.loads((self.data_dir / "service.json").read_text())
                if info["pid"] == self.process.pid:
                    break
            except (OSError, ValueError, KeyError):
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the service did not start; see " + str(root / "service.log"))
            time.sleep(0.1)
        address = urlsplit(info["url"])
        self.host, self.port = address.hostname, address.port
        self.headers = {"Authorization": "Bearer " + self.token_file.read_text().strip(),
                        "Content-Type": "application/json"}
        while self.request("GET", "/v1/health")[0] != 200:
            time.sleep(0.1)

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=30)

    def request(self, method: str, path: str, body=None, connection=None):
        own = connection is None
        connection = connection or self.connection()
        try:
            connection.request(method, path, body=None if body is None else json.dumps(body), headers=self.headers)
            response = connection.getresponse()
            content = response.read()
            return response.status, (json.loads(content) if content and response.getheader("content-type", "")
                                     .startswith("application/json") else content)
        finally:
            if own:
                connection.close()

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def poll_during_fit(service: Service, clients: int, seconds: float, interval: float) -> dict:
    status, job = service.request("POST", "/v1/jobs", {"source": {"kind": "sample", "generator": "synthetic:faces",
                                                                  "seed": 2}, "settings": DRAFT_FIT})
    assert status == 201, job
    path = f"/v1/jobs/{job['id']}"
    deadline = time.monotonic() + 120
    while True:  # wait until the fit is in its longest phase, exploitation, whose steps all cost the same
        job = service.request("GET", path)[1]
        if job["state"] == "running" and "exploitation" in (job["progress"]["stage"] or ""):
            break
        if job["state"] not in ("queued", "running") or time.monotonic() > deadline:
            raise RuntimeError(f"the fit did not get going: {job}")
        time.sleep(0.2)
    # The fit's pace with nobody polling, to compare with its pace under the load.
    quiet_seconds = 5.0
    step_before, stage_before = job["progress"]["step"], job["progress"]["stage"]
    time.sleep(quiet_seconds)
    job = service.request("GET", path)[1]
    quiet_steps_per_s = (job["progress"]["step"] - step_before) / quiet_seconds
    step_before = job["progress"]["step"]

    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    stop_at = time.monotonic() + seconds

    def client(index: int) -> None:
        connection = service.connection()
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            try:
                status, _ = service.request("GET", path, connection=connection)
                if status != 200:
                    errors[index] += 1
            except (OSError, http.client.HTTPException):
                errors[index] += 1
                connection.close()
                connection = service.connection()
            latencies[index].append(time.perf_counter() - started)
            if interval > 0:
                time.sleep(max(0.0, interval - (time.perf_counter() - started)))
        connection.close()

    threads = [threading.Thread(target=client, args=(index,)) for index in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    job = service.request("GET", path)[1]
    service.request("POST", path + "/cancel")
    every = sorted(value for values in latencies for value in values)
    return {
        "clients": clients, "seconds": round(elapsed, 1), "interval_s": interval, "requests": len(every),
        "errors": sum(errors), "requests_per_s": round(len(every) / elapsed, 1),
        "latency_ms": {name: round(1000 * percentile(every, fraction), 2)
                       for name, fraction in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))},
        "latency_ms_mean": round(1000 * statistics.fmean(every), 2),
        "fit_state_at_end": job["state"], "fit_steps_during": job["progress"]["step"] - step_before,
        "fit_total_steps": job["progress"]["total_steps"],
        "fit_steps_per_s_unpolled_5s_before": round(quiet_steps_per_s, 2),
        "fit_steps_per_s_polled": round((job["progress"]["step"] - step_before) / elapsed, 2),
        "fit_stages": [stage_before, job["progress"]["stage"]],
    }


def run_queue(service: Service, count: int, timeout: float) -> dict:
    sources = [{"kind": "sample", "generator": "synthetic:faces" if seed % 2 else "synthetic:objects", "seed": seed}
               for seed in range(count)]
    began = time.monotonic()
    status, batch = service.request("POST", "/v1/batches", {"sources": sources, "settings": TINY_JOB})
    assert status == 201, batch
    path = f"/v1/batches/{batch['id']}"
    while batch["state"] == "active":
        if time.monotonic() - began > timeout:
            break
        time.sleep(1.0)
        batch = service.request("GET", path)[1]
    elapsed = time.monotonic() - began
    downloadable = 0
    for item in batch["items"]:
        if item["state"] == "succeeded":
            status, content = service.request("GET", item["result"]["bundle_url"])
            downloadable += status == 200 and len(content) == item["result"]["bundle_bytes"]
    return {"jobs": count, "counts": {state: n for state, n in batch["counts"].items() if n},
            "bundles_downloaded": downloadable, "finished": batch["state"] == "finished",
            "seconds": round(elapsed, 1), "jobs_per_minute": round(60 * count / elapsed, 1),
            "lost": count - len(batch["items"])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent polling clients (default: 8)")
    parser.add_argument("--seconds", type=float, default=20.0, help="polling time (default: 20)")
    parser.add_argument("--interval", type=float, default=0.0,
                        help="seconds between one client's polls; 0: back to back (default: 0)")
    parser.add_argument("--jobs", type=int, default=50, help="tiny jobs in the queue phase; 0 skips it (default: 50)")
    parser.add_argument("--queue-timeout", type=float, default=1800.0, help="give the queue up after this (s)")
    parser.add_argument("--workers", type=int, default=1, help="the service's --workers (default: 1)")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="gan2x-service-load-"))
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    service = Service(root, args.workers)
    results = {"command": " ".join(sys.argv), "cores": os.cpu_count(), "load_average_before": load_before}
    try:
        print(f"polling during a fit: {args.clients} clients, {args.seconds:.0f} s, interval {args.interval} s ...",
              flush=True)
        results["polling"] = poll_during_fit(service, args.clients, args.seconds, args.interval)
        print(json.dumps(results["polling"], indent=2), flush=True)
        if args.jobs:
            print(f"queue: {args.jobs} tiny jobs in one batch ...", flush=True)
            results["queue"] = run_queue(service, args.jobs, args.queue_timeout)
            print(json.dumps(results["queue"], indent=2), flush=True)
        results["load_average_after"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    finally:
        service.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    ok = results["polling"]["errors"] == 0 and results["polling"]["fit_state_at_end"] == "running"
    if "queue" in results:
        queue = results["queue"]
        ok = ok and queue["counts"].get("succeeded") == args.jobs and queue["bundles_downloaded"] == args.jobs
    shutil.rmtree(root, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
