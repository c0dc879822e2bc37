"""Training and evaluation runs: files -> loader -> cleaner -> splitter -> preprocessor -> detector -> report.

:func:`train_model` is what ``iotids train`` runs: load and clean the flow files, split them (de-duplicated),
fit the preprocessor on the training rows only, train the CNN-LSTM (or grid-search it) with early stopping on
the validation rows, pick the threshold (0.5, or on the validation rows for a target false alarm rate), score
the test rows once, and write the model directory and the report into ``out``.

:func:`evaluate_model` is ``iotids evaluate``: score any flow files with a trained model directory and write
the same metrics and figures (the training curves come from the model's history).
"""

from __future__ import annotations

import hashlib
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from iotids.errors import InvalidParameterError
from iotids.evaluate.metrics import BinaryReport
from iotids.models.search import check_widths

__all__ = ["EvaluationResult", "TrainConfig", "TrainResult", "evaluate_model", "rows_sha256", "train_model"]


@dataclass(frozen=True)
class TrainConfig:
    """One training run.

    Attributes
    ----------
    data : flow files or folders.
    out : the run directory (model files and report).
    split : ``"random"`` (stratified 70/15/15) or ``"time"``.
    random_state : seed of the split, the weights, the shuffling and dropout.
    max_epochs : epoch budget of each training.
    grid : grid-search batch size x learning rate x width (:data:`iotids.models.search.DEFAULT_GRID`).
    grid_widths : the grid's model widths instead of the default grid's (1 only).
    target_far : choose the threshold on the validation rows for this false alarm rate (else 0.5).
    model : CnnLstmDetector parameters overriding the defaults.
    preprocess : FlowPreprocessor parameters overriding the defaults.
    progress : progress bars on stderr.
    """

    data: tuple[str, ...]
    out: str
    split: str = "random"
    random_state: int = 0
    max_epochs: int = 20
    grid: bool = False
    grid_widths: tuple[int, ...] | None = None
    target_far: float | None = None
    model: Mapping[str, Any] = field(default_factory=dict)
    preprocess: Mapping[str, Any] = field(default_factory=dict)
    progress: bool = True


@dataclass
class TrainResult:
    """What a training run produced."""

    model: Any  # iotids.artifacts.TrainedModel
    report: BinaryReport
    paths: dict[str, Path]
    summary: dict[str, Any]
    grid: Any = None  # iotids.models.search.GridResult


@dataclass
class EvaluationResult:
    """What an evaluation run produced."""

    report: BinaryReport
    paths: dict[str, Path]
    summary: dict[str, Any]


def rows_sha256(frame: pd.DataFrame, columns: Sequence[str]) -> str:
    """SHA-256 of the float32 values of ``columns`` and the 0/1 label of every row, in row order."""
    digest = hashlib.sha256()
    digest.update(",".join(columns).encode() + b"\0")
    digest.update(np.ascontiguousarray(frame[list(columns)].to_numpy(np.float32)))  # its buffer, not a copy
    digest.update(frame["is_attack"].to_numpy(np.int8).tobytes())
    return digest.hexdigest()


def _check_config(config: TrainConfig) -> None:
    if not config.data:
        raise InvalidParameterError("train needs at least one data path (--data).")
    if config.split not in ("random", "time"):
        raise InvalidParameterError(f"The 'split' parameter must be 'random' or 'time'. Got {config.split!r} instead.")
    if not isinstance(config.max_epochs, int) or config.max_epochs < 1:
        raise InvalidParameterError(f"The 'epochs' parameter must be an int >= 1. Got {config.max_epochs!r} instead.")
    if config.grid_widths is not None:
        if not config.grid:
            raise InvalidParameterError("grid widths (--grid-width) are for the grid search; add --grid.")
        check_widths(config.grid_widths)
    if config.target_far is not None and not 0 <= config.target_far < 1:
        raise InvalidParameterError(
            f"The 'target_far' parameter must be a float in [0, 1). Got {config.target_far!r} instead."
        )


def _check_classes(name: str, y: np.ndarray, *, need_benign: bool = True, need_attack: bool = True) -> None:
    if need_benign and not (y == 0).any():
        raise InvalidParameterError(f"the {name} split has no benign flow; give more data or use --split random.")
    if need_attack and not (y == 1).any():
        raise InvalidParameterError(f"the {name} split has no attack flow; give more data or use --split random.")


def _environment() -> dict[str, Any]:
    import torch

    return {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads()}


def train_model(config: TrainConfig, *, log: Callable[[str], None] = lambda message: None) -> TrainResult:
    """Run one training (see the module docstring) and write the model and report into ``config.out``."""
    from iotids.artifacts import TrainedModel, save_model
    from iotids.data import load_dataset
    from iotids.evaluate.metrics import binary_report
    from iotids.evaluate.report import ReportInput, write_report
    from iotids.features.preprocess import FlowPreprocessor
    from iotids.models.cnn_lstm import CnnLstmDetector
    from iotids.models.search import DEFAULT_GRID, grid_search
    from iotids.models.threshold import DEFAULT_THRESHOLD, threshold_for_far

    _check_config(config)
    out = Path(config.out)
    log(f"loading {', '.join(config.data)}")
    dataset = load_dataset(list(config.data), split=config.split, random_state=config.random_state,
                           progress=config.progress)
    summary = dataset.summary()
    train, val, test = dataset.splits
    del dataset  # the whole cleaned frame; the splits are copies of its rows
    y_train, y_val, y_test = (part["is_attack"].to_numpy(np.int8) for part in (train, val, test))
    _check_classes("training", y_train)
    _check_classes("validation", y_val, need_attack=False, need_benign=config.target_far is not None)
    if len(test) == 0 or len(val) == 0:
        raise InvalidParameterError("the validation or test split is empty; give more flows.")
    log(f"split {config.split}: train {len(train):,}, validation {len(val):,}, test {len(test):,} flows")

    preprocessor = FlowPreprocessor(**dict(config.preprocess)).fit(train)
    X_train, X_val, X_test = (preprocessor.transform(part) for part in (train, val, test))
    log(f"preprocessor: {len(preprocessor.input_columns_)} columns in, {preprocessor.n_features_out_} out")
    train_rows_sha256 = rows_sha256(train, preprocessor.input_columns_)
    families = test["family"]
    del train, val, test  # the matrices are all the rest needs (frame and splits: 1.75 GiB at 2.8 M rows)

    params = {**dict(config.model), "random_state": config.random_state, "max_epochs": config.max_epochs,
              "progress": config.progress}
    grid, searched = None, {**DEFAULT_GRID, "width": config.grid_widths or DEFAULT_GRID["width"]}
    if config.grid:
        grid = grid_search(X_train, y_train, eval_set=(X_val, y_val), params=params, log=log,
                           batch_sizes=searched["batch_size"], learning_rates=searched["learning_rate"],
                           widths=searched["width"])
        detector = grid.best
        log(f"grid: best {grid.best_params}")
    else:
        detector = CnnLstmDetector(**params).fit(X_train, y_train, eval_set=(X_val, y_val))
    if detector.interrupted_:
        log(f"training interrupted: keeping the best epoch so far ({detector.best_epoch_})")
    log(f"trained {len(detector.history_)} epochs (best {detector.best_epoch_}) at "
        f"{detector.train_flows_per_s_:,.0f} flows/s")

    if config.target_far is None:
        threshold, how = DEFAULT_THRESHOLD, "default"
    else:
        threshold = threshold_for_far(detector.decision_function(X_val), y_val, config.target_far)
        how = f"lowest threshold with false alarm rate <= {config.target_far} on the validation split"
    start = time.perf_counter()
    scores = detector.decision_function(X_test)
    scoring_flows_per_s = len(X_test) / (time.perf_counter() - start)
    report = binary_report(y_test, scores, threshold, families=families)
    auc = "undefined (one class)" if report.roc_auc is None else f"{report.roc_auc:.5f}"
    log(f"test: F1 {report.f1:.5f}, false alarm rate {report.false_alarm_rate:.5f}, ROC AUC {auc}")

    resolved = detector.get_params()
    run_config = {
        "detector": detector.name,
        "model": {k: (list(v) if isinstance(v, tuple) else v) for k, v in resolved.items() if k != "progress"},
        "preprocess": {k: (list(v) if isinstance(v, tuple) else v) for k, v in preprocessor.get_params().items()},
        "preprocessor_out": {"input_columns": len(preprocessor.input_columns_),
                             "features": preprocessor.n_features_out_, "dropped": preprocessor.dropped_},
        "threshold": {"value": threshold, "chosen": how},
        "training": {"epochs_run": len(detector.history_), "best_epoch": detector.best_epoch_,
                     "stopped_early": detector.stopped_early_, "interrupted": detector.interrupted_,
                     "seconds": round(detector.train_seconds_, 2),
                     "flows_per_s": round(detector.train_flows_per_s_),
                     "test_scoring_flows_per_s": round(scoring_flows_per_s)},
        "grid": None if grid is None else {"searched": {k: list(v) for k, v in searched.items()},
                                           "best": grid.best_params},
        "run": {**asdict(config), "data": list(config.data), "model": dict(config.model),
                "preprocess": dict(config.preprocess)},
        "environment": _environment(),
    }
    info = {
        "data": {"files": summary["files"], "layouts": summary["layouts"], "split": config.split,
                 "random_state": config.random_state, "rows": summary["rows"],
                 "train_rows_sha256": train_rows_sha256},
        "config": run_config,
    }
    model = TrainedModel(preprocessor, detector, threshold, info)
    paths = write_report(out, ReportInput(
        title=f"CNN-LSTM intrusion detection: test split of {', '.join(Path(p).name for p in config.data)}",
        report=report, history=detector.history_, best_epoch=detector.best_epoch_, data=summary,
        config=run_config, grid_markdown=None if grid is None else grid.to_markdown(),
        notes=[f"Split {config.split}, seed {config.random_state}: the preprocessor was fitted on the training "
               "rows only, early stopping and any threshold or grid choice used the validation rows only, and "
               "the test rows were scored once."],
    ))
    if grid is not None:
        from iotids.artifacts import write_atomic

        paths["grid.md"] = write_atomic(out / "grid.md", grid.to_markdown())
    save_model(out, model, history=detector.history_, metrics_json=report.to_json())
    paths["manifest.json"] = out / "manifest.json"
    return TrainResult(model, report, paths, summary, grid)


def evaluate_model(
    model_dir: str | os.PathLike[str],
    data: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    progress: bool = True,
    log: Callable[[str], None] = lambda message: None,
) -> EvaluationResult:
    """Score every (cleaned, de-duplicated) flow of ``data`` with a model directory; write metrics and figures."""
    from iotids.artifacts import load_model
    from iotids.data import clean_flows, load_flows
    from iotids.evaluate.metrics import binary_report
    from iotids.evaluate.report import ReportInput, write_report

    model_dir, out = Path(model_dir), Path(out)
    if out.resolve() == model_dir.resolve():
        raise InvalidParameterError("--out must differ from --model: the model directory keeps its own metrics.json.")
    if not data:
        raise InvalidParameterError("evaluate needs at least one data path (--data).")
    model = load_model(model_dir)
    log(f"model {model.name} from {model_dir}, threshold {model.threshold:g}")
    frame, load_report = load_flows([str(p) for p in data], progress=progress)
    frame, cleaning = clean_flows(frame, load_report=load_report)
    if len(frame) == 0:
        raise InvalidParameterError("no flow is left after cleaning; nothing to evaluate.")
    start = time.perf_counter()
    scores = model.score_frame(frame)
    flows_per_s = len(frame) / (time.perf_counter() - start)
    report = binary_report(frame["is_attack"].to_numpy(np.int8), scores, model.threshold, families=frame["family"])
    log(f"{len(frame):,} flows: F1 {report.f1:.5f}, false alarm rate {report.false_alarm_rate:.5f}")
    summary = {
        "files": [f.file for f in load_report.files],
        "layouts": sorted({f.layout for f in load_report.files}),
        "rows": {"evaluated": len(frame)},
        "attacks": {"evaluated": int(frame["is_attack"].sum())},
        "labels": {"evaluated": {str(k): int(v) for k, v in frame["label"].value_counts().items() if v}},
        "cleaning": cleaning.to_dict()["total"],
        "overlap": "these rows may include the model's own training rows; its test metrics are in "
                   f"{model_dir / 'metrics.json'}",
    }
    history = list(getattr(model.detector, "history_", []) or [])
    config = {"model": str(model_dir), "detector": model.name, "threshold": model.threshold,
              "scoring_flows_per_s": round(flows_per_s), "trained_on": model.info.get("data", {})}
    paths = write_report(out, ReportInput(
        title=f"{model.name} evaluated on {', '.join(Path(p).name for p in data)}", report=report, history=history,
        best_epoch=getattr(model.detector, "best_epoch_", None), data=summary, config=config,
    ))
    return EvaluationResult(report, paths, summary)
