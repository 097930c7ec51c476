"""The service's settings: where it listens, where it keeps its data and
token, how many workers run fits and on which device, and the input limits.

Defaults follow the XDG base directories:

- data: ``$GAN2X_DATA_DIR``, else ``$XDG_DATA_HOME/gan2x/service``, else
  ``~/.local/share/gan2x/service``;
- token: ``$GAN2X_TOKEN_FILE``, else ``$XDG_CONFIG_HOME/gan2x/token``, else
  ``~/.config/gan2x/token``.
"""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from .generators import ListedGenerator

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
MIB = 1024 * 1024


def default_data_dir() -> Path:
    if os.environ.get("GAN2X_DATA_DIR"):
        return Path(os.environ["GAN2X_DATA_DIR"]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "gan2x" / "service"


def default_token_file() -> Path:
    if os.environ.get("GAN2X_TOKEN_FILE"):
        return Path(os.environ["GAN2X_TOKEN_FILE"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "gan2x" / "token"


def default_worker_threads(workers: int) -> int:
    """CPU threads for each worker's torch: the cores shared among the
    workers, one core kept free for the HTTP server."""
    cores = os.cpu_count() or 1
    return max(1, (cores - 1) // max(1, workers))


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: assume it is reachable from elsewhere


@dataclass
class UploadLimits:
    max_bytes: int = 20 * MIB
    """Largest accepted upload body, in bytes."""
    max_pixels: int = 4096 * 4096
    """Largest accepted width * height (checked from the header, before decoding)."""
    min_side: int = 16
    """Smallest accepted width or height, in pixels."""
    formats: tuple[str, ...] = ("PNG", "JPEG", "WEBP")
    """Image formats accepted (PIL's names); anything else is refused."""


@dataclass
class ServiceConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    """0 picks a free port; the chosen one is written to ``service.json``."""
    data_dir: Path = field(default_factory=default_data_dir)
    token_file: Path = field(default_factory=default_token_file)
    require_token: bool = True
    """False (``--no-token``) is allowed on a loopback address only."""
    workers: int = 1
    """Fits that run at once, each in its own process (one per GPU); 0 queues
    jobs and runs none."""
    device: str = "cpu"
    """Torch device of the fits: cpu, cuda, cuda:N, mps. With ``cuda`` and
    several GPUs, worker i uses cuda:(i mod count)."""
    executor: str = "local"
    """Where workers run (``executors.parse_executor``): ``local`` processes,
    or Ray tasks: ``ray`` (a Ray instance started on this machine) or
    ``ray:ADDRESS`` (a cluster; the data directory must be shared, docs/scale.md)."""
    gpus_per_job: float = 1.0
    """GPUs a job's Ray task asks for when the device is cuda (fractions
    share a GPU between fits); local workers ignore it."""
    worker_threads: int | None = None
    """torch.set_num_threads in each worker; None: ``default_worker_threads``."""
    worker_nice: int = 10
    """Niceness added to each worker process, so the HTTP server stays responsive."""
    uploads: UploadLimits = field(default_factory=UploadLimits)
    max_json_bytes: int = 1 * MIB
    """Largest JSON request body, in bytes."""
    preview_interval_s: float = 5.0
    """Seconds between preview renders of a running fit (each costs about a
    third of a second at 64x64 on one CPU core)."""
    preview_resolution: int = 64
    """Preview image size, pixels a side."""
    max_interruptions: int = 2
    """A job whose run was cut by a service stop is requeued; after this many
    such interruptions it is marked ``interrupted`` instead."""
    cancel_grace_s: float = 3.0
    """After SIGTERM, seconds before a cancelled worker gets SIGKILL."""
    access_log: bool = False
    generators: tuple[ListedGenerator, ...] = ()
    """Generators clients may ask for besides the built-in specs (``--generator
    [NAME=]SPEC``, ``generators.GeneratorAllowList``); each is loaded once at start."""

    def resolved_worker_threads(self) -> int:
        return self.worker_threads or default_worker_threads(self.workers)

    def check(self) -> None:
        """Raises ValueError, with what to do, for settings the service refuses."""
        if not self.require_token and not is_loopback(self.host):
            raise ValueError(
                f"refusing to listen on {self.host} without a token: anyone who can reach it could run "
                "jobs. Drop --no-token (the token is then required), or bind to 127.0.0.1 and use an "
                "SSH tunnel (docs/service.md)")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is out of range 0..65535")
        if self.workers < 0:
            raise ValueError(f"workers must be 0 or more, not {self.workers}")
        from .executors import parse_executor

        parse_executor(self.executor)
        if not 0 < self.gpus_per_job <= 64:
            raise ValueError(f"GPUs per job must be more than 0 (fractions allowed), not {self.gpus_per_job}")
        if self.worker_threads is not None and self.worker_threads < 1:
            raise ValueError(f"worker threads must be 1 or more, not {self.worker_threads}")
        if self.uploads.max_bytes < 1024:
            raise ValueError("the upload limit must be at least 1 KiB")
        if self.uploads.max_pixels < self.uploads.min_side ** 2:
            raise ValueError(f"the pixel limit must be at least {self.uploads.min_side ** 2}")
        if self.preview_interval_s <= 0:
            raise ValueError("the preview interval must be positive")
