"""The fit's stages (METHOD.md section 3), each with its own optimiser:

- ``target_fit.py``: step 1, materials and the target's light and background
  on the target alone, shape frozen;
- ``exploration.py``: step 2, pseudo samples (projection through the
  generator, style mixing, or both);
- ``exploitation.py``: step 3, shape, materials, density and every image's
  camera, light and background over the target and the pseudo samples;
- ``refinement.py``: step 5, shading-based refinement of the shape on the
  target alone.

``context.py`` holds what they share (``FitContext``) and ``photometric.py``
the loss step of steps 1, 3 and 5. ``fit/schedule.py`` composes them.
"""
from .context import FitContext
from .exploitation import exploit, exploitation_optimiser
from .exploration import Exploration, explore, no_exploration, sample_pseudo_states
from .photometric import coarse_sdf, photometric_step, read_back
from .refinement import refine, refinement_trainable
from .target_fit import fit_to_target, target_fit_optimiser

__all__ = ["FitContext", "Exploration", "coarse_sdf", "exploit", "exploitation_optimiser", "explore",
           "fit_to_target", "no_exploration", "photometric_step", "read_back", "refine", "refinement_trainable",
           "sample_pseudo_states", "target_fit_optimiser"]
