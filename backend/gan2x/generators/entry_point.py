"""``python:module:callable``: a generator made by your own Python code.

``module`` is imported (it must be on ``sys.path``, e.g. installed or via
``PYTHONPATH``) and ``callable(**options)`` must return a ``torch.nn.Module``
that follows the generator protocol (``protocol.py``). This runs your
code: the service accepts such specs only when its operator allows them.
"""
from __future__ import annotations

import importlib

from .errors import GeneratorLoadError
from .validation import validate_generator


def load_entry_point(target: str, spec: str, **options):
    module_name, _, attribute = target.rpartition(":")
    if not module_name or not attribute:
        raise GeneratorLoadError(f"generator spec {spec!r}: write python:MODULE:CALLABLE, e.g. "
                                 "python:my_package.gans:load_generator")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise GeneratorLoadError(f"generator spec {spec!r}: cannot import {module_name} ({error}); is it on "
                                 "PYTHONPATH or installed?") from error
    factory = module
    for part in attribute.split("."):
        factory = getattr(factory, part, None)
        if factory is None:
            raise GeneratorLoadError(f"generator spec {spec!r}: {module_name} has no attribute {attribute}")
    if not callable(factory):
        raise GeneratorLoadError(f"generator spec {spec!r}: {module_name}.{attribute} is not callable")
    generator = factory(**options)
    if not hasattr(generator, "spec") or not isinstance(getattr(generator, "spec", None), str):
        try:
            generator.spec = spec
        except AttributeError:
            pass
    validate_generator(generator, f"the generator from {spec}")
    return generator
