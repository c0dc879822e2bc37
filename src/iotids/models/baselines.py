"""The baselines of the paper's Table 1 (SVM, Random Forest) and LightGBM, behind the ``Detector`` interface.

Each class wraps a library estimator (nothing is reimplemented) and keeps the house rules of ``base.Detector``:
``decision_function`` returns a float32 probability-like score, higher = attack, so the default threshold 0.5
means something; ``save``/``load`` use no pickle:

================  ==========================================================  ================================
detector          model                                                       file
================  ==========================================================  ================================
``svm``           StandardScaler → Nystroem RBF map (or none) → linear SVM     ``model.onnx`` (ONNX graph)
                  (SGD, hinge loss) → Platt sigmoid fitted on ``eval_set``
``rf``            ``sklearn.ensemble.RandomForestClassifier``                  ``model.onnx`` (skl2onnx)
``lightgbm``      ``lightgbm.LGBMClassifier``                                  ``model.txt`` (LightGBM text)
================  ==========================================================  ================================

The SVM and the Random Forest score through ONNX Runtime both right after ``fit`` and after ``load``, so a saved
and reloaded model gives bit-identical scores, and the throughput measured in ``compare`` is the deployed one.
Every model directory holds ``detector.json`` (class, parameters, learned scalars, SHA-256 of every file);
``load`` refuses a directory whose files do not match it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
from sklearn.base import BaseEstimator

from iotids.errors import InvalidParameterError, ModelFileError, NotFittedError

__all__ = ["LightGbmDetector", "RandomForestDetector", "SvmDetector"]

MANIFEST = "detector.json"
FORMAT = "iotids-detector"
FORMAT_VERSION = 1


# --------------------------------------------------------------------------------------------------- helpers
def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_model_dir(
    directory: str | os.PathLike[str],
    detector: BaseEstimator,
    files: Mapping[str, bytes],
    *,
    state: Mapping[str, Any] | None = None,
    hashed: tuple[str, ...] = (),
) -> None:
    """Write a detector's files, then ``detector.json`` naming each with its SHA-256.

    ``hashed`` lists files already written below ``directory`` (e.g. a nested detector's manifest) that the
    manifest must vouch for as well.
    """
    from iotids.artifacts import write_atomic

    root = Path(directory)
    hashes = {}
    for name, data in files.items():
        write_atomic(root / name, data)
        hashes[name] = _sha256(data)
    for name in hashed:
        hashes[name] = _sha256((root / name).read_bytes())
    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "name": detector.name,  # type: ignore[attr-defined]
        "class": type(detector).__name__,
        "params": detector.get_params(deep=False),
        "state": dict(state or {}),
        "files": hashes,
    }
    write_atomic(root / MANIFEST, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())


def read_model_dir(directory: str | os.PathLike[str], cls: type) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Read and verify a directory written by :func:`write_model_dir` for ``cls``.

    Returns the manifest and the verified bytes of every file it names.

    Raises
    ------
    ModelFileError
        If the manifest is missing or unreadable, was written for another detector or format version, or a file
        is missing or differs from its recorded SHA-256.
    """
    root = Path(directory)
    path = root / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFileError(f"{root}: no {MANIFEST}; this is not a saved iotids detector") from None
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: cannot be read as JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not an iotids detector manifest")
    if manifest.get("version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: format version {manifest.get('version')!r}, this iotids reads version {FORMAT_VERSION}"
        )
    if manifest.get("class") != cls.__name__:
        raise ModelFileError(f"{path}: holds a {manifest.get('class')}, expected a {cls.__name__}")
    data: dict[str, bytes] = {}
    for name, digest in manifest.get("files", {}).items():
        try:
            blob = (root / name).read_bytes()
        except OSError:
            raise ModelFileError(f"{root / name}: missing (listed in {MANIFEST})") from None
        if _sha256(blob) != digest:
            raise ModelFileError(f"{root / name}: content differs from the SHA-256 recorded in {MANIFEST}")
        data[name] = blob
    return manifest, data


@contextmanager
def model_file_errors(directory: str | os.PathLike[str], cls: type) -> Iterator[None]:
    """Turn any failure while rebuilding a detector from verified files into a :class:`ModelFileError`."""
    try:
        yield
    except ModelFileError:
        raise
    except Exception as exc:  # library errors of onnxruntime, lightgbm, torch, safetensors
        raise ModelFileError(f"{directory}: not a loadable {cls.__name__} ({type(exc).__name__}: {exc})") from None


def check_matrix(X: Any, owner: object, n_features: int | None = None) -> np.ndarray:
    """Return ``X`` as a C-contiguous float32 matrix, checking its shape (and width against a fitted model)."""
    arr = np.ascontiguousarray(X, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise InvalidParameterError(
            f"The 'X' parameter of {type(owner).__name__} must be a non-empty 2-D matrix. Got shape {arr.shape} "
            "instead."
        )
    if n_features is not None and arr.shape[1] != n_features:
        raise InvalidParameterError(
            f"X has {arr.shape[1]} columns but {type(owner).__name__} was fitted on {n_features}; score it with "
            "the preprocessor it was trained with."
        )
    return arr


def check_labels(y: Any, n_rows: int, owner: object, *, both_classes: bool = True) -> np.ndarray:
    """Return ``y`` as int8 0/1 of length ``n_rows``; by default both classes must occur."""
    arr = np.asarray(y).ravel()
    if arr.shape[0] != n_rows or not np.isin(arr, (0, 1)).all():
        raise InvalidParameterError(
            f"The 'y' parameter of {type(owner).__name__} must hold {n_rows} labels in {{0, 1}}. Got "
            f"{arr.shape[0]} values {np.unique(arr)[:5].tolist()} instead."
        )
    arr = arr.astype(np.int8)
    if both_classes and np.unique(arr).size < 2:
        raise InvalidParameterError(
            f"{type(owner).__name__} needs benign (0) and attack (1) rows; got only class {int(arr[0])}."
        )
    return arr


def check_fitted(owner: object, attribute: str) -> None:
    """Raise :class:`NotFittedError` unless ``owner`` has the learned ``attribute``."""
    if not hasattr(owner, attribute):
        raise NotFittedError(
            f"This {type(owner).__name__} instance is not fitted yet. Call 'fit' with appropriate arguments "
            "before using this estimator."
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool)


def check_param(owner: object, name: str, value: Any, ok: bool, constraint: str) -> None:
    """Raise the house :class:`InvalidParameterError` for a parameter outside its range."""
    if not ok:
        raise InvalidParameterError(
            f"The '{name}' parameter of {type(owner).__name__} must be {constraint}. Got {value!r} instead."
        )


def ort_session(model: bytes) -> Any:
    """An ONNX Runtime CPU session for a serialised model (onnxruntime is imported here, on first use)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def progress_bar() -> Any:
    """A transient rich progress bar on stderr, shown on a terminal only; tasks carry an ``info`` field."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                    TimeElapsedColumn(), console=Console(stderr=True), transient=True,
                    disable=not sys.stderr.isatty())


def iter_chunks(n_rows: int, chunk_rows: int) -> Iterator[slice]:
    """Consecutive slices of at most ``chunk_rows`` covering ``range(n_rows)``."""
    for start in range(0, n_rows, chunk_rows):
        yield slice(start, min(start + chunk_rows, n_rows))


_SCORE_CHUNK = 65_536  # rows per ONNX Runtime call: bounds the float64 RBF intermediates (~160 MB each)


# --------------------------------------------------------------------------------------------------- SVM
class SvmDetector(BaseEstimator):
    """Linear SVM on standardised features, optionally on a Nystroem RBF feature map, with Platt scores.

    The hinge-loss linear model is trained by SGD (``SGDClassifier(loss="hinge", average=True)``) in shuffled
    chunks of ``chunk_rows`` rows per epoch, so memory stays bounded at ~2 M rows: only one chunk is mapped to the
    ``n_components``-dimensional Nystroem space at a time. The margin is turned into a probability-like score by
    a Platt sigmoid fitted on ``eval_set`` (validation rows); without ``eval_set`` the score is the logistic of
    the margin, 0.5 on the SVM's own decision boundary.

    Parameters
    ----------
    n_components : size of the Nystroem RBF map; 0 for a plain linear SVM on the standardised features.
    gamma : RBF width on standardised features; None means 1 / n_features.
    alpha : L2 regularisation of the SGD SVM (the equivalent of 1 / (C · n_rows)).
    epochs : passes over the training rows.
    chunk_rows : rows per SGD ``partial_fit`` call (and per Nystroem transform).
    random_state : seed of the Nystroem landmarks, the shuffling and SGD.

    Examples
    --------
    >>> det = SvmDetector(n_components=300).fit(X_train, y_train, eval_set=(X_val, y_val))  # doctest: +SKIP
    >>> det.decision_function(X_test)  # float32 in (0, 1)  # doctest: +SKIP
    """

    name: ClassVar[str] = "svm"

    def __init__(
        self,
        *,
        n_components: int = 300,
        gamma: float | None = None,
        alpha: float = 1e-5,
        epochs: int = 10,
        chunk_rows: int = 65_536,
        random_state: int = 0,
    ) -> None:
        self.n_components = n_components
        self.gamma = gamma
        self.alpha = alpha
        self.epochs = epochs
        self.chunk_rows = chunk_rows
        self.random_state = random_state

    def _check_params(self) -> None:
        check_param(self, "n_components", self.n_components,
                    isinstance(self.n_components, int) and self.n_components >= 0, "an int in [0, inf)")
        check_param(self, "gamma", self.gamma, self.gamma is None or (_is_number(self.gamma) and self.gamma > 0),
                    "None or a float > 0")
        check_param(self, "alpha", self.alpha, _is_number(self.alpha) and self.alpha > 0, "a float > 0")
        check_param(self, "epochs", self.epochs, isinstance(self.epochs, int) and self.epochs >= 1,
                    "an int in [1, inf)")
        check_param(self, "chunk_rows", self.chunk_rows,
                    isinstance(self.chunk_rows, int) and self.chunk_rows >= 1, "an int in [1, inf)")

    def fit(self, X: np.ndarray, y: np.ndarray, *, eval_set: tuple[np.ndarray, np.ndarray] | None = None) -> Self:
        """Fit scaler, feature map and SVM on ``(X, y)``; calibrate the scores on ``eval_set`` if given."""
        from sklearn.kernel_approximation import Nystroem
        from sklearn.linear_model import LogisticRegression, SGDClassifier
        from sklearn.preprocessing import StandardScaler

        self._check_params()
        X = check_matrix(X, self)
        y = check_labels(y, X.shape[0], self)
        rng = np.random.default_rng(self.random_state)
        # float64 throughout, as in the ONNX graph: the SVM learns on exactly the features it is scored on
        scaler = StandardScaler()
        for part in iter_chunks(X.shape[0], self.chunk_rows):  # bounded memory: no float64 copy of all of X
            scaler.partial_fit(X[part].astype(np.float64))
        feature_map = None
        if self.n_components:
            k = min(self.n_components, X.shape[0])
            picked = np.sort(rng.choice(X.shape[0], size=k, replace=False))
            landmarks = scaler.transform(X[picked].astype(np.float64))
            gamma = self.gamma if self.gamma is not None else 1.0 / X.shape[1]
            feature_map = Nystroem(kernel="rbf", gamma=gamma, n_components=k, random_state=self.random_state)
            feature_map.fit(landmarks)

        def embed(rows: np.ndarray) -> np.ndarray:
            z = scaler.transform(rows.astype(np.float64))
            return z if feature_map is None else feature_map.transform(z)

        svm = SGDClassifier(loss="hinge", alpha=self.alpha, average=True, random_state=self.random_state)
        with progress_bar() as progress:
            task = progress.add_task("SVM (SGD epochs)", total=self.epochs, info="")
            for epoch in range(self.epochs):
                order = rng.permutation(X.shape[0])
                for part in iter_chunks(X.shape[0], self.chunk_rows):
                    rows = np.sort(order[part])
                    svm.partial_fit(embed(X[rows]), y[rows], classes=np.array([0, 1]))
                progress.update(task, advance=1, info=f"epoch {epoch + 1}/{self.epochs}")

        slope, intercept = 1.0, 0.0
        if eval_set is not None:
            X_val = check_matrix(eval_set[0], self, X.shape[1])
            y_val = check_labels(eval_set[1], X_val.shape[0], self)
            margin = np.concatenate([svm.decision_function(embed(X_val[part]))
                                     for part in iter_chunks(X_val.shape[0], self.chunk_rows)])
            platt = LogisticRegression(C=1e6).fit(margin[:, None], y_val)
            slope, intercept = float(platt.coef_[0, 0]), float(platt.intercept_[0])

        self.n_features_in_ = X.shape[1]
        self.platt_ = (slope, intercept)
        self.onnx_ = _svm_onnx(scaler, feature_map, svm, slope, intercept)
        self.session_ = ort_session(self.onnx_)
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Probability-like attack score in (0, 1) per row (float32)."""
        check_fitted(self, "session_")
        X = check_matrix(X, self, self.n_features_in_)
        return np.concatenate([self.session_.run(None, {"X": X[part]})[0]
                               for part in iter_chunks(X.shape[0], _SCORE_CHUNK)]).astype(np.float32, copy=False)

    def save(self, directory: Path) -> None:
        """Write ``model.onnx`` and ``detector.json`` into ``directory``."""
        check_fitted(self, "session_")
        write_model_dir(directory, self, {"model.onnx": self.onnx_},
                        state={"n_features_in": self.n_features_in_, "platt": list(self.platt_)})

    @classmethod
    def load(cls, directory: Path) -> Self:
        """Load a directory written by :meth:`save`."""
        manifest, files = read_model_dir(directory, cls)
        with model_file_errors(directory, cls):
            det = cls(**manifest["params"])
            det.n_features_in_ = int(manifest["state"]["n_features_in"])
            det.platt_ = tuple(manifest["state"]["platt"])
            det.onnx_ = files["model.onnx"]
            det.session_ = ort_session(det.onnx_)
        return det


def _svm_onnx(scaler: Any, feature_map: Any, svm: Any, slope: float, intercept: float) -> bytes:
    """The fitted SVM as one ONNX graph: X → standardise → RBF map → linear margin → Platt sigmoid → score.

    skl2onnx has no converter for ``Nystroem``, so the graph is written from the fitted arrays, operation for
    operation as scikit-learn computes them (``rbf_kernel`` expands ‖x − c‖² = ‖x‖² − 2x·c + ‖c‖² and clips at 0).
    It computes in float64 like scikit-learn's distance code (in float32 the expansion cancels badly for
    near-duplicate flows). The Platt slope and intercept are folded into the linear layer.
    """
    from onnx import TensorProto, helper, numpy_helper

    def const(name: str, value: np.ndarray) -> Any:
        return numpy_helper.from_array(np.asarray(value, dtype=np.float64), name)

    nodes = [helper.make_node("Cast", ["X"], ["x64"], to=TensorProto.DOUBLE),
             helper.make_node("Sub", ["x64", "mean"], ["centered"]),
             helper.make_node("Div", ["centered", "scale"], ["z"])]
    inits = [const("mean", scaler.mean_), const("scale", scaler.scale_)]
    features = "z"
    if feature_map is not None:
        basis = feature_map.components_.astype(np.float64)
        nodes += [
            helper.make_node("MatMul", ["z", "basis_t"], ["zc"]),
            helper.make_node("ReduceSumSquare", ["z"], ["zz"], axes=[1], keepdims=1),
            helper.make_node("Mul", ["zc", "minus_two"], ["zc2"]),
            helper.make_node("Add", ["zc2", "zz"], ["d1"]),
            helper.make_node("Add", ["d1", "cc"], ["d2"]),
            helper.make_node("Max", ["d2", "zero"], ["dist"]),
            helper.make_node("Mul", ["dist", "minus_gamma"], ["log_k"]),
            helper.make_node("Exp", ["log_k"], ["kernel"]),
            helper.make_node("MatMul", ["kernel", "norm_t"], ["phi"]),
        ]
        inits += [const("basis_t", basis.T), const("cc", (basis**2).sum(axis=1)[None, :]),
                  const("minus_two", np.array(-2.0)), const("zero", np.array(0.0)),
                  const("minus_gamma", np.array(-feature_map.gamma)),
                  const("norm_t", feature_map.normalization_.T)]
        features = "phi"
    weights = svm.coef_.astype(np.float64).T * slope
    bias = svm.intercept_.astype(np.float64) * slope + intercept
    nodes += [helper.make_node("MatMul", [features, "w"], ["margin"]),
              helper.make_node("Add", ["margin", "b"], ["logit"]),
              helper.make_node("Sigmoid", ["logit"], ["prob"]),
              helper.make_node("Reshape", ["prob", "flat"], ["prob_flat"]),
              helper.make_node("Cast", ["prob_flat"], ["score"], to=TensorProto.FLOAT)]
    inits += [const("w", weights), const("b", bias),
              numpy_helper.from_array(np.array([-1], dtype=np.int64), "flat")]
    graph = helper.make_graph(
        nodes, "iotids_svm",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, scaler.mean_.shape[0]])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, [None])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="iotids")
    model.ir_version = 8
    return model.SerializeToString()


# --------------------------------------------------------------------------------------------------- Random Forest
class RandomForestDetector(BaseEstimator):
    """``RandomForestClassifier`` scored through its ONNX form (skl2onnx); the score is the attack probability.

    Parameters
    ----------
    n_estimators, max_depth, min_samples_leaf, max_features : as in scikit-learn.
    max_samples : rows drawn per tree (bootstrap); an int caps the cost per tree on millions of rows.
    n_jobs : worker threads; -1 = every core (on the 2-core reference machine up to 1.7x faster than 1, and no
        slower while other jobs load it; see benchmarks/results/compare.md).
    random_state : seed of the forest.
    """

    name: ClassVar[str] = "rf"

    def __init__(
        self,
        *,
        n_estimators: int = 100,
        max_depth: int | None = None,
        min_samples_leaf: int = 1,
        max_features: str | float = "sqrt",
        max_samples: int | float | None = None,
        n_jobs: int = -1,
        random_state: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.max_samples = max_samples
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray, *, eval_set: tuple[np.ndarray, np.ndarray] | None = None) -> Self:
        """Grow the forest on ``(X, y)`` and convert it to ONNX; ``eval_set`` is not needed and ignored."""
        from skl2onnx import to_onnx
        from sklearn.ensemble import RandomForestClassifier

        check_param(self, "n_estimators", self.n_estimators,
                    isinstance(self.n_estimators, int) and self.n_estimators >= 1, "an int in [1, inf)")
        X = check_matrix(X, self)
        y = check_labels(y, X.shape[0], self)
        forest = RandomForestClassifier(
            n_estimators=self.n_estimators, max_depth=self.max_depth, min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features, max_samples=self.max_samples, n_jobs=self.n_jobs,
            random_state=self.random_state,
        ).fit(X, y)
        self.n_features_in_ = X.shape[1]
        self.onnx_ = to_onnx(forest, X[:1], options={"zipmap": False}).SerializeToString()
        self.session_ = ort_session(self.onnx_)
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Attack probability per row (float32): the mean of the trees' leaf frequencies."""
        check_fitted(self, "session_")
        X = check_matrix(X, self, self.n_features_in_)
        name = self.session_.get_inputs()[0].name
        scores = np.concatenate([self.session_.run(["probabilities"], {name: X[part]})[0][:, 1]
                                 for part in iter_chunks(X.shape[0], _SCORE_CHUNK)]).astype(np.float32, copy=False)
        return np.clip(scores, 0, 1, out=scores)  # float32 sums of 1/n_estimators can reach 1.0000001

    def save(self, directory: Path) -> None:
        """Write ``model.onnx`` and ``detector.json`` into ``directory``."""
        check_fitted(self, "session_")
        write_model_dir(directory, self, {"model.onnx": self.onnx_}, state={"n_features_in": self.n_features_in_})

    @classmethod
    def load(cls, directory: Path) -> Self:
        """Load a directory written by :meth:`save`."""
        manifest, files = read_model_dir(directory, cls)
        with model_file_errors(directory, cls):
            det = cls(**manifest["params"])
            det.n_features_in_ = int(manifest["state"]["n_features_in"])
            det.onnx_ = files["model.onnx"]
            det.session_ = ort_session(det.onnx_)
        return det


# --------------------------------------------------------------------------------------------------- LightGBM
class LightGbmDetector(BaseEstimator):
    """``lightgbm.LGBMClassifier``, library defaults unless told; saved in LightGBM's own text format.

    Parameters
    ----------
    n_estimators, learning_rate, num_leaves : as in LightGBM (defaults 100, 0.1, 31).
    early_stopping_rounds : stop when the ``eval_set`` log loss has not improved for this many rounds; None
        (default) trains all ``n_estimators`` rounds, i.e. LightGBM with default settings.
    n_jobs : OpenMP threads. 1 by default, the robust choice on a shared machine: on the 2-core reference
        machine under heavy load one thread fitted in 2.4 s against 11.2 s with two (OpenMP threads spin-wait for
        busy cores), while under light load two threads were at best 1.3x faster (1.4 s against 1.8 s).
    random_state : seed.
    """

    name: ClassVar[str] = "lightgbm"

    def __init__(
        self,
        *,
        n_estimators: int = 100,
        learning_rate: float = 0.1,
        num_leaves: int = 31,
        early_stopping_rounds: int | None = None,
        n_jobs: int = 1,
        random_state: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.early_stopping_rounds = early_stopping_rounds
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray, *, eval_set: tuple[np.ndarray, np.ndarray] | None = None) -> Self:
        """Boost on ``(X, y)``; ``eval_set`` is used only for early stopping when it is enabled."""
        import lightgbm as lgb

        check_param(self, "early_stopping_rounds", self.early_stopping_rounds,
                    self.early_stopping_rounds is None or self.early_stopping_rounds >= 1,
                    "None or an int in [1, inf)")
        if self.early_stopping_rounds is not None and eval_set is None:
            raise InvalidParameterError(
                "LightGbmDetector with early_stopping_rounds needs eval_set=(X_val, y_val) for early stopping."
            )
        X = check_matrix(X, self)
        y = check_labels(y, X.shape[0], self)
        model = lgb.LGBMClassifier(
            n_estimators=self.n_estimators, learning_rate=self.learning_rate, num_leaves=self.num_leaves,
            n_jobs=self.n_jobs, random_state=self.random_state, verbose=-1,
        )
        kwargs: dict[str, Any] = {}
        if self.early_stopping_rounds is not None and eval_set is not None:
            X_val = check_matrix(eval_set[0], self, X.shape[1])
            y_val = check_labels(eval_set[1], X_val.shape[0], self)
            kwargs = {"eval_set": [(X_val, y_val)],
                      "callbacks": [lgb.early_stopping(self.early_stopping_rounds, verbose=False)]}
        model.fit(X, y, **kwargs)
        self.n_features_in_ = X.shape[1]
        self.model_text_ = model.booster_.model_to_string()
        self.booster_ = lgb.Booster(model_str=self.model_text_)
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Attack probability per row (float32)."""
        check_fitted(self, "booster_")
        X = check_matrix(X, self, self.n_features_in_)
        return self.booster_.predict(X, num_threads=max(self.n_jobs, 0)).astype(np.float32)

    def save(self, directory: Path) -> None:
        """Write ``model.txt`` (LightGBM text format) and ``detector.json`` into ``directory``."""
        check_fitted(self, "booster_")
        write_model_dir(directory, self, {"model.txt": self.model_text_.encode()},
                        state={"n_features_in": self.n_features_in_})

    @classmethod
    def load(cls, directory: Path) -> Self:
        """Load a directory written by :meth:`save`."""
        import lightgbm as lgb

        manifest, files = read_model_dir(directory, cls)
        with model_file_errors(directory, cls):
            det = cls(**manifest["params"])
            det.n_features_in_ = int(manifest["state"]["n_features_in"])
            det.model_text_ = files["model.txt"].decode()
            det.booster_ = lgb.Booster(model_str=det.model_text_)
        return det
