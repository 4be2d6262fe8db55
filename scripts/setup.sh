#!/usr/bin/env bash
# Creates .venv and installs the project into it. Idempotent: a second run with an
# unchanged pyproject.toml does nothing. torch is installed first and pinned to the CPU
# build so that nothing pulls CUDA packages on a machine without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=".venv/.installed-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip wheel
  .venv/bin/python -m pip install -q "torch==2.13.0"
  # llama-cpp-python compiles llama.cpp from source here (about 6 minutes, once).
  .venv/bin/python -m pip install -q -e ".[dev]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
