"""Micro-batches close on size, on the maximum wait, at the end, and on stop; reader errors reach the consumer."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from iotids.errors import InvalidParameterError
from iotids.stream import BadRecord, FlowBlock, iter_batches


def _block(first: int, n: int, bad: int = 0) -> FlowBlock:
    lines = np.arange(first, first + n, dtype=np.int64)
    return FlowBlock("in.csv", lines, np.full(n, time.monotonic()), np.ones((n, 3), np.float32),
                     bad=[BadRecord("in.csv", 10_000 + i, "bad", "") for i in range(bad)])


def test_batches_close_on_size_and_at_the_end() -> None:
    blocks = [_block(1 + 10 * i, 10, bad=1) for i in range(10)]
    batches = list(iter_batches(blocks, batch_size=25, max_wait_ms=60_000))
    assert [len(b) for b in batches] == [25, 25, 25, 25]
    assert np.concatenate([b.lines for b in batches]).tolist() == list(range(1, 101))
    assert sum(len(b.bad) for b in batches) == 10


def test_a_quiet_source_still_gets_its_batch_after_max_wait() -> None:
    released = threading.Event()

    def slow() -> Iterator[FlowBlock]:
        yield _block(1, 3)
        released.wait(10)
        yield _block(4, 3)

    started = time.monotonic()
    batches = iter_batches(slow(), batch_size=1000, max_wait_ms=50)
    first = next(batches)
    waited = time.monotonic() - started
    released.set()
    assert len(first) == 3 and 0.04 <= waited < 2.0
    assert [len(b) for b in batches] == [3]


def test_reader_errors_are_raised_in_the_consumer_after_the_pending_batch() -> None:
    def failing() -> Iterator[FlowBlock]:
        yield _block(1, 5)
        raise OSError("disk gone")

    batches = iter_batches(failing(), batch_size=1000, max_wait_ms=60_000)
    assert len(next(batches)) == 5
    with pytest.raises(OSError, match="disk gone"):
        next(batches)


def test_stop_flushes_what_was_read() -> None:
    stop = threading.Event()
    produced = []

    def endless() -> Iterator[FlowBlock]:
        i = 0
        while not stop.is_set():
            produced.append(5)
            yield _block(1 + 5 * i, 5)
            i += 1
            time.sleep(0.005)

    seen = 0
    for batch in iter_batches(endless(), batch_size=7, max_wait_ms=60_000, stop=stop):
        seen += len(batch)
        if seen > 50:
            stop.set()
    assert seen == sum(produced)  # every block read before the stop was delivered, none cut short


def test_parameters_are_checked() -> None:
    with pytest.raises(InvalidParameterError, match="batch_size"):
        list(iter_batches([], batch_size=0))
    with pytest.raises(InvalidParameterError, match="max_wait_ms"):
        list(iter_batches([], max_wait_ms=-1))
