"""Errors a person can act on when a generator cannot be loaded."""
from __future__ import annotations


class GeneratorLoadError(ValueError):
    """A generator spec or file that cannot be used, with what to do about it.

    A ``ValueError``, so the command line prints it as ``gan2x: error: ...``."""


class CheckpointFormatError(GeneratorLoadError):
    """A file that is not a checkpoint of a known format, or is corrupt or truncated."""


class UnsafePickleError(GeneratorLoadError):
    """A pickle that asks for something a checkpoint never needs (a global
    outside the allow-list); nothing from it was executed."""
