"""Splits: stratified, seeded, de-duplicated, no row in two parts; the time split orders by time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from iotids.data import clean_flows, load_dataset, load_flows, split_flows
from iotids.errors import InvalidParameterError


@pytest.fixture(scope="module")
def improved(improved_dir: Path):
    frame, report = load_flows(improved_dir)
    return clean_flows(frame, load_report=report)[0]


def test_random_split_is_stratified_seeded_and_disjoint(improved) -> None:
    train, val, test = split_flows(improved, random_state=0)
    assert len(train) + len(val) + len(test) == len(improved)
    assert abs(len(train) / len(improved) - 0.70) < 0.005 and abs(len(test) / len(improved) - 0.15) < 0.005
    hashes = [set(part["row_hash"]) for part in (train, val, test)]
    assert not (hashes[0] & hashes[1] or hashes[0] & hashes[2] or hashes[1] & hashes[2])
    for label, count in improved["label"].value_counts().items():
        if count >= 100:  # every label keeps its share in every part
            assert abs((test["label"] == label).sum() / count - 0.15) < 0.01, label
    again = split_flows(improved, random_state=0)
    assert again.test.index.equals(test.index)
    assert not split_flows(improved, random_state=1).test.index.equals(test.index)


def test_split_removes_duplicates_first(improved) -> None:
    doubled = improved.iloc[np.r_[np.arange(len(improved)), np.arange(100)]]
    parts = split_flows(doubled, random_state=0)
    assert sum(len(p) for p in parts) == len(improved)


def test_time_split_trains_on_earlier_flows(improved) -> None:
    train, val, test = split_flows(improved, strategy="time")
    assert train["timestamp"].max() <= val["timestamp"].min() <= val["timestamp"].max() <= test["timestamp"].min()
    assert abs(len(train) / len(improved) - 0.70) < 0.001


def test_time_split_of_files_without_timestamps_follows_the_day(cicids2017_dir: Path) -> None:
    """MachineLearningCVE files have no timestamps: their rows are ordered by the weekday and the part of the day in
    the file's name (morning before afternoon) and by their position in the file, so files of the same afternoon
    reach the test part together and a long morning file does not end after the afternoon has begun."""
    thursday = sorted(cicids2017_dir.glob("Thursday*MLCVE*"))
    friday = sorted(cicids2017_dir.glob("Friday*MLCVE*"))
    assert len(thursday) == 3 and len(friday) == 3

    def parts(files: list[Path]) -> dict[str, list[int]]:
        splits = load_dataset(files, split="time").splits
        names = {str(f) for f in files}
        return {name: [int((part["source_file"] == name).sum()) for part in splits] for name in names}

    afternoon = []
    for name, counts in parts(thursday + friday).items():
        if "Thursday" in name or "Morning" in name:
            assert counts[1:] == [0, 0], name  # the day before, and Friday morning: all training rows
        else:
            afternoon.append(counts[2] / sum(counts))
    assert len(afternoon) == 2 and min(afternoon) > 0.2  # Friday afternoon's two files, in proportion to their rows
    assert abs(afternoon[0] - afternoon[1]) < 0.03, afternoon
    for name, counts in parts(thursday).items():  # the afternoon (997 rows of 12,583) is the latest 15 %
        assert (counts[:2] == [0, 0]) == ("Afternoon" in name), (name, counts)


def test_time_split_needs_time(cicids2017_dir: Path) -> None:
    with pytest.raises(InvalidParameterError, match="Timestamp"):
        load_dataset(cicids2017_dir, split="time")


def test_bad_parameters(improved) -> None:
    with pytest.raises(InvalidParameterError, match="'strategy'"):
        split_flows(improved, strategy="day-of-week")
    with pytest.raises(InvalidParameterError, match="'sizes'"):
        split_flows(improved, sizes=(0.5, 0.2, 0.2))


def test_load_dataset_summary(improved_dir: Path) -> None:
    dataset = load_dataset(improved_dir, random_state=0)
    summary = dataset.summary()
    assert sum(summary["rows"].values()) == 42795
    assert summary["layouts"] == ["Engelen2021"]
    assert "flow_duration" in dataset.features and "dst_port" not in dataset.features
