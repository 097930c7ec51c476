"""PNG writers and readers for the bundle's textures and images (Pillow).

Encodings (docs/bundle.md):

* albedo: RGB 8-bit sRGB, ``round(255 * srgb_from_linear(a))``;
* target / re-render images: RGB 8-bit, already sRGB-encoded floats in
  [0, 1], ``round(255 * x)``;
* specular: grey 16-bit, ``round(65535 * ks / scale)``;
* shininess: grey 16-bit, ``round(65535 * encode_shininess(n))`` (log scale
  between conventions.SHININESS_MIN and SHININESS_MAX);
* mask: grey 8-bit, ``round(255 * m)``, 255 = object;
* normal map: RGB 8-bit, ``round((n + 1) / 2 * 255)``; flat = (128, 128, 255);
* ambient occlusion (optional): grey 8-bit, linear, ``round(255 * ao)``,
  255 = unoccluded.

Arrays are [H, W(, C)] with row 0 at the top. Writers take float arrays,
readers return float arrays (float32) in the writer's units, and check the
file's mode and bit depth (16-bit files are read back through Pillow mode
"I;16" and the PNG header's bit depth).
"""
from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
from PIL import Image

from .. import conventions
from .datatypes import BundleError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_TYPES = {0: "grey", 2: "RGB", 3: "palette", 4: "grey+alpha", 6: "RGBA"}


# --- header -----------------------------------------------------------------------

def png_info(path) -> dict:
    """width, height, bit_depth and colour ('grey', 'RGB', ...) from a PNG's
    IHDR chunk. Raises BundleError naming the file when it is not a PNG."""
    path = Path(path)
    try:
        with open(path, "rb") as stream:
            head = stream.read(8 + 8 + 13)
    except OSError as error:
        raise BundleError("{}: cannot read ({})".format(path, error)) from None
    if len(head) < 29 or head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
        raise BundleError("{}: not a PNG file".format(path))
    width, height, bit_depth, colour_type = struct.unpack(">IIBB", head[16:26])
    return {"width": width, "height": height, "bit_depth": bit_depth,
            "colour": _COLOUR_TYPES.get(colour_type, "unknown({})".format(colour_type))}


# --- encoders (float -> integer arrays) -----------------------------------------------

def _check(array, ndim: int, channels: int | None, name: str) -> np.ndarray:
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != ndim or (channels is not None and array.shape[-1] != channels):
        raise ValueError("{} must have shape [H, W{}], found {}".format(
            name, ", {}".format(channels) if channels else "", array.shape))
    if not np.all(np.isfinite(array)):
        raise ValueError("{} holds non-finite values".format(name))
    return array


def quantize8(values) -> np.ndarray:
    """[0, 1] floats -> uint8 with rounding (clipped)."""
    return np.round(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)


def quantize16(values) -> np.ndarray:
    """[0, 1] floats -> uint16 with rounding (clipped)."""
    return np.round(np.clip(values, 0.0, 1.0) * 65535.0).astype(np.uint16)


def encode_normal(normals) -> np.ndarray:
    """Tangent-space unit normals [H, W, 3] -> uint8 ``round((n + 1) / 2 * 255)``."""
    normals = _check(normals, 3, 3, "normal map")
    return np.round(np.clip((normals + 1.0) * 0.5, 0.0, 1.0) * 255.0).astype(np.uint8)


def png_bytes(array: np.ndarray) -> bytes:
    """uint8 [H, W, 3] / uint8 [H, W] / uint16 [H, W] -> PNG file bytes."""
    buffer = io.BytesIO()
    _image(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _image(array: np.ndarray) -> Image.Image:
    array = np.ascontiguousarray(array)
    if array.dtype == np.uint16 and array.ndim == 2:
        image = Image.fromarray(array)  # mode "I;16"
        if image.mode != "I;16":
            raise RuntimeError("Pillow made mode {} from uint16, expected I;16".format(image.mode))
        return image
    if array.dtype == np.uint8 and (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        return Image.fromarray(array)
    raise ValueError("cannot write a {} array of shape {} as PNG".format(array.dtype, array.shape))


def _save(path, array: np.ndarray, bit_depth: int) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _image(array).save(path, format="PNG")
    info = png_info(path)
    if info["bit_depth"] != bit_depth:
        raise BundleError("{}: written with {}-bit channels, expected {}-bit".format(
            path, info["bit_depth"], bit_depth))
    return path


# --- writers ----------------------------------------------------------------------------

def write_albedo_png(path, linear_rgb) -> Path:
    """Linear albedo [H, W, 3] in [0, 1] -> RGB 8-bit sRGB PNG."""
    linear_rgb = _check(linear_rgb, 3, 3, "albedo")
    return _save(path, quantize8(conventions.srgb_from_linear(linear_rgb)), 8)


def write_srgb_png(path, srgb_rgb) -> Path:
    """Already sRGB-encoded colours [H, W, 3] in [0, 1] -> RGB 8-bit PNG."""
    return _save(path, quantize8(_check(srgb_rgb, 3, 3, "image")), 8)


def write_grey16_png(path, values) -> Path:
    """[H, W] in [0, 1] -> grey 16-bit PNG (``round(65535 * v)``)."""
    return _save(path, quantize16(_check(values, 2, None, "16-bit texture")), 16)


def write_specular_png(path, specular, scale: float = 1.0) -> Path:
    """Phong ks [H, W] -> grey 16-bit, ``ks = scale * value / 65535``."""
    return write_grey16_png(path, _check(specular, 2, None, "specular") / scale)


def write_shininess_png(path, shininess) -> Path:
    """Phong exponent [H, W] -> grey 16-bit log encoding (conventions.encode_shininess)."""
    return write_grey16_png(path, conventions.encode_shininess(_check(shininess, 2, None, "shininess")))


def write_mask_png(path, mask) -> Path:
    """Mask [H, W] in [0, 1] -> grey 8-bit, 255 = object."""
    return _save(path, quantize8(_check(mask, 2, None, "mask")), 8)


def write_normal_png(path, normals) -> Path:
    """Tangent-space normals [H, W, 3] -> RGB 8-bit ``round((n + 1) / 2 * 255)``."""
    return _save(path, encode_normal(normals), 8)


def write_ambient_occlusion_png(path, ambient_occlusion) -> Path:
    """Unoccluded fraction [H, W] in [0, 1] -> grey 8-bit linear, 255 = open."""
    return _save(path, quantize8(_check(ambient_occlusion, 2, None, "ambient occlusion")), 8)


# --- readers ----------------------------------------------------------------------------

def _load(path, mode: str, bit_depth: int) -> np.ndarray:
    path = Path(path)
    info = png_info(path)
    if info["bit_depth"] != bit_depth:
        raise BundleError("{}: has {}-bit channels, expected {}-bit".format(path, info["bit_depth"], bit_depth))
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode != mode:
                raise BundleError("{}: Pillow mode {}, expected {}".format(path, image.mode, mode))
            return np.array(image)
    except BundleError:
        raise
    except (OSError, ValueError) as error:
        raise BundleError("{}: cannot decode the PNG ({})".format(path, error)) from None


def read_srgb_png(path) -> np.ndarray:
    """RGB 8-bit PNG -> [H, W, 3] float32 sRGB-encoded values in [0, 1]."""
    return (_load(path, "RGB", 8).astype(np.float32) / 255.0).astype(np.float32)


def read_albedo_png(path) -> np.ndarray:
    """RGB 8-bit sRGB PNG -> linear albedo [H, W, 3] float32."""
    return conventions.linear_from_srgb(read_srgb_png(path).astype(np.float64)).astype(np.float32)


def read_grey16_png(path) -> np.ndarray:
    """Grey 16-bit PNG -> [H, W] float32 ``value / 65535``."""
    return (_load(path, "I;16", 16).astype(np.float64) / 65535.0).astype(np.float32)


def read_specular_png(path, scale: float = 1.0) -> np.ndarray:
    """Grey 16-bit -> Phong ks [H, W] float32."""
    return (read_grey16_png(path) * scale).astype(np.float32)


def read_shininess_png(path) -> np.ndarray:
    """Grey 16-bit log-encoded -> Phong exponent [H, W] float32."""
    return conventions.decode_shininess(read_grey16_png(path).astype(np.float64)).astype(np.float32)


def read_mask_png(path) -> np.ndarray:
    """Grey 8-bit -> mask [H, W] float32 in [0, 1]."""
    return (_load(path, "L", 8).astype(np.float32) / 255.0).astype(np.float32)


def read_ambient_occlusion_png(path) -> np.ndarray:
    """Grey 8-bit -> unoccluded fraction [H, W] float32 ``value / 255``."""
    return (_load(path, "L", 8).astype(np.float32) / 255.0).astype(np.float32)


def read_normal_png(path) -> np.ndarray:
    """RGB 8-bit -> tangent-space vectors [H, W, 3] float32 ``2 * value / 255 - 1``."""
    return (2.0 * _load(path, "RGB", 8).astype(np.float32) / 255.0 - 1.0).astype(np.float32)
