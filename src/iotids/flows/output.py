"""Writing flows: a CSV with the data set's header, and one dict per flow.

The CSV has the columns and header spelling of the flavour's data set (``iotids.schema.header_for``), times in
UTC as ``YYYY-MM-DD HH:MM:SS.ffffff``, NaN/Infinity as ``nan``/``inf`` and a constant ``Label`` column. It is
written to a temporary file beside the target and renamed into place when complete.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv

from iotids.errors import InvalidParameterError
from iotids.schema import header_for

DEFAULT_LABEL = "NeedManualLabel"


def check_label(label: str) -> str:
    if not label or any(c in label for c in ',"\r\n'):
        raise InvalidParameterError("The 'label' parameter must be a non-empty text without commas, quotes or "
                                    f"line breaks. Got {label!r} instead.")
    return label


def _csv_table(table: pa.Table, flavor: str, label: str) -> pa.Table:
    columns, names = [], []
    for canonical, header in header_for(flavor):  # type: ignore[arg-type]
        if canonical == "label":
            columns.append(pa.repeat(pa.scalar(label, pa.string()), table.num_rows))
        elif canonical == "timestamp":  # naive UTC: 2015-03-31 11:32:22.690465
            columns.append(table["timestamp"].cast(pa.timestamp("us")).cast(pa.string()))
        else:
            columns.append(table[canonical])
        names.append(header)
    return pa.Table.from_arrays(columns, names=names)


def write_csv(tables: Iterable[pa.Table], out: str | os.PathLike[str], *, flavor: str,
                    label: str = DEFAULT_LABEL) -> int:
    """Stream flow tables (from ``iter_flow_tables``) into ``out`` atomically; returns the number of rows."""
    check_label(label)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    rows = 0
    try:
        with os.fdopen(fd, "wb") as stream:
            header = ",".join(name for _, name in header_for(flavor))  # type: ignore[arg-type]
            stream.write(header.encode() + b"\n")
            writer: pa_csv.CSVWriter | None = None
            options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
            for table in tables:
                csv_table = _csv_table(table, flavor, label)
                if writer is None:
                    writer = pa_csv.CSVWriter(stream, csv_table.schema, write_options=options)
                writer.write_table(csv_table)
                rows += table.num_rows
            if writer is not None:
                writer.close()
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return rows


def iter_rows(tables: Iterable[pa.Table]) -> Iterator[dict[str, Any]]:
    """One dict per flow (timestamps as UTC-aware datetimes)."""
    for table in tables:
        yield from table.to_pylist()
