"""Settings the add-on keeps: on the scene (``scene.gan2x``: the source, the
fit settings and the import options of the sidebar, saved with the .blend)
and on the window manager (``window_manager.gan2x``: this session's jobs and
the backend's status, never saved)."""

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty,
                       PointerProperty, StringProperty)

from .blender.material import AO_STRENGTH_DEFAULT, AO_STRENGTH_DESCRIPTION

KNOWN_GENERATORS = ("synthetic", "synthetic:faces", "synthetic:objects", "synthetic:detailed")
"""Offered before the backend's capabilities are known; it may list more."""

_generators_seen = list(KNOWN_GENERATORS)


def set_known_generators(names) -> None:
    """The backend's generators (from /v1/capabilities), for the search list."""
    _generators_seen[:] = list(dict.fromkeys([*names, *KNOWN_GENERATORS]))


def _search_generators(self, context, edit_text):
    return [name for name in _generators_seen if edit_text.lower() in name.lower()]


class GAN2X_PG_scene_settings(bpy.types.PropertyGroup):
    last_import: PointerProperty(
        name="Last Import",
        description="Collection of the last GAN2X asset imported into this scene",
        type=bpy.types.Collection,
    )

    # --- the source
    source_kind: EnumProperty(
        name="Source",
        items=(
            ('SAMPLE', "Generator Sample", "A sample of a generator, by seed"),
            ('IMAGE', "Image File", "An image file, uploaded to the backend"),
        ),
        default='SAMPLE')
    generator: StringProperty(
        name="Generator", default="synthetic:faces", search=_search_generators,
        description="Generator spec, as the backend lists it (synthetic, synthetic:faces, synthetic:objects, "
                    "synthetic:detailed)")
    seed: IntProperty(name="Seed", default=2, min=0, description="The sample's seed")
    truncation: FloatProperty(
        name="Truncation", default=1.0, min=0.0, max=2.0,
        description="Truncation psi of the generator's mapping: lower gives more typical samples")
    image_path: StringProperty(
        name="Image", subtype='FILE_PATH',
        description="A PNG, JPEG or WEBP image to reconstruct")

    # --- the fit
    preset: EnumProperty(
        name="Quality",
        items=(
            ('draft', "Draft", "The quick schedule: about a minute on a laptop CPU"),
            ('standard', "Standard", "More stages, samples and steps: several times the draft's time, better"),
            ('high', "High", "The longest schedule, for a GPU backend"),
        ),
        default='draft')
    steps_scale: FloatProperty(
        name="Steps Scale", default=1.0, min=0.01, max=4.0,
        description="Multiplies every step count of the preset (0.01: a smoke test of a few seconds)")
    stages: IntProperty(
        name="Stages", default=0, min=0, max=6,
        description="Rounds of target fit, exploration and exploitation (0: the preset's)")
    pseudo_samples: IntProperty(
        name="Pseudo Samples", default=0, min=0, max=32,
        description="Pseudo samples per exploration (0: the preset's)")
    mesh_resolution: IntProperty(
        name="Mesh Resolution", default=192, min=32, max=512,
        description="Marching-cubes cells a side")
    texture_size: IntProperty(
        name="Texture Size", default=1024, min=64, max=4096,
        description="Texture pixels a side")

    # --- the import (same names as GAN2X_OT_import_bundle's)
    import_lights: BoolProperty(
        name="Lights", default=True, description="Add a sun for each estimated directional light")
    import_camera: BoolProperty(
        name="Camera", default=True,
        description="Add the camera of the target image and make it the scene camera")
    import_world: BoolProperty(
        name="World", default=True,
        description="Light the scene with the estimated ambient light as a uniform world")
    world_mode: EnumProperty(
        name="World",
        items=(
            ('NEW', "New World", "Make a new world and assign it to the scene"),
            ('REUSE', "Reuse Scene World", "Set the scene world's background colour and strength"),
        ),
        default='NEW')
    replace_previous: BoolProperty(
        name="Replace Previous Import", default=False,
        description="Remove earlier GAN2X imports in this scene once this one succeeded")
    ao_strength: FloatProperty(
        name="AO Strength", default=AO_STRENGTH_DEFAULT, min=0.0, max=1.0, subtype='FACTOR',
        description=AO_STRENGTH_DESCRIPTION)

    def job_settings(self) -> dict:
        """The fit settings as the API's ``JobSettings``."""
        settings = {"preset": self.preset, "steps_scale": round(self.steps_scale, 4),
                    "mesh_resolution": self.mesh_resolution, "texture_size": self.texture_size}
        if self.stages:
            settings["stages"] = self.stages
        if self.pseudo_samples:
            settings["pseudo_samples"] = self.pseudo_samples
        return settings


JOB_STATES = (
    ('SUBMITTING', "Submitting", ""),
    ('QUEUED', "Queued", ""),
    ('RUNNING', "Running", ""),
    ('DOWNLOADING', "Downloading", ""),
    ('IMPORTED', "Imported", ""),
    ('DONE', "Done", "Finished; the bundle is on disk but was not imported"),
    ('FAILED', "Failed", ""),
    ('CANCELLED', "Cancelled", ""),
)
ACTIVE_JOB_STATES = frozenset({'SUBMITTING', 'QUEUED', 'RUNNING', 'DOWNLOADING'})


class GAN2X_PG_job(bpy.types.PropertyGroup):
    """One job of this session, as the jobs list shows it (``name`` is its label)."""
    key: StringProperty(name="Key", description="The add-on's id of the job (the backend's is job_id)")
    job_id: StringProperty(name="Job ID")
    state: EnumProperty(name="State", items=JOB_STATES, default='SUBMITTING')
    stage: StringProperty(name="Stage")
    fraction: FloatProperty(name="Progress", min=0.0, max=1.0, subtype='FACTOR')
    eta_seconds: FloatProperty(name="ETA", default=-1.0, description="Seconds left (-1: unknown)")
    message: StringProperty(name="Message", description="Why it failed, or what happened last")
    backend_url: StringProperty(name="Backend")
    bundle_dir: StringProperty(name="Bundle", subtype='DIR_PATH')
    report_path: StringProperty(
        name="Report", subtype='FILE_PATH',
        description="The bundle's report picture (images/report.png; images/rerender.png for older bundles)")
    scene_name: StringProperty(name="Scene", description="The scene the asset is imported into")
    collection_name: StringProperty(name="Collection", description="The import's collection")
    import_lights: BoolProperty(default=True)
    import_camera: BoolProperty(default=True)
    import_world: BoolProperty(default=True)
    world_mode: StringProperty(default='NEW')
    replace_previous: BoolProperty(default=False)
    ao_strength: FloatProperty(default=AO_STRENGTH_DEFAULT, min=0.0, max=1.0)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_JOB_STATES


def _active_job_changed(self, context):
    from . import session  # imports this module

    session.active_job_changed(self)


class GAN2X_PG_session(bpy.types.PropertyGroup):
    jobs: CollectionProperty(type=GAN2X_PG_job)
    active_job_index: IntProperty(name="Active Job", default=-1, update=_active_job_changed)
    backend_state: EnumProperty(
        name="Backend",
        items=(
            ('UNKNOWN', "Not Checked", ""),
            ('CHECKING', "Checking", ""),
            ('OK', "Connected", ""),
            ('UNREACHABLE', "Unreachable", ""),
            ('AUTH', "Token Refused", ""),
            ('INCOMPATIBLE', "Incompatible", ""),
            ('OFFLINE', "Online Access Off", ""),
            ('ERROR', "Error", ""),
        ),
        default='UNKNOWN')
    backend_message: StringProperty(name="Backend Status")


classes = (GAN2X_PG_scene_settings, GAN2X_PG_job, GAN2X_PG_session)


def register_properties() -> None:
    bpy.types.Scene.gan2x = PointerProperty(type=GAN2X_PG_scene_settings)
    bpy.types.WindowManager.gan2x = PointerProperty(type=GAN2X_PG_session)


def unregister_properties() -> None:
    del bpy.types.WindowManager.gan2x
    del bpy.types.Scene.gan2x
