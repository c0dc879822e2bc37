"""Readers: flow records from CSV (any layout iotids knows) or JSON lines, a file or stdin, optionally tailed.

Every reader is a generator of :class:`~iotids.stream.records.FlowBlock`. A block carries the good records read so
far as arrays and the bad ones as :class:`~iotids.stream.records.BadRecord`; a reader never raises because of one
record. Only a problem with the whole input (no file, a header of no known layout, a model feature the layout
lacks) raises, before the first record.

CSV is parsed a chunk of lines at a time with pyarrow. Lines with the wrong number of fields are set aside first
(counted with numpy), the rest parsed in one call; when pyarrow refuses a chunk (text in a number), the chunk is
halved until the culprit lines are isolated and checked one by one in Python, so a bad line costs a few extra
parses, not a slow path for the whole file. Each record keeps its 1-based line number, the header being line 1.

Records are refused when a field is missing, is not a number, or is NaN, infinite or beyond the float32 range
(the model sees float32). Quoted fields must not contain commas or line breaks (CICFlowMeter never quotes).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import os
import select
import stat
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, BinaryIO, Literal

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from iotids.errors import DataFormatError, InvalidParameterError, SchemaMismatchError
from iotids.schema import (
    ALIASES,
    BENIGN,
    FEATURES_BY_NAME,
    META_COLUMNS,
    HeaderMap,
    header_key,
    normalize_label,
    resolve_header,
    split_attempted,
)
from iotids.stream.records import FLOAT32_MAX, NUMERIC_META, TEXT_META, BadRecord, FlowBlock

Format = Literal["auto", "csv", "jsonl"]
#: Complete lines as read: a view of the read buffer (bytes where they were assembled otherwise).
Chunk = bytes | memoryview

#: A record's raw text is kept up to this length in reject files.
MAX_RAW_CHARS = 4096
#: A line longer than this is refused without being parsed.
MAX_LINE_BYTES = 1 << 20
_PYTHON_BELOW = 64  # chunks of at most this many lines that pyarrow refuses are checked line by line
#: pyarrow parses a chunk in blocks of this size: a block and its parsed fields stay in the core's L2 cache while
#: its columns are converted (about 30 % less CPU per row than one 4 MiB block, measured).
_BLOCK_BYTES = 256 << 10


def iter_blocks(
    path: str,
    columns: Sequence[str],
    *,
    fmt: Format = "auto",
    follow: bool = False,
    stop: threading.Event | None = None,
    chunk_bytes: int = 4 << 20,
    poll_s: float = 0.1,
) -> Iterator[FlowBlock]:
    """Read flow records from ``path`` (``"-"`` is stdin) in blocks of at most about ``chunk_bytes``.

    Parameters
    ----------
    columns : canonical names of the features to extract, in the scorer's order.
    fmt : ``"csv"``, ``"jsonl"`` or ``"auto"`` (JSON lines when the first line starts with ``{``).
    follow : keep reading as the file grows (as ``tail -F``: a truncated or replaced file is read anew).
    stop : when set, the reader returns after the chunk in hand.

    Raises
    ------
    DataFormatError
        The file is missing or unreadable, or the CSV header is not a known layout.
    SchemaMismatchError
        The CSV lacks a feature the model needs.
    """
    if fmt not in ("auto", "csv", "jsonl"):
        raise InvalidParameterError(f"The 'fmt' parameter must be 'auto', 'csv' or 'jsonl'. Got {fmt!r} instead.")
    if chunk_bytes < 1:
        raise InvalidParameterError(f"The 'chunk_bytes' parameter must be an int >= 1. Got {chunk_bytes!r}.")
    if follow and (path == "-" or path.endswith(".gz")):
        raise InvalidParameterError("--follow needs a plain file: it cannot tail stdin or a .gz file.")
    lines = _LineChunks(path, follow=follow, stop=stop, chunk_bytes=chunk_bytes, poll_s=poll_s)
    return _parse_stream(lines, path, list(columns), fmt)


def _parse_stream(lines: _LineChunks, source: str, columns: list[str], fmt: Format) -> Iterator[FlowBlock]:
    header = lines.first_line()
    if header is None:
        return
    is_json = fmt == "jsonl" or (fmt == "auto" and header.lstrip(b"\xef\xbb\xbf \t").startswith(b"{"))
    parser: CsvParser | _JsonParser
    if is_json:
        parser = _JsonParser(source, columns)
        lines.push_back(header)
    else:
        parser = CsvParser(header, source, columns)
    for data, first_line, n_lines, bad in lines:
        if data is None:  # the file was truncated or replaced: read its header again
            header = lines.first_line()
            if header is None:
                return
            if is_json:
                lines.push_back(header)
            else:
                parser = CsvParser(header, source, columns)
            continue
        arrived = time.monotonic()
        block = parser.parse(data, first_line, arrived, n_lines) if data else FlowBlock.empty(source, len(columns))
        block.bad[:0] = bad
        if len(block) or block.bad:
            yield block


# ----------------------------------------------------------------------------------------------------------------
# Bytes to complete lines


def _open(path: str) -> BinaryIO:
    if path == "-":
        return sys.stdin.buffer
    try:
        if path.endswith(".gz"):
            return gzip.open(path, "rb")  # type: ignore[return-value]
        return open(path, "rb")
    except OSError as exc:
        raise DataFormatError(f"cannot open the input ({exc.strerror or exc})", path=path) from None


class _LineChunks:
    """Complete lines of a file in chunks: ``(data, first_line, n_lines, bad)``, ``data`` ending in a newline.

    ``data`` is None once when a followed file was truncated or replaced (line numbers restart at 1).
    """

    def __init__(self, path: str, *, follow: bool, stop: threading.Event | None, chunk_bytes: int,
                 poll_s: float) -> None:
        self.path, self.follow, self.stop = path, follow, stop
        self.chunk_bytes, self.poll_s = chunk_bytes, poll_s
        self.stream = _open(path)
        self.pipe = _is_pipe(self.stream)
        self.compressed = isinstance(self.stream, gzip.GzipFile)
        self.rest = b""
        self.line = 0  # lines consumed so far
        self.reset = False

    def _read(self) -> bytes:
        """The next bytes; b"" at the end of the input (or when stopped)."""
        buffer = bytearray(self.chunk_bytes)
        with memoryview(buffer) as view:
            got = self._read_into(view)
        return bytes(buffer[:got])

    def _read_into(self, view: memoryview) -> int:
        """Read the next bytes into ``view``; return how many (0 at the end of the input or when stopped).

        Reading into a buffer that already holds the previous chunk's incomplete line spares copying each chunk
        twice (measured: 4.3 ms per 4 MiB chunk, with the GIL held, against 1.5 ms for the read itself).
        """
        while True:
            try:
                # gzip's read1 hands out one small decompressed block at a time; readinto gathers a whole chunk
                read = self.stream.readinto if self.compressed else self.stream.readinto1  # type: ignore[attr-defined]
                got = read(view)
                while self.pipe and got and got < len(view) and _readable(self.stream):
                    more = self.stream.readinto1(view[got:])  # type: ignore[attr-defined]
                    if not more:
                        break
                    got += more  # a pipe hands out 64 KiB at a time: take what is already there
            except (OSError, EOFError, gzip.BadGzipFile) as exc:
                raise DataFormatError(f"cannot read the input ({exc})", path=self.path) from None
            if got or not self.follow or self._stopped():
                return got
            if self._rotated():
                self.reset = True
                return 0
            time.sleep(self.poll_s)

    def _stopped(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def _rotated(self) -> bool:
        """Whether the followed file was truncated or replaced; if so, reopen it from the start."""
        try:
            on_disk = os.stat(self.path)
        except OSError:
            return False  # being replaced right now; keep the old handle until the new file appears
        current = os.fstat(self.stream.fileno())
        if on_disk.st_ino == current.st_ino and on_disk.st_size >= self.stream.tell():
            return False
        self.stream.close()
        self.stream = _open(self.path)
        self.rest, self.line = b"", 0
        return True

    def first_line(self) -> bytes | None:
        """Line 1 (the header of a CSV), or None when the input ends before it is complete."""
        while b"\n" not in self.rest:
            data = self._read()
            if not data:
                if self.reset:
                    self.reset = False
                    continue
                if self.rest.strip():
                    break
                return None
            self.rest += data
        line, _, self.rest = self.rest.partition(b"\n")
        self.line = 1
        return line.rstrip(b"\r")

    def push_back(self, line: bytes) -> None:
        """Give line 1 back (JSON lines have no header)."""
        self.rest = line + b"\n" + self.rest
        self.line = 0

    def __iter__(self) -> Iterator[tuple[Chunk | None, int, int, list[BadRecord]]]:
        try:
            while True:
                if self.reset:
                    self.reset = False
                    yield None, 0, 0, []
                    continue
                if b"\n" in self.rest:  # complete lines left over from reading the header
                    buffer: bytes | bytearray = self.rest
                    end = len(buffer)
                else:
                    buffer = bytearray(len(self.rest) + self.chunk_bytes)  # a new one: blocks may refer to it
                    buffer[:len(self.rest)] = self.rest
                    with memoryview(buffer) as view:
                        got = self._read_into(view[len(self.rest):])
                    if self.reset:
                        continue
                    if not got:
                        if self.rest:  # the last line lacks its newline
                            yield self._emit(self.rest + b"\n", 1, [])
                            self.rest = b""
                        return
                    end = len(self.rest) + got
                cut = buffer.rfind(b"\n", 0, end) + 1
                data = memoryview(buffer)[:cut]
                self.rest = bytes(buffer[cut:end])
                n_lines = _count_lines(data)
                bad: list[BadRecord] = []
                if len(self.rest) > MAX_LINE_BYTES:
                    bad.append(BadRecord(self.path, self.line + n_lines + 1,
                                         f"line longer than {MAX_LINE_BYTES} bytes", _raw(self.rest)))
                    self.rest = self._skip_line()
                if cut or bad:
                    yield self._emit(data, n_lines, bad)
                    if bad:
                        self.line += 1
                if self._stopped():
                    return
        finally:
            if self.stream is not sys.stdin.buffer:
                self.stream.close()

    def _skip_line(self) -> bytes:
        """Discard the rest of an over-long line; return what follows it."""
        while True:
            data = self._read()
            if not data:
                return b""
            end = data.find(b"\n")
            if end >= 0:
                return data[end + 1:]

    def _emit(self, data: Chunk, n_lines: int, bad: list[BadRecord]) -> tuple[Chunk, int, int, list[BadRecord]]:
        first = self.line + 1
        self.line += n_lines
        return data, first, n_lines, bad


def _count_lines(data: Chunk) -> int:
    """Newlines in ``data`` (numpy counts 4 times faster than ``bytes.count`` and releases the GIL)."""
    return int(np.count_nonzero(np.frombuffer(data, np.uint8) == 10))


def _is_pipe(stream: BinaryIO) -> bool:
    try:
        return stat.S_ISFIFO(os.fstat(stream.fileno()).st_mode) or stat.S_ISSOCK(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError, io.UnsupportedOperation):
        return False


def _readable(stream: BinaryIO) -> bool:
    """Whether more bytes can be read from a pipe without waiting."""
    return bool(select.select([stream], [], [], 0)[0])


def _raw(data: bytes) -> str:
    return data[:MAX_RAW_CHARS].decode("latin-1").rstrip("\r\n")


# ----------------------------------------------------------------------------------------------------------------
# CSV


def _resolve(names: list[str], source: str) -> HeaderMap:
    """The header's layout; a header without a label column (live CICFlowMeter variants) is accepted too."""
    return resolve_header(names, path=source, require_label=False)


def _check_columns(found: Iterable[str], columns: list[str], source: str) -> None:
    missing = [c for c in columns if c not in set(found)]
    if missing:
        raise SchemaMismatchError(f"{source}: the input lacks features the model needs", missing)


#: What flow exporters write in the label column of unlabelled traffic (CICFlowMeter: NeedManualLabel).
_PLACEHOLDER_LABELS = frozenset({"needmanuallabel", "no label", "unknown", "unlabeled", "unlabelled"})


class _Truth:
    """Label text -> 1 attack / 0 benign (an attempted attack counts as benign, as the loader's default)."""

    def __init__(self) -> None:
        self.cache: dict[bytes, int] = {}

    def __call__(self, raw: bytes | None) -> int:
        if raw is None:
            return -1
        value = self.cache.get(raw)
        if value is None:
            label = normalize_label(raw)
            unknown = not label or label.lower() in _PLACEHOLDER_LABELS
            value = -1 if unknown else int(label != BENIGN and not split_attempted(label)[1])
            self.cache[raw] = value
        return value

    def array(self, labels: pa.Array) -> np.ndarray:
        encoded = labels.dictionary_encode()
        mapping = np.array([self(v) for v in encoded.dictionary.to_pylist()] + [-1], dtype=np.int8)
        codes = encoded.indices.fill_null(len(encoded.dictionary)).to_numpy(zero_copy_only=False)
        return mapping[codes]


def _number(cell: str) -> float:
    """Python's float() restricted to what pyarrow accepts (no underscores)."""
    if "_" in cell:
        raise ValueError(cell)
    return float(cell)


class CsvParser:
    """Turns chunks of complete CSV lines into blocks."""

    def __init__(self, header: bytes, source: str, columns: list[str]) -> None:
        text = header.decode("latin-1")
        names = next(csv.reader([text]))
        self.header = _resolve(names, source)
        self.source, self.columns = source, columns
        self.width = len(names)
        self.quoted = '"' in text
        index = {name: i for i, name in enumerate(self.header.columns) if name is not None}
        _check_columns(index, columns, source)
        self.features = [index[c] for c in columns]
        self.text = {k: index[k] for k in TEXT_META if k in index}
        self.numbers = {k: index[k] for k in NUMERIC_META if k in index and k not in columns}
        self.numbers_from_x = {k: columns.index(k) for k in NUMERIC_META if k in columns}
        self.label = index.get("label")
        self.truth = _Truth()
        self.display = [names[i].strip() for i in range(len(names))]
        self.numeric_names = [f"c{i}" for i in [*self.features, *self.numbers.values()]]
        types: dict[str, pa.DataType] = {f"c{i}": pa.float64() for i in self.features}
        types |= {f"c{i}": pa.float64() for i in self.numbers.values()}
        types |= {f"c{i}": pa.string() for i in self.text.values()}
        if self.label is not None:
            types[f"c{self.label}"] = pa.binary()
        self.read_options = pa_csv.ReadOptions(column_names=[f"c{i}" for i in range(self.width)],
                                               block_size=_BLOCK_BYTES, use_threads=False)
        self.parse_options = pa_csv.ParseOptions(quote_char='"' if self.quoted else False)
        self.convert_options = pa_csv.ConvertOptions(column_types=types, include_columns=list(types),
                                                     null_values=[""], strings_can_be_null=True)

    def parse(self, data: Chunk, first_line: int, arrived: float, n_lines: int | None = None) -> FlowBlock:
        """Parse complete lines (``data`` ends with a newline); ``first_line`` is the number of the first,
        ``n_lines`` how many there are (counted here when not given)."""
        try:  # the common case: every line well-formed, so pyarrow's row i is line first_line + i
            table = self._arrow(data)
        except pa.ArrowInvalid:
            table = None
        if table is not None and table.num_rows == (_count_lines(data) if n_lines is None else n_lines):
            numbers = first_line + np.arange(table.num_rows, dtype=np.int64)
            return self._from_table(table, data, numbers, arrived)
        data = bytes(data)
        view = np.frombuffer(data, np.uint8)
        ends = np.flatnonzero(view == 10)
        starts = np.empty_like(ends)
        starts[0:1] = 0
        starts[1:] = ends[:-1] + 1
        length = ends - starts
        blank = (length == 0) | ((length == 1) & (view[starts] == 13))
        commas = np.flatnonzero(view == 44)
        fields = np.searchsorted(commas, ends) - np.searchsorted(commas, starts) + 1
        wrong = ~blank & (fields != self.width)
        numbers = first_line + np.arange(len(ends), dtype=np.int64)
        bad = [
            BadRecord(self.source, int(numbers[i]), f"expected {self.width} fields as in the header, found "
                      f"{int(fields[i])}", _raw(data[starts[i]:ends[i]]))
            for i in np.flatnonzero(wrong)
        ]
        keep = ~(blank | wrong)
        if keep.all():
            payload = data
        else:
            payload = b"".join([data[s:e + 1] for s, e in zip(starts[keep], ends[keep], strict=True)])
        parts = self._parse_good(payload, numbers[keep], arrived) if payload else []
        block = FlowBlock.concat(parts) if parts else FlowBlock.empty(self.source, len(self.columns))
        block.bad = sorted(bad + block.bad, key=lambda b: b.line)
        return block

    def _parse_good(self, payload: bytes, numbers: np.ndarray, arrived: float) -> list[FlowBlock]:
        """Lines of the right width; pyarrow first, halving on refusal, Python for the last few lines."""
        if len(numbers) <= _PYTHON_BELOW:
            try:
                table = self._arrow(payload)
            except pa.ArrowInvalid:
                return [self._python(payload, numbers, arrived)]
            return [self._from_table(table, payload, numbers, arrived)]
        try:
            table = self._arrow(payload)
        except pa.ArrowInvalid:
            ends = np.flatnonzero(np.frombuffer(payload, np.uint8) == 10)
            half = len(numbers) // 2
            cut = int(ends[half - 1]) + 1
            return (self._parse_good(payload[:cut], numbers[:half], arrived)
                    + self._parse_good(payload[cut:], numbers[half:], arrived))
        return [self._from_table(table, payload, numbers, arrived)]

    def _arrow(self, payload: Chunk) -> pa.Table:
        return pa_csv.read_csv(pa.py_buffer(payload), read_options=self.read_options,
                               parse_options=self.parse_options, convert_options=self.convert_options)

    def _from_table(self, table: pa.Table, payload: Chunk, numbers: np.ndarray, arrived: float) -> FlowBlock:
        n, d = table.num_rows, len(self.features)
        X = np.empty((n, d), np.float32)
        extra = np.empty((n, len(self.numbers)), np.float64)
        start = 0
        with np.errstate(over="ignore", invalid="ignore"):
            for batch in table.select(self.numeric_names).to_batches():  # one per block, converted in C++
                values = batch.to_tensor(null_to_nan=True, row_major=True).to_numpy()
                X[start:start + len(values)] = values[:, :d]
                extra[start:start + len(values)] = values[:, d:]
                start += len(values)
        good = np.isfinite(X).all(axis=1)
        text = {k: table.column(f"c{i}").combine_chunks() for k, i in self.text.items()}
        nums = {k: extra[:, j] for j, k in enumerate(self.numbers)}
        nums |= {k: X[:, j].astype(np.float64) for k, j in self.numbers_from_x.items()}
        truth = self.truth.array(table.column(f"c{self.label}").combine_chunks()) if self.label is not None else None
        block = FlowBlock(self.source, numbers, np.full(n, arrived), X, text, nums, truth)
        if good.all():
            return block
        ends = np.flatnonzero(np.frombuffer(payload, np.uint8) == 10)
        bad = []
        for r in np.flatnonzero(~good):
            start = int(ends[r - 1]) + 1 if r else 0
            line = bytes(payload[start:int(ends[r])])
            bad.append(BadRecord(self.source, int(numbers[r]), self._reason(_split(line, self.quoted)),
                                 _raw(line)))
        kept = np.flatnonzero(good)
        return FlowBlock(
            self.source, numbers[kept], block.arrived[kept], X[kept],
            {k: v.take(pa.array(kept)) for k, v in text.items()}, {k: v[kept] for k, v in nums.items()},
            None if truth is None else truth[kept], bad,
        )

    def _reason(self, cells: list[str]) -> str:
        """Why a line of the right width is refused (the first offending field)."""
        for i in [*self.features, *self.numbers.values()]:
            cell = cells[i].strip().strip('"')
            name = self.display[i]
            if not cell:
                return f"missing value in column {name!r}"
            try:
                value = _number(cell)
            except ValueError:
                return f"expected a number in column {name!r}, found {cell[:40]!r}"
            if i in self.numbers.values():
                continue
            if math.isnan(value) or math.isinf(value):
                return f"{cell[:40]!r} in column {name!r} is not a finite number"
            if abs(value) > FLOAT32_MAX:
                return f"value {cell[:40]} in column {name!r} is out of the float32 range"
        return "invalid record"

    def _python(self, payload: bytes, numbers: np.ndarray, arrived: float) -> FlowBlock:
        """Check a few lines one by one: the slow path behind pyarrow's refusal."""
        rows: list[list[float]] = []
        kept: list[int] = []
        text: dict[str, list[str | None]] = {k: [] for k in self.text}
        nums: dict[str, list[float]] = {k: [] for k in self.numbers}
        labels: list[int] = []
        bad: list[BadRecord] = []
        for r, raw_line in enumerate(payload.split(b"\n")[: len(numbers)]):
            line = raw_line.rstrip(b"\r")
            cells = _split(line, self.quoted)
            try:
                row = [_number(cells[i].strip().strip('"')) for i in self.features]
                extra = [_number(c) if (c := cells[i].strip().strip('"')) else math.nan
                         for i in self.numbers.values()]
                decoded = [cells[i].strip() or None for i in self.text.values()]
            except (ValueError, IndexError):
                bad.append(BadRecord(self.source, int(numbers[r]), self._reason(cells), _raw(line)))
                continue
            if not all(math.isfinite(v) and abs(v) <= FLOAT32_MAX for v in row):
                bad.append(BadRecord(self.source, int(numbers[r]), self._reason(cells), _raw(line)))
                continue
            rows.append(row)
            kept.append(r)
            for key, value in zip(self.text, decoded, strict=True):
                text[key].append(value)
            for key, value in zip(self.numbers, extra, strict=True):
                nums[key].append(value)
            if self.label is not None:
                labels.append(self.truth(cells[self.label].strip().encode("latin-1") or None))
        X = np.array(rows, np.float32).reshape(len(rows), len(self.features))
        numeric = {k: np.array(v, np.float64) for k, v in nums.items()}
        numeric |= {k: X[:, j].astype(np.float64) for k, j in self.numbers_from_x.items()}
        return FlowBlock(
            self.source, numbers[kept], np.full(len(kept), arrived), X,
            {k: pa.array(v, pa.string()) for k, v in text.items()}, numeric,
            np.array(labels, np.int8) if self.label is not None else None, bad,
        )


def _split(line: bytes, quoted: bool) -> list[str]:
    text = line.decode("latin-1")
    return next(csv.reader([text])) if quoted else text.split(",")


# ----------------------------------------------------------------------------------------------------------------
# JSON lines and flow dicts


def _key_table() -> dict[str, str]:
    """Every accepted key -> canonical name: canonical names and each layout's header spellings."""
    table = {header_key(k): v for k, v in ALIASES.items()}
    table |= {name: name for name in FEATURES_BY_NAME}
    table |= {name: name for name in META_COLUMNS}
    return table


_KEYS = _key_table()


class _Rows:
    """Flow mappings -> a block, one record at a time (JSON lines, flow dicts from a packet capture)."""

    def __init__(self, source: str, columns: list[str]) -> None:
        self.source, self.columns = source, columns
        self.wanted = set(columns) | set(TEXT_META) | set(NUMERIC_META) | {"label"}
        self.key_cache: dict[str, str | None] = {}
        self.truth = _Truth()
        self.clear()

    def clear(self) -> None:
        self.rows: list[list[float]] = []
        self.lines: list[int] = []
        self.text: dict[str, list[str | None]] = {k: [] for k in TEXT_META}
        self.nums: dict[str, list[float]] = {k: [] for k in NUMERIC_META}
        self.labels: list[int] = []
        self.bad: list[BadRecord] = []

    def canonical(self, record: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in record.items():
            name = self.key_cache.get(key, "")
            if name == "":
                name = self.key_cache[key] = _KEYS.get(header_key(str(key)))
            if name in self.wanted:
                out[name] = value
        return out

    def add(self, record: Any, line: int, raw: str | None = None) -> None:
        """Check one record; keep it or set it aside with the reason (``raw``: its text, if not the record)."""
        if not isinstance(record, Mapping):
            self._refuse(record, line, raw, f"expected a JSON object, found {type(record).__name__}")
            return
        fields = self.canonical(record)
        row: list[float] = []
        for name in self.columns:
            if name not in fields or fields[name] is None:
                self._refuse(record, line, raw, f"missing field {name!r}")
                return
            value, problem = _json_number(fields[name])
            if problem:
                self._refuse(record, line, raw, f"field {name!r}: {problem}")
                return
            row.append(value)
        self.rows.append(row)
        self.lines.append(line)
        for key in TEXT_META:
            value = fields.get(key)
            self.text[key].append(None if value is None else str(value))
        for key in NUMERIC_META:
            number, problem = _json_number(fields.get(key))
            self.nums[key].append(math.nan if problem else number)
        label = fields.get("label")
        self.labels.append(self.truth(None if label is None else str(label).encode("latin-1", "replace")))

    def _refuse(self, record: Any, line: int, raw: str | None, reason: str) -> None:
        text = raw if raw is not None else json.dumps(record, default=str)[:MAX_RAW_CHARS]
        self.bad.append(BadRecord(self.source, line, reason, text))

    def block(self, arrived: float) -> FlowBlock:
        n = len(self.rows)
        X = np.array(self.rows, np.float32).reshape(n, len(self.columns))
        text = {k: pa.array(v, pa.string()) for k, v in self.text.items() if any(x is not None for x in v)}
        nums = {k: np.array(v, np.float64) for k, v in self.nums.items() if not all(math.isnan(x) for x in v)}
        truth = np.array(self.labels, np.int8) if any(x >= 0 for x in self.labels) else None
        block = FlowBlock(self.source, np.array(self.lines, np.int64), np.full(n, arrived), X, text, nums, truth,
                          list(self.bad))
        self.clear()
        return block


def _json_number(value: Any) -> tuple[float, str | None]:
    """A JSON value as a finite float32-range number, or the problem with it."""
    if isinstance(value, bool) or value is None:
        return math.nan, f"expected a number, found {json.dumps(value)}"
    if isinstance(value, str):
        try:
            number = _number(value.strip())
        except ValueError:
            return math.nan, f"expected a number, found {value[:40]!r}"
    elif isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            return math.nan, f"value {str(value)[:40]} is out of the float32 range"
    else:
        return math.nan, f"expected a number, found {type(value).__name__}"
    if not math.isfinite(number):
        return math.nan, f"{value!r} is not a finite number"
    if abs(number) > FLOAT32_MAX:
        return math.nan, f"value {value!r} is out of the float32 range"
    return number, None


class _JsonParser:
    """Chunks of JSON lines -> blocks."""

    def __init__(self, source: str, columns: list[str]) -> None:
        self.rows = _Rows(source, columns)

    def parse(self, data: Chunk, first_line: int, arrived: float, n_lines: int | None = None) -> FlowBlock:
        for offset, raw_line in enumerate(bytes(data).split(b"\n")[:-1]):
            line = raw_line.strip()
            if not line:
                continue
            number = first_line + offset
            raw = _raw(line)
            try:
                record = json.loads(line)
            except (ValueError, RecursionError) as exc:
                self.rows.bad.append(BadRecord(self.rows.source, number, f"not valid JSON ({exc})", raw))
                continue
            self.rows.add(record, number, raw)
        return self.rows.block(arrived)


def blocks_from_flows(
    flows: Iterable[Mapping[str, Any]], columns: Sequence[str], *, source: str, block_rows: int = 1
) -> Iterator[FlowBlock]:
    """Blocks from flow dicts keyed by canonical names (or header spellings), e.g. flows built from a pcap.

    A flow's "line" is its 1-based position in ``flows``. ``block_rows`` flows make one block (1 gives each flow
    its own verdict as soon as the batcher's wait allows; larger values cost less per flow).
    """
    rows = _Rows(source, list(columns))
    for number, flow in enumerate(flows, start=1):
        rows.add(flow, number)
        if len(rows.rows) + len(rows.bad) >= block_rows:
            yield rows.block(time.monotonic())
    if rows.rows or rows.bad:
        yield rows.block(time.monotonic())


def blocks_from_tables(tables: Iterable[pa.Table], columns: Sequence[str], *, source: str) -> Iterator[FlowBlock]:
    """Blocks from Arrow tables with canonical column names (e.g. :func:`iotids.flows.iter_flow_tables`).

    A flow's "line" is its 1-based position over all tables. A row with a missing, NaN, infinite or
    out-of-float32-range feature becomes a bad record.

    Raises
    ------
    SchemaMismatchError
        A table lacks a feature the model needs.
    """
    columns = list(columns)
    truth = _Truth()
    seen = 0
    for table in tables:
        _check_columns(table.column_names, columns, source)
        n = table.num_rows
        lines = np.arange(seen + 1, seen + n + 1, dtype=np.int64)
        seen += n
        X = np.empty((n, len(columns)), np.float32)
        with np.errstate(over="ignore", invalid="ignore"):
            for j, name in enumerate(columns):
                X[:, j] = _floats(table.column(name))
        text = {k: table.column(k).cast(pa.string()).combine_chunks() for k in TEXT_META if k in table.column_names}
        nums = {k: _floats(table.column(k)) for k in NUMERIC_META if k in table.column_names and k not in columns}
        nums |= {k: X[:, columns.index(k)].astype(np.float64) for k in NUMERIC_META if k in columns}
        labels = (truth.array(table.column("label").cast(pa.binary()).combine_chunks())
                  if "label" in table.column_names else None)
        good = np.isfinite(X).all(axis=1)
        bad = []
        for r in np.flatnonzero(~good):
            column = columns[int(np.flatnonzero(~np.isfinite(X[r]))[0])]
            record = table.slice(int(r), 1).to_pylist()[0]
            bad.append(BadRecord(source, int(lines[r]), f"field {column!r}: {record.get(column)!r} is not a finite "
                                 "float32 number", json.dumps(record, default=str)[:MAX_RAW_CHARS]))
        kept = np.flatnonzero(good)
        yield FlowBlock(source, lines[kept], np.full(len(kept), time.monotonic()), X[kept],
                        {k: v.take(pa.array(kept)) for k, v in text.items()}, {k: v[kept] for k, v in nums.items()},
                        None if labels is None else labels[kept], bad)


def _floats(column: pa.ChunkedArray) -> np.ndarray:
    """A numeric column as float64 (NaN where null)."""
    return column.cast(pa.float64()).to_numpy()


__all__ = ["Format", "blocks_from_flows", "blocks_from_tables", "iter_blocks"]
