"""Headless render helpers: a quick deterministic Cycles set-up on the CPU and
a render read back as a linear float array.

The Render Result's pixels cannot be read from Python, so the render is
saved as a 32-bit OpenEXR (linear, no view transform) to a temporary file
and loaded back with ``bpy.data.images.load``.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import bpy
import numpy as np


def configure_cycles(scene, *, width: int = 64, height: int | None = None, samples: int = 16,
                     film_transparent: bool = False, seed: int = 0) -> None:
    """Cycles on the CPU, ``samples`` per pixel, no denoiser, a fixed seed,
    the 'Standard' view transform (linear -> sRGB, no tone curve), and a
    ``width`` x ``height`` (default square) render at 100%."""
    scene.render.engine = "CYCLES"
    cycles = scene.cycles
    cycles.device = "CPU"
    cycles.samples = samples
    cycles.use_adaptive_sampling = False
    cycles.use_denoising = False
    cycles.seed = seed
    cycles.use_animated_seed = False
    scene.render.film_transparent = film_transparent
    scene.render.resolution_x = width
    scene.render.resolution_y = height or width
    scene.render.resolution_percentage = 100
    scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0
    scene.display_settings.display_device = "sRGB"
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"
    scene.view_settings.exposure = 0.0
    scene.view_settings.gamma = 1.0


def _save_render(scene, path: Path, file_format: str, color_depth: str) -> None:
    """Saves the last render with temporary output settings."""
    settings = scene.render.image_settings
    previous = (settings.file_format, settings.color_mode, settings.color_depth)
    try:
        settings.file_format = file_format
        settings.color_mode = "RGBA"
        settings.color_depth = color_depth
        if file_format == "OPEN_EXR":
            settings.exr_codec = "ZIP"
        bpy.data.images["Render Result"].save_render(str(path), scene=scene)
    finally:
        settings.file_format = previous[0]
        settings.color_mode = previous[1]
        settings.color_depth = previous[2]


def render_to_arrays(scene, *, png_path=None) -> np.ndarray:
    """Renders ``scene`` from its camera and returns linear RGBA, float32
    [H, W, 4], row 0 at the top. With ``png_path`` the same render is also
    written there as an 8-bit sRGB PNG through the scene's view transform."""
    if scene.camera is None:
        raise RuntimeError("the scene has no camera to render from")
    bpy.ops.render.render(write_still=False, scene=scene.name)
    with tempfile.TemporaryDirectory(prefix="gan2x-render-") as directory:
        exr_path = Path(directory) / "render.exr"
        _save_render(scene, exr_path, "OPEN_EXR", "32")
        image = bpy.data.images.load(str(exr_path), check_existing=False)
        try:
            image.colorspace_settings.name = "Non-Color"  # keep the file's linear values
            width, height = image.size
            pixels = np.empty(width * height * 4, dtype=np.float32)
            image.pixels.foreach_get(pixels)
        finally:
            bpy.data.images.remove(image)
    if png_path is not None:
        os.makedirs(os.path.dirname(os.path.abspath(png_path)), exist_ok=True)
        _save_render(scene, Path(png_path), "PNG", "8")
    # Blender's pixel rows start at the bottom.
    return np.ascontiguousarray(pixels.reshape(height, width, 4)[::-1])
