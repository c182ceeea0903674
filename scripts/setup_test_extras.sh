#!/usr/bin/env bash
# Engines the test suite drives for real but that do not belong in the package's dependencies:
# a vLLM CPU server (its own venv: it pins an older CPU torch) and headless Chromium (report rendering test).
# Each step is idempotent; a failure is reported and the dependent tests skip with the reason.
set -u
cd "$(dirname "$0")/.."
[ -f scripts/setup_vllm.sh ] && { bash scripts/setup_vllm.sh || echo "setup_test_extras: vLLM venv not available" >&2; }
[ -f scripts/setup_chromium.sh ] && { bash scripts/setup_chromium.sh || echo "setup_test_extras: chromium not available" >&2; }
exit 0
