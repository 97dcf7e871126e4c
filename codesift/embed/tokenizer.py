"""The model's own tokenizer (`tokenizer.json`, or a GGUF file's vocabulary, through Hugging Face
`tokenizers`), set up as we need it."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import Sequence

import numpy as np

from codesift.embed.model_files import ModelFiles

# A WordPiece token covers at most ~100 characters (longer words become [UNK]); texts far longer than
# max_tokens tokens could ever need are cut before tokenizing so that a huge string costs nothing.
_CHARS_PER_TOKEN_BOUND = 100
# For the fast path: a first guess of characters per token that almost always yields enough tokens.
_PREFIX_CHARS_PER_TOKEN = 8


@dataclass
class Encoded:
    ids: list[list[int]]  # with the model's specials ([CLS] ... [SEP]), truncated to max_tokens
    truncated: int  # how many texts lost tokens to truncation


def load_tokenizer(tokenizer_path: str | Path, weights_format: str = "safetensors"):
    """The `tokenizers.Tokenizer` of a model: its tokenizer.json, or built from a GGUF file's vocabulary."""
    from tokenizers import Tokenizer

    if weights_format == "gguf":
        from codesift.embed.gguf_file import GGUFFile

        return GGUFFile(tokenizer_path).tokenizer()
    return Tokenizer.from_file(str(tokenizer_path))


class TextTokenizer:
    def __init__(self, files: ModelFiles, max_tokens: int | None = None):
        """`max_tokens` (specials included) defaults to the model's, `files.max_tokens`."""
        self.max_tokens = int(max_tokens or files.max_tokens)
        self.lowercase = files.do_lower_case
        tk = load_tokenizer(files.tokenizer, files.weights_format)
        tk.no_padding()  # tokenizer.json files often pad to a fixed length: we batch ourselves
        tk.enable_truncation(self.max_tokens)
        self._tk = tk
        self.pad_id = int(files.config.get("pad_token_id", 0) or 0)

    def prepare(self, texts: Sequence[str]) -> list[str]:
        """Validate and normalise texts as sentence-transformers does (strip; lowercase if configured)."""
        out = []
        limit = self.max_tokens * _CHARS_PER_TOKEN_BOUND
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] is {type(t).__name__}, expected str")
            t = t.strip()
            if len(t) > limit:
                t = t[:limit]
            out.append(t.lower() if self.lowercase else t)
        return out

    def encode(self, texts: Sequence[str]) -> Encoded:
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings, not one string")
        prepared = self.prepare(texts)
        if not prepared:
            return Encoded([], 0)
        encs = self._tk.encode_batch(prepared, add_special_tokens=True)
        return Encoded([e.ids for e in encs], sum(1 for e in encs if e.overflowing))

    def _encode_batch(self, texts: list[str]) -> list:
        # encode_batch_fast (tokenizers >= 0.20) skips the character offsets, which nothing here reads
        fast = getattr(self._tk, "encode_batch_fast", None)
        return fast(texts, add_special_tokens=True) if fast else self._tk.encode_batch(texts, add_special_tokens=True)

    def encode_flat(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, int]:
        """Token ids of all texts concatenated (int32), their lengths (int32), and the truncated count.

        Same ids as `encode`, faster on long texts: only a prefix cut at whitespace is tokenized.
        Cutting between words changes nothing before the cut (the tokenizers split words on
        whitespace first), so if the prefix already fills max_tokens tokens, the result is
        exact; the rare prefix that falls short is tokenized again whole.
        """
        prepared = self.prepare(texts)
        cut = self.max_tokens * _PREFIX_CHARS_PER_TOKEN
        heads, was_cut = [], []
        for t in prepared:
            if len(t) > cut:
                space = t.rfind(" ", cut // 2, cut)
                end = space if space > 0 else t.rfind("\n", cut // 2, cut)
                heads.append(t[:end] if end > 0 else t)
                was_cut.append(end > 0)
            else:
                heads.append(t)
                was_cut.append(False)
        encs = self._encode_batch(heads)
        ids = [e.ids for e in encs]
        truncated = 0
        redo = []
        for i, e in enumerate(encs):
            if was_cut[i]:
                if len(ids[i]) < self.max_tokens:  # the prefix was too short to decide: do it whole
                    redo.append(i)
                else:
                    truncated += 1
            elif e.overflowing:
                truncated += 1
        if redo:
            for i, e in zip(redo, self._encode_batch([prepared[i] for i in redo])):
                ids[i] = e.ids
                truncated += bool(e.overflowing)
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int32, count=len(ids))
        flat = np.fromiter(chain.from_iterable(ids), dtype=np.int32, count=int(lengths.sum()))
        return flat, lengths, truncated


@lru_cache(maxsize=8)
def _empty_text_ids(tokenizer_path: str, weights_format: str) -> tuple[int, ...]:
    return tuple(load_tokenizer(tokenizer_path, weights_format).encode("", add_special_tokens=True).ids)


def empty_text_ids(files: ModelFiles) -> np.ndarray:
    """The ids of an empty text: just the model's own specials ([CLS] [SEP], <s> </s>, ...) (int32)."""
    return np.array(_empty_text_ids(str(files.tokenizer), files.weights_format), dtype=np.int32)
