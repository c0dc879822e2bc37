"""Checking extracted flows against a CSV that CICFlowMeter wrote for the same capture.

Rows are paired by directional 5-tuple and start time. CICFlowMeter writes the start time in the local time of
the machine that ran it: ISO with microseconds (the corrected tool, UTC), ``dd/MM/yyyy hh:mm:ss a`` (4.0) or
``dd/MM/yyyy hh:mm:ss`` with a 12-hour clock and no AM/PM (the 2017/2018 tool), so the caller gives the UTC
offset and second-precision times are compared modulo 12 hours when there is no AM/PM. Flows that share the
5-tuple and start second are paired by duration and packet counts.

A feature matches when both values are NaN, equal infinities, or within ``rtol`` of each other (relative to the
larger magnitude; values below 1e-9 count as zero).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from iotids.errors import DataFormatError
from iotids.schema import FEATURES_BY_NAME, resolve_header

KEY_COLUMNS = ("src_ip", "src_port", "dst_ip", "dst_port", "protocol")
_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4}) (\d{1,2}):(\d{2}):(\d{2})(?: ([AP]M))?$")


@dataclass(slots=True)
class Reference:
    """A CICFlowMeter CSV: canonical columns plus ``start_us`` (UTC, µs) and its precision."""

    frame: pd.DataFrame
    precision_us: int  # 1 for ISO times, 1_000_000 for whole seconds
    twelve_hour: bool  # a 12-hour clock without AM/PM: compare modulo 12 h


def load_reference(path: str | Path, *, utc_offset_hours: float = 0.0) -> Reference:
    """Read a CICFlowMeter CSV of any version (duplicate and label columns are dropped)."""
    with open(path, newline="", encoding="latin-1") as stream:
        header = next(csv.reader(stream))
    mapping = resolve_header(header, path=str(path))
    raw = pd.read_csv(path, header=0, names=list(range(len(header))), dtype=str, keep_default_na=False,
                      encoding="latin-1")
    frame = pd.DataFrame(index=raw.index)
    for i, name in enumerate(mapping.columns):
        if name is None or name in frame.columns or name in ("label", "fwd_header_length_dup"):
            continue
        column = raw[i].str.strip()
        if name in FEATURES_BY_NAME or name in ("src_port", "dst_port", "protocol"):
            frame[name] = pd.to_numeric(column.replace({"Infinity": "inf", "-Infinity": "-inf"}))
        else:
            frame[name] = column
    stamps = frame["timestamp"]
    iso = stamps.str.contains("-", regex=False)
    if iso.all():
        local = pd.to_datetime(stamps, format="ISO8601")
        precision, twelve = 1, False
    else:
        parts = stamps.str.extract(_DATE)
        if parts[[0, 1, 2, 3, 4, 5]].isna().any(axis=None):
            raise DataFormatError("unrecognised Timestamp values", path=str(path), column="Timestamp")
        hour = parts[3].astype(int) % 12
        twelve = parts[6].isna().all()
        if not twelve:
            hour = hour + np.where(parts[6] == "PM", 12, 0)
        local = pd.to_datetime({"year": parts[2].astype(int), "month": parts[1].astype(int),
                                "day": parts[0].astype(int), "hour": hour, "minute": parts[4].astype(int),
                                "second": parts[5].astype(int)})
        precision = 1_000_000
    utc = local - pd.Timedelta(hours=utc_offset_hours)
    frame["start_us"] = utc.astype("datetime64[us]").astype(np.int64)
    return Reference(frame, precision, bool(twelve))


@dataclass(slots=True)
class Comparison:
    """Pairing of extracted flows with reference rows and per-feature agreement over the pairs."""

    reference_rows: int
    extracted_rows: int
    matched: int
    unmatched_reference: pd.DataFrame
    flow_ids: int = 0  # pairs with the same Flow ID text
    features: dict[str, int] = field(default_factory=dict)  # feature -> pairs that agree
    mismatches: dict[str, pd.DataFrame] = field(default_factory=dict)  # feature -> disagreeing pairs

    def table(self) -> str:
        """A markdown table: feature, pairs that agree, pairs compared."""
        lines = ["| feature | match | of |", "| --- | ---: | ---: |"]
        lines += [f"| {name} | {count} | {self.matched} |" for name, count in self.features.items()]
        return "\n".join(lines)


def values_match(a: np.ndarray, b: np.ndarray, rtol: float = 1e-6) -> np.ndarray:
    """Element-wise agreement: NaN with NaN, equal infinities, or a relative difference within ``rtol``."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    with np.errstate(invalid="ignore"):
        scale = np.maximum(np.abs(a), np.abs(b))
        close = np.abs(a - b) <= rtol * scale
        tiny = scale < 1e-9
        return (np.isnan(a) & np.isnan(b)) | (a == b) | close | tiny


def compare_flows(extracted: pd.DataFrame, reference: Reference, *, rtol: float = 1e-6) -> Comparison:
    """Pair every reference row with an extracted flow and count, per feature, the pairs that agree.

    ``extracted`` has the identifier columns (``timestamp`` as UTC datetimes) and canonical features.
    """
    ours = extracted.reset_index(drop=True).copy()
    ours["start_us"] = pd.to_datetime(ours["timestamp"], utc=True).astype("datetime64[us, UTC]").astype(np.int64)
    ref = reference.frame.reset_index(drop=True)
    step = reference.precision_us
    period = 12 * 3600 * 1_000_000 if reference.twelve_hour else None

    def bucket(us: pd.Series) -> pd.Series:
        b = us // step * step
        return b % period if period else b

    ours["_bucket"] = bucket(ours["start_us"])
    ref_bucket = bucket(ref["start_us"])
    groups: dict[tuple, list[int]] = {}
    for i, key in enumerate(zip(*(ours[c] for c in KEY_COLUMNS), ours["_bucket"], strict=True)):
        groups.setdefault(tuple(_norm(k) for k in key), []).append(i)
    pairs: list[tuple[int, int]] = []
    unmatched: list[int] = []
    for j, key in enumerate(zip(*(ref[c] for c in KEY_COLUMNS), ref_bucket, strict=True)):
        candidates = groups.get(tuple(_norm(k) for k in key))
        if not candidates:
            unmatched.append(j)
            continue
        best = min(candidates, key=lambda i, j=j: (
            ours.at[i, "flow_duration"] != ref.at[j, "flow_duration"],
            abs(ours.at[i, "fwd_packets"] - ref.at[j, "fwd_packets"])
            + abs(ours.at[i, "bwd_packets"] - ref.at[j, "bwd_packets"])))
        candidates.remove(best)
        pairs.append((best, j))
    result = Comparison(len(ref), len(ours), len(pairs), ref.iloc[unmatched])
    if not pairs:
        return result
    left = ours.iloc[[p[0] for p in pairs]].reset_index(drop=True)
    right = ref.iloc[[p[1] for p in pairs]].reset_index(drop=True)
    if "flow_id" in right.columns:
        result.flow_ids = int((left["flow_id"] == right["flow_id"]).sum())
    for name in (c for c in ref.columns if c in FEATURES_BY_NAME and c in ours.columns):
        ok = values_match(left[name].to_numpy(np.float64), right[name].to_numpy(np.float64), rtol)
        result.features[name] = int(ok.sum())
        if not ok.all():
            bad = pd.DataFrame({"flow_id": right.get("flow_id", pd.Series(dtype=str))[~ok],
                                "start_us": right["start_us"][~ok], "extracted": left[name][~ok],
                                "reference": right[name][~ok]})
            result.mismatches[name] = bad
    return result


def _norm(value: object) -> object:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return int(value)
    if isinstance(value, np.integer):
        return int(value)
    return value
