"""pipeline/threads.py: the decoder's and the encoder's worker threads keep order, wait on exit and hand errors back."""

import threading
import time

import pytest

from ladtalk.pipeline.threads import background, background_calls


def test_background_yields_in_order_and_hands_errors_back():
    def items(fail_at=None):
        for i in range(20):
            if i == fail_at:
                raise OSError("bad frame")
            yield i

    assert list(background(items(), depth=3)) == list(range(20))
    with pytest.raises(OSError, match="bad frame"):
        list(background(items(fail_at=7), depth=3))


def test_calls_run_in_order_in_another_thread_and_finish_before_exit():
    done, threads = [], set()

    def slow(i):
        time.sleep(0.01)
        threads.add(threading.get_ident())
        done.append(i)

    with background_calls(slow, depth=2) as submit:
        for i in range(6):
            submit(i)
    assert done == list(range(6)) and threading.get_ident() not in threads


def test_a_worker_error_reaches_the_caller_and_later_items_are_dropped():
    done = []

    def fail_on_2(i):
        if i == 2:
            raise OSError("disk full")
        done.append(i)

    with pytest.raises(OSError, match="disk full"), background_calls(fail_on_2, depth=1) as submit:
        for i in range(50):
            submit(i)
            time.sleep(0.002)
    assert done == [0, 1]


def test_an_error_in_the_block_abandons_the_queue():
    done = []
    with pytest.raises(KeyboardInterrupt), background_calls(lambda i: (time.sleep(0.02), done.append(i)), 4) as s:
        for i in range(4):
            s(i)
        raise KeyboardInterrupt
    assert len(done) < 4
