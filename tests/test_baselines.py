"""The baselines (SVM, Random Forest, LightGBM, both autoencoders) on real rows of the corrected CICIDS2017.

Small configurations keep the module fast; each detector is fitted once and shared by the tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score

from iotids.errors import InvalidParameterError, ModelFileError, NotFittedError
from iotids.models.autoencoder import AutoencoderDetector, StackedAutoencoderDetector
from iotids.models.base import Detector
from iotids.models.baselines import LightGbmDetector, RandomForestDetector, SvmDetector

FACTORIES: dict[str, Callable[[], Any]] = {
    "svm": lambda: SvmDetector(n_components=100, epochs=5),
    "svm-linear": lambda: SvmDetector(n_components=0, epochs=5),
    "rf": lambda: RandomForestDetector(n_estimators=20),
    "lightgbm": lambda: LightGbmDetector(n_estimators=50),
    "autoencoder": lambda: AutoencoderDetector(epochs=40),
    "autoencoder-shone": lambda: StackedAutoencoderDetector(epochs=4, n_estimators=20),
}
#: ROC-AUC floors on the test rows (the anomaly detector never sees an attack in training).
AUC_FLOOR = {"svm": 0.97, "svm-linear": 0.95, "rf": 0.99, "lightgbm": 0.99, "autoencoder": 0.85,
             "autoencoder-shone": 0.95}


@pytest.fixture(scope="module")
def matrices(improved_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from iotids.data import load_dataset
    from iotids.features.preprocess import FlowPreprocessor

    dataset = load_dataset(improved_dir)
    train = dataset.splits.train.sample(8000, random_state=0)
    pre = FlowPreprocessor().fit(train)
    return {name: (pre.transform(part), part["is_attack"].to_numpy(np.int8))
            for name, part in (("train", train), ("val", dataset.splits.val), ("test", dataset.splits.test))}


@pytest.fixture(scope="module")
def fitted(matrices: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
    X, y = matrices["train"]
    return {name: make().fit(X, y, eval_set=matrices["val"]) for name, make in FACTORIES.items()}


@pytest.mark.parametrize("name", FACTORIES)
def test_beats_the_majority_class(name: str, fitted: dict[str, Any], matrices: dict) -> None:
    X_test, y_test = matrices["test"]
    majority = int(np.bincount(matrices["train"][1]).argmax())
    baseline = accuracy_score(y_test, np.full_like(y_test, majority))
    scores = fitted[name].decision_function(X_test)
    assert accuracy_score(y_test, scores >= 0.5) > baseline + 0.02
    assert balanced_accuracy_score(y_test, scores >= 0.5) > 0.75  # the majority class scores 0.5
    assert roc_auc_score(y_test, scores) >= AUC_FLOOR[name]


@pytest.mark.parametrize("name", FACTORIES)
def test_contract(name: str, fitted: dict[str, Any], matrices: dict) -> None:
    det = fitted[name]
    assert isinstance(det, Detector)
    scores = det.decision_function(matrices["test"][0])
    assert scores.dtype == np.float32 and scores.shape == (matrices["test"][0].shape[0],)
    assert np.isfinite(scores).all() and scores.min() >= 0 and scores.max() <= 1
    with pytest.raises(InvalidParameterError, match="columns"):
        det.decision_function(matrices["test"][0][:, :-1])
    with pytest.raises(NotFittedError, match="not fitted"):
        FACTORIES[name]().decision_function(matrices["test"][0])


@pytest.mark.parametrize("name", FACTORIES)
def test_save_load_gives_identical_scores(name: str, fitted: dict[str, Any], matrices: dict,
                                          tmp_path: Path) -> None:
    det = fitted[name]
    det.save(tmp_path)
    loaded = type(det).load(tmp_path)
    assert loaded.get_params() == det.get_params()
    np.testing.assert_array_equal(loaded.decision_function(matrices["test"][0]),
                                  det.decision_function(matrices["test"][0]))
    assert not list(tmp_path.rglob("*.pkl")) and not list(tmp_path.rglob("*.tmp"))


def test_load_refuses_altered_or_foreign_directories(fitted: dict[str, Any], tmp_path: Path) -> None:
    fitted["rf"].save(tmp_path / "rf")
    with pytest.raises(ModelFileError, match="RandomForestDetector, expected a SvmDetector"):
        SvmDetector.load(tmp_path / "rf")
    with pytest.raises(ModelFileError, match=r"no detector\.json"):
        RandomForestDetector.load(tmp_path)
    (tmp_path / "rf" / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="SHA-256"):
        RandomForestDetector.load(tmp_path / "rf")
    fitted["autoencoder-shone"].save(tmp_path / "shone")
    (tmp_path / "shone" / "head" / "model.onnx").unlink()
    with pytest.raises(ModelFileError, match="missing"):
        StackedAutoencoderDetector.load(tmp_path / "shone")


def test_bad_parameters_are_refused(matrices: dict) -> None:
    X, y = matrices["train"]
    with pytest.raises(InvalidParameterError, match="'n_components' parameter of SvmDetector"):
        SvmDetector(n_components=-1).fit(X, y)
    with pytest.raises(InvalidParameterError, match=r"benign \(0\) and attack \(1\)"):
        RandomForestDetector().fit(X[y == 1], y[y == 1])
    with pytest.raises(InvalidParameterError, match="eval_set"):
        AutoencoderDetector().fit(X, y)
    with pytest.raises(InvalidParameterError, match="'y' parameter"):
        LightGbmDetector().fit(X, y[:-1])


def test_svm_onnx_graph_computes_what_sklearn_computes(matrices: dict) -> None:
    from sklearn.kernel_approximation import Nystroem
    from sklearn.linear_model import SGDClassifier
    from sklearn.preprocessing import StandardScaler

    from iotids.models.baselines import _svm_onnx, ort_session

    X, y = matrices["train"][0][:2000], matrices["train"][1][:2000]
    X64 = X.astype(np.float64)  # the graph computes in float64 too
    scaler = StandardScaler().fit(X64)
    feature_map = Nystroem(gamma=0.05, n_components=50, random_state=0).fit(scaler.transform(X64))
    phi = feature_map.transform(scaler.transform(X64))
    svm = SGDClassifier(loss="hinge", random_state=0).fit(phi, y)
    expected = 1 / (1 + np.exp(-(2.0 * svm.decision_function(phi) - 0.5)))
    got = ort_session(_svm_onnx(scaler, feature_map, svm, 2.0, -0.5)).run(None, {"X": X})[0]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_autoencoder_learns_benign_rows_only(matrices: dict) -> None:
    X, y = matrices["train"]
    full = AutoencoderDetector(epochs=3).fit(X, y, eval_set=matrices["val"])
    benign = AutoencoderDetector(epochs=3).fit(X[y == 0], y[y == 0], eval_set=matrices["val"])
    assert full.threshold_ == benign.threshold_
    np.testing.assert_array_equal(full.reconstruction_error(X), benign.reconstruction_error(X))


def test_autoencoder_threshold_comes_from_validation_rows(matrices: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    import iotids.models.autoencoder as ae

    seen: list[tuple[np.ndarray, np.ndarray]] = []
    real = ae.choose_threshold

    def spy(scores: np.ndarray, y: np.ndarray, **kwargs: Any) -> float:
        seen.append((scores, y))
        return real(scores, y, **kwargs)

    monkeypatch.setattr(ae, "choose_threshold", spy)
    X_val, y_val = matrices["val"]
    det = AutoencoderDetector(epochs=3).fit(*matrices["train"], eval_set=(X_val, y_val))
    assert len(seen) == 1
    scores, labels = seen[0]
    np.testing.assert_array_equal(labels, y_val)
    np.testing.assert_array_equal(scores, det.reconstruction_error(X_val))
    assert det.threshold_ == real(scores, labels, objective="f1", target_far=0.01)
    test_scores = det.decision_function(matrices["test"][0])
    np.testing.assert_array_equal(test_scores >= 0.5, det.reconstruction_error(matrices["test"][0]) >= det.threshold_)


def test_manifest_lists_every_file(fitted: dict[str, Any], tmp_path: Path) -> None:
    fitted["autoencoder-shone"].save(tmp_path)
    manifest = json.loads((tmp_path / "detector.json").read_text())
    assert set(manifest["files"]) == {"model.safetensors", "head/detector.json"}
    assert manifest["name"] == "autoencoder-shone" and manifest["params"]["n_stacked"] == 2
