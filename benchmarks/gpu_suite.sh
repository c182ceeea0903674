#!/usr/bin/env bash
# bash benchmarks/gpu_suite.sh [OUT_DIR]   (one H100/H200; under 8 minutes; never run from the tests)
# 1. samples/s and MFU of a random-weight NextDiT-2B at 512, with the latent + text cache against a loop that
#    re-encodes every step (random full-size Gemma-2B and SDXL VAE): benchmarks/train_step.py --gpu;
# 2. peak memory of a step-3 LoRA step at 1024: benchmarks/lora_memory.py;
# 3. a 1-GPU FSDP2 run of the real trainer (recipes/accelerate/fsdp.yaml, 1 process) whose integrity checks stop it
#    unless its gradients are non-zero, its EMA moves and its export differs from the base; run.json names the engine.
# Writes OUT_DIR/gpu_suite.json with the three results.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-gpu-suite}}
mkdir -p "$OUT"
PY=${PY:-.venv/bin/python}
ACC=${ACC:-.venv/bin/accelerate}
export HF_HUB_OFFLINE=1 HF_HOME=${HF_HOME:-$OUT/hf-home}

timeout 300 "$PY" benchmarks/train_step.py --gpu --steps 15 --json "$OUT/train_step.json"
timeout 120 "$PY" benchmarks/lora_memory.py --json "$OUT/lora_memory.json"

"$PY" - "$OUT/data" <<'PY'
import sys
import datasets
from retinalogos_hub.caption.template import TemplateCaptioner
from retinalogos_hub.demo.fundus import fundus_image
cap = TemplateCaptioner(seed=0)
rows = []
for i in range(16):
    labels = {"id": f"x/{i}", "eye": ("left", "right")[i % 2], "dr_grade": i % 5, "dme": None, "glaucoma": None,
              "diseases": [], "findings": None, "quality": None}
    rows.append({"image": fundus_image(64, seed=i, dr_grade=i % 5), "caption": cap.caption(labels)[0]})
datasets.Dataset.from_list(rows).save_to_disk(sys.argv[1])
PY
timeout 180 "$ACC" launch --config_file recipes/accelerate/fsdp.yaml --num_processes 1 -m retinalogos_hub.cli train \
  --recipe recipes/tiny/lumina-next/step1_pretrain_full.yaml data.dataset="$OUT/data" output_dir="$OUT/fsdp-run" \
  train.max_steps=20 checkpoint.every=10

"$PY" - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
run = json.loads((out / "fsdp-run" / "run.json").read_text())
suite = {"train_step": json.loads((out / "train_step.json").read_text()),
         "lora_memory": json.loads((out / "lora_memory.json").read_text()),
         "fsdp_1gpu": {k: run.get(k) for k in ("distributed_type", "fsdp_version", "device", "processes", "global_step",
                                                 "final_loss")} | {"ema_moved": True}}  # the trainer checks it
(out / "gpu_suite.json").write_text(json.dumps(suite, indent=2))
print(json.dumps(suite, indent=2))
PY
