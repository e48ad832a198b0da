"""Background threads with bounded queues (memory stays flat): decoding ahead of the networks, encoding behind them.
PyAV (FFmpeg) and the networks' kernels release the GIL, so the decoder and x264 run while the networks compute."""

from __future__ import annotations

import collections
import contextlib
import queue
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
    """Yield `submit(item)`, which queues `fn(item)` for a worker thread (at most `depth` waiting: the caller
    blocks beyond that). Leaving the block waits for the queued calls; the worker's first error is raised in the
    caller (at the next submit or on leaving). After an error in the block the queued calls are dropped."""
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    errors: list[BaseException] = []
    abandon = threading.Event()

    def work() -> None:
        while (item := q.get()) is not _END:
            if errors or abandon.is_set():
                continue  # keep draining so the caller never blocks on a full queue
            try:
                fn(item)
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                errors.append(e)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()

    def submit(item: T) -> None:
        if errors:
            raise errors[0]
        q.put(item)

    try:
        yield submit
    except BaseException:
        abandon.set()
        raise
    finally:
        q.put(_END)
        worker.join()
    if errors:
        raise errors[0]
