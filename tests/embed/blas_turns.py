"""A stand-in for `codesift.embed.models.common.BLAS_TURN` that counts the turns taken."""
from __future__ import annotations

import threading


class TurnLog:
    """A lock that counts its turns and notes the threads that took them."""

    def __init__(self):
        self.lock, self.turns, self.threads = threading.Lock(), 0, set()

    def __enter__(self):
        self.lock.acquire()
        self.turns += 1
        self.threads.add(threading.get_ident())

    def __exit__(self, *exc):
        self.lock.release()
