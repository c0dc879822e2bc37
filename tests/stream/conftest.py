"""Fixtures of the real-time tests (readers, detect, serve, export).

``tiny_model``: a tiny CNN-LSTM trained once per session on 3,000 rows of the corrected CICIDS2017 sample (its
training split), in a few seconds, saved as a model directory and exported to ONNX. Tests score rows of the test
split, which the model never saw, through the raw CSV lines those rows came from.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

IMPROVED = "cicids2017-improved/CICIDS2017_improved__per-label-random-sample-max5000__ScubaInstructor_fuh.csv.gz"
MLCVE = ("cicids2017/Thursday-WorkingHours-Morning-WebAttacks.pcap_ISCX__MLCVE__sample_allWebAttacks+benign__"
         "neil-cipher_sketchflow.csv.gz")


def read_lines(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="latin-1", newline="") as f:
        return f.read().splitlines()


@pytest.fixture(scope="session")
def improved_lines(shared_data: Path) -> list[str]:
    """Header + every line of the corrected release's sample (43,419 rows, 91 columns)."""
    return read_lines(shared_data / IMPROVED)


@pytest.fixture(scope="session")
def mlcve_lines(shared_data: Path) -> list[str]:
    """Header + lines of a MachineLearningCVE file (78 features, leading spaces in the header)."""
    return read_lines(shared_data / MLCVE)


@dataclass(frozen=True)
class TinyModel:
    path: Path  # the model directory (with model.onnx)
    columns: list[str]  # raw canonical columns the model reads
    threshold: float
    test_frame: pd.DataFrame  # canonical rows of the test split (source_row: 1-based data row of the file)
    header: str  # the CSV header of the source file
    lines: list[str]  # the source file's lines; lines[source_row] is the row's text


@pytest.fixture(scope="session")
def tiny_model(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    from iotids.artifacts import TrainedModel, save_model
    from iotids.data import load_dataset
    from iotids.features import FlowPreprocessor
    from iotids.models.cnn_lstm import CnnLstmDetector
    from iotids.runtime import export_onnx

    source = shared_data / IMPROVED
    data = load_dataset(source, random_state=0)
    train = data.splits.train.sample(3000, random_state=0)
    val = data.splits.val.sample(1000, random_state=0)
    pre = FlowPreprocessor().fit(train)
    detector = CnnLstmDetector(filters=(8, 16), lstm_units=16, dense_units=16, max_epochs=6, batch_size=32,
                               class_weight="balanced", random_state=0, n_threads=1)
    detector.fit(pre.transform(train), train["is_attack"].to_numpy(),
                 eval_set=(pre.transform(val), val["is_attack"].to_numpy()))
    directory = tmp_path_factory.mktemp("tiny-model")
    save_model(directory, TrainedModel(pre, detector, 0.5))
    export_onnx(directory)
    with gzip.open(source, "rt", encoding="latin-1", newline="") as f:
        lines = f.read().splitlines()
    return TinyModel(directory, list(pre.input_columns_), 0.5, data.splits.test.reset_index(drop=True), lines[0],
                     lines)


#: The EVE fields every iotids alert line has (the 5-tuple and community_id depend on the input).
EVE_ALERT_FIELDS = ("timestamp", "flow_id", "event_type", "alert", "score", "model", "input")


def _check_eve_alert(event: dict) -> None:
    """The EVE alert shape an EVE reader (Filebeat's Suricata module, Splunk) relies on."""
    for name in EVE_ALERT_FIELDS:
        assert name in event, name
    assert event["event_type"] == "alert"
    assert isinstance(event["flow_id"], int) and 0 <= event["flow_id"] < 2**53
    assert event["timestamp"].endswith("+0000") and "T" in event["timestamp"]
    alert = event["alert"]
    assert isinstance(alert["signature_id"], int) and isinstance(alert["signature"], str)
    assert isinstance(alert["category"], str) and alert["severity"] in (1, 2, 3)
    for name in ("src_port", "dest_port"):
        assert name not in event or isinstance(event[name], int)
    for name in ("src_ip", "dest_ip", "proto", "community_id"):
        assert name not in event or isinstance(event[name], str)
    assert "community_id" not in event or event["community_id"].startswith("1:")
    assert set(event["input"]) == {"file", "line"} and isinstance(event["input"]["line"], int)
    assert isinstance(event["score"], float | int) and isinstance(event["model"], str)


@pytest.fixture(scope="session")
def check_eve_alert() -> Callable[[dict], None]:
    """Asserts that one parsed alert line has the EVE alert shape."""
    return _check_eve_alert
