"""Reading capture files in chunks: classic libpcap (vectorised record walk) and pcapng (through dpkt).

A chunk is a :class:`FrameBatch`: the raw bytes of many frames in one ``uint8`` buffer plus per-frame offsets,
captured lengths and timestamps in microseconds. Nothing here looks inside a frame (that is :mod:`.decode`).
A damaged tail (a record cut short) ends the file and is counted, never raised.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numba
import numpy as np

from iotids.errors import DataFormatError

#: Link types that :mod:`.decode` understands (others are read and counted as undecodable frames).
LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LOOP = 0, 1, 101, 108
LINKTYPE_LINUX_SLL, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL2 = 113, 228, 229, 276
#: Old BSD/OpenBSD spellings of raw IP.
LINKTYPE_RAW_ALIASES = (12, 14)

_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1), b"\xa1\xb2\xc3\xd4": (">", 1),  # microseconds
    b"\x4d\x3c\xb2\xa1": ("<", 1000), b"\xa1\xb2\x3c\x4d": (">", 1000),  # nanoseconds
}
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"


@dataclass(slots=True)
class FrameBatch:
    """Frames of one link type: ``data[offsets[i]:offsets[i] + caplen[i]]`` is frame ``i``."""

    linktype: int
    data: np.ndarray  # uint8
    offsets: np.ndarray  # int64
    caplen: np.ndarray  # int32
    ts_us: np.ndarray  # int64, microseconds since the epoch

    def __len__(self) -> int:
        return len(self.offsets)

    @classmethod
    def take_frames(cls, linktype: int, frames: list[bytes], stamps: list[int]) -> FrameBatch:
        """A batch of the frames gathered in two lists (which are emptied for the next batch)."""
        sizes = np.fromiter((len(f) for f in frames), np.int32, len(frames))
        offsets = np.zeros(len(frames), np.int64)
        np.cumsum(sizes[:-1], out=offsets[1:])
        batch = cls(linktype, np.frombuffer(b"".join(frames), np.uint8), offsets, sizes, np.asarray(stamps, np.int64))
        frames.clear()
        stamps.clear()
        return batch


@dataclass(slots=True)
class ReadStats:
    """What the reader saw: frames read, bytes, and damaged records (``truncated``)."""

    files: int = 0
    frames: int = 0
    bytes: int = 0
    truncated: int = 0


@numba.njit(cache=True, nogil=True)
def _walk_records(buf: np.ndarray, start: int, end: int, big_endian: bool, ts_div: int, max_frames: int,
                  offsets: np.ndarray, caplen: np.ndarray, ts_us: np.ndarray) -> tuple[int, int, int]:
    """Walk classic pcap records in ``buf[start:end]``; returns (frames, next position, bad record flag)."""
    pos = start
    n = 0
    while n < max_frames and pos + 16 <= end:
        if big_endian:
            sec = (np.int64(buf[pos]) << 24) | (np.int64(buf[pos + 1]) << 16) | (np.int64(buf[pos + 2]) << 8) \
                | np.int64(buf[pos + 3])
            frac = (np.int64(buf[pos + 4]) << 24) | (np.int64(buf[pos + 5]) << 16) \
                | (np.int64(buf[pos + 6]) << 8) | np.int64(buf[pos + 7])
            incl = (np.int64(buf[pos + 8]) << 24) | (np.int64(buf[pos + 9]) << 16) \
                | (np.int64(buf[pos + 10]) << 8) | np.int64(buf[pos + 11])
        else:
            sec = (np.int64(buf[pos + 3]) << 24) | (np.int64(buf[pos + 2]) << 16) \
                | (np.int64(buf[pos + 1]) << 8) | np.int64(buf[pos])
            frac = (np.int64(buf[pos + 7]) << 24) | (np.int64(buf[pos + 6]) << 16) \
                | (np.int64(buf[pos + 5]) << 8) | np.int64(buf[pos + 4])
            incl = (np.int64(buf[pos + 11]) << 24) | (np.int64(buf[pos + 10]) << 16) \
                | (np.int64(buf[pos + 9]) << 8) | np.int64(buf[pos + 8])
        if incl > 0x4000000:  # > 64 MiB: not a record header, the file is damaged from here on
            return n, pos, 1
        if pos + 16 + incl > end:
            break
        offsets[n] = pos + 16
        caplen[n] = incl
        ts_us[n] = sec * 1_000_000 + frac // ts_div
        n += 1
        pos += 16 + incl
    return n, pos, 0


class _ClassicReader:
    """Chunked reader of a classic pcap file: reads ``chunk_bytes`` at a time and walks the records."""

    def __init__(self, stream: BinaryIO, path: str, header: bytes, chunk_bytes: int, max_frames: int) -> None:
        order, self.ts_div = _PCAP_MAGICS[header[:4]]
        self.big_endian = order == ">"
        self.linktype = int.from_bytes(header[20:24], "big" if self.big_endian else "little") & 0x0FFFFFFF
        self.stream, self.path = stream, path
        self.chunk_bytes, self.max_frames = chunk_bytes, max_frames

    def batches(self, stats: ReadStats) -> Iterator[FrameBatch]:
        pending = b""
        eof = False
        need_more = True
        while True:
            if need_more and not eof:
                block = self.stream.read(self.chunk_bytes)
                eof = len(block) < self.chunk_bytes
                pending = pending + block if pending else block
            buf = np.frombuffer(pending, dtype=np.uint8)
            offsets = np.empty(self.max_frames, np.int64)
            caplen = np.empty(self.max_frames, np.int32)
            ts_us = np.empty(self.max_frames, np.int64)
            n, pos, bad = _walk_records(buf, 0, len(buf), self.big_endian, self.ts_div, self.max_frames,
                                        offsets, caplen, ts_us)
            if n:
                stats.frames += n
                stats.bytes += pos
                yield FrameBatch(self.linktype, buf, offsets[:n], caplen[:n], ts_us[:n])
            if bad:
                stats.truncated += 1
                return
            pending = pending[pos:]
            need_more = n < self.max_frames  # the walk stopped at the end of the data it had
            if eof and need_more:
                if pending:
                    stats.truncated += 1  # a record cut short at the end of the file
                return


def _pcapng_batches(stream: BinaryIO, path: str, max_frames: int, stats: ReadStats) -> Iterator[FrameBatch]:
    """pcapng through dpkt; frames are grouped into batches of one link type."""
    import dpkt

    try:
        reader = dpkt.pcapng.Reader(stream)
    except (ValueError, dpkt.dpkt.Error) as exc:
        raise DataFormatError(f"cannot read the pcapng header: {exc}", path=path) from exc
    linktype = reader.datalink()
    frames: list[bytes] = []
    stamps: list[int] = []

    try:
        for ts, frame in reader:
            frames.append(bytes(frame))
            stamps.append(round(ts * 1_000_000) if isinstance(ts, float) else int(ts) * 1_000_000)
            stats.frames += 1
            stats.bytes += len(frame)
            if len(frames) == max_frames:
                yield FrameBatch.take_frames(linktype, frames, stamps)
    except (ValueError, dpkt.dpkt.NeedData, dpkt.dpkt.UnpackError, EOFError):
        stats.truncated += 1
    if frames:
        yield FrameBatch.take_frames(linktype, frames, stamps)


def read_frames(paths: Iterable[str | os.PathLike[str]], *, chunk_bytes: int = 8 << 20, max_frames: int = 65536,
                stats: ReadStats | None = None) -> Iterator[FrameBatch]:
    """Frames of every file in turn, as :class:`FrameBatch` chunks of at most ``max_frames`` frames.

    Raises
    ------
    DataFormatError
        If a file is missing or is neither pcap nor pcapng.
    """
    stats = stats if stats is not None else ReadStats()
    for raw_path in paths:
        path = Path(raw_path)
        try:
            stream = path.open("rb")
        except OSError as exc:
            raise DataFormatError(f"cannot open the capture: {exc.strerror or exc}", path=path) from exc
        with stream:
            header = stream.read(24)
            stats.files += 1
            if header[:4] in _PCAP_MAGICS and len(header) == 24:
                reader = _ClassicReader(stream, str(path), header, chunk_bytes, max_frames)
                batches = reader.batches(stats)
            elif header[:4] == _PCAPNG_MAGIC:
                stream.seek(0)
                batches = _pcapng_batches(stream, str(path), max_frames, stats)
            else:
                raise DataFormatError(
                    "not a capture file: expected a libpcap or pcapng header (magic a1b2c3d4, a1b23c4d or "
                    f"0a0d0d0a), found {header[:4].hex() or 'an empty file'}", path=path)
            yield from batches
