"""Cropping a photo to the generator's framing.

A GAN was trained on aligned crops (a face centred and filling the frame,
a car in the middle); the photo has to be cut the same way. The crop is a
square of side ``scale * min(width, height)`` pixels centred at
``(centre_x * width, centre_y * height)`` (fractions, 0.5 = the middle;
y grows downwards), then resized to the generator's ``R x R`` with a
Lanczos filter. The crop must lie inside the photo and hold at least ``R``
pixels a side (a crop is never upscaled: the fit would chase blur).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch


class PhotoError(ValueError):
    """A photo, or a crop of it, that cannot be used (with what to change)."""


@dataclass
class CropSettings:
    centre_x: float = 0.5
    """Crop centre, a fraction of the photo's width from the left."""
    centre_y: float = 0.5
    """Crop centre, a fraction of the photo's height from the top."""
    scale: float = 1.0
    """Crop side as a fraction of the photo's shorter side, in (0, 1]."""

    def to_dict(self) -> dict:
        return asdict(self)


def load_photo(path) -> np.ndarray:
    """[H, W, 3] float32 sRGB in [0, 1] (alpha dropped, greyscale expanded)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no photo at {path}")
    try:
        with Image.open(path) as image:
            image.load()
            rgb = image.convert("RGB")
    except (UnidentifiedImageError, OSError) as error:
        raise PhotoError(f"{path}: not a readable image ({error}); use a PNG or JPEG") from error
    return np.asarray(rgb, dtype=np.float32) / 255.0


def crop_box(width: int, height: int, crop: CropSettings) -> tuple[int, int, int]:
    """(left, top, side) in pixels; ``PhotoError`` when it leaves the photo."""
    if not 0.0 < crop.scale <= 1.0:
        raise PhotoError(f"crop scale must be in (0, 1], got {crop.scale}")
    side = int(round(crop.scale * min(width, height)))
    left = int(round(crop.centre_x * width - side / 2))
    top = int(round(crop.centre_y * height - side / 2))
    if left < 0 or top < 0 or left + side > width or top + side > height:
        half_x, half_y = side / 2 / width, side / 2 / height
        raise PhotoError(
            f"the {side}x{side} px crop centred at ({crop.centre_x:.3f}, {crop.centre_y:.3f}) leaves the "
            f"{width}x{height} photo; with scale {crop.scale} keep centre_x in [{half_x:.3f}, {1 - half_x:.3f}] "
            f"and centre_y in [{half_y:.3f}, {1 - half_y:.3f}], or lower the scale")
    return left, top, side


def crop_for_generator(photo: np.ndarray, resolution: int, crop: CropSettings | None = None) -> torch.Tensor:
    """The photo's crop as the generator's image: [3, R, R] sRGB-encoded in [-1, 1]."""
    from PIL import Image

    crop = crop or CropSettings()
    height, width = photo.shape[:2]
    left, top, side = crop_box(width, height, crop)
    if side < resolution:
        raise PhotoError(
            f"the crop is {side}x{side} px but the generator makes {resolution}x{resolution} images: the crop "
            f"needs at least {resolution} px a side. Use a larger photo, a larger crop scale (now {crop.scale}), "
            "or a generator of lower resolution")
    pixels = (photo[top:top + side, left:left + side] * 255.0 + 0.5).clip(0, 255).astype(np.uint8)
    resized = Image.fromarray(pixels, "RGB").resize((resolution, resolution), Image.LANCZOS)
    values = torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0).permute(2, 0, 1)
    return values * 2.0 - 1.0
