"""Results of a process pool in input order, with bounded memory. No torch here: the indexer's
file workers use it on the CPU path."""
from __future__ import annotations

from collections import deque
from concurrent.futures import Executor, Future
from typing import Callable, Iterable, Iterator


def ordered_map(executor: Executor, fn: Callable, items: Iterable, window: int) -> Iterator:
    """executor.map with at most `window` tasks in flight, so memory stays bounded on long streams."""
    pending: deque[Future] = deque()
    for item in items:
        pending.append(executor.submit(fn, item))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()
