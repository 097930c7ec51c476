"""Imports run down the layers of docs/architecture.md ("Layers"), read from
the source with ast (every import, also those inside functions)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import gan2x

PACKAGE = Path(gan2x.__file__).parent

LAYERS = (
    ("gan2x", "gan2x.config", "gan2x.conventions", "gan2x.devices"),
    ("gan2x.fields", "gan2x.render"),
    ("gan2x.generators",),
    ("gan2x.measure", "gan2x.optim"),
    ("gan2x.fit", "gan2x.invert"),
    ("gan2x.evaluation",),
    ("gan2x.export",),
    ("gan2x.pipeline",),
    ("gan2x.bench",),
    ("gan2x.scale",),
    ("gan2x.demo", "gan2x.service"),
    ("gan2x.cli",),
)
"""Lowest first. A module may import its own part (the first two names:
``gan2x.fit.x`` is part ``gan2x.fit``) and the parts of lower layers, never
a higher layer's nor another part of its own layer."""


def module_name(path: Path) -> str:
    parts = ("gan2x",) + path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """The gan2x modules ``path`` imports (``from . import x`` gives the package's ``x``)."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "gan2x")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != "gan2x":
                continue
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def part(module: str) -> str:
    """``gan2x.fit.stages.context`` -> ``gan2x.fit``; ``gan2x.__version__`` -> ``gan2x``."""
    parts = module.split(".")
    candidate = ".".join(parts[:2])
    return candidate if any(candidate in layer for layer in LAYERS) else "gan2x"


def layer_of(module: str) -> int:
    return next(index for index, layer in enumerate(LAYERS) if part(module) in layer)


SOURCES = sorted(PACKAGE.rglob("*.py"))
IMPORTS = {module_name(path): imported_modules(path) for path in SOURCES}


def importers(*parts: str):
    return {name: imports for name, imports in IMPORTS.items() if part(name) in parts}


def test_every_module_has_a_layer():
    unplaced = sorted(name for name in IMPORTS
                      if part(name) == "gan2x" and name.count(".") and name not in LAYERS[0])
    assert not unplaced, f"add these to LAYERS (and docs/architecture.md): {unplaced}"


@pytest.mark.parametrize("name", sorted(IMPORTS))
def test_imports_run_down_the_layers(name):
    upward = sorted(module for module in IMPORTS[name]
                    if part(module) != part(name) and layer_of(module) >= layer_of(name))
    assert not upward, f"{name} imports its own layer or a higher one: {upward}"


def test_the_product_never_imports_the_benchmark_runner():
    for name, imports in importers("gan2x.pipeline", "gan2x.fit", "gan2x.invert", "gan2x.export").items():
        assert not any(part(module) == "gan2x.bench" for module in imports), name


def test_fit_and_invert_do_not_import_each_other():
    for name, imports in importers("gan2x.invert").items():
        assert not any(part(module) == "gan2x.fit" for module in imports), name
    for name, imports in importers("gan2x.fit").items():
        assert not any(part(module) == "gan2x.invert" for module in imports), name


def test_service_routes_never_import_the_app():
    routes = {name: imports for name, imports in IMPORTS.items() if name.startswith("gan2x.service.routes")}
    assert routes
    for name, imports in routes.items():
        assert "gan2x.service.app" not in imports, name


def test_the_check_sees_imports():
    """The reader finds relative, absolute and in-function imports (else every check above passes vacuously)."""
    assert "gan2x.measure.metrics" in IMPORTS["gan2x.invert.inversion"]
    assert "gan2x.optim" in IMPORTS["gan2x.fit.stages.context"]
    assert "gan2x.bench.run" in IMPORTS["gan2x.cli"]  # imported inside command_bench
    assert "gan2x.__version__" in IMPORTS["gan2x.pipeline"]
