"""Background threads with bounded queues (memory stays flat): decoding ahead of the networks, encoding behind them.
PyAV (FFmpeg) and the networks' kernels release the GIL, so the decoder and x264 run while the networks compute."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")
_END = object()


def background(it: Iterator[T], depth: int = 32) -> Iterator[T]:
    """Yield the items of `it`, produced ahead by a daemon thread; exceptions are re-raised in the consumer."""
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in it:
                if stop.is_set():
                    return
                q.put(item)
            q.put(_END)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            q.put(e)

    def consume() -> Iterator[T]:
        # started on the first next(): a consumer dropped before that leaves no thread behind
        threading.Thread(target=produce, daemon=True).start()
        try:
            while True:
                item = q.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while not q.empty():  # unblock a producer waiting on a full queue
                q.get_nowait()

    return consume()


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
