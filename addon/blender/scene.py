"""Builds a whole bundle into the scene: the one entry point of the importer.

``import_bundle`` puts everything into a new collection named after the
bundle. A failed import leaves bpy.data and the scene as they were: every
datablock it created is removed and every setting it changed is restored
(``rollback.Rollback``), then the error is raised as a BundleError.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

import bpy

from ..bundle.reader import Bundle, BundleError
from . import camera as camera_builder
from . import lights as light_builder
from . import material as material_builder
from . import mesh as mesh_builder
from .rollback import Rollback, is_valid, remove_ids

PROVENANCE_KEY = "gan2x_provenance"
"""Custom property of an import's collection: the bundle's provenance (JSON)."""
SOURCE_KEY = "gan2x_source"
"""Custom property of an import's collection: where the bundle was read from."""
IMPORT_ID_KEY = "gan2x_import_id"
"""Custom property of every datablock an import created (see Rollback)."""


@dataclass
class ImportOptions:
    import_lights: bool = True
    import_camera: bool = True
    import_world: bool = True
    world_mode: str = "NEW"
    """'NEW' (a new world becomes the scene's) or 'REUSE' (edit the scene's world)."""
    set_active_camera: bool = True
    """Make the imported camera the scene camera (with import_camera)."""
    set_render_resolution: bool = True
    """Set the render size to the bundle image's (with set_active_camera)."""
    replace_previous: bool = False
    """Remove earlier GAN2X imports in this scene once this one succeeded."""
    ao_strength: float = material_builder.AO_STRENGTH_DEFAULT
    """Factor in [0, 1] of the ambient occlusion Mix node (bundles with an AO
    texture; ``material.AO_STRENGTH_DEFAULT`` says why 0.5)."""

    @classmethod
    def from_settings(cls, settings) -> "ImportOptions":
        """From anything with the same attribute names: the import operator,
        the scene's sidebar settings, a job of the session."""
        return cls(import_lights=settings.import_lights, import_camera=settings.import_camera,
                   import_world=settings.import_world, world_mode=settings.world_mode,
                   replace_previous=settings.replace_previous, ao_strength=settings.ao_strength)


@dataclass
class ImportResult:
    collection: bpy.types.Collection
    mesh_object: bpy.types.Object
    material: bpy.types.Material
    images: dict = field(default_factory=dict)
    """By role: albedo, normal, roughness, specular_tint, and ambient_occlusion
    when the bundle has one."""
    suns: list = field(default_factory=list)
    camera: bpy.types.Object | None = None
    world: bpy.types.World | None = None

    @property
    def objects(self) -> list:
        return [self.mesh_object, *self.suns] + ([self.camera] if self.camera else [])


def import_bundle(context, bundle: Bundle, options: ImportOptions | None = None) -> ImportResult:
    """Builds ``bundle`` into ``context.scene`` (mesh with its material, suns,
    world, camera, as ``options`` say) and returns what it made. Raises
    BundleError, leaving the scene and bpy.data unchanged, on any failure."""
    options = options or ImportOptions()
    scene = context.scene
    previous_imports = find_imports(scene) if options.replace_previous else []
    rollback = Rollback(uuid.uuid4().hex)
    try:
        result = _build(scene, bundle, options, rollback)
    except BaseException as error:
        rollback.rollback()
        if isinstance(error, BundleError) or not isinstance(error, Exception):
            raise
        raise BundleError("{}: import failed ({}: {}); the scene was left as it was".format(
            bundle.source or bundle.manifest_path, type(error).__name__, error)) from error
    for collection in previous_imports:
        remove_import(collection)
    return result


def _build(scene, bundle: Bundle, options: ImportOptions, rollback: Rollback) -> ImportResult:
    name = bundle.name
    collection = rollback.created_id(bpy.data.collections.new(name))
    collection[PROVENANCE_KEY] = json.dumps(bundle.provenance, sort_keys=True)
    collection[SOURCE_KEY] = str(bundle.source or bundle.root)
    scene.collection.children.link(collection)

    material, images = material_builder.create_material(bundle, name, rollback, ao_strength=options.ao_strength)
    mesh_object = mesh_builder.create_mesh_object(bundle, name, material, collection, rollback)
    result = ImportResult(collection=collection, mesh_object=mesh_object, material=material, images=images)

    if options.import_lights:
        result.suns = light_builder.create_suns(bundle, name + "_sun", collection, rollback)
    if options.import_world:
        result.world = light_builder.create_world(bundle, name + "_world", scene, options.world_mode, rollback)
    if options.import_camera:
        result.camera = camera_builder.create_camera(bundle, name + "_camera", collection, rollback)
        if options.set_active_camera:
            camera_builder.make_active(scene, result.camera, bundle, rollback,
                                       set_resolution=options.set_render_resolution)

    settings = getattr(scene, "gan2x", None)  # registered by the add-on; absent in bare bpy
    if settings is not None:
        rollback.set(settings, "last_import", collection)
    return result


def select_imported(view_layer, result: ImportResult) -> None:
    """Makes the imported mesh the only selected object and the active one."""
    if view_layer is None:
        return
    view_layer.update()  # syncs the new collection's objects into the view layer
    if result.mesh_object.name not in view_layer.objects:
        return
    for selected in [obj for obj in view_layer.objects if obj.select_get(view_layer=view_layer)]:
        selected.select_set(False, view_layer=view_layer)
    result.mesh_object.select_set(True, view_layer=view_layer)
    view_layer.objects.active = result.mesh_object


def find_imports(scene) -> list:
    """Collections of earlier GAN2X imports linked in ``scene``."""
    return [collection for collection in scene.collection.children_recursive
            if IMPORT_ID_KEY in collection and PROVENANCE_KEY in collection]


def remove_import(collection) -> None:
    """Removes an import's collection, its objects and the data only it used
    (meshes, materials, images, lights, cameras; its world once unused)."""
    import_id = collection.get(IMPORT_ID_KEY)
    objects = [obj for obj in collection.all_objects if obj.get(IMPORT_ID_KEY) == import_id]
    remove_ids(objects + [collection])
    if import_id is None:
        return
    # Dependants first, so each level's users drop to zero before it is checked.
    for data in (bpy.data.meshes, bpy.data.lights, bpy.data.cameras, bpy.data.materials,
                 bpy.data.images, bpy.data.worlds):
        remove_ids([id_block for id_block in data
                    if id_block.get(IMPORT_ID_KEY) == import_id and id_block.users == 0])


def last_import(scene):
    """The collection of the scene's last GAN2X import, or None."""
    settings = getattr(scene, "gan2x", None)
    collection = getattr(settings, "last_import", None) if settings is not None else None
    if collection is not None and is_valid(collection) and PROVENANCE_KEY in collection:
        return collection
    return None


def provenance_of(collection) -> dict:
    """The provenance an import stored on its collection ({} when unreadable)."""
    try:
        provenance = json.loads(collection.get(PROVENANCE_KEY, "{}"))
    except (TypeError, ValueError):
        return {}
    return provenance if isinstance(provenance, dict) else {}
