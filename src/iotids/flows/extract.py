"""Packets in, finished flows out, in bounded memory: the streaming pipeline around :mod:`.engine`.

reader (:mod:`.pcap`) -> decoder (:mod:`.decode`) -> reorder buffer (stable sort by time within a window) ->
flow table (:mod:`.engine`) -> features (:mod:`.features`) -> Arrow tables of flows (:mod:`.table`).

Memory is bounded by the flows open at once (each ends within ``flow_timeout`` of its start), the tombstones
(``tombstone_ttl``, at most ``max_tombstones``), one read chunk and the reorder window; a flow is yielded as soon as
it ends or times out.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from iotids.errors import InvalidParameterError
from iotids.flows import engine as E
from iotids.flows.decode import OK, STATUS_NAMES, Packets, decode
from iotids.flows.features import compute_features
from iotids.flows.output import DEFAULT_LABEL, check_label, iter_rows, write_csv
from iotids.flows.pcap import LINKTYPE_ETHERNET, FrameBatch, ReadStats, read_frames
from iotids.flows.table import flows_table

FLAVORS = ("cicids2017", "engelen2021")
_EMIT_ROWS = 4096

#: One captured frame from a live source: (time in seconds since the epoch, the frame's bytes), or ``None`` to
#: make the pipeline process what it holds now (a capture timeout with no packets).
Frame = tuple[float, bytes] | None
#: What the extractor reads: a capture path, a list of them, or live frames.
Source = str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | Iterable[Frame]


@dataclass(slots=True)
class ExtractStats:
    """Counts of one extraction; ``to_dict`` for reports."""

    files: int = 0
    bytes: int = 0  # capture bytes read (files only)
    frames: int = 0
    packets: int = 0  # frames decoded to an IP packet that went into the flow table
    flows: int = 0  # flows yielded
    skipped: dict[str, int] = field(default_factory=dict)  # frames not used, by decoder status
    other_protocol: int = 0  # IP packets without TCP/UDP (and ICMP for engelen2021): protocol-0 flows
    late: int = 0  # packets older than the reorder window: processed out of time order
    truncated_files: int = 0  # captures whose last record was cut short or damaged
    linktypes: dict[int, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"files": self.files, "bytes": self.bytes, "frames": self.frames, "packets": self.packets,
                "flows": self.flows,
                "skipped": dict(self.skipped), "other_protocol": self.other_protocol, "late": self.late,
                "truncated_files": self.truncated_files, "linktypes": dict(self.linktypes)}


def _check_parameters(flavor: str, flow_timeout: float, activity_timeout: float, tombstone_ttl: float) -> None:
    if flavor not in FLAVORS:
        raise InvalidParameterError(f"The 'flavor' parameter must be one of {', '.join(FLAVORS)}. "
                                    f"Got {flavor!r} instead.")
    for name, value in (("flow_timeout", flow_timeout), ("activity_timeout", activity_timeout),
                        ("tombstone_ttl", tombstone_ttl)):
        if not value > 0:
            raise InvalidParameterError(f"The '{name}' parameter must be a positive number of seconds. "
                                        f"Got {value!r} instead.")


class FlowTable:
    """The flow table of one capture: feed time-ordered packets, collect finished flows as Arrow tables."""

    def __init__(self, flavor: str = "cicids2017", *, flow_timeout: float = 120.0, activity_timeout: float = 5.0,
                 tombstone_ttl: float = 600.0, max_tombstones: int = 1_000_000, capacity: int = 4096) -> None:
        _check_parameters(flavor, flow_timeout, activity_timeout, tombstone_ttl)
        self.flavor = flavor
        self.P = np.zeros(E.NP, np.int64)
        self.P[E.P_FLAVOR] = E.CIC2017 if flavor == "cicids2017" else E.ENGELEN
        self.P[E.P_TIMEOUT] = round(flow_timeout * 1e6)
        self.P[E.P_ACTIVITY] = round(activity_timeout * 1e6)
        self.P[E.P_TOMB_TTL] = round(tombstone_ttl * 1e6)
        self.P[E.P_TOMB_MAX] = max_tombstones
        self.M = np.zeros(E.NM, np.int64)
        self.M[E.M_LAST_TS] = np.iinfo(np.int64).min
        self.FI = np.zeros((capacity, E.NI), np.int64)
        self.FD = np.zeros((capacity, E.ND), np.float64)
        self.free = np.arange(capacity - 1, -1, -1, dtype=np.int64)
        self.M[E.M_FREE] = capacity
        self.index = E.new_index()
        self.tombs = E.new_tombstones()
        self.rsets = E.new_rsets()
        self._last_sweep: int | None = None
        self._EI = np.empty((_EMIT_ROWS, E.NI), np.int64)  # emission buffers: flows ended, not yet collected
        self._ED = np.empty((_EMIT_ROWS, E.ND), np.float64)

    @property
    def open_flows(self) -> int:
        return len(self.index)

    def _grow(self) -> None:
        old = len(self.FI)
        new = old * 2
        for name in ("FI", "FD"):  # rows are reset when a flow takes them: no need to zero the new ones
            grown = np.empty((new, getattr(self, name).shape[1]), getattr(self, name).dtype)
            grown[:old] = getattr(self, name)
            setattr(self, name, grown)
        free = np.empty(new, np.int64)
        k = int(self.M[E.M_FREE])
        free[:k] = self.free[:k]
        free[k:k + new - old] = np.arange(new - 1, old - 1, -1)
        self.free = free
        self.M[E.M_FREE] = k + new - old

    def feed(self, packets: Packets) -> pa.Table | None:
        """Process time-ordered packets (``status == OK``); the flows that ended, or ``None``."""
        n = len(packets)
        parts: list[pa.Table] = []
        start = 0
        p = packets
        while start < n:
            self.M[E.M_EMITTED] = 0
            start = E.process(p.ts, p.src_hi, p.src_lo, p.dst_hi, p.dst_lo, p.sport, p.dport, p.proto, p.flags,
                              p.window, p.hdr_len, p.payload, p.icmp_type, p.icmp_code, p.seq, p.ack, start,
                              self.P, self.M, self.FI, self.FD, self.free, self.index, self.tombs, self.rsets,
                              self._EI, self._ED)
            self._collect(parts)
            if start < n and self.M[E.M_FREE] == 0:
                self._grow()
        now = int(self.M[E.M_LAST_TS])
        if n and (self._last_sweep is None or now - self._last_sweep >= 1_000_000):
            self._sweep(now, False, parts)
            self._last_sweep = now
        return pa.concat_tables(parts) if parts else None

    def expire(self, now_us: int) -> pa.Table | None:
        """The flows that timed out by ``now_us`` (a live capture's clock), though no packet came to say so."""
        parts: list[pa.Table] = []
        self._sweep(max(now_us, int(self.M[E.M_LAST_TS])), False, parts)
        return pa.concat_tables(parts) if parts else None

    def finish(self) -> pa.Table | None:
        """End of the capture: every open flow ends (and the table is empty again)."""
        parts: list[pa.Table] = []
        self._sweep(int(self.M[E.M_LAST_TS]), True, parts)
        self._last_sweep = None
        return pa.concat_tables(parts) if parts else None

    def _sweep(self, now: int, final: bool, parts: list[pa.Table]) -> None:
        slots = E.expired_slots(now, final, self.P, self.FI, self.index)
        for first in range(0, len(slots), len(self._EI)):
            self.M[E.M_EMITTED] = 0
            E.retire(slots[first:first + len(self._EI)], final, self.P, self.M, self.FI, self.FD, self.free,
                     self.index, self.tombs, self.rsets, self._EI, self._ED)
            self._collect(parts)
        E.purge_tombstones(now, final, self.P, self.tombs, self.rsets)

    def _collect(self, parts: list[pa.Table]) -> None:
        m = int(self.M[E.M_EMITTED])
        if m:
            rows, stats = self._EI[:m], self._ED[:m]
            parts.append(flows_table(rows, compute_features(rows, stats, self.flavor), self.flavor))


class _Reorder:
    """Stable time sort within a window: a packet is released once the clock is ``window`` past it.

    A packet older than what was already released ("late") is released at once, out of time order.
    """

    def __init__(self, window_us: int) -> None:
        self.window = window_us
        self.held: Packets | None = None
        self.released_until = np.iinfo(np.int64).min

    def push(self, packets: Packets, stats: ExtractStats) -> Packets:
        pool = packets if self.held is None else Packets.concat([self.held, packets])
        if len(pool) == 0:
            return pool
        if self.window > 0:
            stats.late += int((packets.ts < self.released_until).sum())
            key = np.maximum(pool.ts, self.released_until)
            order = np.argsort(key, kind="stable")
            pool, key = pool.take(order), key[order]
            cut = int(np.searchsorted(key, key[-1] - self.window, side="right"))
        else:  # file order: count the packets older than one before them
            key = np.maximum.accumulate(np.maximum(pool.ts, self.released_until))
            stats.late += int((pool.ts < key).sum())
            cut = len(pool)
        self.held = pool.take(slice(cut, None))
        if cut:
            self.released_until = max(self.released_until, int(key[:cut].max()))
        return pool.take(slice(0, cut))

    def drain(self) -> Packets | None:
        held, self.held = self.held, None
        return held


def _frames_from_iterable(frames: Iterable[Frame], linktype: int, batch_size: int) -> Iterator[FrameBatch | None]:
    """Live frames in batches; ``None`` (after the frames gathered so far) where the source asked to flush."""
    buffer: list[bytes] = []
    stamps: list[int] = []

    for item in frames:
        if item is None:
            if buffer:
                yield FrameBatch.take_frames(linktype, buffer, stamps)
            yield None
            continue
        ts, frame = item
        buffer.append(bytes(frame))
        stamps.append(round(ts * 1_000_000))
        if len(buffer) >= batch_size:
            yield FrameBatch.take_frames(linktype, buffer, stamps)
    if buffer:
        yield FrameBatch.take_frames(linktype, buffer, stamps)


def _is_paths(source: object) -> bool:
    if isinstance(source, str | os.PathLike):
        return True
    return isinstance(source, list | tuple) and all(isinstance(s, str | os.PathLike) for s in source)


def iter_flow_tables(source: Source, *,
                     flavor: str = "cicids2017", flow_timeout: float = 120.0, activity_timeout: float = 5.0,
                     reorder_window: float = 1.0, tombstone_ttl: float = 600.0, linktype: int = LINKTYPE_ETHERNET,
                     batch_size: int = 65536, stats: ExtractStats | None = None) -> Iterator[pa.Table]:
    """Finished flows as Arrow tables (identifier and feature columns, canonical names), as they end.

    ``source`` is a capture path, a list of paths (each file is its own capture, as CICFlowMeter treats them),
    or an iterable of live frames ``(seconds, bytes)`` of link type ``linktype`` stamped with the wall clock
    (``time.time()``); a ``None`` item flushes: held packets are processed and flows idle past their timeout by
    the wall clock end, so a quiet network still gets its verdicts.
    ``reorder_window`` (seconds) sorts packets by time within that window (0 keeps the file order).
    """
    _check_parameters(flavor, flow_timeout, activity_timeout, tombstone_ttl)
    if not reorder_window >= 0:
        raise InvalidParameterError(f"The 'reorder_window' parameter must be >= 0 seconds. Got {reorder_window!r} "
                                    "instead.")
    if batch_size < 1:
        raise InvalidParameterError(f"The 'batch_size' parameter must be a positive integer. Got {batch_size!r} "
                                    "instead.")
    stats = stats if stats is not None else ExtractStats()
    if _is_paths(source):
        paths = [source] if isinstance(source, str | os.PathLike) else list(source)  # type: ignore[arg-type]
        captures: Iterable[Iterator[FrameBatch | None]] = (_read_one(path, batch_size, stats) for path in paths)
    else:
        captures = [_frames_from_iterable(source, linktype, batch_size)]  # type: ignore[arg-type]
    return _pipeline(captures, flavor, flow_timeout, activity_timeout, tombstone_ttl, round(reorder_window * 1e6),
                     stats)


def _pipeline(captures: Iterable[Iterator[FrameBatch | None]], flavor: str, flow_timeout: float,
              activity_timeout: float, tombstone_ttl: float, window_us: int,
              stats: ExtractStats) -> Iterator[pa.Table]:
    for batches in captures:
        table = FlowTable(flavor, flow_timeout=flow_timeout, activity_timeout=activity_timeout,
                          tombstone_ttl=tombstone_ttl)
        reorder = _Reorder(window_us)
        for batch in batches:
            if batch is None:  # a live source's flush: the packets held for sorting go now, and by the
                held = reorder.drain()  # wall clock (live frames are stamped with it) idle flows time out
                if held is not None and len(held):
                    yield from _emit(table.feed(_count(held, stats, flavor)), stats)
                yield from _emit(table.expire(round(time.time() * 1_000_000)), stats)
                continue
            stats.frames += len(batch)
            stats.linktypes[batch.linktype] = stats.linktypes.get(batch.linktype, 0) + len(batch)
            packets = decode(batch)
            good = packets.status == OK
            if not good.all():
                codes, counts = np.unique(packets.status[~good], return_counts=True)
                for code, count in zip(codes, counts, strict=True):
                    stats.skipped[STATUS_NAMES[code]] = stats.skipped.get(STATUS_NAMES[code], 0) + int(count)
                packets = packets.take(good)
            yield from _emit(table.feed(_count(reorder.push(packets, stats), stats, flavor)), stats)
        held = reorder.drain()
        if held is not None and len(held):
            yield from _emit(table.feed(_count(held, stats, flavor)), stats)
        yield from _emit(table.finish(), stats)


def _read_one(path: str | os.PathLike[str], batch_size: int, stats: ExtractStats) -> Iterator[FrameBatch]:
    read = ReadStats()
    base = stats.bytes
    try:
        for batch in read_frames([path], max_frames=batch_size, stats=read):
            stats.bytes = base + read.bytes
            yield batch
    finally:
        stats.files += read.files
        stats.truncated_files += int(read.truncated > 0)


def _count(packets: Packets, stats: ExtractStats, flavor: str) -> Packets:
    stats.packets += len(packets)
    known = (6, 17) if flavor == "cicids2017" else (6, 17, 1, 58)
    stats.other_protocol += int((~np.isin(packets.proto, known)).sum())
    return packets


def _emit(table: pa.Table | None, stats: ExtractStats) -> Iterator[pa.Table]:
    if table is not None and table.num_rows:
        stats.flows += table.num_rows
        yield table


def iter_flows(source: Source, *, flavor: str = "cicids2017", **options: Any) -> Iterator[dict[str, Any]]:
    """One dict per flow as it ends: identifiers (``flow_id``, ``src_ip``, ``src_port``, ``dst_ip``, ``dst_port``,
    ``protocol``, ``timestamp`` as a UTC datetime) and the flavour's features under canonical names.

    ``options`` are those of :func:`iter_flow_tables` (``flow_timeout``, ``reorder_window``, ``stats``, ...).
    """
    return iter_rows(iter_flow_tables(source, flavor=flavor, **options))


def write_flows_csv(source: Source, out: str | os.PathLike[str], *, flavor: str = "cicids2017",
                    label: str = DEFAULT_LABEL, stats: ExtractStats | None = None, **options: Any) -> ExtractStats:
    """Extract the flows of ``source`` into a CSV with the data set's header, written atomically."""
    check_label(label)
    stats = stats if stats is not None else ExtractStats()
    write_csv(iter_flow_tables(source, flavor=flavor, stats=stats, **options), out, flavor=flavor, label=label)
    return stats
