"""The stream: reader -> batcher -> scorers -> alert writer, with running statistics.

:func:`run_stream` is what the CLI calls: it scores micro-batches, writes alerts and rejects, keeps
:class:`StreamStats` and reports them periodically.

Latency is measured per record, from the moment its bytes were read to the moment its verdict was written and
flushed; p50/p99 come from a log-spaced histogram (bins 2 % wide), so memory stays constant on endless streams.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from iotids.errors import InvalidParameterError
from iotids.stream.alerts import AlertWriter, RejectWriter
from iotids.stream.batcher import iter_batches
from iotids.stream.records import FlowBlock


class BatchScorer(Protocol):
    """What the stream needs of a model: raw features (float32, the scorer's columns) -> scores."""

    def score_matrix(self, X: np.ndarray) -> np.ndarray: ...


class LatencyHistogram:
    """Latencies in log-spaced bins from 10 µs to 1000 s; quantiles read off the cumulative counts."""

    EDGES = np.geomspace(1e-5, 1e3, 931)  # ratio between edges: 1.02

    def __init__(self) -> None:
        self.counts = np.zeros(len(self.EDGES) + 1, np.int64)

    def add(self, seconds: np.ndarray) -> None:
        self.counts += np.bincount(np.searchsorted(self.EDGES, seconds), minlength=len(self.counts))

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def quantile(self, q: float) -> float:
        """Upper edge of the bin holding quantile ``q`` (seconds); NaN when empty."""
        total = self.total
        if not total:
            return float("nan")
        index = int(np.searchsorted(np.cumsum(self.counts), q * total))
        return float(self.EDGES[min(index, len(self.EDGES) - 1)])


@dataclass
class StreamStats:
    """Counts and speed of a stream so far."""

    flows: int = 0
    alerts: int = 0
    bad_records: int = 0
    batches: int = 0
    labelled: int = 0  # flows whose input had a label
    labelled_attacks: int = 0
    true_alerts: int = 0  # alerts on labelled attack flows
    false_alerts: int = 0  # alerts on labelled benign flows
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)

    @property
    def elapsed_s(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def flows_per_s(self) -> float:
        return self.flows / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "flows": self.flows, "alerts": self.alerts, "bad_records": self.bad_records, "batches": self.batches,
            "elapsed_s": round(self.elapsed_s, 3), "flows_per_s": round(self.flows_per_s, 1),
            "latency_p50_ms": round(self.latency.quantile(0.5) * 1e3, 3),
            "latency_p99_ms": round(self.latency.quantile(0.99) * 1e3, 3),
        }
        if self.labelled:
            out |= {"labelled": self.labelled, "labelled_attacks": self.labelled_attacks,
                    "true_alerts": self.true_alerts, "false_alerts": self.false_alerts}
        return out

    def summary(self) -> str:
        """One line for stderr."""
        return (f"{self.flows:,} flows  {self.flows_per_s:,.0f} flows/s  alerts {self.alerts:,}  "
                f"bad {self.bad_records:,}  latency p50 {self.latency.quantile(0.5) * 1e3:.1f} ms "
                f"p99 {self.latency.quantile(0.99) * 1e3:.1f} ms")


#: What a scoring thread hands the writer: the batch, its scores, its formatted lines and its number of alerts.
Scored = tuple[FlowBlock, np.ndarray, "memoryview | None", int]


def run_stream(
    blocks: Iterable[FlowBlock],
    scorer: BatchScorer,
    writer: AlertWriter,
    *,
    rejects: RejectWriter | None = None,
    batch_size: int = 8192,
    max_wait_ms: float = 100.0,
    stop: threading.Event | None = None,
    stats_every_s: float = 10.0,
    on_stats: Callable[[StreamStats], None] | None = None,
    score_threads: int = 2,
) -> StreamStats:
    """Score a stream of flow blocks, write alerts and rejects, and return the final statistics.

    The reader thread parses (see :func:`iter_batches`), this thread regroups the blocks into micro-batches,
    ``score_threads`` threads score batches and format their lines side by side (ONNX Runtime and the Arrow
    kernels release the GIL), and a writer thread writes them in input order as soon as each is ready.
    ``on_stats`` is called (from the writer) every ``stats_every_s`` seconds with the running statistics.
    """
    if not isinstance(score_threads, int) or score_threads < 1:
        raise InvalidParameterError(f"The 'score_threads' parameter must be an int >= 1. Got {score_threads!r}.")
    stats = StreamStats()
    sink = _Writer(stats, writer, rejects if rejects is not None else RejectWriter(None), stats_every_s, on_stats)
    sink.start()
    with ThreadPoolExecutor(score_threads, thread_name_prefix="iotids-scorer") as pool:
        try:
            for batch in iter_batches(blocks, batch_size=batch_size, max_wait_ms=max_wait_ms, stop=stop):
                sink.put(pool.submit(_score, scorer, writer, batch))
        finally:
            sink.put(None)
            sink.join()
    if sink.error is not None:
        raise sink.error
    stats.finished = time.monotonic()
    return stats


def _score(scorer: BatchScorer, writer: AlertWriter, batch: FlowBlock) -> Scored:
    scores = scorer.score_matrix(batch.X) if len(batch) else np.empty(0, np.float32)
    lines, alerts = writer.format(batch, scores) if len(batch) else (None, 0)
    return batch, scores, lines, alerts


class _Writer(threading.Thread):
    """Writes scored batches in order, keeping the statistics (the consumer end of a bounded queue of futures)."""

    def __init__(self, stats: StreamStats, writer: AlertWriter, rejects: RejectWriter, every_s: float,
                 on_stats: Callable[[StreamStats], None] | None) -> None:
        super().__init__(name="iotids-writer", daemon=True)
        self.stats, self.writer, self.rejects = stats, writer, rejects
        self.every_s, self.on_stats = every_s, on_stats
        self.queue: queue.Queue[Future[Scored] | None] = queue.Queue(maxsize=4)
        self.error: BaseException | None = None

    def put(self, item: Future[Scored] | None) -> None:
        while self.is_alive():
            try:
                self.queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        if self.error is not None:  # the writer died: stop feeding it and report why
            raise self.error

    def run(self) -> None:
        stats = self.stats
        next_report = stats.started + self.every_s
        try:
            while (item := self.queue.get()) is not None:
                batch, scores, lines, alerts = item.result()
                if batch.bad:
                    self.rejects.write(batch.bad)
                    stats.bad_records += len(batch.bad)
                if len(batch):
                    self.writer.write_lines(lines)
                    stats.latency.add(time.monotonic() - batch.arrived)
                    stats.flows += len(batch)
                    stats.alerts += alerts
                    stats.batches += 1
                    if batch.truth is not None:
                        _count_truth(stats, batch.truth, scores >= self.writer.threshold)
                if self.on_stats is not None and time.monotonic() >= next_report:
                    self.on_stats(stats)
                    next_report = time.monotonic() + self.every_s
        except BaseException as exc:  # raised in the caller's thread by run_stream
            self.error = exc


def _count_truth(stats: StreamStats, truth: np.ndarray, hits: np.ndarray) -> None:
    known = truth >= 0
    attack = truth == 1
    stats.labelled += int(known.sum())
    stats.labelled_attacks += int(attack.sum())
    stats.true_alerts += int((hits & attack).sum())
    stats.false_alerts += int((hits & (truth == 0)).sum())
