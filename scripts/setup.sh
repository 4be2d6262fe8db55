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
# Two stamps: the heavy part (torch, llama.cpp) is redone only when this script changes,
# the project's own install when pyproject.toml changes too.
base=".venv/.base-$(sha256sum < scripts/setup.sh | cut -c1-16)"
stamp=".venv/.installed-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ ! -f "$base" ]; then
  .venv/bin/python -m pip install -q --upgrade pip wheel
  .venv/bin/python -m pip install -q "torch==2.13.0"
  # llama-cpp-python compiles llama.cpp from source (about 6 minutes, once). A native
  # build enables the CPU's AMX kernels, whose matrix multiply crashes on batches of
  # more than one token on AMX machines; the portable build (AVX2) does not, and runs
  # anywhere. --no-cache-dir: a wheel cached from a native build must not be reused.
  CMAKE_ARGS="-DGGML_NATIVE=OFF" .venv/bin/python -m pip install -q --no-cache-dir \
    "llama-cpp-python[server]==0.3.36"
  rm -f .venv/.base-* .venv/.installed-*
  touch "$base"
fi
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q -e ".[dev]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
