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
