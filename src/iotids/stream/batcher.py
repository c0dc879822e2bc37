"""Micro-batches: blocks of records regrouped into batches closed on size or on a maximum wait.

The reader runs in a worker thread and hands its blocks over a bounded queue (backpressure: a slow scorer slows
the reader, memory stays bounded). A batch closes when it holds ``batch_size`` records or when its oldest record
has waited ``max_wait_ms``, so a quiet network still gets timely verdicts. An error in the reader is sent over
the queue and raised in the consumer. When ``stop`` is set, the records already read are still batched and
yielded: nothing read is lost at shutdown.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from iotids.errors import InvalidParameterError
from iotids.stream.records import FlowBlock


@dataclass(frozen=True, slots=True)
class _Failure:
    error: BaseException


_END = object()


class _Producer(threading.Thread):
    """Runs the block iterator, putting each block (then the end mark or the error) on the queue."""

    def __init__(self, blocks: Iterable[FlowBlock], queue_size: int) -> None:
        super().__init__(name="iotids-reader", daemon=True)
        self.blocks = blocks
        self.queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self.abandoned = threading.Event()

    def run(self) -> None:
        try:
            for block in self.blocks:
                if not self._put(block):
                    return
        except BaseException as exc:  # forwarded to the consumer and raised there
            self._put(_Failure(exc))
        self._put(_END)

    def _put(self, item: object) -> bool:
        while not self.abandoned.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False


def iter_batches(
    blocks: Iterable[FlowBlock],
    *,
    batch_size: int = 8192,
    max_wait_ms: float = 100.0,
    stop: threading.Event | None = None,
    queue_size: int = 4,
    drain_timeout_s: float = 2.0,
) -> Iterator[FlowBlock]:
    """Regroup ``blocks`` into batches of at most ``batch_size`` records.

    A batch is yielded as soon as it is full, when its oldest record (or bad record) has waited ``max_wait_ms``,
    and at the end of the input. Bad records travel with the batch they arrived with.

    Parameters
    ----------
    stop : when set, the reader gets ``drain_timeout_s`` to hand over what it has read, everything pending is
        yielded, and the iteration ends.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidParameterError(f"The 'batch_size' parameter must be an int >= 1. Got {batch_size!r} instead.")
    if not max_wait_ms >= 0:
        raise InvalidParameterError(f"The 'max_wait_ms' parameter must be a number >= 0. Got {max_wait_ms!r}.")
    producer = _Producer(blocks, queue_size)
    producer.start()
    pending: list[FlowBlock] = []
    rows = 0
    oldest = 0.0  # monotonic arrival of the oldest pending record
    wait_s = max_wait_ms / 1000.0
    try:
        while True:
            if stop is not None and stop.is_set():
                yield from _drain(producer, pending, batch_size, drain_timeout_s)
                return
            timeout = 0.1 if not pending else max(0.0, min(0.1, oldest + wait_s - time.monotonic()))
            try:
                item = producer.queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is _END:
                yield from _split(pending, batch_size, final=True)
                return
            if isinstance(item, _Failure):
                yield from _split(pending, batch_size, final=True)
                raise item.error
            if isinstance(item, FlowBlock):
                if not pending:
                    oldest = float(item.arrived[0]) if len(item) else time.monotonic()
                pending.append(item)
                rows += len(item)
            if rows >= batch_size:
                full = list(_split(pending, batch_size, final=False))
                yield from full
                rows = sum(len(b) for b in pending)
                if pending:
                    oldest = float(pending[0].arrived[0]) if len(pending[0]) else time.monotonic()
            if pending and time.monotonic() >= oldest + wait_s:
                yield from _split(pending, batch_size, final=True)
                rows = 0
    finally:
        producer.abandoned.set()


def _split(pending: list[FlowBlock], batch_size: int, *, final: bool) -> Iterator[FlowBlock]:
    """Cut ``pending`` (consumed in place) into full batches; with ``final``, the remainder too."""
    while pending:
        if not final and sum(len(b) for b in pending) < batch_size:
            return
        taken: list[FlowBlock] = []
        need = batch_size
        while pending and (need > 0 or not len(pending[0])):  # bad-only blocks ride along
            block = pending[0]
            if len(block) <= need:
                taken.append(pending.pop(0))
                need -= len(block)
            else:
                taken.append(block.take(0, need, with_bad=True))
                pending[0] = block.take(need, len(block), with_bad=False)
                need = 0
        yield FlowBlock.concat(taken)


def _drain(producer: _Producer, pending: list[FlowBlock], batch_size: int, timeout_s: float) -> Iterator[FlowBlock]:
    """After a stop: collect what the reader still hands over (briefly), then yield everything."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            item = producer.queue.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if isinstance(item, FlowBlock):
            pending.append(item)
        else:
            break
    yield from _split(pending, batch_size, final=True)
