"""Token batches for the embedding runners: sequences laid end to end, cut to a token budget.

No torch here: the indexer builds batches on its CPU path too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

import numpy as np

# Tokens per batch the runners aim for: enough to keep a GPU busy, small enough for its memory.
DEFAULT_TOKEN_BUDGET = 65536
# Sequences per padded forward pass, where there is no packed path (CPU, MPS, CUDA fp32).
DEFAULT_BATCH_SIZE = 32
# A backend that cuts its inputs into runs of its own (`groups_inputs`) is given this many tokens
# at a time instead: every core gets runs, short inputs too (32 of them would make one run).
GROUPED_LOT_TOKENS = 16384


def batch_bounds(lengths: Sequence[int], batch_size: int, groups_inputs: bool = False) -> list[tuple[int, int]]:
    """(start, end) of the consecutive batches a padded runner gives the backend, for inputs in the
    order given: `batch_size` at a time, or for a backend that groups its inputs itself, lots of
    about GROUPED_LOT_TOKENS tokens (at least `batch_size` inputs)."""
    if not groups_inputs:
        return [(s, min(s + batch_size, len(lengths))) for s in range(0, len(lengths), batch_size)]
    out, start, tokens = [], 0, 0
    for i, n in enumerate(lengths):
        tokens += n
        if tokens >= GROUPED_LOT_TOKENS and i + 1 - start >= batch_size:
            out.append((start, i + 1))
            start, tokens = i + 1, 0
    if start < len(lengths):
        out.append((start, len(lengths)))
    return out


@dataclass
class TokenBatch:
    """Sequences to embed: `keys` (caller's ids, e.g. input positions), ids laid end to end, lengths."""

    keys: np.ndarray
    ids: np.ndarray  # int32, concatenated
    lengths: np.ndarray  # int32


def pad_batch(batch: Sequence[Sequence[int]], pad_id: int, max_tokens: int,
              mask_dtype=np.int64) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded ids [n, t] (int64) and mask [n, t] (1 on real tokens) for a padded forward pass;
    an input over `max_tokens` is a ValueError naming it."""
    n, t = len(batch), max(len(x) for x in batch)
    ids = np.full((n, t), pad_id, dtype=np.int64)
    mask = np.zeros((n, t), dtype=mask_dtype)
    for i, x in enumerate(batch):
        if len(x) > max_tokens:
            raise ValueError(f"input {i} has {len(x)} tokens, over this model's limit of {max_tokens}")
        ids[i, :len(x)] = x
        mask[i, :len(x)] = 1
    return ids, mask


def pack(stream: Iterable[TokenBatch], token_budget: int, max_seqs: int) -> Iterator[TokenBatch]:
    """Re-cut a stream of tokenized sequences into batches of at most `token_budget` tokens and
    `max_seqs` sequences, keeping their order."""
    keys: list[np.ndarray] = []
    ids: list[np.ndarray] = []
    lens: list[np.ndarray] = []
    n_tok = n_seq = 0
    for part in stream:
        offsets = np.concatenate(([0], np.cumsum(part.lengths, dtype=np.int64)))
        i = 0
        while i < len(part.lengths):
            # how many of part's next sequences fit in what is left of the budget
            room_tok, room_seq = token_budget - n_tok, max_seqs - n_seq
            fit = int(np.searchsorted(offsets[i + 1:] - offsets[i], room_tok, side="right"))
            j = i + min(fit, room_seq)
            took = j > i
            if took:
                keys.append(part.keys[i:j])
                ids.append(part.ids[offsets[i]:offsets[j]])
                lens.append(part.lengths[i:j])
                n_tok += int(offsets[j] - offsets[i])
                n_seq += j - i
                i = j
            # a batch ends when full, or when the next sequence does not fit in it; a part used up
            # does not end it (parts are lots of far fewer tokens than a GPU batch)
            if not took or n_tok >= token_budget or n_seq >= max_seqs:
                if n_seq == 0:
                    raise ValueError(f"a sequence of {part.lengths[i]} tokens exceeds the token budget of "
                                     f"{token_budget}")
                yield TokenBatch(np.concatenate(keys), np.concatenate(ids), np.concatenate(lens))
                keys, ids, lens, n_tok, n_seq = [], [], [], 0, 0
    if n_seq:
        yield TokenBatch(np.concatenate(keys), np.concatenate(ids), np.concatenate(lens))


def fill_packed(v_ids: np.ndarray, v_pos: np.ndarray, v_seg: np.ndarray, v_cu: np.ndarray,
                ids: np.ndarray, lengths: np.ndarray, max_tokens: int) -> None:
    """Lay a batch out in fixed-size arrays: token ids, positions within each sequence, the sequence
    of each token, and sequence offsets. Unused tokens form padding segments of at most max_tokens
    tokens after the real ones, and unused offsets repeat the end (empty segments)."""
    token_budget, n_tok, n_seq = len(v_ids), len(ids), len(lengths)
    v_ids[:n_tok] = ids
    v_ids[n_tok:] = 0
    starts = np.zeros(n_seq, dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    v_pos[:n_tok] = np.arange(n_tok, dtype=np.int32) - np.repeat(starts, lengths).astype(np.int32)
    v_seg[:n_tok] = np.repeat(np.arange(n_seq, dtype=np.int32), lengths)
    pad = token_budget - n_tok
    pad_lens = np.full(pad // max_tokens, max_tokens, dtype=np.int64)
    if pad % max_tokens:
        pad_lens = np.append(pad_lens, pad % max_tokens)
    seg_lens = np.concatenate((lengths.astype(np.int64), pad_lens))
    if len(seg_lens) + 1 > len(v_cu):
        raise ValueError("too many segments for the offsets buffer")
    v_cu[0] = 0
    v_cu[1:len(seg_lens) + 1] = np.cumsum(seg_lens)
    v_cu[len(seg_lens) + 1:] = token_budget
    v_seg[n_tok:] = np.repeat(np.arange(n_seq, n_seq + len(pad_lens), dtype=np.int32), pad_lens)
    v_pos[n_tok:] = np.arange(pad, dtype=np.int32) % max_tokens
