"""The model's own tokenizer (`tokenizer.json`, or a GGUF file's vocabulary, through Hugging Face
`tokenizers`), set up as we need it."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
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
# Distinct words whose ids a tokenizer keeps (WordPieceWords): code repeats its words, and a tree's
# vocabulary is far smaller than this, which bounds a long-lived process's memory.
WORD_CACHE_SIZE = 1 << 18


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
    def __init__(self, files: ModelFiles, max_tokens: int | None = None, by_words: bool = True):
        """`max_tokens` (specials included) defaults to the model's, `files.max_tokens`. `by_words`:
        encode_flat takes the word path (WordPieceWords) where the tokenizer allows it."""
        self.max_tokens = int(max_tokens or files.max_tokens)
        self.lowercase = files.do_lower_case
        tk = load_tokenizer(files.tokenizer, files.weights_format)
        tk.no_padding()  # tokenizer.json files often pad to a fixed length: we batch ourselves
        tk.enable_truncation(self.max_tokens)
        self._tk = tk
        self.pad_id = int(files.config.get("pad_token_id", 0) or 0)
        self._by_words = by_words

    @cached_property
    def _words(self) -> WordPieceWords | None:
        """The word path, built by the first encode_flat: a search process, which encodes a query or
        two through `encode`, never pays for reading the whole vocabulary into it."""
        return WordPieceWords.for_tokenizer(self._tk, self.max_tokens) if self._by_words else None

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

        Same ids as `encode`, faster: plain texts go word by word (WordPieceWords), the others
        through the library with only a prefix tokenized (`_encode_prefixes`)."""
        prepared = self.prepare(texts)
        if self._words is not None:
            ids, truncated = self._words.encode(prepared)
            rest = [i for i, x in enumerate(ids) if x is None]
        else:
            ids, truncated, rest = [None] * len(prepared), 0, range(len(prepared))
        if rest:
            lib_ids, lib_truncated = self._encode_prefixes([prepared[i] for i in rest])
            truncated += lib_truncated
            for i, x in zip(rest, lib_ids):
                ids[i] = x
        lengths = np.fromiter(map(len, ids), dtype=np.int32, count=len(ids))
        flat = np.fromiter(chain.from_iterable(ids), dtype=np.int32, count=int(lengths.sum()))
        return flat, lengths, truncated

    def _encode_prefixes(self, prepared: list[str]) -> tuple[list[list[int]], int]:
        """Ids of prepared texts through the library, and how many were truncated. Only a prefix cut
        at whitespace is tokenized: cutting between words changes nothing before the cut (the
        tokenizers split words on whitespace first), so if the prefix already fills max_tokens
        tokens, the result is exact; the rare prefix that falls short is tokenized again whole."""
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
        return ids, truncated


# Plain text for WordPieceWords: printable ASCII, tabs and line ends, nothing else.
_NOT_PLAIN = re.compile(r"[^\t\n\r\x20-\x7e]")
# BertPreTokenizer on plain text: runs of letters and digits, and each other non-space character
# alone (every printable ASCII character that is not a letter, digit or space is punctuation to it).
_BERT_WORDS = re.compile(r"[A-Za-z0-9]+|[^\sA-Za-z0-9]")


class WordPieceWords:
    """Token ids of plain texts put together word by word, each distinct word tokenized once by the
    library and kept.

    A BERT tokenizer (BertNormalizer, BertPreTokenizer, WordPiece) tokenizes each word of a text on
    its own: a text's ids are its specials around its words' ids end to end. On plain text
    (`_NOT_PLAIN`: no control characters, nothing outside ASCII) its normalizer only lowercases
    (when configured to) and its pre-tokenizer splits at whitespace and sets each punctuation
    character apart: `_BERT_WORDS`. The library still turns every word into ids; what is saved is
    its per-character normalizing and splitting of every text, repeated for words seen many times.
    Texts that are not plain, or that hold one of the tokenizer's added tokens (`[CLS]` written in
    a text is that token), are left to the library (None in `encode`'s result)."""

    def __init__(self, tokenizer, lowercase: bool, prefix: list[int], suffix: list[int], budget: int):
        self.tokenizer = tokenizer  # a copy without truncation: a word's ids are never cut
        self.lowercase = lowercase
        self.prefix, self.suffix = prefix, suffix  # the specials around a text's ids
        self.budget = budget  # ids a text keeps between its specials
        added = sorted((t.content for t in tokenizer.get_added_tokens_decoder().values()), key=len, reverse=True)
        self.added = re.compile("|".join(map(re.escape, added)), re.IGNORECASE) if added else None
        self.ids: dict[str, list[int]] = {}

    @classmethod
    def for_tokenizer(cls, tk, max_tokens: int) -> "WordPieceWords | None":
        """The word path for a `tokenizers.Tokenizer` set up by TextTokenizer, or None where its
        pipeline is not the BERT one this class knows to be word by word."""
        from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

        if not (isinstance(tk.normalizer, normalizers.BertNormalizer)
                and isinstance(tk.pre_tokenizer, pre_tokenizers.BertPreTokenizer)
                and isinstance(tk.model, models.WordPiece)):
            return None
        truncation = tk.truncation or {}
        if truncation.get("direction", "right") != "right" or truncation.get("stride", 0):
            return None
        words = Tokenizer.from_str(tk.to_str())
        words.no_truncation()
        words.no_padding()
        # The specials around a text: those of an empty text, split where a probe word's ids fall.
        empty = words.encode("", add_special_tokens=True).ids
        probe = words.encode("a", add_special_tokens=False).ids
        whole = words.encode("a", add_special_tokens=True).ids
        for k in range(len(empty) + 1):
            if whole == empty[:k] + probe + empty[k:]:
                budget = max_tokens - len(empty)
                return cls(words, bool(tk.normalizer.lowercase), empty[:k], empty[k:], budget) if budget > 0 else None
        return None

    def encode(self, texts: list[str]) -> tuple[list[list[int] | None], int]:
        """Each plain text's ids, specials and truncation as the library's (None for the others),
        and how many were truncated."""
        if len(self.ids) > WORD_CACHE_SIZE:
            self.ids.clear()
        split, budget, lower = _BERT_WORDS.findall, self.budget, self.lowercase
        found: list[list[str] | None] = []
        for t in texts:
            if _NOT_PLAIN.search(t) or (self.added is not None and self.added.search(t)):
                found.append(None)
                continue
            words = split(t.lower() if lower else t)
            # every word is at least one token: the first budget + 1 words decide the kept ids
            found.append(words[:budget + 1] if len(words) > budget + 1 else words)
        known, lookup = self.ids, self.ids.__getitem__
        out: list[list[int] | None] = []
        unknown = []  # positions of texts with words not seen before
        for words in found:
            try:
                out.append(None if words is None else list(chain.from_iterable(map(lookup, words))))
            except KeyError:
                unknown.append(len(out))
                out.append(None)
        if unknown:
            new = list({w for i in unknown for w in found[i] if w not in known})
            encode = getattr(self.tokenizer, "encode_batch_fast", self.tokenizer.encode_batch)  # tokenizers < 0.20
            for w, e in zip(new, encode(new, add_special_tokens=False)):
                known[w] = e.ids
            for i in unknown:
                out[i] = list(chain.from_iterable(map(lookup, found[i])))
        truncated = 0
        for i, ids in enumerate(out):
            if ids is not None:
                if len(ids) > budget:
                    truncated += 1
                    del ids[budget:]
                out[i] = self.prefix + ids + self.suffix
        return out, truncated


@lru_cache(maxsize=8)
def _empty_text_ids(tokenizer_path: str, weights_format: str) -> tuple[int, ...]:
    return tuple(load_tokenizer(tokenizer_path, weights_format).encode("", add_special_tokens=True).ids)


def empty_text_ids(files: ModelFiles) -> np.ndarray:
    """The ids of an empty text: just the model's own specials ([CLS] [SEP], <s> </s>, ...) (int32)."""
    return np.array(_empty_text_ids(str(files.tokenizer), files.weights_format), dtype=np.int32)
