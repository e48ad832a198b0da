"""Run an iterator in a background thread with a bounded queue (decode overlaps compute; memory stays bounded)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
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
