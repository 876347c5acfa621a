"""Python's cyclic garbage collector paused while a large table is built or written.

A giant checkpoint's headers are 90k-140k tensors: decoding them, classifying them and writing them to the cache
allocate millions of small objects, and every 700 allocations the collector runs, its older generations walking
everything alive. None of those objects form reference cycles (dicts, lists, tuples, strings, Tensor records: freed
by reference counting as usual), so the walks free nothing: with the collector off, a cold Kimi-K2 run took 1 s less
of 5-6 s on this project's 2-CPU machine (bench/bench.py figures in the README). Pauses nest and overlap across
threads (a scan parses in many at once): the collector comes back on when the last one ends, if it was on before."""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def paused():
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()


def pausing(fn):
    """`fn` run with the collector paused (a decorator for the functions that build or write the large tables)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with paused():
            return fn(*args, **kwargs)

    return wrapper
