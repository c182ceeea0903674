#!/usr/bin/env bash
# Headless Chromium for the report rendering test (tests/test_evaluate_report.py). Idempotent: does nothing when a
# chromium binary is already on PATH; otherwise installs Debian's `chromium` with apt (as root, or through sudo).
set -euo pipefail
for bin in chromium chromium-browser google-chrome; do
  if command -v "$bin" >/dev/null 2>&1; then
    echo "setup_chromium: $(command -v "$bin") present"
    exit 0
  fi
done
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup_chromium: no apt-get here; install Chromium by hand (the report test skips without it)" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "setup_chromium: need root or sudo to apt-get install chromium" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
echo "setup_chromium: installed $(command -v chromium)"
