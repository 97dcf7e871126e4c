"""The model's own tokenizer (`tokenizer.json`, or a GGUF file's vocabulary, through Hugging Face
`tokenizers`), set up as we need it."""
from __future__ import annotations

import json
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
        self.files = files
        self.pad_id = int(files.config.get("pad_token_id", 0) or 0)
        self._by_words = by_words

    @cached_property
    def _tk(self):
        """The library's tokenizer, loaded on first use: a search whose query takes the plain path
        (`encode_queries`) never parses the whole tokenizer.json into it."""
        tk = load_tokenizer(self.files.tokenizer, self.files.weights_format)
        tk.no_padding()  # tokenizer.json files often pad to a fixed length: we batch ourselves
        tk.enable_truncation(self.max_tokens)
        return tk

    @cached_property
    def _plain(self) -> "PlainWordPiece | None":
        return PlainWordPiece.load(self.files.tokenizer) if self.files.weights_format == "safetensors" else None

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

    def encode_queries(self, texts: Sequence[str]) -> list[list[int]]:
        """The ids `encode` gives, for a few short texts: plain ones are tokenized by PlainWordPiece
        (no library, no vocabulary read whole), the others by the library."""
        prepared = self.prepare(texts)
        plain = self._plain
        ids: list[list[int] | None] = [plain.encode(t, self.max_tokens) if plain is not None else None
                                       for t in prepared]
        rest = [i for i, x in enumerate(ids) if x is None]
        if rest:
            for i, x in zip(rest, self.encode([prepared[i] for i in rest]).ids):
                ids[i] = x
        return ids

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


# A tokenizer.json's WordPiece vocabulary: the object that follows this key.
_VOCAB_KEY = re.compile(r'"vocab"\s*:\s*\{')
# What follows a vocabulary key: its id.
_VOCAB_ID = re.compile(r"\s*:\s*(\d+)")


class PlainWordPiece:
    """Token ids of short plain texts (queries) for a BERT tokenizer (BertNormalizer,
    BertPreTokenizer, WordPiece), found in its tokenizer.json's text, without the library.

    The library parses the whole file (tens of thousands of vocabulary entries) before its first
    id: most of a cold search's tokenizing. A query needs a dozen ids. Here the file is read as
    text, its settings (all but the vocabulary) are parsed, and each word piece's id is looked up
    in the vocabulary's text as the greedy longest-match WordPiece tries it. On plain text (see
    WordPieceWords) the normalizer only lowercases and the pre-tokenizer gives `_BERT_WORDS`.
    Whatever this class does not know to give the library's ids is left to the library (None):
    text that is not plain or holds an added token's text ([CLS] ...), a word the library would
    make [UNK], a piece not written as a plain JSON key, another pipeline."""

    def __init__(self, text: str, start: int, end: int, settings: dict, prefix: list[int], suffix: list[int]):
        self._text, self._start, self._end = text, start, end  # the vocabulary object's text
        model = settings["model"]
        self.lowercase = bool(settings["normalizer"].get("lowercase", True))
        self.continuing = model.get("continuing_subword_prefix", "##")
        self.max_word_chars = int(model.get("max_input_chars_per_word", 100))
        self.prefix, self.suffix = prefix, suffix  # the specials around a text's ids
        self.added = [t["content"].lower() for t in settings.get("added_tokens") or () if t.get("content")]
        self._ids: dict[str, int | None] = {}

    @classmethod
    def load(cls, path: Path) -> "PlainWordPiece | None":
        """For the tokenizer.json at `path`; None where it is not the BERT pipeline this class knows."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        found = _VOCAB_KEY.search(text)
        end = _vocab_end(text, found.end()) if found else None
        if end is None:
            return None
        try:  # the settings: everything but the vocabulary's entries; a wrong cut is not JSON
            settings = json.loads(text[:found.end()] + text[end:])
        except ValueError:
            return None
        if not isinstance(settings, dict) or not isinstance(settings.get("model"), dict) \
                or settings["model"].get("vocab") != {} or settings["model"].get("type") != "WordPiece" \
                or (settings.get("normalizer") or {}).get("type") != "BertNormalizer" \
                or (settings.get("pre_tokenizer") or {}).get("type") != "BertPreTokenizer":
            return None
        specials = _specials(settings.get("post_processor"))
        if specials is None:
            return None
        return cls(text, found.end() - 1, end, settings, *specials)

    def token_id(self, token: str) -> int | None:
        """The id of a vocabulary entry, None if it has none (or is not written as a plain key)."""
        if token in self._ids:
            return self._ids[token]
        needle = json.dumps(token)
        text, pos, found = self._text, self._start, None
        while found is None:
            at = text.find(needle, pos, self._end)
            if at < 0:
                break
            pos = at + 1
            before = at - 1
            while text[before] in " \t\r\n":
                before -= 1
            value = _VOCAB_ID.match(text, at + len(needle))
            if text[before] in "{," and value:  # a key of the object, not text inside a string
                found = int(value.group(1))
        self._ids[token] = found
        return found

    def word_ids(self, word: str) -> list[int] | None:
        """WordPiece's greedy longest-match-first pieces of one word; None where that fails (the
        library's [UNK]) or the word is too long for it."""
        if len(word) > self.max_word_chars:
            return None
        out, start = [], 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else self.continuing + word[start:end]
                found = self.token_id(piece)
                if found is not None:
                    out.append(found)
                    start = end
                    break
            else:
                return None
        return out

    def encode(self, text: str, max_tokens: int) -> list[int] | None:
        """The library's ids of `text` (specials included, cut to max_tokens as it cuts), or None."""
        if _NOT_PLAIN.search(text):
            return None
        low = text.lower()
        if any(t in low for t in self.added):
            return None
        budget = max_tokens - len(self.prefix) - len(self.suffix)
        if budget <= 0:
            return None
        ids: list[int] = []
        for word in _BERT_WORDS.findall(low if self.lowercase else text):
            if len(ids) >= budget:  # every word is at least one token: the rest is cut
                break
            pieces = self.word_ids(word)
            if pieces is None:
                return None
            ids += pieces
        return self.prefix + ids[:budget] + self.suffix


def _vocab_end(text: str, start: int) -> int | None:
    """Where the vocabulary object that opens before `start` closes: the first '}' after a number
    (its last id). A '}' inside a key is caught by the parse of what is around it."""
    pos = start
    while True:
        close = text.find("}", pos)
        if close < 0:
            return None
        before = close - 1
        while text[before] in " \t\r\n":
            before -= 1
        if text[before].isdigit():
            return close
        pos = close + 1


def _specials(post: dict | None) -> tuple[list[int], list[int]] | None:
    """The ids a post-processor puts before and after one text's ids; None for one not known here."""
    if post is None:
        return [], []
    if post.get("type") == "BertProcessing":
        return [int(post["cls"][1])], [int(post["sep"][1])]
    if post.get("type") != "TemplateProcessing":
        return None
    pieces = post.get("single") or []
    around: tuple[list[int], list[int]] = ([], [])
    side = 0
    for piece in pieces:
        if "Sequence" in piece and side == 0 and piece["Sequence"].get("id") == "A":
            side = 1
        elif "SpecialToken" in piece:
            special = (post.get("special_tokens") or {}).get(piece["SpecialToken"].get("id"))
            if not special:
                return None
            around[side].extend(int(i) for i in special["ids"])
        else:
            return None
    return around if side == 1 else None


@lru_cache(maxsize=8)
def _empty_text_ids(tokenizer_path: str, weights_format: str) -> tuple[int, ...]:
    return tuple(load_tokenizer(tokenizer_path, weights_format).encode("", add_special_tokens=True).ids)


def empty_text_ids(files: ModelFiles) -> np.ndarray:
    """The ids of an empty text: just the model's own specials ([CLS] [SEP], <s> </s>, ...) (int32)."""
    return np.array(_empty_text_ids(str(files.tokenizer), files.weights_format), dtype=np.int32)
