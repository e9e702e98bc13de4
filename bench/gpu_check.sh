#!/usr/bin/env bash
# The one prepared device check (an accelerator lent for a few minutes): measure the kernels on the GPU,
# validate the simulator against them, and leave the run folder under $OUT (or results/).
#   PYTHONPATH=. bash bench/gpu_check.sh            # on the device machine, from the repo root
# Fails in a second with one line when no CUDA device is visible (never falls back to the CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONPATH=${PYTHONPATH:-.}
OUT_DIR=${OUT:-results}
RUN_ID=${RUN_ID:-gpu-$(date -u +%Y%m%d-%H%M%S)}
if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  echo "gpu_check: no CUDA device visible to torch; nothing measured" >&2
  exit 3
fi
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv > /dev/null 2>&1 \
  && nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv
BUDGET_S=${BUDGET_S:-0.3}   # per case: the full sweep is ~250 cases; keep the whole check to a few minutes
# the shipped profile of this GPU (speed-of-light / achievable validation beside the run's own calibration)
NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || true)
case "$NAME" in
  *H200*) PROFILE=h200 ;; *H100*PCIe*) PROFILE=h100-pcie ;; *H100*) PROFILE=h100-sxm ;; *H800*) PROFILE=h800 ;;
  *H20*) PROFILE=h20 ;; *B200*) PROFILE=b200 ;; *A100*) PROFILE=a100-80gb ;; *) PROFILE="" ;;
esac
# quick sweep in bf16 (its reference rows include fp8 GEMMs where torch._scaled_mm works), calibrated in the run
timeout "${CHECK_TIMEOUT_S:-420}" "$PY" -m daedalus bench --quick --device cuda --dtype bf16 --results "$OUT_DIR" \
  --run-id "$RUN_ID" --budget-s "$BUDGET_S" --no-progress --format csv > "$OUT_DIR/$RUN_ID.bench.csv" || true
"$PY" -m daedalus validate --results "$OUT_DIR" --run "$RUN_ID" --format csv | tee "$OUT_DIR/$RUN_ID.validate.csv"
if [ -n "$PROFILE" ]; then
  "$PY" -m daedalus validate --results "$OUT_DIR" --run "$RUN_ID" --hardware "$PROFILE" --format csv \
    > "$OUT_DIR/$RUN_ID.validate-$PROFILE.csv"
fi
echo "gpu_check: results in $OUT_DIR/$RUN_ID"
