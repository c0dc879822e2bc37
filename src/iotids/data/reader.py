"""Read one flow CSV into the canonical Arrow table, with pyarrow's multithreaded parser.

The table has one float32 column per canonical feature the layout carries, the identifier columns the layout
has, the normalised ``label``, ``source_row`` (1-based data-row number) and ``row_hash``: a 64-bit hash of the
exact float64 values of the features, the destination port and the label (CICIDS2017's 78 feature columns plus
the label), the key for exact-duplicate detection.
"""

from __future__ import annotations

import csv
import io
import re
import zlib
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from iotids.data.sources import Source, open_source
from iotids.errors import DataFormatError, InvalidParameterError
from iotids.schema import (
    DUPLICATE_HEADER_COLUMN,
    FEATURES_BY_NAME,
    HeaderMap,
    normalize_label,
    resolve_header,
)

BadRows = Literal["error", "skip"]
_STRING_COLUMNS = {"flow_id", "src_ip", "dst_ip", "timestamp"}
_NUMERIC_META = {"record_id", "src_port", "dst_port", "protocol", "attempted_category"}
_BLOCK = 4 << 20


@dataclass(slots=True)
class FileReport:
    """What reading one file found."""

    file: str
    layout: str
    rows: int = 0  # data rows kept
    empty_rows: int = 0  # rows whose every field is empty (the Thursday TrafficLabelling file has many)
    bad_rows: int = 0  # rows skipped on request: wrong number of fields or text in a numeric column
    duplicate_header_column: bool = False  # the second "Fwd Header Length" was present (and dropped)
    labels: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file, "layout": self.layout, "rows": self.rows, "empty_rows": self.empty_rows,
            "bad_rows": self.bad_rows, "duplicate_header_column": self.duplicate_header_column,
            "labels": dict(self.labels),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileReport:
        return cls(**data)


def read_header(source: Source) -> HeaderMap:
    """Recognise a source's layout from its first line."""
    with open_source(source) as stream:
        try:
            line = stream.readline(1 << 20)
        except (OSError, EOFError, zlib.error) as exc:
            raise _corrupt(source, exc) from None
    text = line.decode("latin-1").rstrip("\r\n")
    if not text.strip():
        raise DataFormatError("the file is empty (no header line)", path=source.name, line=1)
    try:
        names = next(csv.reader([text]))
    except csv.Error:
        raise DataFormatError("the first line is not a CSV header (is this a text CSV file?)",
                              path=source.name, line=1) from None
    return resolve_header(names, path=source.name)


def _corrupt(source: Source, exc: BaseException) -> DataFormatError:
    return DataFormatError(
        f"the compressed data is truncated or corrupt ({exc}); download the file again", path=source.name
    )


def _arrow_type(canonical: str) -> pa.DataType:
    if canonical == "label":
        return pa.binary()
    if canonical in _STRING_COLUMNS:
        return pa.string()
    return pa.float64()


def read_source(source: Source, *, on_bad_rows: BadRows = "error") -> tuple[pa.Table, FileReport]:
    """Read one CSV into the canonical Arrow table.

    Parameters
    ----------
    on_bad_rows : ``"error"`` raises a :class:`DataFormatError` naming the line and column of the first row with
        a wrong number of fields or text in a numeric column; ``"skip"`` counts and drops such rows.
    """
    if on_bad_rows not in ("error", "skip"):
        raise InvalidParameterError(f"The 'on_bad_rows' parameter must be 'error' or 'skip'. Got {on_bad_rows!r}.")
    header = read_header(source)
    report = FileReport(file=source.name, layout=header.layout)
    keep = {f"c{i}": name for i, name in enumerate(header.columns) if name is not None}
    types = {raw: _arrow_type(name) for raw, name in keep.items()}
    table, bad = _read_table(source, header, types, on_bad_rows)
    report.bad_rows = bad
    return _to_table(table, keep, source, report), report


def _read_table(
    source: Source, header: HeaderMap, types: dict[str, pa.DataType], on_bad_rows: BadRows
) -> tuple[pa.Table, int]:
    """Parse the data rows; on text in a numeric column, locate it (error) or coerce it away (skip)."""
    text_columns: set[str] = set()
    while True:
        wrong_width: list[str] = []

        def on_invalid(row: Any, sink: list[str] = wrong_width) -> str:
            sink.append(row.text)
            return "skip"

        read_types = {k: (pa.string() if k in text_columns else v) for k, v in types.items()}
        try:
            with open_source(source) as stream:
                stream.readline(1 << 20)
                table = pa_csv.read_csv(
                    stream,
                    read_options=pa_csv.ReadOptions(
                        column_names=[f"c{i}" for i in range(len(header.columns))], block_size=_BLOCK
                    ),
                    parse_options=pa_csv.ParseOptions(invalid_row_handler=on_invalid),
                    convert_options=pa_csv.ConvertOptions(
                        column_types=read_types, include_columns=list(types), strings_can_be_null=True,
                        null_values=["", "NaN", "nan", "NA"], quoted_strings_can_be_null=True,
                    ),
                )
        except pa.ArrowInvalid as exc:
            match = re.search(r"CSV column #(\d+)", str(exc))
            if not match or "conversion error" not in str(exc):
                raise DataFormatError(f"cannot parse the CSV ({exc})", path=source.name) from None
            raw = f"c{match.group(1)}"
            if on_bad_rows == "error":
                raise _locate_bad_value(source, header, int(match.group(1))) from None
            text_columns.add(raw)
            continue
        except (OSError, EOFError, zlib.error) as exc:
            raise _corrupt(source, exc) from None
        break
    if wrong_width and on_bad_rows == "error":
        raise _locate_wrong_width(source, header)
    bad = len(wrong_width)
    if text_columns:
        table, coerced = _coerce_text_columns(table, text_columns)
        bad += coerced
    return table, bad


def _coerce_text_columns(table: pa.Table, columns: set[str]) -> tuple[pa.Table, int]:
    """Turn columns read as text back into numbers, dropping the rows whose text is not a number."""
    bad = np.zeros(table.num_rows, dtype=bool)
    for name in columns:
        text = table[name].to_pandas()
        values = pd.to_numeric(text.str.strip(), errors="coerce")
        bad |= (values.isna() & text.notna() & ~text.str.strip().str.lower().isin(["nan", ""])).to_numpy()
        table = table.set_column(table.column_names.index(name), name, pa.array(values, pa.float64()))
    return table.filter(pa.array(~bad)), int(bad.sum())


def _iter_lines(source: Source) -> Any:
    with open_source(source) as stream:
        yield from enumerate(csv.reader(io.TextIOWrapper(stream, encoding="latin-1", newline="")), start=1)


def _locate_wrong_width(source: Source, header: HeaderMap) -> DataFormatError:
    width = len(header.columns)
    for number, row in _iter_lines(source):
        if row and len(row) != width:
            return DataFormatError(
                f"expected {width} fields as in the header, found {len(row)}; fix or remove the line, or pass "
                "on_bad_rows='skip' (--skip-bad-rows) to count and skip such rows",
                path=source.name, line=number,
            )
    return DataFormatError(f"a row does not have the header's {width} fields", path=source.name)


def _locate_bad_value(source: Source, header: HeaderMap, index: int) -> DataFormatError:
    column = header.raw[index].strip()
    for number, row in _iter_lines(source):
        if number == 1 or len(row) <= index:
            continue
        value = row[index].strip()
        if value in ("", "NaN", "nan", "NA"):
            continue
        try:
            float(value)
        except ValueError:
            return DataFormatError(
                f"expected a number, found {value[:40]!r}; fix the value, or pass on_bad_rows='skip' "
                "(--skip-bad-rows) to count and skip such rows",
                path=source.name, line=number, column=column,
            )
    return DataFormatError("a value is not a number", path=source.name, column=column)


def _to_table(table: pa.Table, keep: dict[str, str], source: Source, report: FileReport) -> pa.Table:
    """Raw parsed columns -> the canonical Arrow table (float32 features, normalised dictionary labels)."""
    table = table.rename_columns([keep[c] for c in table.column_names])
    feature_names = [n for n in table.column_names if n in FEATURES_BY_NAME]  # the duplicate column is not one
    report.duplicate_header_column = DUPLICATE_HEADER_COLUMN in table.column_names
    label = table["label"]
    empty = pc.is_null(label)
    for name in feature_names:
        empty = pc.and_(empty, pc.is_null(table[name]))
    report.empty_rows = int(pc.sum(empty).as_py() or 0)
    unlabeled = pc.and_(pc.is_null(label), pc.invert(empty))
    if pc.any(unlabeled).as_py():
        first = int(np.flatnonzero(unlabeled.to_numpy(zero_copy_only=False))[0])
        raise DataFormatError("the row has no label", path=source.name, line=first + 2, column="Label")
    source_row = pa.array(np.arange(1, table.num_rows + 1, dtype=np.int64))
    if report.empty_rows:
        keep_mask = pc.invert(empty)
        table = table.filter(keep_mask)
        source_row = source_row.filter(keep_mask.combine_chunks())

    codes, categories = _normalize_labels(table["label"])
    hashed = [n for n in (*feature_names, "dst_port") if n in table.column_names]
    columns: dict[str, pa.Array | pa.ChunkedArray] = {n: pc.cast(table[n], pa.float32()) for n in feature_names}
    for name in table.column_names:
        if name in _NUMERIC_META:
            columns[name] = pc.cast(table[name], pa.float32())
        elif name == "timestamp":
            columns[name] = pa.array(parse_timestamps(table[name]))
        elif name in _STRING_COLUMNS:
            columns[name] = table[name]
    columns["label"] = pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(categories, pa.string()))
    columns["source_row"] = source_row
    columns["row_hash"] = pa.array(_row_hash([table[n].to_numpy() for n in hashed], codes, categories))
    report.rows = table.num_rows
    counts = np.bincount(codes, minlength=len(categories))
    report.labels = {c: int(n) for c, n in sorted(zip(categories, counts, strict=True), key=lambda kv: -kv[1]) if n}
    return pa.table(columns)


def _normalize_labels(column: pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    """Codes into the sorted list of normalised labels (several raw spellings may become one)."""
    encoded = column.dictionary_encode().combine_chunks()
    normalized = [normalize_label(v.as_py()) for v in encoded.dictionary]
    categories = sorted(set(normalized))
    remap = np.array([categories.index(n) for n in normalized], dtype=np.int32)
    raw_codes = encoded.indices.to_numpy(zero_copy_only=False)
    return (remap[raw_codes] if len(remap) else raw_codes.astype(np.int32)), categories


def _row_hash(columns: list[np.ndarray], codes: np.ndarray, categories: list[str]) -> np.ndarray:
    """A 64-bit hash of exact float64 values (NaN and ±inf included) and the label, per row."""
    label_hashes = pd.util.hash_array(np.asarray(categories, dtype=object)) if categories else np.zeros(1, np.uint64)
    h = label_hashes[codes] if len(codes) else np.zeros(0, np.uint64)
    prime = np.uint64(0x100000001B3)
    with np.errstate(over="ignore"):
        for column in columns:
            h = (h ^ np.ascontiguousarray(column, dtype=np.float64).view(np.uint64)) * prime
            h ^= h >> np.uint64(29)
    return h


_TIME_FORMATS = ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y %I:%M:%S %p")


def parse_timestamps(column: pa.ChunkedArray) -> np.ndarray:
    """Parse CIC timestamps into naive ``datetime64[ns]``.

    ISO (``2017-07-06 12:39:06.818901``, the corrected release) and CIC's ``d/M/yyyy H:mm[:ss]``. The
    CICIDS2017 TrafficLabelling files use a 12-hour clock without AM/PM; the capture ran 8:00-18:00, so an hour
    below 8 is read as afternoon. Unparseable values become NaT.
    """
    text = pc.utf8_trim_whitespace(column)
    iso = pc.fill_null(pc.match_substring(text, "-"), False)
    parsed = pc.cast(pc.if_else(iso, text, pa.scalar(None, pa.string())), pa.timestamp("us"), safe=False)
    result = pd.Series(parsed.to_pandas(), dtype="datetime64[ns]")
    slashed = pc.fill_null(pc.match_substring(text, "/"), False)
    if pc.any(slashed).as_py():
        for fmt in _TIME_FORMATS:
            todo = result.isna().to_numpy() & slashed.to_numpy(zero_copy_only=False)
            if not todo.any():
                break
            part = pc.strptime(text.filter(pa.array(todo)), format=fmt, unit="s", error_is_null=True)
            values = pd.Series(part.to_pandas(), dtype="datetime64[ns]").to_numpy()
            if "%p" not in fmt:
                hours = pd.DatetimeIndex(values).hour
                values = values + np.where(hours < 8, np.timedelta64(12, "h"), np.timedelta64(0, "h"))
            result.iloc[np.flatnonzero(todo)] = values
    return result.to_numpy()
