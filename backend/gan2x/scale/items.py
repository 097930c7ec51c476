"""What a batch converts: ``BatchItem``, one bundle each.

An item is a generator's seed (``seed_items``) or an image fitted as a
photo (``image_items``: a folder of images or a text file listing them), or
either with its own generator (``read_items_file``: JSON lines). Each item's
``name`` is its bundle's folder under ``--out``: ``seed_000123`` for a seed,
the file's stem for an image, or the name the items file gives. Image paths
are made absolute here, on the driver: every node must reach them at that
path (docs/scale.md, "Shared output"). No torch, no Ray.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

from .. import config

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
"""The image files a folder given to ``--images`` contributes (as ``gan2x convert --images``)."""

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
"""An item's name, its bundle's folder: starts with a letter or digit (so
never hidden like ``.gan2x-batch``), at most 128 characters."""
RESERVED_NAMES = ("summary.json",)
WRITER_MARKERS = (".tmp-", ".old-")
"""Name parts of the bundle writer's temporary and retired folders
(``export.bundle.write_bundle``); no item's name holds them, so no
temporary folder is ever taken for an item's bundle."""


@dataclass(frozen=True)
class BatchItem:
    """One bundle to make: ``seed`` of ``generator``, or the photo ``image``."""
    name: str
    generator: str
    seed: Optional[int] = None
    image: Optional[str] = None
    """An absolute path (every node reads it there)."""

    def source(self) -> dict:
        """What the summary records of the item's source."""
        if self.image is not None:
            return {"kind": "image", "generator": self.generator, "image": self.image}
        return {"kind": "sample", "generator": self.generator, "seed": self.seed}


def seed_name(seed: int) -> str:
    return f"seed_{seed:06d}"


def check_name(name: str, where: str = "") -> str:
    """``name`` if it may name an item's bundle folder, else ValueError."""
    prefix = f"{where}: " if where else ""
    if not isinstance(name, str) or not NAME.fullmatch(name) or name in RESERVED_NAMES \
            or any(marker in name for marker in WRITER_MARKERS):
        raise ValueError(f"{prefix}item name {name!r}: use letters, digits, '.', '_', '-' (at most 128, "
                         f"starting with a letter or digit, without {' or '.join(WRITER_MARKERS)}; "
                         f"not {', '.join(RESERVED_NAMES)})")
    return name


def image_name(path: Path) -> str:
    """The bundle folder of an image: its stem with anything but letters,
    digits, '.', '_' and '-' replaced by '_'."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", path.stem).strip(".") or "image"
    if not name[0].isalnum():
        name = "image" + name
    for marker in WRITER_MARKERS:
        name = name.replace(marker, marker.replace("-", "_"))
    return name[:128] if name not in RESERVED_NAMES else name + "_"


def seed_items(generator: str, seeds: Iterable[int]) -> list[BatchItem]:
    items = [BatchItem(name=seed_name(seed), generator=generator, seed=int(config.SEED.check(int(seed), "seed")))
             for seed in seeds]
    return check_unique(items)


def image_items(generator: str, source) -> list[BatchItem]:
    """A folder's images (``IMAGE_SUFFIXES``, by name) or a text file's list:
    one path a line, relative paths from the file's folder; blank lines and
    lines starting with '#' are skipped."""
    source = Path(source).expanduser()
    if source.is_dir():
        paths = sorted(path for path in source.iterdir() if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise ValueError(f"--images {source}: no PNG, JPEG or WEBP images in this folder")
    elif source.is_file():
        paths = []
        for line in _lines(source):
            path = Path(line).expanduser()
            paths.append(path if path.is_absolute() else source.parent / path)
        if not paths:
            raise ValueError(f"--images {source}: the list names no images")
    else:
        raise FileNotFoundError(f"--images {source}: no such folder or file")
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"--images {source}: {path} is not a file")
    items = [BatchItem(name=image_name(path), generator=generator, image=str(path.resolve())) for path in paths]
    return check_unique(items)


def read_items_file(path, default_generator: str = config.DEFAULT_GENERATOR) -> list[BatchItem]:
    """A JSON-lines file, one item a line: ``{"seed": 7}`` or ``{"image":
    "photo.jpg"}``, optionally with ``"generator": SPEC`` (default
    ``default_generator``) and ``"name"`` (default: ``seed_000007``, the
    image's stem). Relative image paths are from the file's folder."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"--items {path}: no such file")
    items = []
    for number, line in enumerate(_lines(path), start=1):
        where = f"{path}, line {number}"
        try:
            entry = json.loads(line)
        except ValueError as error:
            raise ValueError(f"{where}: not JSON ({error})") from None
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected an object such as {{\"seed\": 7}} or {{\"image\": \"a.png\"}}")
        unknown = sorted(set(entry) - {"seed", "image", "generator", "name"})
        if unknown:
            raise ValueError(f"{where}: unknown keys {unknown}; items have seed or image, generator, name")
        generator = entry.get("generator", default_generator)
        if not isinstance(generator, str) or not generator.strip():
            raise ValueError(f"{where}: generator must be a spec string")
        if ("seed" in entry) == ("image" in entry):
            raise ValueError(f"{where}: give either seed or image")
        if "seed" in entry:
            seed = entry["seed"]
            if isinstance(seed, bool) or not isinstance(seed, int):
                raise ValueError(f"{where}: seed must be an integer")
            config.SEED.check(seed, f"{where}: seed")
            name = entry.get("name", seed_name(seed))
            items.append(BatchItem(name=check_name(name, where), generator=generator, seed=seed))
        else:
            image = Path(str(entry["image"])).expanduser()
            image = image if image.is_absolute() else path.parent / image
            if not image.is_file():
                raise FileNotFoundError(f"{where}: {image} is not a file")
            name = entry.get("name", image_name(image))
            items.append(BatchItem(name=check_name(name, where), generator=generator, image=str(image.resolve())))
    if not items:
        raise ValueError(f"--items {path}: no items")
    return check_unique(items)


def check_unique(items: list[BatchItem]) -> list[BatchItem]:
    """``items``, if no two share a name (a bundle folder), else ValueError naming both."""
    seen: dict[str, BatchItem] = {}
    for item in items:
        check_name(item.name)
        if item.name in seen:
            raise ValueError(f"two items would write the same bundle {item.name!r}: {seen[item.name].source()} "
                             f"and {item.source()}; rename one (an --items file can name each)")
        seen[item.name] = item
    return items


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.strip().startswith("#")]
