"""End to end on 5,000 real rows of the corrected CICIDS2017: ``train_model``, ``iotids train``/``evaluate``, the
model directory (reload, tampering) and the honesty rules (preprocessor fitted on training rows only, threshold
chosen on validation rows)."""

from __future__ import annotations

import gzip
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from iotids.artifacts import load_model, model_files
from iotids.data import Splits
from iotids.errors import InvalidParameterError, ModelFileError
from iotids.evaluate.metrics import METRIC_KEYS
from iotids.evaluate.report import FIGURES
from iotids.train import TrainConfig, TrainResult, evaluate_model, rows_sha256, train_model

Run = tuple[TrainResult, Path]

TINY = {"filters": (16, 16), "lstm_units": 16, "dense_units": 16, "batch_size": 128, "learning_rate": 1e-2}
TARGET_FAR = 0.02


@pytest.fixture(scope="module")
def subset(improved_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5,000 random data lines of the corrected release (their own text) under its header, in a temp file."""
    source = next(improved_dir.glob("*.csv.gz"))
    header, *lines = gzip.decompress(source.read_bytes()).decode("latin-1").splitlines()
    pick = np.random.default_rng(0).choice(len(lines), 5000, replace=False)
    path = tmp_path_factory.mktemp("data") / "improved-subset.csv"
    path.write_text("\n".join([header, *(lines[i] for i in sorted(pick))]) + "\n", encoding="latin-1")
    return path


@pytest.fixture(scope="module")
def trained(subset: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("run")
    config = TrainConfig(data=(str(subset),), out=str(out), random_state=0, max_epochs=6, target_far=TARGET_FAR,
                         model=TINY, progress=False)
    return train_model(config), out


@pytest.fixture(scope="module")
def splits(subset: Path) -> Splits:
    from iotids.data import load_dataset

    return load_dataset(subset, random_state=0).splits


def test_run_directory_holds_model_and_report(trained: Run) -> None:
    result, out = trained
    for name in ("manifest.json", "preprocessor.json", "detector/detector.json", "detector/model.safetensors",
                 "history.json", "metrics.json", "report.md", "report.html"):
        assert (out / name).is_file(), name
    assert sorted(p.name for p in (out / "figures").iterdir()) == sorted(FIGURES)
    metrics = json.loads((out / "metrics.json").read_text())
    assert tuple(metrics) == METRIC_KEYS
    assert metrics == result.report.to_dict()
    assert {p.relative_to(out).as_posix() for p in model_files(out)} == {
        "manifest.json", "preprocessor.json", "detector/detector.json", "detector/model.safetensors",
        "history.json", "metrics.json"}


def test_reloaded_model_gives_identical_scores(trained: Run, splits: Splits) -> None:
    result, out = trained
    model = load_model(out)
    test = splits.test
    np.testing.assert_array_equal(model.score_frame(test), result.model.score_frame(test))
    raw = test[list(model.feature_columns)].to_numpy(np.float32)
    np.testing.assert_array_equal(model.score_matrix(raw), model.score_frame(test))
    assert model.name == "cnn-lstm" and model.threshold == result.model.threshold
    assert model.predict_frame(test).dtype == np.int8


def test_preprocessor_was_fitted_on_the_training_rows_only(trained: Run, splits: Splits) -> None:
    from iotids.features.preprocess import FlowPreprocessor

    saved = load_model(trained[1]).preprocessor.to_dict()
    assert saved == FlowPreprocessor().fit(splits.train).to_dict()
    everything = FlowPreprocessor().fit(pd.concat(list(splits)))
    assert everything.to_dict() != saved  # so a leak of validation or test rows would be caught above


def test_threshold_was_chosen_on_validation_rows(trained: Run, splits: Splits) -> None:
    model = load_model(trained[1])
    val = splits.val
    scores = model.score_frame(val)
    benign = scores[val["is_attack"].to_numpy() == 0]
    assert (benign >= model.threshold).mean() <= TARGET_FAR
    assert (benign >= np.nextafter(np.float32(model.threshold), np.float32(0))).mean() > TARGET_FAR
    assert json.loads((trained[1] / "metrics.json").read_text())["threshold"] == model.threshold


def test_manifest_records_the_training_data(trained: Run, splits: Splits) -> None:
    model = load_model(trained[1])
    data = model.info["data"]
    assert data["train_rows_sha256"] == rows_sha256(splits.train, model.feature_columns)
    assert data["rows"] == {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)}


@pytest.mark.parametrize("damage", ["weights", "preprocessor", "threshold", "missing"])
def test_tampered_directory_is_refused(trained: Run, tmp_path: Path, damage: str) -> None:
    copy = tmp_path / "model"
    shutil.copytree(trained[1], copy)
    if damage == "weights":
        path = copy / "detector" / "model.safetensors"
        blob = bytearray(path.read_bytes())
        blob[len(blob) // 2] ^= 0x01
        path.write_bytes(bytes(blob))
    elif damage == "preprocessor":
        data = json.loads((copy / "preprocessor.json").read_text())
        data["min"][0] -= 1.0
        (copy / "preprocessor.json").write_text(json.dumps(data))
    elif damage == "threshold":
        manifest = json.loads((copy / "manifest.json").read_text())
        manifest["threshold"] = 0.01
        (copy / "manifest.json").write_text(json.dumps(manifest))
    else:
        (copy / "history.json").unlink()
    with pytest.raises(ModelFileError):
        load_model(copy)


def test_cli_train_and_evaluate(subset: Path, trained: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    from iotids.cli import main

    def run(*args: str) -> int:
        monkeypatch.setattr(sys, "argv", ["iotids", *args])
        try:
            main()
        except SystemExit as exc:
            return int(exc.code or 0)
        return 0

    out = tmp_path / "cli-run"
    assert run("train", "--data", str(subset), "--out", str(out), "--epochs", "1", "--seed", "1", "--bins", "4",
               "--grid", "--grid-width", "2", "--quiet") == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert tuple(printed) == METRIC_KEYS and printed["threshold"] == 0.5
    model = load_model(out)
    assert model.info["config"]["run"]["random_state"] == 1
    assert model.detector.module_.cnn[0].in_channels == 4
    assert model.info["config"]["grid"]["searched"]["width"] == [2] and model.detector.lstm_units == 96

    evaluated = tmp_path / "eval"
    assert run("evaluate", "--model", str(trained[1]), "--data", str(subset), "--out", str(evaluated),
               "--quiet") == 0
    assert tuple(json.loads((evaluated / "metrics.json").read_text())) == METRIC_KEYS
    assert sorted(p.name for p in (evaluated / "figures").iterdir()) == sorted(FIGURES)
    assert (evaluated / "report.html").stat().st_size > 10_000

    (out / "detector" / "model.safetensors").write_bytes(b"not weights")
    capsys.readouterr()
    assert run("evaluate", "--model", str(out), "--data", str(subset), "--out", str(tmp_path / "x"), "--quiet") == 2
    err = capsys.readouterr().err
    assert "error:" in err and "differs" in err and "Traceback" not in err


def test_evaluate_refuses_to_overwrite_the_model_directory(trained: Run, subset: Path) -> None:
    with pytest.raises(InvalidParameterError, match="--out"):
        evaluate_model(trained[1], [subset], trained[1], progress=False)


def test_bad_configuration_is_refused(subset: Path, tmp_path: Path) -> None:
    for bad in ({"split": "day"}, {"max_epochs": 0}, {"target_far": 1.5},
                {"grid": True, "grid_widths": (1, 0)}, {"grid_widths": (2,)}):
        with pytest.raises(InvalidParameterError):
            train_model(TrainConfig(data=(str(subset),), out=str(tmp_path), progress=False, **bad))
