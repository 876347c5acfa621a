"""Work spread over several processes, results in input order: what lets `hfvram scan` use more than one core.

A scan is CPU-bound once requests overlap (one model costs ~80 ms of CPU here: HTTP client, header parsing,
introspection, five estimators, cache writes; bench/bench.py's 500-repo scan ran one core at 100% for 43 s) and
CPython runs one thread at a time, so threads alone cannot go faster than one core. `in_order` starts `processes`
workers (spawned: a fresh interpreter each, never a fork of a process with threads), each with its own threads, and
hands each worker a new item only when one of its threads is free, so the work balances itself.

`make(*args)` runs once in each worker and returns the function to apply to each item: everything it needs crosses
the pipe pickled (items, args, results), nothing else. A worker that dies (killed, out of memory) costs nothing but
time: the items it held are done again in this process, and so is the rest if no worker is left. Workers ignore
Ctrl-C (the parent stops them), so an interrupted scan prints one message, not one per process.
"""

from __future__ import annotations

import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator

# How long the parent waits for workers to finish their last items and exit before terminating them, in seconds
# (they only finish the item in hand: the parent has stopped sending). A bound on shutdown, not tuned.
STOP_WAIT_S = 5.0
_END = object()


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, which containers and `taskset` narrow; else the count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _worker(conn, make: Callable, args: tuple, threads: int) -> None:
    """A worker process: receive (index, item), answer (index, result) when its thread is done with it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    try:
        fn = make(*args)
    except BaseException:  # noqa: BLE001 - no traceback here: the parent, seeing the worker gone, does the work
        os._exit(70)  # itself and reports what goes wrong there as usual
    send_lock = threading.Lock()

    def run(index: int, item: Any) -> None:
        try:
            result = ("ok", fn(item))
        except BaseException as exc:  # noqa: BLE001 - the parent redoes it, where the error is reported as usual
            result = ("failed", f"{type(exc).__name__}: {exc}")
        with send_lock:
            try:
                conn.send((index, result))
            except (OSError, EOFError):  # the parent is gone
                pass
            except Exception as exc:  # noqa: BLE001 - a result pickle cannot carry: the parent redoes the item
                conn.send((index, ("failed", f"{type(exc).__name__}: {exc}")))

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="hfvram-worker") as pool:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            if message is None:
                break
            pool.submit(run, *message)
    conn.close()


class _Worker:
    """One worker process, as the parent sees it: its pipe, its threads and the items it holds."""

    def __init__(self, ctx, make: Callable, args: tuple, threads: int):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker, args=(child, make, args, threads), daemon=True,
                                   name="hfvram-worker")
        self.process.start()
        child.close()
        self.threads = threads
        self.held: set[int] = set()
        self.alive = True

    @property
    def free(self) -> bool:
        return self.alive and len(self.held) < self.threads


def in_order(items: Iterable, make: Callable, args: tuple, *, processes: int, jobs: int,
             window: int) -> Iterator:
    """`make(*args)(item)` for every item, across `processes` workers with `jobs` threads in all, yielded in input
    order. At most `window` items are handed out beyond the next one to yield (memory stays flat). An item whose
    function raised in a worker, or whose worker died, is done again here with `make(*args)`."""
    import multiprocessing
    from multiprocessing.connection import wait

    ctx = multiprocessing.get_context("spawn")
    per = [jobs // processes + (i < jobs % processes) for i in range(processes)]
    workers = [_Worker(ctx, make, args, t) for t in per if t > 0]
    local: list[Callable] = []  # make(*args) here, built the first time something has to be redone here

    def here(item):
        if not local:
            local.append(make(*args))
        return local[0](item)

    pending = iter(items)
    taken = 0  # items taken from `items` (the next one's index)
    todo: dict[int, Any] = {}  # index -> item: handed out, or waiting to be redone here
    redo: set[int] = set()  # indexes to do here: their worker died, or their function raised there
    done: dict[int, Any] = {}
    head = 0  # the next index to yield
    exhausted = False
    finished = False

    def take() -> int | None:
        """The next item into `todo`: its index (None: there are no more)."""
        nonlocal taken, exhausted
        item = next(pending, _END)
        if item is _END:
            exhausted = True
            return None
        todo[taken] = item
        taken += 1
        return taken - 1

    try:
        while True:
            while head in done:  # first: what is yielded makes room in the window
                yield done.pop(head)
                head += 1
            # hand new items to workers with a free thread, no further than `window` past the head
            while not exhausted and taken < head + window:
                worker = next((w for w in workers if w.free), None)
                if worker is None:
                    break
                index = take()
                if index is None:
                    break
                try:
                    worker.conn.send((index, todo[index]))
                    worker.held.add(index)
                except (OSError, ValueError):  # it died: this item and what it held are redone here
                    worker.alive = False
                    redo.add(index)
                    redo.update(worker.held)
                    worker.held.clear()
            if exhausted and not todo:
                finished = True
                return
            if not redo and not any(w.alive for w in workers):  # no worker left: the rest is done here, in turn
                index = take()
                if index is None:
                    continue
                redo.add(index)
            if redo:
                index = min(redo)
                redo.discard(index)
                done[index] = here(todo.pop(index))
                continue
            alive = [w for w in workers if w.alive]
            ready = wait([w.conn for w in alive] + [w.process.sentinel for w in alive])
            for w in alive:
                if w.conn in ready:
                    try:
                        while w.conn.poll():
                            index, (status, value) = w.conn.recv()
                            w.held.discard(index)
                            if status == "ok":
                                done[index] = value
                                todo.pop(index)
                            else:
                                redo.add(index)
                    except (EOFError, OSError):
                        pass
                if w.process.sentinel in ready:
                    w.alive = False
                    redo.update(w.held)
                    w.held.clear()
    finally:
        _stop(workers, wait=finished)


def _stop(workers: list[_Worker], wait: bool) -> None:
    """Tell the workers to exit and wait for them (a finished run), or terminate them at once (interrupted, or the
    consumer stopped early: what they hold is not wanted)."""
    for w in workers:
        if not wait:
            w.process.terminate()
            continue
        try:
            w.conn.send(None)
        except (OSError, ValueError):
            pass
    for w in workers:
        w.process.join(STOP_WAIT_S / max(1, len(workers)))
        if w.process.is_alive():
            w.process.terminate()
            w.process.join(1)
        w.conn.close()
