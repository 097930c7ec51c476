"""The asset as one glTF 2.0 binary (.glb), written with struct/json/numpy.

Frame and units are glTF's, which are the bundle's (metres, +Y up), so
positions and normals are written as they are. One mesh, one node, one
material:

* attributes POSITION (with min/max), NORMAL, TEXCOORD_0 (``(u, 1 - v)``:
  glTF's UV origin is the top-left), uint32 indices;
* ``pbrMetallicRoughness``: ``baseColorTexture`` = the albedo (sRGB PNG),
  ``metallicRoughnessTexture`` = roughness ``conventions.shininess_to_roughness``
  in G, metallic 0 in B, ``metallicFactor`` 0; R holds the ambient
  occlusion (``round(255 * ao)``, 255 = open) when the textures have one,
  and is 255 otherwise;
* ``occlusionTexture`` (only with ambient occlusion) = that same image,
  whose R channel glTF reads as occlusion (the usual occlusion-roughness-
  metallic packing), ``strength`` 1: glTF viewers apply it to indirect
  light only;
* ``normalTexture`` = the tangent-space normal map (OpenGL/+Y, glTF's
  convention);
* ``KHR_materials_specular``: ``specularColorTexture`` holds
  ``F0 = conventions.specular_f0(ks, shininess)`` (grey, sRGB-encoded as the
  extension requires) and ``specularColorFactor`` is ``1 / 0.04`` so that
  ``min(0.04 * factor * texture, 1) = F0`` with the default IOR 1.5; F90
  stays 1. Listed in ``extensionsUsed`` (not required: a viewer without it
  still shows the asset).

Buffer views start on 4-byte boundaries; the JSON chunk is padded with
spaces and the BIN chunk with zeros to a multiple of 4 bytes.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from .. import __version__, conventions
from .datatypes import BakedTextures, BundleError, TexturedMesh
from .images import encode_normal, png_bytes, quantize8

GLB_MAGIC = 0x46546C67  # "glTF"
CHUNK_JSON = 0x4E4F534A  # "JSON"
CHUNK_BIN = 0x004E4942  # "BIN\0"
FLOAT, UNSIGNED_INT = 5126, 5125
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963
LINEAR, LINEAR_MIPMAP_LINEAR, CLAMP_TO_EDGE = 9729, 9987, 33071
DEFAULT_DIELECTRIC_F0 = 0.04  # glTF's F0 for its default IOR 1.5


def material_images(textures: BakedTextures) -> dict:
    """The PNG bytes the material uses: base_colour, metallic_roughness
    (ambient occlusion in R when there is one), normal, specular_colour."""
    roughness = conventions.shininess_to_roughness(textures.shininess.astype(np.float64))
    metallic_roughness = np.empty(textures.shininess.shape + (3,), dtype=np.uint8)
    metallic_roughness[..., 0] = 255 if textures.ambient_occlusion is None else quantize8(textures.ambient_occlusion)
    metallic_roughness[..., 1] = quantize8(roughness)
    metallic_roughness[..., 2] = 0
    f0 = conventions.specular_f0(textures.specular.astype(np.float64), textures.shininess.astype(np.float64))
    specular_colour = np.repeat(quantize8(conventions.srgb_from_linear(f0))[..., None], 3, axis=2)
    return {
        "base_colour": png_bytes(quantize8(conventions.srgb_from_linear(textures.albedo.astype(np.float64)))),
        "metallic_roughness": png_bytes(metallic_roughness),
        "normal": png_bytes(encode_normal(textures.normal)),
        "specular_colour": png_bytes(specular_colour),
    }


def write_glb(path, mesh: TexturedMesh, textures: BakedTextures) -> Path:
    """Writes the textured mesh and its material as a .glb at ``path``."""
    path = Path(path)
    binary = bytearray()
    views: list[dict] = []

    def add_view(data: bytes, target: int | None = None) -> int:
        binary.extend(b"\0" * (-len(binary) % 4))
        view = {"buffer": 0, "byteOffset": len(binary), "byteLength": len(data)}
        if target is not None:
            view["target"] = target
        binary.extend(data)
        views.append(view)
        return len(views) - 1

    positions = np.ascontiguousarray(mesh.vertices, dtype="<f4")
    normals = np.ascontiguousarray(mesh.normals, dtype=np.float64)
    lengths = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = np.where(lengths > 1e-12, normals / np.where(lengths > 1e-12, lengths, 1.0), [0.0, 1.0, 0.0])
    normals = np.ascontiguousarray(normals, dtype="<f4")
    texcoords = np.stack([mesh.uvs[:, 0], 1.0 - mesh.uvs[:, 1]], axis=1).astype("<f4")
    indices = np.ascontiguousarray(mesh.faces.reshape(-1), dtype="<u4")
    vertex_count = len(positions)

    accessors = [
        {"bufferView": add_view(positions.tobytes(), ARRAY_BUFFER), "componentType": FLOAT,
         "count": vertex_count, "type": "VEC3",
         "min": [float(v) for v in positions.min(axis=0)], "max": [float(v) for v in positions.max(axis=0)]},
        {"bufferView": add_view(normals.tobytes(), ARRAY_BUFFER), "componentType": FLOAT,
         "count": vertex_count, "type": "VEC3"},
        {"bufferView": add_view(texcoords.tobytes(), ARRAY_BUFFER), "componentType": FLOAT,
         "count": vertex_count, "type": "VEC2"},
        {"bufferView": add_view(indices.tobytes(), ELEMENT_ARRAY_BUFFER), "componentType": UNSIGNED_INT,
         "count": int(indices.size), "type": "SCALAR"},
    ]

    pngs = material_images(textures)
    names = ["base_colour", "metallic_roughness", "normal", "specular_colour"]
    images = [{"bufferView": add_view(pngs[name]), "mimeType": "image/png", "name": name} for name in names]
    texture_of = {name: index for index, name in enumerate(names)}
    binary.extend(b"\0" * (-len(binary) % 4))

    specular_factor = 1.0 / DEFAULT_DIELECTRIC_F0
    material = {
        "name": "gan2x_material",
        "pbrMetallicRoughness": {
            "baseColorTexture": {"index": texture_of["base_colour"]},
            "metallicRoughnessTexture": {"index": texture_of["metallic_roughness"]},
            "metallicFactor": 0.0,
            "roughnessFactor": 1.0,
        },
        "normalTexture": {"index": texture_of["normal"]},
        "extensions": {"KHR_materials_specular": {
            "specularFactor": 1.0,
            "specularColorFactor": [specular_factor] * 3,
            "specularColorTexture": {"index": texture_of["specular_colour"]},
        }},
    }
    if textures.ambient_occlusion is not None:
        material["occlusionTexture"] = {"index": texture_of["metallic_roughness"], "strength": 1.0}
    document = {
        "asset": {"version": "2.0", "generator": "gan2x {}".format(__version__)},
        "extensionsUsed": ["KHR_materials_specular"],
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": "gan2x_asset"}],
        "meshes": [{"name": "gan2x_asset", "primitives": [{
            "attributes": {"POSITION": 0, "NORMAL": 1, "TEXCOORD_0": 2},
            "indices": 3, "material": 0, "mode": 4}]}],
        "materials": [material],
        "samplers": [{"magFilter": LINEAR, "minFilter": LINEAR_MIPMAP_LINEAR,
                      "wrapS": CLAMP_TO_EDGE, "wrapT": CLAMP_TO_EDGE}],
        "textures": [{"sampler": 0, "source": index} for index in range(len(images))],
        "images": images,
        "accessors": accessors,
        "bufferViews": views,
        "buffers": [{"byteLength": len(binary)}],
    }
    json_chunk = json.dumps(document, separators=(",", ":"), allow_nan=False).encode("utf-8")
    json_chunk += b" " * (-len(json_chunk) % 4)
    total = 12 + 8 + len(json_chunk) + 8 + len(binary)
    with open(path, "wb") as stream:
        stream.write(struct.pack("<III", GLB_MAGIC, 2, total))
        stream.write(struct.pack("<II", len(json_chunk), CHUNK_JSON))
        stream.write(json_chunk)
        stream.write(struct.pack("<II", len(binary), CHUNK_BIN))
        stream.write(bytes(binary))
    return path


def read_glb(path) -> tuple[dict, bytes]:
    """(JSON document, BIN chunk bytes) of a .glb; raises BundleError naming
    the file when the container is malformed."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise BundleError("{}: cannot read ({})".format(path, error)) from None
    if len(data) < 20:
        raise BundleError("{}: too short for a glTF binary ({} bytes)".format(path, len(data)))
    magic, version, total = struct.unpack_from("<III", data, 0)
    if magic != GLB_MAGIC or version != 2:
        raise BundleError("{}: not a glTF 2.0 binary (magic {:#x}, version {})".format(path, magic, version))
    if total != len(data):
        raise BundleError("{}: header says {} bytes, the file has {}".format(path, total, len(data)))
    json_length, json_type = struct.unpack_from("<II", data, 12)
    if json_type != CHUNK_JSON or 20 + json_length > len(data):
        raise BundleError("{}: the first chunk is not a complete JSON chunk".format(path))
    try:
        document = json.loads(data[20:20 + json_length].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleError("{}: the JSON chunk is not valid JSON ({})".format(path, error)) from None
    binary = b""
    offset = 20 + json_length
    if offset < len(data):
        if offset + 8 > len(data):
            raise BundleError("{}: truncated BIN chunk header".format(path))
        bin_length, bin_type = struct.unpack_from("<II", data, offset)
        if bin_type != CHUNK_BIN or offset + 8 + bin_length > len(data):
            raise BundleError("{}: the second chunk is not a complete BIN chunk".format(path))
        binary = data[offset + 8:offset + 8 + bin_length]
    return document, binary
