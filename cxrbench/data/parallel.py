"""An ordered parallel map whose memory stays bounded and that never hangs.

``multiprocessing.Pool.imap`` feeds its whole input iterator into the task queue as fast as it
can, so a lazily generated input (studies streamed from a 42M-row table) would be materialised
in full. :func:`ordered_map` keeps at most ``in_flight`` tasks submitted and yields results in
input order, so the input is consumed only as fast as results are taken.

It runs on :class:`concurrent.futures.ProcessPoolExecutor`, not ``multiprocessing.Pool``: a worker
that dies (killed, out of memory) breaks the pool and the waiting parent gets an error instead
of waiting for ever, and the first task that fails stops the map (pending tasks are cancelled,
the workers shut down) with the task's own exception: the library's errors pickle, so a
``DataError`` naming file and record reaches the caller intact.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterable, Iterator

from cxrbench.errors import CxrbenchError


def ordered_map(fn: Callable[[Any], Any], items: Iterable[Any], workers: int, initializer: Callable | None = None,
                initargs: tuple = (), in_flight: int | None = None) -> Iterator[Any]:
    """``map(fn, items)`` over ``workers`` processes (in this process when ``workers <= 1``)."""
    if workers <= 1:
        if initializer is not None:
            initializer(*initargs)
        for item in items:
            yield fn(item)
        return
    ctx = mp.get_context("fork" if os.name == "posix" else "spawn")
    limit = in_flight or 2 * workers
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=initializer, initargs=initargs)
    pending: deque[Future] = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= limit:
                yield _result(pending.popleft())
        while pending:
            yield _result(pending.popleft())
    finally:
        for f in pending:
            f.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def _result(future: Future) -> Any:
    try:
        return future.result()
    except BrokenProcessPool:
        raise CxrbenchError("a worker process died (killed, or out of memory?); rerun with fewer workers") from None
