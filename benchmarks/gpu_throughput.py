#!/usr/bin/env python3
"""GPU indexing throughput (issue 4): codesift vs sentence-transformers on the same chunks, one process.

The corpus is chunked by codesift's own chunker (one chunk per function/method/class...),
and every side embeds exactly the texts the indexer embeds. Reported:
  - sentence-transformers at its best settings tried (fp16 batch 32 and 256, fp32 batch 32);
  - codesift's GPU stage alone on pre-tokenized input (packed batches, CUDA graph);
  - codesift end to end: texts in, tokenized in worker processes, embedded, vectors stored in
    SQLite, wall clock;
  - fp16/bf16 against fp32 for every chunk (cosine);
  - peak GPU and host memory for 1x and Nx the corpus streamed through (bounded memory).

  python benchmarks/gpu_throughput.py CORPUS_DIR --model MODEL_DIR [--skip-st] [--scale 10]

The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _results import write_result  # noqa: E402

from codesift.embed.batches import DEFAULT_TOKEN_BUDGET  # noqa: E402  (after the path set-up)


def chunk_texts(corpus: Path, workers: int) -> list[str]:
    import multiprocessing as mp

    from codesift.index.prepare import prepare_file
    from codesift.walk import walk

    files = walk(corpus).files
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        prepared = list(pool.map(prepare_file, files, chunksize=8))
    return [t for p in prepared for t in p.texts]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- the benchmark's own end-to-end path: tokenizer processes ahead of the GPU --------------------
# (`codesift index` tokenizes in its file workers instead, see codesift/index/prepare.py)

_worker_tokenizer = None


def _init_tokenizer_worker(files) -> None:
    global _worker_tokenizer
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one thread per process: the processes are the parallelism
    from codesift.embed.tokenizer import TextTokenizer

    _worker_tokenizer = TextTokenizer(files)


def _tokenize_in_worker(texts: list[str]):
    return _worker_tokenizer.encode_flat(texts)


# Texts in the first slice: small, so the GPU's first batch is ready soon; later slices double.
FIRST_SLICE = 64


def _slices(texts, size: int):
    """Consecutive lists of texts: FIRST_SLICE at first, doubling up to `size`."""
    part: list[str] = []
    target = min(FIRST_SLICE, size)
    for t in texts:
        part.append(t)
        if len(part) == target:
            yield part
            part = []
            target = min(2 * target, size)
    if part:
        yield part


class TokenizerPool:
    """Tokenizes slices of texts in worker processes, results in order."""

    def __init__(self, files, workers: int):
        import multiprocessing as mp

        self.workers = workers
        self.pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                                        initializer=_init_tokenizer_worker, initargs=(files,))

    def map(self, slices):
        from codesift.embed.ordered import ordered_map

        return ordered_map(self.pool, _tokenize_in_worker, slices, window=4 * self.workers)

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)


def embed_stream(texts, tokenize, runner, slice_size: int, stats: dict):
    """(input positions, vectors) for a stream of texts: tokenized ahead, packed, run, in order."""
    from codesift.embed.batches import TokenBatch, pack

    stats.setdefault("tokens", 0)

    def tokenized():
        base = 0
        for flat, lengths, _truncated in tokenize(_slices(texts, slice_size)):
            stats["tokens"] += int(lengths.sum())
            yield TokenBatch(np.arange(base, base + len(lengths), dtype=np.int64), flat, lengths)
            base += len(lengths)

    yield from runner.run(pack(tokenized(), runner.token_budget, runner.max_seqs))


def run_in_thread(iterator, maxsize: int = 8):
    """Drive `iterator` in a background thread (the GPU loop) and yield its items here."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize)
    done = object()

    def work():
        try:
            for item in iterator:
                q.put(item)
        except BaseException as e:  # errors propagate to the consumer
            q.put(e)
        q.put(done)

    threading.Thread(target=work, daemon=True).start()
    while (item := q.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--model", default="default")
    ap.add_argument("--token-budget", type=int, default=DEFAULT_TOKEN_BUDGET, help="tokens per packed batch")
    ap.add_argument("--workers", type=int, default=(os.cpu_count() or 2) - 1, help="tokenizer processes")
    ap.add_argument("--skip-st", action="store_true")
    ap.add_argument("--scale", type=int, default=10, help="corpus copies streamed for the memory check")
    ap.add_argument("--ref", type=Path, default=None, help="npz of CPU fp32 reference vectors (texts, vectors)")
    args = ap.parse_args()

    import torch

    from codesift.embed.backend import load_backend
    from codesift.embed.batches import TokenBatch, pack
    from codesift.embed.model_files import resolve_model
    from codesift.embed.scheduler import PackedRunner, PaddedRunner
    from codesift.embed.tokenizer import TextTokenizer
    from codesift.index.store import Store

    out: dict = {"benchmark": "gpu_throughput", "gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
                 "cpus": os.cpu_count()}
    files = resolve_model(args.model)
    t0 = time.perf_counter()
    texts = chunk_texts(args.corpus, args.workers + 1)
    out["chunk_s"] = round(time.perf_counter() - t0, 2)
    tok = TextTokenizer(files)
    t0 = time.perf_counter()
    flat, lengths, truncated = tok.encode_flat(texts)
    out["tokenize_1proc_s"] = round(time.perf_counter() - t0, 2)
    n_tokens = int(lengths.sum())
    out.update(chunks=len(texts), tokens=n_tokens, truncated=truncated)
    print(f"{len(texts)} chunks, {n_tokens:,} tokens (chunked in {out['chunk_s']} s)", flush=True)

    def whole_batch() -> TokenBatch:
        return TokenBatch(np.arange(len(lengths)), flat, lengths)

    # --- GPU stage alone ----------------------------------------------------------------
    backends = {dt: load_backend(files, device="cuda", dtype=dt) for dt in ("fp16", "bf16")}
    vectors = {}
    for name, dt, graph in (("fp16_graph", "fp16", True), ("fp16_eager", "fp16", False), ("bf16_graph", "bf16", True)):
        runner = PackedRunner(backends[dt], args.token_budget, cuda_graph=graph)
        res = np.zeros((len(texts), files.dim), np.float32)
        for _ in range(2):  # the first pass warms up; the second is timed
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for keys, vecs in runner.run(pack([whole_batch()], runner.token_budget, runner.max_seqs)):
                res[keys] = vecs
            torch.cuda.synchronize()
            dt_s = time.perf_counter() - t0
        vectors[dt] = res
        out[f"gpu_stage_{name}_tok_s"] = round(n_tokens / dt_s)
        out[f"gpu_stage_{name}_graph_used"] = runner.graph is not None
        print(f"GPU stage {name}: {n_tokens / dt_s / 1e6:.2f}M tok/s", flush=True)

    # fp32 reference on the GPU (same weights), padded batches
    fp32 = load_backend(files, device="cuda", dtype="fp32")
    ref32 = np.zeros((len(texts), files.dim), np.float32)
    padded = PaddedRunner(fp32, batch_size=256)
    for keys, vecs in padded.run(pack([whole_batch()], padded.token_budget, padded.max_seqs)):
        ref32[keys] = vecs
    for dt in ("fp16", "bf16"):
        cos = (vectors[dt] * ref32).sum(1)
        out[f"{dt}_vs_fp32_min_cos"] = round(float(cos.min()), 6)
        out[f"{dt}_vs_fp32_mean_cos"] = round(float(cos.mean()), 6)
    if args.ref and args.ref.exists():
        ref = np.load(args.ref)
        rt = [str(t) for t in ref["texts"]]
        cpu_ref = ref["vectors"].astype(np.float32)
        ids = tok.encode(rt).ids
        for dt in ("fp16", "bf16"):
            runner = PackedRunner(backends[dt], args.token_budget, cuda_graph=True)
            lens = np.array([len(x) for x in ids], np.int32)
            got = np.zeros_like(cpu_ref)
            for keys, vecs in runner.run(pack([TokenBatch(np.arange(len(ids)), np.concatenate(
                    [np.array(x, np.int32) for x in ids]), lens)], runner.token_budget, runner.max_seqs)):
                got[keys] = vecs
            cos = (got * cpu_ref).sum(1) / np.linalg.norm(cpu_ref, axis=1)
            out[f"{dt}_vs_cpu_fp32_true_weights_min_cos"] = round(float(cos.min()), 6)
            out["ref_texts"] = len(rt)
    print({k: v for k, v in out.items() if "cos" in k}, flush=True)

    # --- end to end: texts -> tokenizer processes -> GPU -> SQLite ----------------------------
    pool = TokenizerPool(files, workers=args.workers)
    list(pool.map([texts[:64]] * args.workers))  # start the workers before timing

    from codesift.index.pipeline import GPU_SWITCH_INTERVAL

    sys.setswitchinterval(GPU_SWITCH_INTERVAL)  # as the indexer does while it feeds a GPU

    def end_to_end(stream_texts, n_expected: int) -> tuple[float, int]:
        runner = PackedRunner(backends["fp16"], args.token_budget, cuda_graph=True)
        with tempfile.TemporaryDirectory() as d:
            store = Store(Path(d), create=True)
            stats: dict = {}
            t0 = time.perf_counter()
            q: list = []
            written = 0
            # the GPU loop runs in its own thread, as in the indexer; this thread stores vectors
            for keys, vecs in run_in_thread(embed_stream(stream_texts, pool.map, runner,
                                                         slice_size=512, stats=stats)):
                q.append((keys, vecs))
                if len(q) >= 4:
                    with store.transaction():
                        store.put_vectors((str(k), v) for ks, vs in q for k, v in zip(ks.tolist(), vs))
                    written += sum(len(ks) for ks, _ in q)
                    q.clear()
            with store.transaction():
                store.put_vectors((str(k), v) for ks, vs in q for k, v in zip(ks.tolist(), vs))
            written += sum(len(ks) for ks, _ in q)
            wall = time.perf_counter() - t0
            assert written == n_expected, (written, n_expected)
            assert store.db.execute("SELECT count(*) FROM vectors").fetchone()[0] == n_expected
            store.close()
        return wall, stats["tokens"]

    end_to_end(texts[:2000], 2000)  # warm the runner's kernels and graph
    wall, toks = end_to_end(texts, len(texts))
    out["end_to_end_s"] = round(wall, 3)
    out["end_to_end_tok_s"] = round(toks / wall)
    print(f"end to end: {toks / wall / 1e6:.2f}M tok/s ({wall:.2f} s)", flush=True)

    # --- bounded memory: the corpus streamed `scale` times --------------------------------
    torch.cuda.reset_peak_memory_stats()
    rss_before = rss_mb()
    wall1, _ = end_to_end(texts, len(texts))
    gpu1 = torch.cuda.max_memory_allocated() / 2**20
    rss1 = rss_mb()
    torch.cuda.reset_peak_memory_stats()

    def repeated():
        for _ in range(args.scale):
            yield from texts

    wall_n, toks_n = end_to_end(repeated(), len(texts) * args.scale)
    out.update(mem_scale=args.scale, gpu_peak_mb_1x=round(gpu1), gpu_peak_mb_nx=round(torch.cuda.max_memory_allocated() / 2**20),
               rss_peak_mb_before=round(rss_before), rss_peak_mb_1x=round(rss1), rss_peak_mb_nx=round(rss_mb()),
               end_to_end_nx_tok_s=round(toks_n / wall_n))
    pool.close()
    print(f"memory: GPU peak {out['gpu_peak_mb_1x']} MB (1x) vs {out['gpu_peak_mb_nx']} MB ({args.scale}x); "
          f"host peak RSS {out['rss_peak_mb_1x']} MB vs {out['rss_peak_mb_nx']} MB", flush=True)

    # --- sentence-transformers on the same texts -----------------------------------------
    if not args.skip_st:
        from sentence_transformers import SentenceTransformer

        best = 0.0
        for dt, bs in (("fp16", 32), ("fp16", 256), ("fp32", 32)):
            model = SentenceTransformer(str(files.root), device="cuda",
                                        model_kwargs={"torch_dtype": torch.float16 if dt == "fp16" else torch.float32})
            model.max_seq_length = files.max_tokens
            model.encode(texts[:256], batch_size=bs)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            model.encode(texts, batch_size=bs, convert_to_numpy=True)
            torch.cuda.synchronize()
            rate = n_tokens / (time.perf_counter() - t0)
            out[f"st_{dt}_bs{bs}_tok_s"] = round(rate)
            best = max(best, rate)
            print(f"sentence-transformers {dt} batch {bs}: {rate / 1e6:.3f}M tok/s", flush=True)
            del model
        out["st_best_tok_s"] = round(best)
        out["end_to_end_vs_st_best"] = round(out["end_to_end_tok_s"] / best, 2)
        out["gpu_stage_vs_st_best"] = round(out["gpu_stage_fp16_graph_tok_s"] / best, 2)
    print(json.dumps(out))
    write_result("gpu_throughput", out)


if __name__ == "__main__":
    main()
