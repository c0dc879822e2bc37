"""Load flow CSVs into one canonical frame, through a Parquet cache.

``load_flows`` reads every source (see :mod:`iotids.data.sources`), caches each one as Parquet keyed by its
fingerprint (a changed file is read again; uncompressed, plain-encoded and memory-mapped, because decoding is what
a warm load spends its time on), concatenates them and derives ``family``, ``is_attack`` and ``day``.

The ``attempted`` policy decides what the corrected release's ``... - Attempted`` flows (attack traffic that did
not reach its goal, e.g. a connection refused) become: ``benign`` (default, as Engelen et al. advise: the flows
carry no attack behaviour), ``drop`` (removed and counted) or ``attack``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from iotids.data.reader import BadRows, FileReport, read_source
from iotids.data.sources import Source, find_sources
from iotids.errors import DataFormatError
from iotids.schema import BENIGN, FEATURES_BY_NAME, check_attempted_policy, label_family, split_attempted

CACHE_VERSION = "2"
#: The CICIDS2017 capture days, for files without timestamps whose name says the weekday.
CAPTURE_DAYS = {"monday": "2017-07-03", "tuesday": "2017-07-04", "wednesday": "2017-07-05",
                "thursday": "2017-07-06", "friday": "2017-07-07"}


@dataclass(slots=True)
class LoadReport:
    """Per-file reading reports plus what the attempted policy did."""

    files: list[FileReport] = field(default_factory=list)
    attempted_policy: str = "benign"
    attempted_rows: int = 0
    attempted_dropped: int = 0
    cached_files: int = 0

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files) - self.attempted_dropped

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": [f.to_dict() for f in self.files], "attempted_policy": self.attempted_policy,
            "attempted_rows": self.attempted_rows, "attempted_dropped": self.attempted_dropped,
            "cached_files": self.cached_files,
        }


def cache_dir() -> Path:
    """``$IOTIDS_CACHE_DIR``, else ``$XDG_CACHE_HOME/iotids``, else ``~/.cache/iotids``."""
    if os.environ.get("IOTIDS_CACHE_DIR"):
        return Path(os.environ["IOTIDS_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "iotids"


def _cache_path(source: Source, on_bad_rows: str) -> Path:
    return cache_dir() / f"{source.fingerprint()}-{on_bad_rows}-v{CACHE_VERSION}.parquet"


def _read_cached(path: Path) -> tuple[pa.Table, FileReport] | None:
    try:
        table = pq.read_table(path, memory_map=True)
        report = FileReport.from_dict(json.loads(table.schema.metadata[b"iotids.report"]))
    except (OSError, KeyError, ValueError, TypeError, pa.ArrowException):
        return None
    return table.replace_schema_metadata(None), report


def _write_cache(path: Path, table: pa.Table, report: FileReport) -> None:
    table = table.replace_schema_metadata({b"iotids.report": json.dumps(report.to_dict()).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        pq.write_table(table, tmp, compression="none", use_dictionary=False, write_statistics=False)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # a read-only cache only costs speed


def read_cached(
    source: Source, *, cache: bool = True, on_bad_rows: BadRows = "error"
) -> tuple[pa.Table, FileReport, bool]:
    """Read one source, from the Parquet cache when it holds the source's current version."""
    path = _cache_path(source, on_bad_rows)
    if cache and path.exists():
        hit = _read_cached(path)
        if hit is not None:
            return hit[0], hit[1], True
    table, report = read_source(source, on_bad_rows=on_bad_rows)
    if cache:
        _write_cache(path, table, report)
    return table, report, False


def load_flows(
    paths: list[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    attempted: str = "benign",
    cache: bool = True,
    on_bad_rows: BadRows = "error",
    progress: bool = False,
) -> tuple[pd.DataFrame, LoadReport]:
    """Load CICIDS2017 flow CSVs in any known layout into one canonical frame.

    Parameters
    ----------
    paths : files (``.csv``, ``.csv.gz``, ``.zip``) and directories of them.
    attempted : ``"benign"``, ``"drop"`` or ``"attack"``; see the module docstring.
    cache : keep a Parquet copy of each file next to nothing else but the user cache directory.
    on_bad_rows : ``"error"`` (default) or ``"skip"``; see :func:`iotids.data.reader.read_source`.
    progress : show a progress bar on stderr.

    Returns
    -------
    frame, report
        ``frame`` holds float32 features, identifier columns where the layout has them, ``label``, ``family``,
        ``is_attack``, ``day``, ``source_file``, ``source_row`` and ``row_hash``.

    Examples
    --------
    >>> frame, report = load_flows("../shared/data/cicids2017")  # doctest: +SKIP
    """
    policy = check_attempted_policy(attempted)
    sources = find_sources([paths] if isinstance(paths, str | os.PathLike) else paths)
    report = LoadReport(attempted_policy=policy)
    tables: list[pa.Table] = []
    flavors: dict[str, str] = {}
    for source in _progress(sources, progress):
        table, file_report, hit = read_cached(source, cache=cache, on_bad_rows=on_bad_rows)
        report.files.append(file_report)
        report.cached_files += hit
        original = file_report.layout in ("MachineLearningCVE", "TrafficLabelling")
        flavors[source.name] = "cicids2017" if original else "engelen2021"
        table = table.append_column("source_file", _constant(source.name, table.num_rows))
        tables.append(table.append_column("day", _day_of(table, source)))
    if len(set(flavors.values())) > 1:
        raise DataFormatError(
            "cannot mix the original CICIDS2017 files and the corrected release in one data set (their features "
            "differ): " + ", ".join(f"{name} ({flavor})" for name, flavor in flavors.items())
        )
    combined = pa.concat_tables(tables, promote_options="default")
    del tables
    frame = combined.to_pandas(split_blocks=True, self_destruct=True)
    return _derive_targets(frame, report), report


def _progress(sources: list[Source], enabled: bool) -> Any:
    if not enabled:
        return sources
    from rich.progress import track

    return track(sources, description="loading", transient=True, console=_stderr_console())


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def _constant(value: str, rows: int) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, dtype=np.int32)), pa.array([value]))


def _day_of(table: pa.Table, source: Source) -> pa.Array:
    """The capture day: from the timestamps, else from a weekday in the file name, else ``unknown``."""
    if "timestamp" in table.column_names and table["timestamp"].null_count < table.num_rows:
        days = pc.fill_null(pc.strftime(table["timestamp"], format="%Y-%m-%d"), "unknown")
        return days.dictionary_encode()
    match = re.search(r"(monday|tuesday|wednesday|thursday|friday)", source.stem.lower())
    return _constant(CAPTURE_DAYS[match.group(1)] if match else "unknown", table.num_rows)


def _derive_targets(frame: pd.DataFrame, report: LoadReport) -> pd.DataFrame:
    """Apply the attempted policy and add ``family`` and ``is_attack`` (computed once per distinct label)."""
    labels = frame["label"].astype("category")
    categories = list(labels.cat.categories)
    attempted = np.array([split_attempted(c)[1] for c in categories], dtype=bool)
    codes = labels.cat.codes.to_numpy()
    is_attempted_row = attempted[codes] if len(categories) else np.zeros(len(frame), dtype=bool)
    report.attempted_rows = int(is_attempted_row.sum())
    if report.attempted_policy == "drop" and report.attempted_rows:
        frame = frame.loc[~is_attempted_row].reset_index(drop=True)
        report.attempted_dropped = report.attempted_rows
        labels = frame["label"].astype("category").cat.remove_unused_categories()
        categories, codes = list(labels.cat.categories), labels.cat.codes.to_numpy()
        attempted = np.array([split_attempted(c)[1] for c in categories], dtype=bool)
    benign_attempted = report.attempted_policy == "benign"
    families = np.asarray(
        [BENIGN if (a and benign_attempted) else label_family(c) for c, a in zip(categories, attempted, strict=True)],
        dtype=object,
    )
    frame["label"] = labels
    frame["family"] = pd.Categorical(families[codes])
    frame["is_attack"] = (families != BENIGN).astype(np.int8)[codes]
    return frame


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The canonical feature columns present in a frame, in schema order."""
    return [c for c in FEATURES_BY_NAME if c in frame.columns]
