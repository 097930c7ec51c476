"""Neural fields over the world frame: the SDF and the material fields."""
from .sdf import EllipsoidPriorSDF
from .materials import MaterialField

__all__ = ["EllipsoidPriorSDF", "MaterialField"]
