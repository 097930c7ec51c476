"""The bundle's target camera as a Blender camera."""
from __future__ import annotations

import bpy
import numpy as np
from mathutils import Matrix

from ..bundle import conventions


def create_camera(bundle, name: str, collection, rollback) -> bpy.types.Object:
    """Camera object at the bundle camera's pose with its vertical field of
    view (sensor fit VERTICAL, no lens shift: the principal point is the
    image centre)."""
    bundle_camera = bundle.camera
    data = rollback.created_id(bpy.data.cameras.new(name))
    data.type = "PERSP"
    data.sensor_fit = "VERTICAL"
    data.angle_y = conventions.camera_angle_y(bundle_camera.fov_y_degrees)
    data.shift_x = data.shift_y = 0.0
    distance = float(np.linalg.norm(bundle_camera.world_from_camera[:3, 3]))
    data.clip_start = 0.05
    data.clip_end = max(100.0, 4.0 * distance)
    camera = rollback.created_id(bpy.data.objects.new(name, data))
    camera.matrix_world = Matrix(conventions.blender_camera_matrix(bundle_camera.world_from_camera).tolist())
    collection.objects.link(camera)
    return camera


def make_active(scene, camera, bundle, rollback, set_resolution: bool = True) -> None:
    """``camera`` becomes the scene camera; with ``set_resolution`` the render
    size becomes the bundle image's size (100%, square pixels)."""
    rollback.set(scene, "camera", camera)
    if set_resolution:
        render = scene.render
        rollback.set(render, "resolution_x", bundle.camera.image_width)
        rollback.set(render, "resolution_y", bundle.camera.image_height)
        rollback.set(render, "resolution_percentage", 100)
        rollback.set(render, "pixel_aspect_x", 1.0)
        rollback.set(render, "pixel_aspect_y", 1.0)
