#!/usr/bin/env bash
# Engines the test suite drives for real but that do not belong in the package's dependencies:
# a vLLM CPU server (its own venv: it pins an older CPU torch), headless Chromium (report rendering and Space tests),
# the Space's extra (gradio + playwright, driving that Chromium) and LyCORIS (loads the kohya-keyed LoRA copy).
# Each step is idempotent; a failure is reported and the dependent tests skip with the reason.
set -u
cd "$(dirname "$0")/.."
[ -f scripts/setup_vllm.sh ] && { bash scripts/setup_vllm.sh || echo "setup_test_extras: vLLM venv not available" >&2; }
[ -f scripts/setup_chromium.sh ] && { bash scripts/setup_chromium.sh || echo "setup_test_extras: chromium not available" >&2; }
if [ -x .venv/bin/pip ]; then
  .venv/bin/python -c "import gradio, playwright, lycoris" 2>/dev/null \
    || .venv/bin/pip install -q "gradio>=5" "playwright>=1.40" lycoris-lora \
    || echo "setup_test_extras: gradio/playwright/lycoris not available (the Space and kohya-loader tests skip)" >&2
fi
exit 0
