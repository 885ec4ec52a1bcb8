#!/usr/bin/env bash
# The GPU check of issue 25 (scripts/device_check.py), one command, under 8 minutes on one H100, no network:
#   scripts/device_check.sh [OUT_DIR]          -> OUT_DIR/device_check.json (default: $OUT, else ./device-check)
# The machine has torch, transformers and accelerate; part (a) also needs TRL and datasets. Carry their wheels
# (64 MiB in all) in wheels/ and they are installed into OUT_DIR/site (no index, no network) when missing:
#   pip download --no-deps -d wheels trl==1.16.0 datasets==5.2.0 dill multiprocess xxhash pyarrow
#   (what is already on the machine is not needed; pip's --no-deps keeps the download to these)
# On a CPU machine: DEVICE_CHECK_ARGS="--toy --device cpu" scripts/device_check.sh /tmp/dc
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-device-check}}"
mkdir -p "$OUT_DIR"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" OMP_NUM_THREADS="${OMP_NUM_THREADS:-8}"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
if ! python -c "import trl, datasets" 2>/dev/null && compgen -G "wheels/*.whl" >/dev/null; then
  python -m pip install --quiet --no-index --no-deps --target "$OUT_DIR/site" wheels/*.whl \
    && export PYTHONPATH="$PYTHONPATH:$PWD/$OUT_DIR/site"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT_DIR/nvidia-smi.csv" 2>/dev/null || true
# 450 s for both parts; the JSON is rewritten after each part, so a timeout keeps what finished
timeout --signal=TERM "${DEVICE_CHECK_BUDGET_S:-450}" \
  python scripts/device_check.py --out "$OUT_DIR/device_check.json" ${DEVICE_CHECK_ARGS:-} \
  || echo "device_check.py ended with status $? (figures so far are in $OUT_DIR/device_check.json)"
echo "wrote $OUT_DIR/device_check.json"
