"""pipeline/threads.py: the encoder's worker thread keeps order, waits on exit and hands errors back."""

import threading
import time

import pytest

from ladtalk.pipeline.threads import background_calls


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
