"""Seeded, reproducible train/validation/test splits.

``random``: stratified by label, 70/15/15 by default, as in the paper. ``time``: chronological, the earliest
70 % of the flows train, the next 15 % validate, the latest 15 % test (by ``timestamp``, else by capture ``day``
and a time of day estimated from the file name and the row's place in its file), so that a model is scored on
traffic later than all it learned from; a random split flatters every model on CICIDS2017 (the same attack
sessions land on both sides). Both de-duplicate first, so no row is in two parts. The frames keep the index of the
input frame.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import NamedTuple

import numpy as np
import pandas as pd

from iotids.errors import InvalidParameterError

STRATEGIES = ("random", "time")


class Splits(NamedTuple):
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame


def _check_sizes(sizes: tuple[float, float, float]) -> tuple[float, float, float]:
    if len(sizes) != 3 or any(s < 0 for s in sizes) or not np.isclose(sum(sizes), 1.0):
        raise InvalidParameterError(
            f"The 'sizes' parameter of split_flows must be three non-negative fractions summing to 1. Got {sizes}."
        )
    return sizes


def split_flows(
    frame: pd.DataFrame,
    *,
    strategy: str = "random",
    sizes: tuple[float, float, float] = (0.7, 0.15, 0.15),
    random_state: int = 0,
    deduplicate: bool = True,
) -> Splits:
    """Split a cleaned frame into train, validation and test parts.

    Examples
    --------
    >>> train, val, test = split_flows(frame, strategy="random", random_state=0)  # doctest: +SKIP
    """
    if strategy not in STRATEGIES:
        raise InvalidParameterError(
            f"The 'strategy' parameter of split_flows must be 'random' or 'time'. Got {strategy!r} instead."
        )
    sizes = _check_sizes(sizes)
    if deduplicate:
        frame = frame.loc[~frame["row_hash"].duplicated(keep="first").to_numpy()]
    part = _random_parts(frame, sizes, random_state) if strategy == "random" else _time_parts(frame, sizes)
    return Splits(frame.loc[part == 0], frame.loc[part == 1], frame.loc[part == 2])


def _cut(rank: np.ndarray, size: np.ndarray, sizes: tuple[float, float, float]) -> np.ndarray:
    """Part 0/1/2 of each row from its rank within a group of ``size`` rows."""
    first = np.round(size * sizes[0])
    second = np.round(size * (sizes[0] + sizes[1]))
    return np.where(rank < first, 0, np.where(rank < second, 1, 2)).astype(np.int8)


def _random_parts(frame: pd.DataFrame, sizes: tuple[float, float, float], random_state: int) -> np.ndarray:
    rng = np.random.default_rng(random_state)
    codes = frame["label"].astype("category").cat.codes.to_numpy()
    order = rng.permutation(len(frame))
    order = order[np.argsort(codes[order], kind="stable")]  # grouped by label, random within each group
    grouped = codes[order]
    starts = np.r_[0, np.flatnonzero(np.diff(grouped)) + 1]
    lengths = np.diff(np.r_[starts, len(grouped)])
    rank = np.arange(len(order)) - np.repeat(starts, lengths)
    part = np.empty(len(frame), dtype=np.int8)
    part[order] = _cut(rank, np.repeat(lengths, lengths), sizes)
    return part


#: The part of a capture day a file name names (CIC's MachineLearningCVE files: "Friday-WorkingHours-Morning", ...),
#: as (start, length) in days; a name that says neither covers the whole day.
_PARTS_OF_DAY = {"morning": (0.0, 0.5), "afternoon": (0.5, 0.5)}


def _time_parts(frame: pd.DataFrame, sizes: tuple[float, float, float]) -> np.ndarray:
    if "timestamp" in frame.columns and frame["timestamp"].notna().all():
        order = np.lexsort((_row_numbers(frame), frame["timestamp"].to_numpy()))
    elif "day" in frame.columns and (frame["day"] != "unknown").all():
        order = np.lexsort((_time_of_day(frame), frame["day"].astype(str).to_numpy()))
    else:
        raise InvalidParameterError(
            "The time split needs a Timestamp for every flow (TrafficLabelling files, the corrected release) or "
            "a weekday in every file name (MachineLearningCVE files); use strategy='random' for these files."
        )
    part = np.empty(len(frame), dtype=np.int8)
    part[order] = _cut(np.arange(len(frame)), np.full(len(frame), len(frame)), sizes)
    return part


def _row_numbers(frame: pd.DataFrame) -> np.ndarray:
    return frame["source_row"].to_numpy() if "source_row" in frame.columns else np.arange(len(frame))


def _time_of_day(frame: pd.DataFrame) -> np.ndarray:
    """An estimate of each flow's time of day (0-1) for files without timestamps: the part of the day the file's
    name names (morning, afternoon, else the whole day) and the row's position in its file (CIC's files list the
    flows roughly in time order). Files of the same part of a day are thus merged in proportion to their rows
    instead of by row number, which put the end of a morning file after the start of the afternoon's."""
    rows = _row_numbers(frame).astype(np.float64)
    if "source_file" not in frame.columns:
        return rows
    files = frame["source_file"].astype("category")
    codes = files.cat.codes.to_numpy()
    names = [PurePath(str(name)).name.lower() for name in files.cat.categories]
    start, length = np.array([next((part for word, part in _PARTS_OF_DAY.items() if word in name), (0.0, 1.0))
                              for name in names]).reshape(-1, 2).T
    last = pd.Series(rows).groupby(codes).transform("max").to_numpy()
    return start[codes] + (rows - 1) / last * length[codes]
