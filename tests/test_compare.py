"""``iotids compare``: every model on the same rows, validation-only choices, the table and the figures."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from iotids import compare
from iotids.cli import _register, app
from iotids.models.base import DETECTORS
from iotids.models.baselines import LightGbmDetector
from iotids.train import rows_sha256

_register()
MODELS = ["svm", "rf", "autoencoder", "spy"]
PARAMS = {"svm": {"n_components": 100, "epochs": 3}, "rf": {"n_estimators": 20},
          "autoencoder": {"epochs": 10}, "spy": {"n_estimators": 20}}


def _digest(X: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(X, dtype=np.float32).tobytes()).hexdigest()


class SpyDetector(LightGbmDetector):
    """A real model that records the matrices ``compare`` hands it."""

    name: ClassVar[str] = "spy"
    calls: ClassVar[list[tuple[str, int, str]]] = []

    def fit(self, X: np.ndarray, y: np.ndarray, *, eval_set: Any = None) -> SpyDetector:
        SpyDetector.calls += [("fit", len(X), _digest(X)), ("eval_set", len(eval_set[0]), _digest(eval_set[0]))]
        return super().fit(X, y, eval_set=eval_set)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        SpyDetector.calls.append(("score", len(X), _digest(X)))
        return super().decision_function(X)


@pytest.fixture(scope="module")
def run(improved_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[compare.Comparison, Path]:
    out = tmp_path_factory.mktemp("compare")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(DETECTORS, "spy", f"{__name__}:SpyDetector")
        result = compare.compare_models([improved_dir], out, models=MODELS, splits=("random", "time"),
                                        random_state=0, params=PARAMS)
    compare.write_comparison(result, out)
    return result, out


@pytest.fixture(scope="module")
def parts(improved_dir: Path) -> dict[str, Any]:
    """The splits and matrices rebuilt independently of ``compare``."""
    from iotids.data import load_dataset, split_flows
    from iotids.features.preprocess import FlowPreprocessor

    dataset = load_dataset(improved_dir, random_state=0)
    out = {}
    for strategy in ("random", "time"):
        train, val, test = split_flows(dataset.frame, strategy=strategy, random_state=0)
        pre = FlowPreprocessor().fit(train)
        out[strategy] = {"train": train, "val": val, "test": test, "X_val": pre.transform(val),
                         "X_test": pre.transform(test), "columns": pre.input_columns_}
    return out


def test_every_model_scores_the_same_test_rows(run: tuple, parts: dict) -> None:
    result, _ = run
    assert [(r.split, r.model) for r in result.results] == [(s, m) for s in ("random", "time") for m in MODELS]
    for strategy in ("random", "time"):
        mine = [r for r in result.results if r.split == strategy]
        p = parts[strategy]
        assert {r.test_rows_sha256 for r in mine} == {rows_sha256(p["test"], p["columns"])}
        assert {r.eval_rows_sha256 for r in mine} == {rows_sha256(p["val"], p["columns"])}
        for r in mine:
            assert r.report.tn + r.report.fp + r.report.fn + r.report.tp == len(p["test"])
    assert result.results[0].test_rows_sha256 != result.results[-1].test_rows_sha256  # random vs time


def test_models_are_tuned_on_validation_and_scored_on_test_rows(run: tuple, parts: dict) -> None:
    calls = SpyDetector.calls
    fits = [i for i, call in enumerate(calls) if call[0] == "fit"]
    assert len(fits) == 2
    for start, strategy in zip(fits, ("random", "time"), strict=True):
        p = parts[strategy]
        fit, eval_set, scored = calls[start:start + 3]
        assert fit[:2] == ("fit", len(p["train"]))
        assert eval_set == ("eval_set", len(p["val"]), _digest(p["X_val"]))
        assert scored == ("score", len(p["test"]), _digest(p["X_test"]))


def test_autoencoder_threshold_comes_from_validation(run: tuple, parts: dict) -> None:
    from iotids.models.autoencoder import AutoencoderDetector, choose_threshold

    _, out = run
    det = AutoencoderDetector.load(out / "models" / "random" / "autoencoder" / "detector")
    p = parts["random"]
    val_errors = det.reconstruction_error(p["X_val"])
    y_val = p["val"]["is_attack"].to_numpy(np.int8)
    assert det.threshold_ == pytest.approx(choose_threshold(val_errors, y_val, objective="f1", target_far=0.01),
                                           rel=1e-6)
    y_test = p["test"]["is_attack"].to_numpy(np.int8)
    on_test = choose_threshold(det.reconstruction_error(p["X_test"]), y_test, objective="f1", target_far=0.01)
    assert det.threshold_ != pytest.approx(on_test, rel=1e-6)


def test_table_and_figures(run: tuple, parts: dict) -> None:
    _, out = run
    for name in ("comparison.csv", "comparison.md", "roc.png", "pr.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pd.read_csv(out / "comparison.csv")
    ours = table[table["source"] == "ours"]
    assert len(ours) == 2 * len(MODELS)
    n = ours["tn"] + ours["fp"] + ours["fn"] + ours["tp"]
    np.testing.assert_allclose(ours["accuracy"], (ours["tp"] + ours["tn"]) / n)
    np.testing.assert_allclose(ours["false_alarm_rate"], ours["fp"] / (ours["fp"] + ours["tn"]))
    assert (ours["throughput_flows_per_s"] > 0).all() and (ours["model_bytes"] > 0).all()
    published = table[table["source"] == "published"].set_index("model")
    assert set(published.index) == {"svm", "rf", "autoencoder"}
    assert published.loc["svm", "accuracy"] == 0.9767 and published.loc["rf", "f1"] == 0.9784
    markdown = (out / "comparison.md").read_text()
    assert markdown.count("| *published* |") == 2 * 3
    assert "## Random split" in markdown and "## Time split" in markdown and "side by side" in markdown
    from iotids.artifacts import load_model

    random_test = parts["random"]["test"]
    for strategy in ("random", "time"):
        for model in MODELS[:-1]:  # the spy is registered only while compare runs
            loaded = load_model(out / "models" / strategy / model)  # a model directory `iotids detect` can use
            assert loaded.name == model and loaded.threshold == 0.5
    rf = load_model(out / "models" / "random" / "rf")
    row = table[(table["model"] == "rf") & (table["split"] == "random")].iloc[0]
    flagged = rf.predict_frame(random_test).astype(bool)
    assert int((flagged & (random_test["is_attack"] == 0)).sum()) == row["fp"]


def test_cli_runs_one_model_and_prints_json_rows(improved_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["compare", "--data", str(improved_dir), "--out", str(tmp_path),
                                      "--models", "lightgbm", "--seed", "1", "--param", "lightgbm.n_estimators=30"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [(r["model"], r["split"]) for r in rows] == [("lightgbm", "random")]
    assert rows[0]["f1"] > 0.99
    markdown = (tmp_path / "comparison.md").read_text()
    assert "`iotids compare --data" in markdown and "--seed 1 --param lightgbm.n_estimators=30`" in markdown
    assert json.loads((tmp_path / "models/random/lightgbm/detector/detector.json").read_text())["params"][
        "n_estimators"] == 30


def test_cli_default_models_match_the_registry() -> None:
    from iotids.cli.compare import _DEFAULT_MODELS

    assert _DEFAULT_MODELS.split(",") == list(compare.DEFAULT_MODELS)


@pytest.mark.parametrize(("args", "message"), [
    (["--models", "svm,nope"], "Got svm, nope instead"),
    (["--split", "later"], "--split must be random, time or both"),
    (["--models", "rf", "--param", "rf.trees=5"], "unexpected keyword argument 'trees'"),
    (["--models", "rf", "--param", "svm.alpha=0.1"], "Parameters were given for svm"),
    (["--param", "rf:n_estimators=5"], "MODEL.NAME=VALUE"),
])
def test_cli_refuses_bad_options(args: list[str], message: str, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", "from iotids.cli import main; main()", "compare", "--data",
                           str(tmp_path), "--out", str(tmp_path / "out"), *args],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
