"""The bundle mesh as a Blender mesh object, built with bulk array calls."""
from __future__ import annotations

import bpy
import numpy as np

from ..bundle import conventions

UV_MAP_NAME = "UVMap"


def create_mesh(bundle, name: str, rollback) -> bpy.types.Mesh:
    """Mesh datablock in Blender's frame (vertices and normals rotated by
    BLENDER_FROM_BUNDLE), one UV map, smooth shading with the bundle's
    normals as custom split normals."""
    vertices = conventions.blender_points(bundle.vertices)
    normals = conventions.blender_points(bundle.normals)
    faces = bundle.faces
    corner_count = faces.size

    mesh = rollback.created_id(bpy.data.meshes.new(name))
    mesh.vertices.add(len(vertices))
    mesh.vertices.foreach_set("co", vertices.ravel())
    mesh.loops.add(corner_count)
    mesh.loops.foreach_set("vertex_index", faces.ravel())
    mesh.polygons.add(len(faces))
    mesh.polygons.foreach_set("loop_start", np.arange(0, corner_count, 3, dtype=np.int32))

    # UVs are per vertex in the bundle, per face corner in Blender.
    uv_layer = mesh.uv_layers.new(name=UV_MAP_NAME)
    uv_layer.data.foreach_set("uv", bundle.uvs[faces.ravel()].ravel())

    mesh.update()
    mesh.validate(clean_customdata=False)
    mesh.shade_smooth()
    # The backend's normals are the SDF gradient, smoother than face normals.
    lengths = np.linalg.norm(normals, axis=1, keepdims=True)
    mesh.normals_split_custom_set_from_vertices(normals / np.maximum(lengths, 1e-12))
    return mesh


def create_mesh_object(bundle, name: str, material, collection, rollback) -> bpy.types.Object:
    """Object holding ``create_mesh``'s mesh with ``material``, linked to
    ``collection``; its transform is the identity (the data is already in
    Blender's frame)."""
    mesh = create_mesh(bundle, name, rollback)
    if material is not None:
        mesh.materials.append(material)
    mesh_object = rollback.created_id(bpy.data.objects.new(name, mesh))
    collection.objects.link(mesh_object)
    return mesh_object
