#!/usr/bin/env bash
# Sets up a fresh machine: system fonts for the sample data, a .venv with the CPU torch wheel and the project.
# Idempotent: re-running it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei) >/dev/null \
      || echo "setup: could not install fonts-wqy-microhei; synthetic CJK images will use a fallback font" >&2
  else
    echo "setup: fonts-wqy-microhei missing and not root; install it for nicer CJK sample images" >&2
  fi
fi

# Chromium renders `dataengine report` pages in the tests and for --screenshot (driven by playwright, offline).
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null \
      || echo "setup: could not install chromium; report rendering tests will be skipped (fail under CI)" >&2
  else
    echo "setup: chromium missing and not root; install it (apt-get install chromium) for report screenshots" >&2
  fi
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.dataengine-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  # torch first, pinned, so nothing later resolves a CUDA build.
  .venv/bin/pip install -q torch==2.13.0 2>&1 | grep -v "is ignored" || true
  .venv/bin/pip install -q -e ".[demo,dev]" 2>&1 | grep -v "is ignored" || true
  .venv/bin/python -c "import dataengine, ray, polars, torch" && touch "$stamp"
fi
