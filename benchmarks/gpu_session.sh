#!/usr/bin/env bash
# One GPU session sized for a 10-minute call: the "Which negatives?"
# comparison (benchmarks/samplers.py, the convergence protocol) on DB15K
# (seeds 0 1) and MKG-Y (seeds 1 2), every method (DATASETS=MKG-W adds that).
# Runs share the GPU as separate processes (--workers: a step is launch-bound);
# each pauses at the deadline (--pause-after: checkpoint written, untested)
# and the same command resumes it.
#
#   DATA=path/with/MKG-Y,DB15K,MKG-W/raw OUT=results bash benchmarks/gpu_session.sh
#
# $OUT/session.tar.gz (run folders without weights, the report) and
# $OUT/*.log: untar into runs/samplers, then `python benchmarks/samplers.py report`.
set -u
OUT=${OUT:?set OUT}; DATA=${DATA:?set DATA}
PY=${PY:-python3}   # a local dry run: PY=.venv/bin/python INSTALL=0 SECONDS_LEFT=60
DEADLINE=$(( $(date +%s) + ${SECONDS_LEFT:-520} ))
RUNS=/tmp/gpu-runs; LOGS=/tmp/gpu-logs
DATA=$(realpath -m "$DATA")
mkdir -p "$RUNS" "$LOGS"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
left() { echo $(( DEADLINE - $(date +%s) )); }
. benchmarks/gpu_lib.sh
trap 'pack session gpu-runs gpu-logs' EXIT

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c "import torch, torch_geometric; print(torch.__version__, torch_geometric.__version__)"
install_library

for ds in ${DATASETS:-DB15K MKG-Y}; do
  seeds="0 1"; [ "$ds" = MKG-Y ] && seeds="1 2"
  timeout $(( $(left) - 20 )) $PY benchmarks/samplers.py run --root "$DATA" \
    --datasets "$ds" --seeds $seeds --workers "${WORKERS:-9}" --runs "$RUNS" \
    --device "${DEVICE:-cuda}" --pause-after $(( $(left) - 60 )) \
    > "$LOGS/$ds.log" 2>&1 &
done
wait
echo "grid done, $(left) s left"
grep -h "^done:" "$LOGS"/*.log
