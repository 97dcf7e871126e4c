#!/usr/bin/env bash
# What one lease of the GPU machine runs (see benchmarks/RESULTS.md). Expects, carried in .device/:
#   model/                 the default model with fp16 weights (the fp32 file is over the transfer limit)
#   wheels/*.whl           tree-sitter and grammars for the machine's Python
#   stdlib_corpus.tar.xz   the standard-library eval corpus
#   ref_vectors.npz        CPU fp32 vectors (true fp32 weights) of a sample of its chunks
# Usage: bash benchmarks/gpu_session.sh STEP   (STEP: tests | throughput | index | all)
set -uo pipefail
step=${1:-all}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" /tmp/site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .device/wheels/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 CODESIFT_TEST_MODEL=$PWD/.device/model
[ -d /tmp/corpus ] || { mkdir -p /tmp/corpus && tar xJf .device/stdlib_corpus.tar.xz -C /tmp/corpus; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
if [ "$step" = tests ] || [ "$step" = all ]; then
  python3 -m pytest tests/embed -m gpu -q -s -p no:cacheprovider 2>&1 | tee "$OUT/gpu_tests.log"
fi
if [ "$step" = throughput ] || [ "$step" = all ]; then
  python3 benchmarks/gpu_throughput.py /tmp/corpus/corpus --model .device/model --ref .device/ref_vectors.npz \
    2>&1 | grep -v "Loading weights" | tee "$OUT/gpu_throughput.log"
  python3 benchmarks/embed_throughput.py --device cuda --dtype fp16 --n 20000 --model .device/model \
    2>&1 | grep -v "Loading weights" | tee "$OUT/embed_throughput_cuda.log"
fi
if [ "$step" = index ] || [ "$step" = all ]; then
  python3 benchmarks/index_wall.py /tmp/corpus/corpus --device cuda --model .device/model 2>&1 | tee "$OUT/index_wall.log"
fi
