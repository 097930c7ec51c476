"""The bundle's Phong material as a Principled BSDF with image textures.

Albedo (sRGB) feeds Base Color; the specular and shininess textures are
turned at import into a roughness image and a reflectance (F0) image with the
maths of ``bundle/conventions.py``; the tangent-space normal map feeds a
Normal Map node. Every image is packed so a saved .blend is self-contained.

A bundle with the optional ambient occlusion texture (docs/bundle.md) gets a
Mix node (Color, Multiply) between the albedo and Base Color: ``albedo *
(1 - strength + strength * ao)``, its Factor the import's AO strength
(``AO_STRENGTH_DEFAULT``; the user changes it on the node afterwards). A
bundle without one has no Mix node: the albedo feeds Base Color directly.

The reader has checked each PNG's header against the manifest and the size
limits; after Blender loads a texture its size is checked again, so a file
whose pixels do not decode (Blender reads it as 0x0) is refused by name.
"""
from __future__ import annotations

import bpy
import numpy as np

from ..bundle import conventions
from ..bundle.reader import BundleError
from .mesh import UV_MAP_NAME

AO_STRENGTH_DEFAULT = 0.5
"""The Factor of the AO Mix node unless the import says otherwise. Half, not
all: Cycles already shadows the mesh with its own geometry, so the texture
at full strength would darken cavities twice (and the albedo, fitted under
an unshadowed Phong model, may hold some of the image's cavity darkening
already); none would lose the cavity definition that the viewport's
Material Preview, EEVEE and other renderers without ray-traced occlusion
show only through the texture. 0 reproduces the backend's re-render."""
AO_STRENGTH_DESCRIPTION = (
    "How much the baked ambient occlusion darkens the albedo (a Multiply Mix node before Base Color; "
    "bundles without an AO texture get none). 0.5 by default: Cycles already shadows the mesh with its own "
    "geometry, so 1 would darken cavities twice; 0 reproduces the backend's re-render")
AO_MIX_NODE_NAME = "GAN2X Ambient Occlusion"
"""The name of the Mix node that multiplies the albedo by the AO texture."""


def _check_loaded_size(image, path, expected_size, label) -> None:
    """Raises BundleError naming the file when Blender did not read it at
    ``expected_size`` (width, height); None checks nothing."""
    if expected_size is None:
        return
    width, height = (int(value) for value in image.size)
    if (width, height) != tuple(expected_size):
        raise BundleError("{}: Blender read it as {}x{} pixels but manifest.json says {}x{}; the file is damaged "
                          "or holds less than its header claims".format(
                              label(path) if label else path, width, height, *expected_size))


def load_image(path, name: str, colour_space: str, rollback, expected_size=None, label=None) -> bpy.types.Image:
    """Loads and packs an image file; ``colour_space`` 'sRGB' or 'Non-Color'.
    ``expected_size``: (width, height) the loaded image must have, else
    BundleError naming the file (``label(path)``)."""
    image = rollback.created_id(bpy.data.images.load(str(path), check_existing=False))
    _check_loaded_size(image, path, expected_size, label)
    image.name = name
    image.colorspace_settings.name = colour_space
    image.pack()
    return image


def read_grey_texture(path, expected_size=None, label=None) -> np.ndarray:
    """A grey PNG's values in [0, 1] (16-bit value / 65535), [H, W] float32,
    row 0 at the bottom (Blender's pixel order). The temporary image is
    removed before returning. ``expected_size``, ``label``: as load_image."""
    image = bpy.data.images.load(str(path), check_existing=False)
    try:
        _check_loaded_size(image, path, expected_size, label)
        image.colorspace_settings.name = "Non-Color"
        width, height = image.size
        pixels = np.empty(width * height * 4, dtype=np.float32)
        image.pixels.foreach_get(pixels)
    finally:
        bpy.data.images.remove(image)
    return pixels.reshape(height, width, 4)[:, :, 0]


def create_data_image(values: np.ndarray, name: str, rollback) -> bpy.types.Image:
    """A packed float image (Non-Color) holding the grey ``values`` [H, W]
    (row 0 at the bottom). Blender 5.0 packs float images as OpenEXR."""
    height, width = values.shape
    image = rollback.created_id(bpy.data.images.new(
        name, width, height, alpha=False, float_buffer=True, is_data=True))
    image.colorspace_settings.name = "Non-Color"
    rgba = np.ones((height, width, 4), dtype=np.float32)
    rgba[:, :, :3] = values[:, :, None]
    image.pixels.foreach_set(rgba.ravel())
    image.pack()
    return image


def _resample_nearest(values: np.ndarray, height: int, width: int) -> np.ndarray:
    if values.shape == (height, width):
        return values
    rows = (np.arange(height) + 0.5) * values.shape[0] // height
    cols = (np.arange(width) + 0.5) * values.shape[1] // width
    return values[rows.astype(int)[:, None], cols.astype(int)[None, :]]


def derived_material_maps(bundle):
    """(roughness, f0) [H, W] float32 at the specular texture's size from the
    bundle's specular and shininess textures, row 0 at the bottom."""
    specular_info = bundle.textures["specular"]
    shininess_info = bundle.textures["shininess"]
    ks = conventions.decode_specular(
        read_grey_texture(specular_info.path, (specular_info.width, specular_info.height), bundle.label),
        specular_info.encoding["scale"])
    encoded_shininess = _resample_nearest(
        read_grey_texture(shininess_info.path, (shininess_info.width, shininess_info.height), bundle.label),
        *ks.shape)
    shininess = conventions.decode_shininess(
        encoded_shininess, shininess_info.encoding["min"], shininess_info.encoding["max"])
    roughness = conventions.shininess_to_roughness(shininess).astype(np.float32)
    f0 = conventions.specular_f0(ks, shininess).astype(np.float32)
    return roughness, f0


def _socket(sockets, identifier: str):
    """The socket with this identifier (the Mix node has one 'A' per data type)."""
    return next(socket for socket in sockets if socket.identifier == identifier)


def create_material(bundle, name: str, rollback, ao_strength: float = AO_STRENGTH_DEFAULT):
    """Principled BSDF material; returns (material, images by role).
    ``ao_strength`` in [0, 1]: the AO Mix node's Factor (module docstring)."""
    def texture_image(role: str, colour_space: str):
        info = bundle.textures[role]
        return load_image(info.path, "{}_{}".format(name, role), colour_space, rollback,
                          expected_size=(info.width, info.height), label=bundle.label)

    images = {"albedo": texture_image("albedo", "sRGB"), "normal": texture_image("normal", "Non-Color")}
    if "ambient_occlusion" in bundle.textures:
        images["ambient_occlusion"] = texture_image("ambient_occlusion", "Non-Color")
    roughness, f0 = derived_material_maps(bundle)
    images["roughness"] = create_data_image(roughness, name + "_roughness", rollback)
    images["specular_tint"] = create_data_image(f0, name + "_specular_tint", rollback)

    material = rollback.created_id(bpy.data.materials.new(name))
    tree = material.node_tree  # a new material has one in 4.2+; use_nodes is deprecated in 5.0
    if tree is None:
        material.use_nodes = True
        tree = material.node_tree
    nodes, links = tree.nodes, tree.links
    nodes.clear()
    output = nodes.new("ShaderNodeOutputMaterial")
    output.location = (400, 300)
    bsdf = nodes.new("ShaderNodeBsdfPrincipled")
    bsdf.location = (100, 300)
    links.new(bsdf.outputs["BSDF"], output.inputs["Surface"])
    bsdf.inputs["IOR"].default_value = conventions.PRINCIPLED_IOR
    bsdf.inputs["Specular IOR Level"].default_value = conventions.PRINCIPLED_SPECULAR_IOR_LEVEL

    def texture(image, y, label):
        node = nodes.new("ShaderNodeTexImage")
        node.image = image
        node.label = label
        node.location = (-500, y)
        return node

    albedo = texture(images["albedo"], 500, "Albedo")
    if "ambient_occlusion" in images:
        occlusion = texture(images["ambient_occlusion"], 800, "Ambient Occlusion")
        mix = nodes.new("ShaderNodeMix")
        mix.data_type = 'RGBA'
        mix.blend_type = 'MULTIPLY'
        mix.name = AO_MIX_NODE_NAME
        mix.label = "Ambient Occlusion"
        mix.location = (-200, 650)
        mix.clamp_factor = True
        _socket(mix.inputs, "Factor_Float").default_value = min(1.0, max(0.0, float(ao_strength)))
        links.new(albedo.outputs["Color"], _socket(mix.inputs, "A_Color"))
        links.new(occlusion.outputs["Color"], _socket(mix.inputs, "B_Color"))
        links.new(_socket(mix.outputs, "Result_Color"), bsdf.inputs["Base Color"])
    else:
        links.new(albedo.outputs["Color"], bsdf.inputs["Base Color"])
    links.new(texture(images["roughness"], 200, "Roughness").outputs["Color"], bsdf.inputs["Roughness"])
    links.new(texture(images["specular_tint"], -100, "Specular F0").outputs["Color"],
              bsdf.inputs["Specular Tint"])
    normal_map = nodes.new("ShaderNodeNormalMap")
    normal_map.space = "TANGENT"
    normal_map.uv_map = UV_MAP_NAME
    normal_map.location = (-200, -400)
    links.new(texture(images["normal"], -400, "Normal").outputs["Color"], normal_map.inputs["Color"])
    links.new(normal_map.outputs["Normal"], bsdf.inputs["Normal"])
    return material, images
