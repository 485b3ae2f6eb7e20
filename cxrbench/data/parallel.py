"""An ordered parallel map whose memory stays bounded.

``multiprocessing.Pool.imap`` feeds its whole input iterator into the task queue as fast as it
can, so a lazily generated input (studies streamed from a 42M-row table) would be materialised
in full. :func:`ordered_map` keeps at most ``in_flight`` tasks submitted and yields results in
input order, so the input is consumed only as fast as results are taken.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections import deque
from typing import Any, Callable, Iterable, Iterator


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
    with ctx.Pool(workers, initializer=initializer, initargs=initargs) as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.apply_async(fn, (item,)))
            if len(pending) >= limit:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
