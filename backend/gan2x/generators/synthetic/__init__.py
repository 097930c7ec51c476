"""The built-in procedural generator ``synthetic`` (no download needed).

``SyntheticGenerator`` (generator.py) has a StyleGAN-like interface and
returns ground truth (shape, normals, depth, albedo, specular, shininess,
view and light) for every sample; ``SyntheticScene`` (shapes.py) holds the
batched scene parameters; raycast.py is its analytic ray caster. See
docs/generators.md.
"""
from .generator import SyntheticGenerator, phong
from .shapes import CATEGORIES, SyntheticScene

__all__ = ["SyntheticGenerator", "SyntheticScene", "CATEGORIES", "phong"]
