"""Code-aware terms for BM25: identifiers split into words, whole identifiers kept too.

`parseHTTPResponse_v2` -> parse, http, response, v, 2 and the whole `parsehttpresponsev2`, so
that a query in words and a query by exact name both match. The same function turns
documents and queries into terms, so both sides always agree.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

# identifiers (with unicode letters), and numbers
_TOKEN = re.compile(r"[^\W\d][\w]*|\d+")
# camelCase / PascalCase / ACRONYMWord / digit boundaries inside one identifier part
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+|[^\W\d_]+")

STOP_WORDS = frozenset("""
a an and are as at be been but by can could did do does doing for from had has have having he her
here hers him his how i if in into is it its itself just me more most my no nor not of off on once
only or other our out over own same she should so some such than that the their theirs them then
there these they this those through to too under until up very was we were what when where which
while who whom why will with would you your yours e g eg ie etc also may might must shall us
""".split())

MAX_TERM_LEN = 64

# Two-letter words allowed as pieces when splitting run-together identifiers (`isfile`, `getid`).
SHORT_WORDS = frozenset("is id io to up by at on in of no ok db ui fs ip fd os py".split())
_MIN_SEGMENT_LEN = 5  # shorter identifier parts are left as they are


@lru_cache(maxsize=1)
def _longest_word() -> int:
    return max(max(map(len, dictionary()), default=1), max(map(len, SHORT_WORDS)))


@lru_cache(maxsize=1)
def _word_list() -> str:
    # Read beside this file, as the package is installed (importlib.resources costs a cold search
    # its own imports).
    return (Path(__file__).parent / "words.txt").read_text(encoding="utf-8")


_WORDS: list[frozenset[str]] = []  # the set, once built


def dictionary() -> frozenset[str]:
    """A general English word list (see words.txt) for splitting run-together identifiers."""
    # The words are the tokens made of letters only (not the comments' '#'), found by `filter` in
    # C: a Python loop over the list was a good part of a cold search's own work.
    if not _WORDS:
        _WORDS.append(frozenset(filter(str.isalpha, _word_list().split())))
    return _WORDS[0]


# Questions answered from words.txt's text before its set is built (see `_listed`); past this
# many, the set is built: then each answer costs a hash, not a scan of the text.
TEXT_LOOKUPS = 64
_text_lookups = [0]


@lru_cache(maxsize=1)
def _comment_words() -> frozenset[str]:
    """The alphabetic tokens of words.txt's leading comment lines: in `dictionary()` too."""
    out = set()
    for line in _word_list().splitlines()[:8]:  # the comments are the first lines (tests/terms checks)
        if not line.startswith("#"):
            break
        out.update(filter(str.isalpha, line.split()))
    return frozenset(out)


def _listed(word: str) -> bool:
    """`word in dictionary()`, answered from the file's text until the set is built: a search asks
    about its few query words, for which building the set (tens of thousands of words) costs more
    than finding them as lines of the text (or words of its comments). Past TEXT_LOOKUPS questions
    (an index run soon asks that many) the set is built and answers from then on."""
    if _WORDS or _text_lookups[0] >= TEXT_LOOKUPS:
        return word in dictionary()
    _text_lookups[0] += 1
    return f"\n{word}\n" in _word_list() or word in _comment_words()


def segment(word: str) -> tuple[str, ...] | None:
    """Split a run-together lowercase identifier part into dictionary words, fewest pieces first:
    `atomname` -> (atom, name), `setdefault` -> (set, default). None when it is a word itself or
    cannot be split entirely into words."""
    n = len(word)
    # a part longer than any term (base64, a hash) is no run-together identifier; the bound also
    # keeps this dynamic programme linear in the part's length
    if n < _MIN_SEGMENT_LEN or n > MAX_TERM_LEN or not word.isascii() or not word.isalpha():
        return None
    listed = _WORDS[0].__contains__ if _WORDS else _listed
    if listed(word):
        return None
    # pieces longer than any word are never found: without the set at hand, the part's length bounds them
    longest = _longest_word() if _WORDS else n
    best: list[tuple[str, ...] | None] = [None] * (n + 1)
    best[0] = ()
    for i in range(n):
        if best[i] is None:
            continue
        for j in range(i + 2, min(n, i + longest) + 1):
            piece = word[i:j]
            if piece in SHORT_WORDS or listed(piece):
                cand = best[i] + (piece,)
                if best[j] is None or len(cand) < len(best[j]):
                    best[j] = cand
    found = best[n]
    return found if found is not None and len(found) > 1 else None


def stem(word: str) -> str:
    """A light English stemmer (plurals and -ing/-ed/-ly): enough to meet `returns` with `return`.

    Deliberately conservative: over-stemming merges unrelated identifiers.
    """
    n = len(word)
    if n <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and n > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
        n -= 1
    if word.endswith("ing") and n > 5:
        word = word[:-3]
        if len(word) > 2 and word[-1] == word[-2] and word[-1] not in "lsz":
            word = word[:-1]
    elif word.endswith("ed") and n > 4 and not word.endswith("eed"):
        word = word[:-2]
        if len(word) > 2 and word[-1] == word[-2] and word[-1] not in "lsz":
            word = word[:-1]
    return word


@lru_cache(maxsize=1 << 16)
def _part_terms(part: str) -> tuple[str | None, tuple[str, ...]]:
    """One lowercase part of an identifier: its own stemmed term (None for a stop word), and the
    stemmed dictionary words it is run together from. Parts repeat across identifiers far more
    than whole identifiers do."""
    own = None if part in STOP_WORDS else stem(part)
    pieces = segment(part)
    return own, tuple(stem(w) for w in pieces if w not in STOP_WORDS) if pieces else ()


@lru_cache(maxsize=1 << 17)
def identifier_terms(token: str) -> tuple[str, ...]:
    """Terms for one identifier: its stemmed word parts, plus the whole identifier when it has parts."""
    if token.isascii():
        parts = [p.lower() for p in _CAMEL.findall(token)]
    else:  # the camelCase regex is ASCII-only; other scripts split on underscores
        parts = [p.lower() for p in token.split("_") if p]
    found = [_part_terms(p) for p in parts]
    words = [own for own, _ in found if own is not None]  # the parts first, then their pieces
    for _, pieces in found:
        words.extend(pieces)
    words = [w for w in words if w and len(w) <= MAX_TERM_LEN]
    # the whole identifier, spelling-neutral: get_user_name, getUserName and getusername meet
    whole = stem("".join(parts))
    if len(parts) > 1 and whole and len(whole) <= MAX_TERM_LEN:
        words.append(whole)
    return tuple(words)


# Code repeats its identifiers: each token's terms, joined by spaces ("" for none), are kept here
# (the first TOKEN_CACHE_SIZE tokens seen; then it starts again) rather than worked out again.
TOKEN_CACHE_SIZE = 1 << 18
_token_terms_seen: dict[str, str] = {}


def _token_terms(token: str) -> str:
    if token.isdigit():
        found = token if len(token) <= 8 else ""
    elif token.lower() in STOP_WORDS:
        found = ""
    else:
        found = " ".join(identifier_terms(token))
    if len(_token_terms_seen) >= TOKEN_CACHE_SIZE:
        _token_terms_seen.clear()
    _token_terms_seen[token] = found
    return found


def terms_text(text: str) -> str:
    """All BM25 terms of a text, in order, with repeats, joined by spaces: `" ".join(terms(text))`."""
    tokens = _TOKEN.findall(text)
    seen = _token_terms_seen
    found = list(map(seen.get, tokens))
    if None in found:  # a token's first time (or again, within this text: the list was made first)
        found = [f if f is not None else seen[t] if t in seen else _token_terms(t) for f, t in zip(found, tokens)]
    return " ".join(filter(None, found))


def terms(text: str) -> list[str]:
    """All BM25 terms of a text, in order, with repeats (term frequency matters)."""
    joined = terms_text(text)  # no term is empty or holds a space
    return joined.split(" ") if joined else []


def query_terms(query: str) -> list[str]:
    """Distinct terms of a query, in first-seen order."""
    return list(dict.fromkeys(terms(query)))


# Identifiers, as a capturing group: re.split hands back the text between them too.
_IDENTIFIER_TOKEN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)")
_WORD_BREAK = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|_+")
_spaced_seen: dict[str, str] = {}  # identifier -> as spelled in words (the first TOKEN_CACHE_SIZE seen)


def _spaced(tok: str) -> str:
    spaced = tok
    if "_" in tok or _WORD_BREAK.search(tok):
        spaced = _WORD_BREAK.sub(" ", tok).strip() or tok
    if len(_spaced_seen) >= TOKEN_CACHE_SIZE:
        _spaced_seen.clear()
    _spaced_seen[tok] = spaced
    return spaced


def spaced_identifiers(text: str) -> str:
    """`get_user_name` and `getUserName` -> `get user name`, other text unchanged: the embedding
    model was trained on prose and reads words better than identifiers."""
    parts = _IDENTIFIER_TOKEN.split(text)  # text, identifier, text, ..., identifier, text
    identifiers = parts[1::2]
    seen = _spaced_seen
    spaced = list(map(seen.get, identifiers))
    if None in spaced:
        spaced = [s if s is not None else seen[t] if t in seen else _spaced(t) for s, t in zip(spaced, identifiers)]
    parts[1::2] = spaced
    return "".join(parts)
