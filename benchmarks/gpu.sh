#!/usr/bin/env bash
# Runs per hour on a GPU, separate vs stacked (issue 24): meant to be run once on a lent GPU
# machine, from the repository root, in at most ~8.5 minutes (each step has a time limit). It installs nothing: TensorFlow with
# CUDA must already be there (pip install 'tensorflow[and-cuda]'; see README "On a GPU").
#
#   CLRBENCH_DATA_DIR=/path/to/mnist bash benchmarks/gpu.sh [OUT]
#
# Steps, each under a time limit so that the whole fits: (1) what TensorFlow sees; (2) the GPU
# tests (tests/test_devices.py); (3) the default suite's
# shape for one seed (5 runs x 25 epochs) separate and stacked, and the whole default suite
# (25 runs x 25 epochs) stacked (the goal: under 60 s); (4) a quick study (stacked: the
# default on a GPU). Prints wall seconds and runs per hour for each, and a summary at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUT=${1:-$(mktemp -d /tmp/clrbench-gpu.XXXXXX)}
export TF_CPP_MIN_LOG_LEVEL=2
DATA=${CLRBENCH_DATA_DIR:-../shared/data/mnist}
export CLRBENCH_DATA_DIR=$DATA
SUMMARY=()

echo "== 1. devices (results in $OUT)"
nvidia-smi -L || echo "nvidia-smi: not found"
GPUS=$($PY -m clrbench.train.devices 2>/dev/null)
echo "TensorFlow sees: ${GPUS:-nothing}"
if [[ -z "$GPUS" || "$GPUS" == "[]" ]]; then
    echo "no GPU visible to TensorFlow: install tensorflow[and-cuda] and check the driver" >&2
    exit 1
fi
if [[ ! -f "$DATA/train-images-idx3-ubyte.gz" ]]; then
    echo "MNIST IDX files not found in $DATA (set CLRBENCH_DATA_DIR)" >&2
    exit 1
fi
$PY -c "import os; print('cpus', os.cpu_count())"

timed() {  # timed NAME RUNS LIMIT_S ARGS...: one clrbench command, its wall and runs per hour
    local name=$1 runs=$2 limit=$3
    shift 3
    local t0 wall rc line
    t0=$SECONDS
    timeout "$limit" $PY -m clrbench "$@" --quiet --no-report > "$OUT/$name.log" 2>&1
    rc=$?
    wall=$((SECONDS - t0))
    if [[ $rc -eq 0 ]]; then
        line=$(printf "%-34s %5d s  %7d runs/h" "$name" "$wall" $((runs * 3600 / (wall > 0 ? wall : 1))))
    else
        line=$(printf "%-34s stopped (exit %d) after %d s: see %s" "$name" "$rc" "$wall" "$OUT/$name.log")
    fi
    echo "$line"
    SUMMARY+=("$line")
}

echo "== 2. GPU tests"
timeout 120 $PY -m pytest tests/test_devices.py -q -p no:cacheprovider -rs 2>&1 | tail -5

echo "== 3. the default suite on the GPU"
timed "suite, 1 seed, separate" 5 120 run --preset default --seeds 1 --no-stack --out "$OUT/sep1"
timed "suite, 1 seed, stacked" 5 75 run --preset default --seeds 1 --stack --out "$OUT/stk1"
timed "default suite (25 runs), stacked" 25 120 run --preset default --stack --out "$OUT/stk5"

echo "== 4. a quick study (stacked by default on a GPU; runs/h counts the study as 1)"
timed "study --preset quick" 1 60 study --preset quick --out "$OUT/study"

echo "== summary ($(date -u +%FT%TZ), $(echo "$GPUS"))"
printf '%s\n' "${SUMMARY[@]}"
