"""Real photos: crop and align to the generator's framing (``photo.py``),
then invert into its latent space (``inversion.py``) so the fit can treat
the photo like a generator sample (METHOD.md section 1)."""
from .inversion import InversionResult, InversionSettings, invert_image
from .photo import CropSettings, PhotoError, crop_for_generator, load_photo

__all__ = ["CropSettings", "InversionResult", "InversionSettings", "PhotoError", "crop_for_generator",
           "invert_image", "load_photo"]
