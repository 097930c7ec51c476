"""The bundle's lights: one sun lamp per directional light, and the ambient
term as a uniform world (maths in ``bundle/conventions.py``)."""
from __future__ import annotations

import bpy
import numpy as np
from mathutils import Matrix

from ..bundle import conventions

WORLD_MODES = ("NEW", "REUSE")
"""NEW: a new world datablock becomes the scene's world. REUSE: the scene's
world is edited in place (a new one is made when the scene has none)."""


def sun_matrix_world(towards_light_bundle, distance: float = 5.0) -> Matrix:
    """World matrix of a sun lamp lighting from ``towards_light_bundle``
    (bundle frame): +Z towards the light, placed ``distance`` metres out on
    that side so the viewport shows where the light comes from."""
    towards_light = conventions.blender_direction(towards_light_bundle)
    matrix = np.eye(4)
    matrix[:3, :3] = conventions.sun_rotation_matrix(towards_light)
    matrix[:3, 3] = towards_light * distance
    return Matrix(matrix.tolist())


def create_suns(bundle, name: str, collection, rollback) -> list:
    """One sun object per directional light (strength pi * kd, angle 0)."""
    suns = []
    for index, light in enumerate(bundle.directional_lights):
        sun_name = name if index == 0 else "{}.{}".format(name, index)
        data = rollback.created_id(bpy.data.lights.new(sun_name, "SUN"))
        data.energy = conventions.sun_strength_from_diffuse(light.strength)
        data.angle = 0.0
        data.color = light.colour
        sun = rollback.created_id(bpy.data.objects.new(sun_name, data))
        sun.matrix_world = sun_matrix_world(light.towards_light)
        collection.objects.link(sun)
        suns.append(sun)
    return suns


def set_sun_direction(sun, towards_light_bundle) -> None:
    """Relights: turns ``sun`` to light from ``towards_light_bundle`` (bundle frame)."""
    sun.matrix_world = sun_matrix_world(towards_light_bundle)


def _background_of(world):
    """The Background node feeding the world's active output, or None."""
    tree = world.node_tree
    if tree is None:
        return None
    outputs = [node for node in tree.nodes if node.bl_idname == "ShaderNodeOutputWorld"]
    active = [node for node in outputs if node.is_active_output] or outputs
    if not active or not active[0].inputs["Surface"].is_linked:
        return None
    source = active[0].inputs["Surface"].links[0].from_node
    return source if source.bl_idname == "ShaderNodeBackground" else None


def _set_background(background, colour, strength, rollback) -> None:
    tree = background.id_data
    for socket_name, value in (("Color", tuple(colour) + (1.0,)), ("Strength", strength)):
        socket = background.inputs[socket_name]
        for link in list(socket.links):
            from_socket = link.from_socket
            tree.links.remove(link)
            rollback.on_rollback(lambda s=from_socket, t=socket: tree.links.new(s, t))
        rollback.set(socket, "default_value", value)


def create_world(bundle, name: str, scene, mode: str, rollback):
    """A uniform world of strength ka (colour of the ambient light) as the
    scene's world; ``mode`` in WORLD_MODES. Returns the world."""
    if mode not in WORLD_MODES:
        raise ValueError("world mode must be one of {}, not {!r}".format(WORLD_MODES, mode))
    ambient = bundle.ambient_light
    strength = conventions.world_strength_from_ambient(ambient.strength)
    if mode == "REUSE" and scene.world is not None:
        background = _background_of(scene.world)
        if background is not None:
            _set_background(background, ambient.colour, strength, rollback)
            return scene.world
    world = rollback.created_id(bpy.data.worlds.new(name))
    tree = world.node_tree  # 4.2+ worlds come with Background -> World Output
    if tree is None:
        world.use_nodes = True
        tree = world.node_tree
    background = _background_of(world)
    if background is None:
        tree.nodes.clear()
        background = tree.nodes.new("ShaderNodeBackground")
        output = tree.nodes.new("ShaderNodeOutputWorld")
        output.location = (300, 0)
        tree.links.new(background.outputs["Background"], output.inputs["Surface"])
    background.inputs["Color"].default_value = tuple(ambient.colour) + (1.0,)
    background.inputs["Strength"].default_value = strength
    world.color = ambient.colour  # the viewport's solid/workbench background
    rollback.set(scene, "world", world)
    return world
