"""Cleaning that is reported, not silent.

``clean_flows`` removes or repairs rows and counts every action per file:

* rows with NaN or ±Infinity in a feature: CICFlowMeter divides by a zero duration in ``Flow Bytes/s`` and
  ``Flow Packets/s``. ``nonfinite="drop"`` removes them (the paper's choice); ``"impute"`` recomputes both rates
  with the duration clamped to 1 µs (a per-row rule, so nothing leaks between rows) and drops what is still not
  finite;
* exact duplicates: rows with the same feature values and label (``row_hash``); the first copy is kept;
* negative values are counted, not changed: ``Init_Win_bytes`` −1 is a value (no window seen), as is ``ICMP
  Code/Type`` −1 (not ICMP); other negative
  durations and IATs are a known clock artefact of CICIDS2017.

Constant columns are listed but kept: which features the model uses is decided by the preprocessor, fitted on
the training split only. The duplicated ``Fwd Header Length`` column is dropped while reading and reported here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from iotids.data.loader import LoadReport, feature_columns
from iotids.errors import InvalidParameterError
from iotids.schema import IDENTIFIER_COLUMNS

#: Columns where -1 is a value: no TCP window seen; not an ICMP flow (corrected release).
SENTINEL_COLUMNS = ("fwd_init_win_bytes", "bwd_init_win_bytes", "icmp_code", "icmp_type")
NONFINITE_POLICIES = ("drop", "impute")


@dataclass(slots=True)
class FileCleaning:
    """Counts for one source file."""

    rows_in: int = 0
    nonfinite_rows: int = 0
    imputed_rows: int = 0
    duplicate_rows: int = 0
    sentinel_rows: int = 0
    negative_rows: int = 0
    rows_out: int = 0


@dataclass(slots=True)
class CleaningReport:
    """What cleaning did, per file and in total."""

    nonfinite_policy: str = "drop"
    files: dict[str, FileCleaning] = field(default_factory=dict)
    constant_columns: list[str] = field(default_factory=list)
    duplicate_header_column_files: list[str] = field(default_factory=list)
    identifier_columns: list[str] = field(default_factory=list)

    @property
    def total(self) -> FileCleaning:
        total = FileCleaning()
        for counts in self.files.values():
            for name in FileCleaning.__slots__:
                setattr(total, name, getattr(total, name) + getattr(counts, name))
        return total

    def to_dict(self) -> dict[str, Any]:
        return {
            "nonfinite_policy": self.nonfinite_policy,
            "total": asdict(self.total),
            "files": {name: asdict(counts) for name, counts in self.files.items()},
            "constant_columns": list(self.constant_columns),
            "duplicate_header_column_files": list(self.duplicate_header_column_files),
            "identifier_columns": list(self.identifier_columns),
        }


def _per_file(frame: pd.DataFrame, mask: np.ndarray) -> dict[str, int]:
    if not mask.any():
        return {}
    counts = frame.loc[mask, "source_file"].value_counts()
    return {str(k): int(v) for k, v in counts.items() if v}


def _impute_rates(frame: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """A shallow copy of ``frame`` with both flow rates of ``rows`` recomputed from a duration of at least 1 µs."""
    def column(name: str) -> np.ndarray:
        return frame[name].to_numpy(np.float64)[rows]

    seconds = np.maximum(column("flow_duration"), 1.0) / 1e6
    frame = frame.copy(deep=False)
    for name, amount in (("flow_bytes_per_s", column("fwd_bytes") + column("bwd_bytes")),
                         ("flow_packets_per_s", column("fwd_packets") + column("bwd_packets"))):
        values = frame[name].to_numpy(copy=True)
        values[rows] = amount / seconds
        frame[name] = values
    return frame


def clean_flows(
    frame: pd.DataFrame,
    *,
    nonfinite: str = "drop",
    drop_duplicates: bool = True,
    load_report: LoadReport | None = None,
) -> tuple[pd.DataFrame, CleaningReport]:
    """Clean a frame from :func:`iotids.data.load_flows` and report every action per file.

    Parameters
    ----------
    nonfinite : ``"drop"`` or ``"impute"`` rows with NaN/±Infinity (see the module docstring).
    drop_duplicates : remove exact duplicate rows (same features and label), keeping the first.
    load_report : the loader's report, to carry the duplicated-header-column finding over.
    """
    if nonfinite not in NONFINITE_POLICIES:
        raise InvalidParameterError(
            f"The 'nonfinite' parameter of clean_flows must be 'drop' or 'impute'. Got {nonfinite!r} instead."
        )
    report = CleaningReport(nonfinite_policy=nonfinite)
    files = [str(f) for f in frame["source_file"].cat.categories] if len(frame) else []
    for name in files:
        report.files[name] = FileCleaning()
    for name, count in frame["source_file"].value_counts().items():
        report.files[str(name)].rows_in = int(count)
    if load_report is not None:
        report.duplicate_header_column_files = [f.file for f in load_report.files if f.duplicate_header_column]
    report.identifier_columns = [c for c in IDENTIFIER_COLUMNS if c in frame.columns]
    features = feature_columns(frame)
    bad = _any_row(frame, features, lambda v: ~np.isfinite(v))
    _add(report, "nonfinite_rows", _per_file(frame, bad))
    if bad.any() and nonfinite == "impute" and {"flow_bytes_per_s", "flow_packets_per_s"} <= set(features):
        frame = _impute_rates(frame, bad)
        imputed = bad & ~_any_row(frame, features, lambda v: ~np.isfinite(v))
        _add(report, "imputed_rows", _per_file(frame, imputed))
        bad &= ~imputed
    drop = bad
    if drop_duplicates:
        hashes = frame["row_hash"].to_numpy()
        dup = np.zeros(len(frame), dtype=bool)
        dup[~bad] = pd.Series(hashes[~bad]).duplicated(keep="first").to_numpy()
        _add(report, "duplicate_rows", _per_file(frame, dup))
        drop = bad | dup
    if drop.any():
        frame = frame.loc[~drop].reset_index(drop=True)

    sentinel_cols = [c for c in SENTINEL_COLUMNS if c in frame.columns]
    other_cols = [c for c in features if c not in SENTINEL_COLUMNS]
    _add(report, "sentinel_rows", _per_file(frame, _any_row(frame, sentinel_cols, lambda v: v < 0)))
    _add(report, "negative_rows", _per_file(frame, _any_row(frame, other_cols, lambda v: v < 0)))
    for name, count in frame["source_file"].value_counts().items():
        report.files[str(name)].rows_out = int(count)
    report.constant_columns = [
        c for c in features if len(frame) and frame[c].to_numpy().min() == frame[c].to_numpy().max()
    ]
    return frame, report


def _any_row(frame: pd.DataFrame, columns: list[str], test: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Rows where ``test`` holds in any of ``columns``, one column at a time (no copy of the whole matrix)."""
    hit = np.zeros(len(frame), dtype=bool)
    for column in columns:
        hit |= test(frame[column].to_numpy())
    return hit


def _add(report: CleaningReport, field_name: str, counts: dict[str, int]) -> None:
    for name, count in counts.items():
        setattr(report.files[name], field_name, getattr(report.files[name], field_name) + count)
