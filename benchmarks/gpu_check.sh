#!/usr/bin/env bash
# The GPU check (issue 18): one script for a bare, offline GPU machine that
# writes everything under OUT_DIR: gpu_check.log (all it prints) and
# gpu_check.json (per step: status, exit code, seconds, peak CUDA memory and
# the step's figures), plus each step's own outputs. Each step is timed and
# has a time limit; a failed step is recorded and the next one runs; the
# script exits 0 whenever it could write OUT_DIR (the JSON says what failed).
#
#     bash benchmarks/gpu_check.sh OUT_DIR [--device cuda] [--tiny] [--budget SECONDS]
#                                  [--steps NAME,NAME] [--wheels DIR] [--no-install]
#
# Steps, cheapest first, each started only while the budget (default 450 s
# from the start, so the whole run stays under 8 minutes) has 20 s left:
#   env             nvidia-smi (step nvidia_smi), then, after install, the torch and CUDA versions,
#                   device name, capability and memory, and the packages' versions (step env)
#   install         pip install --target /tmp/site the wheels of .whl/ (benchmarks/gpu_wheels.sh)
#   tests           the tests that run on the device (GAN2X_TEST_DEVICE=<device>):
#                   tests/backend/test_device_parity.py, test_devices.py and the service's refusal of a bad device
#   profile_draft_64, profile_draft_128, profile_standard_64, profile_standard_128
#                   benchmarks/profile_fit.py --preset P --resolution R (export 256^3, 1024^2 textures)
#   export_256      benchmarks/profile_fit.py --export-only --mesh-resolution 256 --texture-size 1024
#   real_gan        benchmarks/real_gan.py bench --quick, if that subcommand exists and
#                   out/real_gan/dcgan_faces.tar (the DCGAN weights, carried to the machine) is there
#   bench_faces     python -m gan2x.cli bench --quick --categories faces
# in the order nvidia_smi install env tests profile_draft_64 export_256 profile_draft_128 real_gan
# profile_standard_64 bench_faces profile_standard_128 (--steps takes the names, env for both
# nvidia_smi and env).
#
# The project is not installed: backend/ and /tmp/site go on PYTHONPATH and the
# CLI runs as `python3 -m gan2x.cli`. torch is never installed. --tiny shrinks
# every step (steps x0.05, small export, one bench row) for a dry run on a CPU
# (PYTHON: the interpreter, default python3; GPU_CHECK_SITE: default /tmp/site):
#     OMP_NUM_THREADS=1 PYTHON=.venv/bin/python bash benchmarks/gpu_check.sh /tmp/gpu_dry --device cpu --tiny --no-install
# docs/performance.md, "GPU check", has the device command.
set -u

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }
OUT=""
DEVICE=cuda
TINY=0
BUDGET=450
ONLY=""
INSTALL=1
REPO=$(cd "$(dirname "$0")/.." && pwd)
WHEELS="$REPO/.whl"
while [ $# -gt 0 ]; do
    case "$1" in
        --device) DEVICE=$2; shift 2 ;;
        --tiny) TINY=1; shift ;;
        --budget) BUDGET=$2; shift 2 ;;
        --steps) ONLY=$2; shift 2 ;;
        --wheels) WHEELS=$(cd "$2" && pwd); shift 2 ;;
        --no-install) INSTALL=0; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) echo "gpu_check: unknown option $1" >&2; usage >&2; exit 2 ;;
        *) if [ -n "$OUT" ]; then echo "gpu_check: one OUT_DIR only" >&2; exit 2; fi; OUT=$1; shift ;;
    esac
done
if [ -z "$OUT" ]; then usage >&2; exit 2; fi
mkdir -p "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)
LOG="$OUT/gpu_check.log"
SUMMARY="$OUT/gpu_check.json"
STEPS_DIR="$OUT/steps"
rm -rf "$STEPS_DIR" && mkdir -p "$STEPS_DIR"
: > "$LOG"

PYTHON=${PYTHON:-python3}
SITE=${GPU_CHECK_SITE:-/tmp/site}
STARTED=$(date +%s)
DEADLINE=$((STARTED + BUDGET))
HELPER=$(mktemp "${TMPDIR:-/tmp}/gpu_check_helper.XXXXXX.py")
trap 'rm -f "$HELPER"' EXIT
export PYTHONUNBUFFERED=1
export PYTHONPATH="$SITE:$REPO/backend${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
export MPLBACKEND=Agg

cat > "$HELPER" <<'PY'
"""gpu_check.sh's helper: run a step's Python under a peak-memory recorder,
describe the machine, and write the step records and the summary JSON."""
import json
import os
import resource
import signal
import sys
import time
from pathlib import Path


def peaks() -> dict:
    record = {"cpu_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)}
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
            record["cuda_peak_allocated_mib"] = round(torch.cuda.max_memory_allocated() / 2 ** 20, 1)
            record["cuda_peak_reserved_mib"] = round(torch.cuda.max_memory_reserved() / 2 ** 20, 1)
    except Exception as error:  # a broken CUDA must not hide the step's own result
        record["cuda_peak_error"] = repr(error)
    return record


def run(peak_file: str, argv: list[str]):
    """Runs ``-m MODULE ARGS`` or ``SCRIPT ARGS`` as python would, then writes
    this process's peak memory to peak_file (also when the time limit's SIGTERM ends it)."""
    import atexit
    import runpy

    written = []

    def write():
        if not written:
            written.append(True)
            Path(peak_file).write_text(json.dumps(peaks()))

    def terminated(signum, frame):
        write()
        sys.stdout.flush()
        os._exit(124)

    atexit.register(write)
    signal.signal(signal.SIGTERM, terminated)
    if argv[0] == "-m":
        sys.argv = argv[1:]
        sys.path[0] = os.getcwd()
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = argv
        sys.path[0] = str(Path(argv[0]).resolve().parent)
        runpy.run_path(argv[0], run_name="__main__")


def environment(path: str, device: str):
    import platform

    figures = {"python": sys.version.split()[0], "platform": platform.platform(), "cpu_count": os.cpu_count()}
    for name in ("numpy", "scipy", "skimage", "PIL", "safetensors", "tqdm", "pytest", "mcubes", "xatlas",
                 "fastapi", "uvicorn", "httpx", "pydantic"):
        try:
            module = __import__(name)
            figures.setdefault("packages", {})[name] = getattr(module, "__version__", "?")
        except Exception as error:
            figures.setdefault("packages", {})[name] = f"missing: {type(error).__name__}: {error}"
    import torch

    figures.update({"torch": torch.__version__, "torch_cuda": torch.version.cuda,
                    "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
                    "cuda_available": torch.cuda.is_available(), "device_count": torch.cuda.device_count(),
                    "device": device})
    if torch.cuda.is_available():
        properties = torch.cuda.get_device_properties(0)
        figures.update({"device_name": torch.cuda.get_device_name(0),
                        "capability": ".".join(map(str, torch.cuda.get_device_capability(0))),
                        "device_memory_mib": round(properties.total_memory / 2 ** 20),
                        "multiprocessors": properties.multi_processor_count})
        started = time.perf_counter()
        x = torch.randn(4096, 4096, device="cuda")
        (x @ x).sum().item()
        figures["first_matmul_s"] = round(time.perf_counter() - started, 3)
    print(json.dumps(figures, indent=2))
    Path(path).write_text(json.dumps(figures, indent=2))
    if device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("torch sees no CUDA device")


def _json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _figures(kind: str, path: str):
    if not path or not Path(path).exists():
        return None
    if kind == "junit":
        import xml.etree.ElementTree as ElementTree

        root = ElementTree.parse(path).getroot()
        suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
        counts = {key: sum(int(s.get(key, 0)) for s in suites) for key in ("tests", "failures", "errors", "skipped")}
        counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
        counts["not_passed"] = [f"{case.get('classname')}::{case.get('name')}: {child.tag}"
                                for case in root.iter("testcase") for child in case
                                if child.tag in ("failure", "error", "skipped")]
        return counts
    data = _json(path)
    if kind == "bench" and isinstance(data, dict):
        return {key: data.get(key) for key in ("summary", "settings")}
    if kind == "smi":
        lines = [line.split(", ") for line in Path(path).read_text().splitlines() if line.strip()]
        keys = ("name", "driver_version", "memory_total_mib", "compute_cap")
        return [dict(zip(keys, line)) for line in lines]
    return data


def record(args: list[str]):
    (record_path, name, kind, status, rc, seconds, timeout_s, command, peak_file, smi_file,
     figures_path) = args
    entry = {"name": name, "status": status, "rc": None if rc == "" else int(rc),
             "seconds": None if seconds == "" else round(float(seconds), 2),
             "timeout_s": None if timeout_s == "" else int(timeout_s), "command": command}
    memory = _json(peak_file) or {}
    try:
        used = [float(v) for v in Path(smi_file).read_text().split()]
        if used:
            memory["gpu_memory_used_max_mib"] = max(used)  # nvidia-smi, every 250 ms: the whole device
    except (OSError, ValueError):
        pass
    entry["memory"] = memory
    entry["figures_file"] = figures_path or None
    try:
        entry["figures"] = _figures(kind, figures_path)
    except Exception as error:  # unreadable figures are a finding, not a crash
        entry["figures"] = None
        entry["figures_error"] = repr(error)
    Path(record_path).write_text(json.dumps(entry, indent=2))


def summary(args: list[str]):
    path, steps_dir, device, tiny, budget, started, planned, finished = args
    steps = [_json(p) for p in sorted(Path(steps_dir).glob("*.json"))]
    steps = [s for s in steps if s]
    statuses = [s["status"] for s in steps]
    document = {
        "check": "benchmarks/gpu_check.sh", "device": device, "tiny": tiny == "1", "budget_s": int(budget),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(int(started))),
        "wall_s": round(time.time() - int(started), 1), "finished": finished == "1",
        "planned_steps": planned.split(",") if planned else [],
        "counts": {"ok": statuses.count("ok"), "failed": statuses.count("failed"),
                   "timeout": statuses.count("timeout"),
                   "skipped": sum(s.startswith("skipped") for s in statuses)},
        "exit_status": 0,
        "steps": {s["name"]: s for s in steps},
    }
    Path(path).write_text(json.dumps(document, indent=2))


if __name__ == "__main__":
    command, rest = sys.argv[1], sys.argv[2:]
    if command == "run":
        run(rest[0], rest[1:])
    elif command == "env":
        environment(*rest)
    elif command == "record":
        record(rest)
    elif command == "summary":
        summary(rest)
PY

ALL_STEPS="env install tests profile_draft_64 export_256 profile_draft_128 real_gan profile_standard_64 bench_faces profile_standard_128"
if [ -n "$ONLY" ]; then PLANNED=${ONLY//,/ }; else PLANNED=$ALL_STEPS; fi
STEP_NUMBER=0

for name in $PLANNED; do
    case " $ALL_STEPS " in *" $name "*) ;; *) echo "gpu_check: unknown step $name (steps: $ALL_STEPS)" >&2; exit 2 ;; esac
done
wanted() { case " $PLANNED " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

write_summary() {  # $1: 1 when every step has been through
    "$PYTHON" "$HELPER" summary "$SUMMARY" "$STEPS_DIR" "$DEVICE" "$TINY" "$BUDGET" "$STARTED" \
        "$(echo $PLANNED | tr ' ' ',')" "$1" || echo "gpu_check: could not write $SUMMARY"
}

record() {  # name kind status rc seconds timeout command peak smi figures
    STEP_NUMBER=$((STEP_NUMBER + 1))
    "$PYTHON" "$HELPER" record "$(printf '%s/%02d_%s.json' "$STEPS_DIR" "$STEP_NUMBER" "$1")" "$@" \
        || echo "gpu_check: could not record step $1"
    write_summary 0
}

skip() {  # name reason
    echo "=== $1: skipped: $2"
    record "$1" none "skipped: $2" "" "" "" "" "" "" ""
}

# step NAME CAP KIND FIGURES -- COMMAND...: runs COMMAND with a time limit of
# min(CAP, what is left of the budget), samples nvidia-smi's memory.used meanwhile,
# and records it. KIND says how to read FIGURES (json, bench, junit, smi, none).
step() {
    local name=$1 cap=$2 kind=$3 figures=$4
    shift 5
    local left=$((DEADLINE - $(date +%s)))
    if [ "$left" -lt 20 ]; then skip "$name" "out of time (budget ${BUDGET} s)"; return; fi
    local limit=$(( cap < left ? cap : left ))
    local peak="$STEPS_DIR/.$name.peak" smi="$STEPS_DIR/.$name.smi" sampler=""
    rm -f "$peak" "$smi"
    if [ "${DEVICE%%:*}" = cuda ] && command -v nvidia-smi > /dev/null; then
        nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 250 > "$smi" 2> /dev/null &
        sampler=$!
    fi
    echo
    echo "=== $name (limit ${limit} s) $(date +%T): $*"
    local begin end rc
    begin=$(date +%s.%N)
    GPU_CHECK_PEAK_FILE="$peak" timeout -k 10 "$limit" "$@"
    rc=$?
    end=$(date +%s.%N)
    if [ -n "$sampler" ]; then kill "$sampler" 2> /dev/null; wait "$sampler" 2> /dev/null; fi
    local seconds status
    seconds=$(awk "BEGIN {print $end - $begin}")
    if [ "$rc" -eq 0 ]; then status=ok
    elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then status=timeout
    else status=failed; fi
    echo "=== $name: $status (exit $rc) in ${seconds} s"
    record "$name" "$kind" "$status" "$rc" "$seconds" "$limit" "$*" "$peak" "$smi" "$figures"
    rm -f "$peak" "$smi"
}

# a Python step under the peak-memory recorder: py NAME CAP KIND FIGURES -- ARGS (as after `python3`)
py() {
    local name=$1 cap=$2 kind=$3 figures=$4
    shift 5
    step "$name" "$cap" "$kind" "$figures" -- "$PYTHON" "$HELPER" run "$STEPS_DIR/.$name.peak" "$@"
}

if [ "$TINY" = 1 ]; then
    FIT_SIZE=(--steps-scale 0.05 --mesh-resolution 64 --texture-size 256)
    EXPORT_SIZE=(--mesh-resolution 96 --texture-size 256)
    BENCH_SIZE=(--seeds 1000 --rows ellipsoid)
else
    FIT_SIZE=(--mesh-resolution 256 --texture-size 1024)
    EXPORT_SIZE=(--mesh-resolution 256 --texture-size 1024)
    BENCH_SIZE=(--quick)
fi

main() {
    cd "$REPO" || return
    echo "gpu_check: $(date -Is), device $DEVICE, tiny $TINY, budget ${BUDGET} s, out $OUT"
    echo "gpu_check: repo $REPO ($(git -C "$REPO" rev-parse --short HEAD 2> /dev/null || echo 'no git')), python $("$PYTHON" --version 2>&1)"
    echo "gpu_check: PYTHONPATH=$PYTHONPATH"
    write_summary 0

    if wanted env; then
        if command -v nvidia-smi > /dev/null; then
            timeout 30 nvidia-smi
            step nvidia_smi 30 smi "$OUT/nvidia_smi.csv" -- \
                nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader,nounits \
                -f "$OUT/nvidia_smi.csv"
        elif [ "${DEVICE%%:*}" = cuda ]; then
            step nvidia_smi 30 none "" -- nvidia-smi
        else
            skip nvidia_smi "no nvidia-smi (device $DEVICE)"
        fi
    fi

    if wanted install; then
        if [ "$INSTALL" = 0 ]; then
            skip install "--no-install (installed before; env lists the versions)"
        elif ! ls "$WHEELS"/*.whl > /dev/null 2>&1; then
            skip install "no wheels in $WHEELS (bash benchmarks/gpu_wheels.sh)"
        elif "$PYTHON" -m pip --version > /dev/null 2>&1; then
            step install 120 none "" -- "$PYTHON" -m pip install -q --no-index --no-deps --no-compile \
                --no-cache-dir --upgrade --target "$SITE" "$WHEELS"/*.whl
        else  # no pip: a wheel is a zip of what goes into site-packages
            step install 120 none "" -- "$PYTHON" -c "import sys, zipfile; [zipfile.ZipFile(w).extractall(sys.argv[1]) for w in sys.argv[2:]]" "$SITE" "$WHEELS"/*.whl
        fi
    fi
    "$PYTHON" -c "import mcubes, xatlas, fastapi, uvicorn, httpx, gan2x.cli; print('gpu_check: imports ok,', gan2x.cli.__file__)" \
        || echo "gpu_check: the project's imports fail (see above)"
    if wanted env; then
        py env 90 json "$OUT/env.json" -- "$HELPER" env "$OUT/env.json" "$DEVICE"
    fi

    if wanted tests; then
        export GAN2X_TEST_DEVICE=$DEVICE
        py tests 150 junit "$OUT/tests.xml" -- -m pytest -q -p no:cacheprovider -rfEs \
            --junitxml "$OUT/tests.xml" tests/backend/test_device_parity.py tests/backend/test_devices.py \
            tests/service/test_service_resilience.py::test_a_device_the_fits_cannot_use_is_refused_at_start
    fi

    local profile=benchmarks/profile_fit.py
    if wanted profile_draft_64; then
        py profile_draft_64 120 json "$OUT/profile_draft_64.json" -- $profile --preset draft --resolution 64 \
            --device "$DEVICE" "${FIT_SIZE[@]}" --json "$OUT/profile_draft_64.json"
    fi
    if wanted export_256; then
        py export_256 90 json "$OUT/profile_export_256.json" -- $profile --export-only --device "$DEVICE" \
            "${EXPORT_SIZE[@]}" --json "$OUT/profile_export_256.json"
    fi
    if wanted profile_draft_128; then
        py profile_draft_128 150 json "$OUT/profile_draft_128.json" -- $profile --preset draft --resolution 128 \
            --device "$DEVICE" "${FIT_SIZE[@]}" --json "$OUT/profile_draft_128.json"
    fi

    if wanted real_gan; then
        local tar=out/real_gan/dcgan_faces.tar help
        if [ ! -f benchmarks/real_gan.py ]; then
            skip real_gan "not available (no benchmarks/real_gan.py)"
        elif ! help=$("$PYTHON" benchmarks/real_gan.py --help 2>&1) || ! grep -Eq '\{[^}]*\bbench\b[^}]*\}' <<< "$help"; then
            skip real_gan "not available (benchmarks/real_gan.py has no bench subcommand)"
        elif [ ! -f "$tar" ]; then
            skip real_gan "no weights ($tar: run benchmarks/real_gan.py fetch and carry out/real_gan)"
        else
            echo "gpu_check: DCGAN weights $tar, $(du -h "$tar" | cut -f1), sha256 $(sha256sum "$tar" | cut -c1-16)"
            local bench_help extra=()
            bench_help=$("$PYTHON" benchmarks/real_gan.py bench --help 2>&1)
            grep -q -- "--json" <<< "$bench_help" && extra+=(--json "$OUT/real_gan_bench.json")
            [ "$TINY" = 1 ] && grep -q -- "--steps-scale" <<< "$bench_help" && extra+=(--steps-scale 0.05)
            py real_gan 150 json "$OUT/real_gan_bench.json" -- benchmarks/real_gan.py bench --quick \
                --device "$DEVICE" ${extra[@]+"${extra[@]}"}
        fi
    fi

    if wanted profile_standard_64; then
        py profile_standard_64 200 json "$OUT/profile_standard_64.json" -- $profile --preset standard \
            --resolution 64 --device "$DEVICE" "${FIT_SIZE[@]}" --json "$OUT/profile_standard_64.json"
    fi
    if wanted bench_faces; then
        if [ "$TINY" = 1 ] && "$PYTHON" -m gan2x.cli bench --help 2>&1 | grep -q -- --consistency-steps; then
            BENCH_SIZE+=(--consistency-steps 2)
        fi
        py bench_faces 240 bench "$OUT/bench_faces.json" -- -m gan2x.cli bench "${BENCH_SIZE[@]}" --device "$DEVICE" \
            --categories faces --json "$OUT/bench_faces.json" --markdown "$OUT/bench_faces.md"
    fi
    if wanted profile_standard_128; then
        py profile_standard_128 300 json "$OUT/profile_standard_128.json" -- $profile --preset standard \
            --resolution 128 --device "$DEVICE" "${FIT_SIZE[@]}" --json "$OUT/profile_standard_128.json"
    fi

    write_summary 1
    echo
    echo "gpu_check: done in $(( $(date +%s) - STARTED )) s; summary $SUMMARY, log $LOG"
    "$PYTHON" - "$SUMMARY" <<'PY' || true
import json, sys
document = json.load(open(sys.argv[1]))
print("counts:", document["counts"])
for name, step in document["steps"].items():
    memory = step.get("memory") or {}
    cuda = memory.get("cuda_peak_allocated_mib")
    seconds = step["seconds"] if step["seconds"] is not None else float("nan")
    print(f"  {name:22s} {step['status']:10.10s} {seconds:8.1f} s"
          + (f"  cuda peak {cuda:.0f} MiB" if cuda is not None else ""))
PY
}

main 2>&1 | tee -a "$LOG"
exit 0
