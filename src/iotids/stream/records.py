"""The values that travel down a stream: blocks of good flow records (columnar) and bad records.

A :class:`FlowBlock` holds consecutive good records of one source as arrays, so that a million flows never become
a million Python objects: the feature matrix in the scorer's column order, the 1-based input line of each record,
the time it was read, and the identifier columns (addresses, ports, protocol, ...) the alerts need.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

#: Identifier columns kept as text (pyarrow string arrays; only alerted rows ever become Python strings). The
#: CIC flow id and timestamp are not kept: alerts point back to the record by file and line instead.
TEXT_META: tuple[str, ...] = ("src_ip", "dst_ip")
#: Identifier columns kept as numbers (float64, NaN when unknown).
NUMERIC_META: tuple[str, ...] = ("src_port", "dst_port", "protocol", "icmp_type", "icmp_code")

#: Largest finite float32; a feature beyond it cannot reach the model and makes the record bad.
FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True, slots=True)
class BadRecord:
    """A record that could not be scored: where it was, what it said and why it was refused."""

    source: str
    line: int
    reason: str
    raw: str

    def to_dict(self) -> dict[str, object]:
        return {"file": self.source, "line": self.line, "reason": self.reason, "raw": self.raw}


@dataclass(slots=True)
class FlowBlock:
    """Consecutive good records of one source, columnar, plus the bad records met on the way.

    Attributes
    ----------
    source : the input's name (a path, or ``"-"`` for stdin).
    lines : int64 (n,), the 1-based line of each record in its input (the CSV header is line 1).
    arrived : float64 (n,), ``time.monotonic()`` when each record was read (for latency).
    X : float32 (n, d), the features in the scorer's column order; all finite.
    text : identifier columns as pyarrow string arrays of length n (only those the input has).
    numbers : identifier columns as float64 (n,) arrays, NaN when unknown (only those the input has).
    truth : int8 (n,), 1 attack / 0 benign from the input's label column, -1 when there is none.
    bad : the records refused while reading this block.
    """

    source: str
    lines: np.ndarray
    arrived: np.ndarray
    X: np.ndarray
    text: dict[str, pa.Array] = field(default_factory=dict)
    numbers: dict[str, np.ndarray] = field(default_factory=dict)
    truth: np.ndarray | None = None
    bad: list[BadRecord] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.lines)

    @classmethod
    def empty(cls, source: str, n_features: int, bad: list[BadRecord] | None = None) -> FlowBlock:
        return cls(source, np.empty(0, np.int64), np.empty(0, np.float64),
                   np.empty((0, n_features), np.float32), bad=list(bad or []))

    def take(self, start: int, stop: int, *, with_bad: bool) -> FlowBlock:
        """Rows ``start:stop`` (and this block's bad records when ``with_bad``)."""
        return FlowBlock(
            self.source, self.lines[start:stop], self.arrived[start:stop], self.X[start:stop],
            {k: v.slice(start, stop - start) for k, v in self.text.items()},
            {k: v[start:stop] for k, v in self.numbers.items()},
            None if self.truth is None else self.truth[start:stop],
            list(self.bad) if with_bad else [],
        )

    @classmethod
    def concat(cls, blocks: list[FlowBlock]) -> FlowBlock:
        """One block from several of the same source (columns missing from one block become unknown)."""
        if len(blocks) == 1:
            return blocks[0]
        n_features = blocks[0].X.shape[1]
        text_keys = sorted({k for b in blocks for k in b.text})
        number_keys = sorted({k for b in blocks for k in b.numbers})
        has_truth = any(b.truth is not None for b in blocks)
        return cls(
            blocks[0].source,
            np.concatenate([b.lines for b in blocks]),
            np.concatenate([b.arrived for b in blocks]),
            np.concatenate([b.X for b in blocks]) if blocks else np.empty((0, n_features), np.float32),
            {k: pa.concat_arrays([_text_or_nulls(b, k) for b in blocks]) for k in text_keys},
            {k: np.concatenate([b.numbers.get(k, np.full(len(b), np.nan)) for b in blocks])
             for k in number_keys},
            np.concatenate([b.truth if b.truth is not None else np.full(len(b), -1, np.int8) for b in blocks])
            if has_truth else None,
            [r for b in blocks for r in b.bad],
        )


def _text_or_nulls(block: FlowBlock, key: str) -> pa.Array:
    array = block.text.get(key)
    if array is None:
        return pa.nulls(len(block), pa.string())
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
