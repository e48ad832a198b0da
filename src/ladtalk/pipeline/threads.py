"""Background threads with bounded queues (memory stays flat): decoding ahead of the networks, encoding behind them.
PyAV (FFmpeg) and the networks' kernels release the GIL, so the decoder and x264 run while the networks compute."""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
_END = object()


def background(it: Iterator[T], depth: int = 32) -> Iterator[T]:
    """Yield the items of `it`, produced ahead (at most `depth`) by a worker thread; its exceptions are re-raised in
    the consumer."""
    pool = ThreadPoolExecutor(1)  # started on the first next(): a consumer dropped before that leaves no thread
    try:
        ahead = collections.deque(pool.submit(next, it, _END) for _ in range(max(1, depth)))
        while (item := ahead.popleft().result()) is not _END:
            ahead.append(pool.submit(next, it, _END))
            yield item
    finally:
        pool.shutdown(cancel_futures=True)


@contextlib.contextmanager
def background_calls(fn: Callable[[T], object], depth: int = 2) -> Iterator[Callable[[T], None]]:
    """Yield `submit(item)`, which queues `fn(item)` for a worker thread (the caller blocks beyond `depth` waiting);
    leaving the block waits for them. The worker's first error is raised in the caller (at the next submit or on
    leaving) and the calls queued after it are dropped, as after an error in the block."""
    pool, pending = ThreadPoolExecutor(1), collections.deque()
    failed = threading.Event()

    def call(item: T) -> None:
        if not failed.is_set():
            try:
                fn(item)
            except BaseException:
                failed.set()
                raise

    def submit(item: T) -> None:
        while pending and (pending[0].done() or len(pending) > depth):
            pending.popleft().result()  # the worker's error, if any, raised here
        pending.append(pool.submit(call, item))

    try:
        yield submit
        while pending:
            pending.popleft().result()
    finally:
        pool.shutdown(cancel_futures=True)
