#!/usr/bin/env bash
# One GPU session sized for a 10-minute call:
#   1. training throughput, eager against one CUDA graph per step, and the
#      authors' preset's epoch time (benchmarks/gpu_step.py), alone on the GPU;
#   2. the convergence protocol's learning-rate sweeps for self-adv (DB15K
#      selected on its unseen valid triples, MKG-W, DistMult and TransE on
#      MKG-Y), lr chosen by `paired.py choose`, the authors' preset on MKG-Y
#      for its 400 epochs beside them;
#   3. the methods at each chosen lr, DB15K with 3 seeds.
# Runs share the GPU as separate processes (reproduce.py --workers): a step
# is launch-bound, so several processes keep it busier than one.
#
#   DATA=path/with/MKG-Y,DB15K,MKG-W/raw OUT=results bash benchmarks/gpu_session.sh
#
# Everything lands in $OUT/session.tar.gz (run folders without weights) and
# $OUT/*.log; the run folders' commands are in the results' runs.csv.
set -u
OUT=${OUT:?set OUT}; DATA=${DATA:?set DATA}; EPOCHS=${EPOCHS:-30}
PY=${PY:-python3}   # a local dry run: PY=.venv/bin/python INSTALL=0 GPU_STEP=0
DEADLINE=$(( $(date +%s) + ${SECONDS_LEFT:-520} ))
RUNS=/tmp/gpu-runs; RES=/tmp/gpu-results; LOGS=/tmp/gpu-logs
DATA=$(realpath -m "$DATA")
mkdir -p "$RUNS" "$RES" "$LOGS"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
left() { echo $(( DEADLINE - $(date +%s) )); }
. benchmarks/gpu_lib.sh
trap 'pack session gpu-results gpu-runs gpu-logs' EXIT

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c "import torch, torch_geometric; print(torch.__version__, torch_geometric.__version__)"
install_library

# 1. Throughput, alone on the GPU.
if [ "${GPU_STEP:-1}" = 1 ]; then
  timeout 110 $PY benchmarks/gpu_step.py --root "$DATA" --out "$OUT/gpu-step.json" \
    > "$LOGS/gpu-step.log" 2>&1
  tail -9 "$LOGS/gpu-step.log"
fi

grid() {  # dataset scorer lr methods seeds workers [extra...]
  local ds=$1 sc=$2 lr=$3 methods=$4 seeds=$5 workers=$6; shift 6
  $PY benchmarks/reproduce.py --root "$DATA" --datasets "$ds" --scorers "$sc" \
    --methods "$methods" --seeds "$seeds" --budget converge --epochs "$EPOCHS" \
    --lr "$lr" --workers "$workers" --out "$RUNS/$ds-$sc-lr$lr" \
    --results "$RES/$ds-$sc-lr$lr-${methods//,/+}" "$@" \
    > "$LOGS/$ds-$sc-lr$lr-${methods//,/+}.log" 2>&1
}
# spawn SECONDS ARGS...: grid ARGS in the background, stopped after SECONDS.
export -f grid
export PY RUNS RES LOGS DATA EPOCHS
spawn() { local limit=$1; shift; timeout "$limit" bash -c 'grid "$@"' grid "$@" & }
SWEEPS=${SWEEPS:-"DB15K:rotate:--select-on=valid-unseen MKG-W:rotate: MKG-Y:distmult: MKG-Y:transe:"}
LRS=${LRS:-"0.01 0.02 0.05"}

# 2. Sweeps (and the authors' preset beside them).
authors=none
if [ "${AUTHORS:-1}" = 1 ]; then
  (cd /tmp && timeout $(( $(left) - 5 )) $PY -m dhns_geo.cli train --preset \
    authors-distmult --dataset MKG-Y --root "$DATA" --out "$RUNS/authors-distmult-MKG-Y" \
    --no-progress > "$LOGS/authors-distmult.log" 2>&1) &
  authors=$!
fi
for job in $SWEEPS; do
  IFS=: read -r ds sc extra <<< "$job"
  for lr in $LRS; do
    spawn $(( $(left) - 230 )) $ds $sc $lr self-adv 0 1 ${extra/=/ }
  done
done
wait $(jobs -p | grep -vx "$authors")
echo "sweeps done, $(left) s left"

# 3. Methods at each chosen lr (DB15K first: 3 seeds).
for job in $SWEEPS; do
  IFS=: read -r ds sc extra <<< "$job"
  chosen=$($PY benchmarks/paired.py choose "$RUNS/$ds-$sc"-lr*/"$ds-$sc-self-adv-seed0" \
           2>>"$LOGS/choose.log")
  echo "$ds $sc: $chosen" | tee -a "$LOGS/choose.log"
  lr=$(sed -E 's/.*-lr([0-9.]+)\/.*/\1/' <<< "${chosen%%$'\t'*}")
  [ -n "$lr" ] || continue
  if [ "$ds" = DB15K ]; then
    seeds=0,1,2; methods=uniform,self-adv,dhns,dhns-model-grad; workers=11
  elif [ "$ds" = MKG-W ]; then
    seeds=0; methods=uniform,self-adv,dhns,dhns-model-grad; workers=3
  else
    seeds=0; methods=uniform,self-adv,dhns; workers=2
  fi
  spawn $(( $(left) - 15 )) $ds $sc $lr $methods $seeds $workers ${extra/=/ }
done
# MKG-Y RotatE at the lr chosen on the CPU (0.05), all three methods with
# 3 seeds: uniform was run with seed 0 only there.
if [ -z "${SKIP_MKGY:-}" ]; then
  spawn $(( $(left) - 15 )) MKG-Y rotate 0.05 uniform,self-adv,dhns 0,1,2 3
fi
wait
echo "grid done, $(left) s left"
for f in "$RES"/*/results.md; do echo "== $f"; tail -n +3 "$f"; done
tail -3 "$LOGS/authors-distmult.log" 2>/dev/null
