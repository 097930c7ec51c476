#!/usr/bin/env bash
# Downloads into .whl/ (repo root, kept out of git) the wheels that an offline
# GPU machine lacks for benchmarks/gpu_check.sh: the backend's dependencies
# (backend/pyproject.toml) and the test extras that the chosen tests import,
# less what the machine has (Python 3.12, torch with CUDA, numpy, scipy,
# scikit-image, pillow, safetensors, tqdm, pytest). CPython 3.12,
# manylinux x86-64; one version of each, the versions this checkout's .venv
# was tested with. typing_extensions is here although torch brings one:
# pydantic wants >= 4.16.
#
#     bash benchmarks/gpu_wheels.sh            # then: du -sh .whl
#
# WHEEL_DIR and PYTHON_VERSION change where and for which CPython (a dry run
# of gpu_check.sh on this machine's 3.11:
# WHEEL_DIR=/tmp/whl311 PYTHON_VERSION=3.11 bash benchmarks/gpu_wheels.sh).
#
# The GPU machine installs them with
#     python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
# (benchmarks/gpu_check.sh; docs/performance.md, "GPU check").
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS=(
    # backend dependencies
    PyMCubes==0.1.6          # numpy, scipy: on the machine
    xatlas==0.0.11
    fastapi==0.165.0
    uvicorn==0.54.0
    # test extra that the chosen tests import (tests/service/service_helpers.py)
    httpx==0.28.1
    # their dependencies
    starlette==1.10.0
    pydantic==2.14.4
    pydantic_core==2.50.5
    typing_extensions==4.16.0
    typing-inspection==0.4.5
    annotated-types==0.8.0
    annotated-doc==0.0.7
    opentelemetry-api==1.45.2
    anyio==4.16.0
    idna==3.20
    click==8.5.1
    h11==0.16.0
    httpcore==1.0.9
    certifi==2026.10.19.post1
)
# On the machine already (not downloaded): torch numpy scipy scikit-image pillow safetensors tqdm pytest
# (and pytest's iniconfig, pluggy, packaging). schemathesis, the third test extra, is imported only by
# tests/service/test_openapi_fuzz.py, which the GPU check does not run.
PRESENT="torch numpy scipy scikit-image pillow safetensors tqdm pytest iniconfig pluggy packaging"

PYTHON=${PYTHON:-python3}
WHEEL_DIR=${WHEEL_DIR:-.whl}
PYTHON_VERSION=${PYTHON_VERSION:-3.12}
mkdir -p "$WHEEL_DIR"
for wheel in "${WHEELS[@]}"; do
    "$PYTHON" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
        --python-version "$PYTHON_VERSION" --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
        -d "$WHEEL_DIR" "$wheel" 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
done

# Every requirement of every wheel (for Python 3.12 on Linux, no extras) must be
# a wheel here or on the machine; one wheel of each name.
"$PYTHON" - "$PRESENT" "$WHEEL_DIR" "$PYTHON_VERSION" <<'PY'
import re, sys, zipfile
from pathlib import Path
from pip._vendor.packaging.requirements import Requirement
from pip._vendor.packaging.utils import canonicalize_name

present = {canonicalize_name(n) for n in sys.argv[1].split()}
folder, version = Path(sys.argv[2]), sys.argv[3]
wheels = sorted(folder.glob("*.whl"))
names = {}
for wheel in wheels:
    names.setdefault(canonicalize_name(wheel.name.split("-")[0]), []).append(wheel.name)
problems = [f"several versions of {n}: {w}" for n, w in names.items() if len(w) > 1]
environment = {"python_version": version, "python_full_version": version + ".0", "sys_platform": "linux",
               "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
               "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}
for wheel in wheels:
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n))
        for line in archive.read(metadata).decode().splitlines():
            if not line.startswith("Requires-Dist:"):
                continue
            requirement = Requirement(line.split(":", 1)[1].strip())
            if requirement.marker is not None and not requirement.marker.evaluate(environment):
                continue
            name = canonicalize_name(requirement.name)
            if name not in names and name not in present:
                problems.append(f"{wheel.name} needs {requirement}: neither downloaded nor on the machine")
size = sum(w.stat().st_size for w in wheels)
print(f"{len(wheels)} wheels, {size / 2 ** 20:.1f} MiB in {folder}/, for CPython {version}")
if problems:
    print("\n".join(problems))
    sys.exit(1)
PY
