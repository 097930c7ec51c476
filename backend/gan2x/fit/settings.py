"""The fit's settings (``FitSettings``), its optimisers' learning rates
(``LearningRates``) and the presets.

The string options (``shading``, ``encoding``, ``exploration``,
``refinement_field``) are checked when the settings are made, so a wrong one
fails before any step runs. Whether the generator supports the chosen
exploration (style mixing needs per-layer view latents) is the fit's check:
only it knows the generator (``style_mixing.check_exploration``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..fields.encodings import ENCODINGS
from ..render.volume import SamplingSettings
from ..config import EXPLORATIONS

SHADINGS = ("phong", "lambertian")
"""``FitSettings.shading`` values."""

REFINEMENT_FIELDS = ("residual", "detail")
"""What shading-based refinement may change (``FitSettings.refinement_field``)."""


@dataclass
class LearningRates:
    """Adam's learning rates of the fit's parameter groups other than the
    material and residual shape fields (those take ``FitSettings.learning_rate``)
    and refinement's field (``FitSettings.refinement_learning_rate``).
    Step numbers are METHOD.md section 3's."""

    target_light: float = 2e-2
    """The target's light (direction, ambient and diffuse strength) in step 1,
    the target fit."""
    target_background: float = 5e-2
    """The target's background model in step 1."""
    light: float = 1e-2
    """Every image's light (the target's and the pseudo samples') in step 3,
    exploitation."""
    background: float = 5e-2
    """Every image's background model in step 3."""
    camera: float = 5e-3
    """The pseudo samples' cameras (yaw, pitch) in step 3; the target's
    camera is fixed."""
    shape_axes: float = 1e-2
    """The ellipsoid prior's log semi-axes in step 3."""
    density: float = 1e-2
    """The Laplace density's sharpness in step 3."""
    projection: float = 5e-2
    """The W-space offsets that project the pseudo samples through the
    generator in step 2 (``projection.project_to_generator``)."""


@dataclass
class FitSettings:
    stages: int = 2
    target_steps: int = 100
    projection_steps: int = 40
    exploitation_steps: int = 200
    pseudo_samples: int = 6
    rays_per_image: int = 384
    max_yaw_degrees: float = 30.0
    max_pitch_degrees: float = 15.0
    max_light_angle_degrees: float = 50.0
    offset_weight: float = 0.01
    learning_rate: float = 5e-3
    """Adam's learning rate of the material field (steps 1 and 3) and of the
    shape's residual field (step 3)."""
    learning_rates: LearningRates = field(default_factory=LearningRates)
    """The other parameter groups' learning rates (lights, backgrounds,
    cameras, the shape's axes, density, the projection's offsets)."""
    background_grid: int = 4
    """Each image's background model: a ``background_grid`` a side grid of
    linear colours, bilinearly upsampled (fit/image_state.py)."""
    reach_margin_db: float | None = 2.0
    """Pseudo samples weigh in exploitation by how far their projection
    followed the view (``stages.exploration.reach_weights``); None: all 1."""
    max_beta_metres: float | None = 0.02
    """Ceiling on the Laplace density's width beta (metres; None: none),
    kept by projection after every step (``LaplaceDensity.keep_under_ceiling``),
    so the width may still shrink. Without it the fit learnt beta ~0.12 m on the real DCGAN, a fog whose
    soft edge let the background model and a shrunken surface stand in for
    the object (docs/benchmark.md, "Fidelity")."""
    eikonal_weight: float = 0.1
    specular_sparsity_weight: float = 0.0
    """Weight of the mean ks of the surface points seen (an L1 sparsity prior
    on the specular intensity). Off by default: on the tuning seeds it kept
    ks near zero even where highlights are plain, and without it the fit
    had lower MAD and albedo error (docs/benchmark.md, "The
    specular-sparsity prior, and how strong highlights must be")."""
    material_smoothness_weight: float = 0.05
    normal_smoothness_weight: float = 0.02
    target_weight: float = 2.0
    grid_refresh_steps: int = 10
    specular_start_stage: int = 0
    """Stages before this one fit with ks = 0 (Lambertian); the specular
    term joins from this stage on, once shape, light and albedo are
    roughly right (and in the last stage whatever this says). 0 fits it
    from the start."""
    refinement_steps: int = 0
    """Shading-based refinement on the target alone (0 turns it off; the
    presets turn it on). See ``stages/refinement.py``."""
    refinement_field: str = "residual"
    """What refinement changes: 'residual' (the shape's own residual field,
    the default) or 'detail' (the separate higher-frequency detail field,
    which measured worse: docs/benchmark.md)."""
    refinement_learning_rate: float = 1e-3
    refinement_change_weight: float = 1e3
    """Weight of the mean square change of the signed distance (metres^2)
    since refinement began, over random points of the bounding ball: the
    refinement's strong regulariser."""
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    seed: int = 0
    shading: str = "phong"
    """'phong' (METHOD.md) or 'lambertian' (no specular term: the ablation)."""
    encoding: str = "fourier"
    """The fields' input encoding: 'fourier', 'triplane' (SphereHead's
    spherical tri-plane) or 'hashgrid' (fields/encodings.py)."""
    exploration: str = "projection"
    """Step 2's pseudo samples: 'projection' (the estimate under random views
    and lights, projected through the generator), 'style_mixing' (the
    target's later style layers with other samples' view layers; cameras and
    lights from a coarse search; needs a generator with ``view_layers``) or
    'mixed' (style mixing, then the estimate at the searched views projected
    from the mixed latents). See fit/style_mixing.py and docs/generators.md."""
    feature_weight: float = 0.1
    """Weight of the discriminator's feature distance in the projection and
    the photometric steps (fit/features.py); used only when the generator
    holds D, 0 turns it off. Not tuned: no real checkpoint is at hand here."""
    feature_every: int = 10
    """The photometric steps add the feature term every this many steps (the
    projection, every step): one feature step runs D forward and backward on
    every image, about 5 s for 7 images with a 64 px D and 15 s with a 256 px
    one on one CPU thread (docs/generators.md), against 0.1-0.3 s for a
    photometric step."""

    def __post_init__(self):
        # Nested settings given as plain dicts (e.g. FitSettings(**settings.to_dict())).
        if isinstance(self.learning_rates, dict):
            self.learning_rates = LearningRates(**self.learning_rates)
        if isinstance(self.sampling, dict):
            self.sampling = SamplingSettings(**self.sampling)
        self.validate()

    def validate(self) -> None:
        """Raise a ValueError naming the choices for an unknown string option."""
        if self.shading not in SHADINGS:
            raise ValueError(f"unknown shading {self.shading!r}; choose 'phong' or 'lambertian'")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"unknown encoding {self.encoding!r}; known: {', '.join(ENCODINGS)}")
        if self.exploration not in EXPLORATIONS:
            raise ValueError(f"unknown exploration {self.exploration!r}; choose one of {list(EXPLORATIONS)}")
        if self.refinement_field not in REFINEMENT_FIELDS:
            raise ValueError(f"unknown refinement_field {self.refinement_field!r}; choose one of "
                             f"{list(REFINEMENT_FIELDS)}")

    def specular_in_stage(self, stage: int) -> bool:
        """Whether stage ``stage`` (from 0) fits the specular term: with
        'phong' shading from ``specular_start_stage`` on, and in the last
        stage always; with 'lambertian' never."""
        if self.shading != "phong":
            return False
        return stage >= min(self.specular_start_stage, self.stages - 1)

    def total_steps(self) -> int:
        return (self.stages * (self.target_steps + self.projection_steps + self.exploitation_steps)
                + self.refinement_steps)

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, FitSettings] = {
    # What each costs (docs/performance.md, "Presets"): at 64x64 on the 2-core
    # CPU draft 69 s of fitting, standard 347 s; high is meant for a GPU.
    "draft": FitSettings(specular_start_stage=1, refinement_steps=150),
    "standard": FitSettings(stages=3, target_steps=150, projection_steps=60, exploitation_steps=400,
                            pseudo_samples=8, rays_per_image=768, specular_start_stage=1, refinement_steps=300),
    "high": FitSettings(stages=4, target_steps=200, projection_steps=80, exploitation_steps=500,
                        pseudo_samples=12, rays_per_image=1024, specular_start_stage=1, refinement_steps=400),
}
