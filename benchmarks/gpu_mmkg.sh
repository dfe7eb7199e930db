#!/usr/bin/env bash
# One GPU call for the multimodal benchmarks' strongest recipe at the
# published rank: ComplEx-N3 (the complex-n3-* presets) at rank 1000
# (dim 2000) with the ingredients of benchmarks/mmkg_sota.py, and
# complex-n3-fb15k237 at its own rank 1000, each run stopped by a budget of
# training seconds (--time-limit: the epoch that passes it is evaluated, the
# best epoch on valid is tested). All runs share the GPU as separate
# processes, one CPU core each (a 1-vs-all step at batch 100 is launch-bound).
#
#   DATA_TAR=.gpu/data.tar.gz OUT=out bash benchmarks/gpu_mmkg.sh
#
# DATA_TAR holds MKG-Y/raw, DB15K/raw (with their textual features, from
# `dhns features text`), MKG-W/raw and FB15k-237/raw. Everything lands in
# $OUT/mmkg.tar.gz (run folders without weights) and $OUT/paired.md.
set -u
OUT=${OUT:?set OUT}; DATA_TAR=${DATA_TAR:?set DATA_TAR}
PY=${PY:-python3}        # a local dry run: PY=.venv/bin/python INSTALL=0 DEVICE=cpu
DEVICE=${DEVICE:-cuda}; DIM=${DIM:-2000}
TIME_LIMIT=${TIME_LIMIT:-300}; FB_TIME_LIMIT=${FB_TIME_LIMIT:-270}; KILL_AFTER=${KILL_AFTER:-470}
MMKG_RUNS=${MMKG_RUNS:-"MKG-Y:base:0 MKG-Y:dura:0 MKG-Y:dura:1 MKG-Y:dura:2 MKG-Y:text-dura:0
  DB15K:base:0 DB15K:dura:0 DB15K:dura:1 DB15K:dura:2 DB15K:text-dura:0
  MKG-W:base:0 MKG-W:dura:0 MKG-W:dura:1 MKG-W:dura:2"}
FB_RUNS=${FB_RUNS:-"FB15k-237:base:0 FB15k-237:dura:0"}
RUNS=/tmp/mmkg-runs; LOGS=/tmp/mmkg-logs; DATA=/tmp/mmkg-data
mkdir -p "$RUNS" "$LOGS" "$DATA"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
. benchmarks/gpu_lib.sh
trap 'pack mmkg mmkg-runs mmkg-logs' EXIT

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
$PY -c "import torch, torch_geometric; print(torch.__version__, torch_geometric.__version__)"
tar -xzf "$DATA_TAR" -C "$DATA" || { echo "cannot unpack $DATA_TAR"; exit 1; }
install_library

common=(--root "$DATA" --runs "$RUNS" --dim "$DIM" --epochs 1000 --device "$DEVICE"
        --nondeterministic --no-report)
launch() {  # NAME TIME_LIMIT RUNS...: the runs in parallel, one process each
  local name=$1 limit=$2; shift 2
  [ $# -gt 0 ] || return 0
  timeout "$KILL_AFTER" $PY benchmarks/mmkg_sota.py run "${common[@]}" --time-limit "$limit" \
    --workers $# --only "$@" > "$LOGS/$name.log" 2>&1 &
}
# shellcheck disable=SC2086  # the run lists are words
launch mmkg "$TIME_LIMIT" $MMKG_RUNS
# shellcheck disable=SC2086
launch fb "$FB_TIME_LIMIT" $FB_RUNS
wait
grep -h "^done\|^failed\|Error" "$LOGS"/*.log
grep -h "time limit" "$LOGS"/*.log | sed 's/ loss.*valid/ valid/'
$PY benchmarks/mmkg_sota.py report --runs "$RUNS" > "$LOGS/report.log" 2>&1
cp benchmarks/results/mmkg-sota/paired.md "$OUT/paired.md" 2>/dev/null
tail -25 "$LOGS/report.log"
