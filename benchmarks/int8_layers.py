#!/usr/bin/env python3
"""Which linear layers a model's int8 graph can run in 8 bits: cosines against its fp32 graph.

  python benchmarks/int8_layers.py --model all-mpnet-base-v2

Our ONNX graph (codesift/embed/onnx_graph.py) in fp32, and in int8 with each set of 8-bit layers
given (`--formats`, default: the VNNI and AVX2 formats whole and without the second feed-forward
layer), on the 520 parity texts: min and mean cosine against fp32, and the worst text's length in
tokens. Formats are what the weights are rounded to ("s7", "s8", "u8"): a CPU without VNNI runs "s7"
and "u8" exactly and "s8" with saturating sums, so these cosines hold on any CPU for the first two.
"""
from __future__ import annotations

import argparse
from unittest import mock

import numpy as np
from _kit import ROOT  # noqa: F401  (puts the repo root on the path: tests.embed.* below)
from _results import write_result


def spec(formats: dict[str, str]) -> str:
    return ",".join(f"{name}:{kind}" for name, kind in formats.items())


def default_formats() -> list[str]:
    """The VNNI and AVX2 formats (onnx_graph), each whole and without the second feed-forward layer,
    then that layer alone in s8 and in u8."""
    from codesift.embed.onnx_graph import AVX2_FORMATS, VNNI_FORMATS

    out = []
    for formats in (VNNI_FORMATS, AVX2_FORMATS):
        out += [spec(formats), spec({name: kind for name, kind in formats.items() if name != "ffn.w2"})]
    return out + ["ffn.w2:s8", "ffn.w2:u8"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--formats", nargs="*", default=None,
                    help="each a comma-separated list of layer:format (layer names as in onnx_graph); "
                         "default: default_formats()")
    args = ap.parse_args()

    import codesift.embed.onnx_graph as onnx_graph
    from codesift.embed.embedder import Embedder
    from codesift.embed.model_files import resolve_model
    from tests.embed.texts import parity_texts

    files = resolve_model(args.model)
    texts = parity_texts()
    fp32 = Embedder.load(files, device="cpu", dtype="fp32", engine="onnx")
    lengths = [len(x) for x in fp32.tokenizer.encode(texts).ids]
    reference = fp32.embed(texts)
    result = {"model": files.name, "texts": len(texts), "formats": {}}
    for wanted in args.formats or default_formats():
        formats = dict(part.split(":") for part in wanted.split(","))

        def linears(cfg, vnni=False, file=False, arch_name="bert", formats=formats):
            return {f"layers.{i}.{name}": kind for i in range(cfg.num_hidden_layers) for name, kind in formats.items()}

        with mock.patch.object(onnx_graph, "INT8_LINEARS", linears):
            int8 = Embedder.load(files, device="cpu", dtype="int8", engine="onnx")
        cos = (int8.embed(texts) * reference).sum(1)
        worst = int(np.argmin(cos))
        result["formats"][wanted] = {"min_cosine": round(float(cos.min()), 6), "mean_cosine": round(float(cos.mean()), 6),
                                     "worst_text_tokens": lengths[worst]}
        print(wanted, result["formats"][wanted], flush=True)
    write_result("int8_layers", result)


if __name__ == "__main__":
    main()
