"""The bundle's data model and maths, free of bpy (tested without Blender)."""
from .reader import Bundle, BundleError, read_bundle, unpack_bundle_zip

__all__ = ("Bundle", "BundleError", "read_bundle", "unpack_bundle_zip")
