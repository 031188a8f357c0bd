#!/usr/bin/env bash
# GPU check of the trainer: All-CNN-C (full width) on synthetic CIFAR-sized data (50,000 train +
# 5,000 validation images, 3×32×32), through train.py's own training loop (pinned memory,
# non-blocking copies, channels-last, autocast), fp32 and then AMP; prints images/second of the
# second epoch (the first one warms up cuDNN's autotuner). Well under 3 minutes on a recent GPU,
# pip install of torch included when the interpreter lacks it.
#
#   bench/gpu_smoke.sh                         # on a machine with an NVIDIA GPU
#   SMOKE_DEVICE=cpu SMOKE_IMAGES=1000 bench/gpu_smoke.sh   # check the script itself without one
#
# Env: PYTHON (default .venv/bin/python, else python3), SMOKE_DEVICE (default cuda), SMOKE_IMAGES
# (training images, default 50000), SMOKE_BATCH (default 256).
set -euo pipefail
cd "$(dirname "$0")/.."

DEVICE=${SMOKE_DEVICE:-cuda}
IMAGES=${SMOKE_IMAGES:-50000}
BATCH=${SMOKE_BATCH:-256}
if [[ -z ${PYTHON:-} ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=$(command -v python3); fi
fi

if [[ $DEVICE == cuda* ]]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || {
    echo "gpu_smoke: no NVIDIA GPU answering nvidia-smi" >&2; exit 1; }
fi
if ! "$PYTHON" -c "import torch, numpy" 2>/dev/null; then
  venv=${TMPDIR:-/tmp}/kubetune-gpu-smoke-venv
  echo "gpu_smoke: installing torch into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "torch==2.15.0" "numpy==2.4.6"
  PYTHON=$venv/bin/python
fi

exec "$PYTHON" - "$DEVICE" "$IMAGES" "$BATCH" <<'PY'
import sys
from dataclasses import replace
import time
from pathlib import Path

sys.path.insert(0, str(Path.cwd() / "trainer-image"))
import torch  # noqa: E402

import data  # noqa: E402
import train  # noqa: E402

device, images, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if device.startswith("cuda"):
    if not torch.cuda.is_available():
        sys.exit("gpu_smoke: torch sees no CUDA device (is this torch a CPU build?)")
    print(f"gpu_smoke: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, "
          f"bf16={torch.cuda.is_bf16_supported()}", flush=True)
n_val = max(1, images // 10)
splits = data.synthetic(images + n_val, 32)
hp = replace(train.EXPERT_DEFAULTS["allcnn"], epochs=2)
for amp in (False, True) if device.startswith("cuda") else (False,):
    stamps: list[float] = []
    opts = train.Options(model="allcnn", dataset="synthetic", width=1.0, batch_size=batch, device=device, amp=amp)
    start = time.perf_counter()
    result = train.train(hp, opts, splits=splits, progress=lambda epoch, **m: stamps.append(time.perf_counter()))
    epoch_seconds = stamps[1] - stamps[0]  # includes the validation pass, as a real epoch does
    label = "amp " if amp else "fp32"
    print(f"gpu_smoke: {label} {splits.train_x.shape[0] / epoch_seconds:9.0f} images/s "
          f"(epoch {epoch_seconds:.2f} s, first epoch {stamps[0] - start:.2f} s, batch {batch}, "
          f"loss {result.loss:.3f})", flush=True)
if device.startswith("cuda"):
    print(f"gpu_smoke: peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
PY
