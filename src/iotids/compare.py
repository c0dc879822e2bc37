"""The paper's Table 1, honestly: every detector trained and tested on the very same split, in one run.

The paper compares its CNN-LSTM with an SVM, a Random Forest and a deep autoencoder using figures taken from other
papers, which cannot come from one confusion matrix. :func:`compare_models` instead loads the data once, splits it
once per protocol, fits one preprocessor on the training rows and gives every detector the same three matrices:
each is fitted on the training split (validation rows as ``eval_set``: early stopping, calibration, the
autoencoder's threshold), scored once on the test split and judged at threshold 0.5 from one confusion matrix.
Every model records a SHA-256 of the test rows it was scored on, and the run fails unless all agree.

Protocols: ``random`` (stratified 70/15/15) and ``time`` (train on the earliest flows, test on the latest), the
second because a random split flatters every model on CICIDS2017.

Every fitted model is saved as a model directory (:mod:`iotids.artifacts`: preprocessor, detector, threshold 0.5,
test metrics) in ``OUT/models/<split>/<model>/``, so any of them can be used by ``iotids detect``.
:func:`write_comparison` writes ``comparison.csv``, ``comparison.md`` (ours beside the paper's published Table 1
row, marked as published), ``roc.png`` and ``pr.png``.
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from iotids.errors import InvalidParameterError
from iotids.models.base import DETECTORS, Detector, detector_class

__all__ = [
    "DEFAULT_MODELS",
    "PUBLISHED",
    "Comparison",
    "ModelResult",
    "compare_models",
    "write_comparison",
]


#: The models of a full comparison, in table order (each a name of ``iotids.models.base.DETECTORS``).
DEFAULT_MODELS: tuple[str, ...] = ("cnn-lstm", "svm", "rf", "autoencoder", "autoencoder-shone", "lightgbm")

#: Display names, in the paper's words where it has the model.
TITLES = {"cnn-lstm": "CNN-LSTM", "svm": "SVM", "rf": "Random Forest", "autoencoder": "Deep autoencoder (anomaly)",
          "autoencoder-shone": "Deep autoencoder (Shone et al.)", "lightgbm": "LightGBM"}

#: Table 1 of the paper (section 4), as published (fractions). The CNN-LSTM's false alarm rate is the 0.14 % its
#: section 5.2 states; the confusion matrix printed beside it (TN 165,703, FP 2,174) gives 1.30 %.
PUBLISHED: dict[str, dict[str, float]] = {
    "svm": {"accuracy": 0.9767, "precision": 0.9645, "recall": 0.9589, "f1": 0.9567},
    "rf": {"accuracy": 0.9785, "precision": 0.9775, "recall": 0.9793, "f1": 0.9784},
    "autoencoder": {"accuracy": 0.9896, "precision": 0.9892, "recall": 0.9899, "f1": 0.9895},
    "autoencoder-shone": {"accuracy": 0.9896, "precision": 0.9892, "recall": 0.9899, "f1": 0.9895},
    "cnn-lstm": {"accuracy": 0.9952, "precision": 0.9870, "recall": 0.9924, "f1": 0.9897,
                 "false_alarm_rate": 0.0014},
}
PUBLISHED_NAMES = {"svm": "SVM", "rf": "Random Forest", "autoencoder": "Deep Autoencoder",
                   "autoencoder-shone": "Deep Autoencoder", "cnn-lstm": "Proposed CNN-LSTM"}

METRICS = ("accuracy", "precision", "recall", "f1", "false_alarm_rate", "roc_auc", "average_precision")
SPLITS = ("random", "time")
THRESHOLD = 0.5
#: Rows scored for the throughput figure (the test matrix repeated), so that small test splits time reliably.
THROUGHPUT_ROWS = 100_000


@dataclass(frozen=True, slots=True)
class ModelResult:
    """One detector on one split: the test report and the costs."""

    model: str
    split: str
    report: Any  # iotids.evaluate.metrics.BinaryReport
    train_seconds: float
    throughput: float  # flows/s of batch scoring
    model_bytes: int
    test_rows_sha256: str
    eval_rows_sha256: str

    def row(self) -> dict[str, Any]:
        """The flat CSV row."""
        report = self.report
        return {
            "model": self.model, "split": self.split, "source": "ours",
            **{name: float(getattr(report, name)) for name in METRICS},
            "tn": int(report.tn), "fp": int(report.fp), "fn": int(report.fn), "tp": int(report.tp),
            "threshold": float(report.threshold), "train_seconds": round(self.train_seconds, 3),
            "throughput_flows_per_s": round(self.throughput), "model_bytes": self.model_bytes,
            "test_rows": int(report.tn + report.fp + report.fn + report.tp),
            "test_rows_sha256": self.test_rows_sha256,
        }


@dataclass(slots=True)
class Comparison:
    """All results of one ``compare`` run and what it ran on."""

    results: list[ModelResult]
    summaries: dict[str, dict[str, Any]]  # split → data summary (rows, attacks per part)
    random_state: int
    command: str = ""
    environment: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """Our rows, then the paper's published rows (``source == "published"``, ``split == "paper"``)."""
        rows = [r.row() for r in self.results]
        for model in dict.fromkeys(r.model for r in self.results):
            if model in PUBLISHED:
                rows.append({"model": model, "split": "paper", "source": "published", **PUBLISHED[model]})
        return pd.DataFrame(rows, columns=list(self.results[0].row()) if self.results else None)


def _dir_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def _throughput(detector: Detector, X: np.ndarray) -> float:
    """Flows/s of ``decision_function`` on the test matrix repeated to at least ``THROUGHPUT_ROWS`` rows."""
    batch = np.tile(X, (math.ceil(THROUGHPUT_ROWS / X.shape[0]), 1))
    detector.decision_function(X[:1024])  # warm-up (lazy initialisation, caches)
    start = time.perf_counter()
    detector.decision_function(batch)
    return batch.shape[0] / (time.perf_counter() - start)


def _check_models(models: Sequence[str]) -> list[str]:
    unknown = [m for m in models if m not in DETECTORS]
    if unknown or not models:
        raise InvalidParameterError(
            f"The 'models' parameter of compare must name models among {', '.join(DETECTORS)}. "
            f"Got {', '.join(models) or 'none'} instead."
        )
    return list(dict.fromkeys(models))


def _factory(name: str, random_state: int, params: Mapping[str, Any]) -> Callable[[], Detector]:
    """A maker of fresh ``name`` detectors; refuses parameters the class does not take, before any training."""
    cls = detector_class(name)
    kwargs = {"random_state": random_state, **params}
    try:
        cls(**kwargs)
    except TypeError as exc:
        raise InvalidParameterError(f"{name}: {exc}") from None
    return lambda: cls(**kwargs)


def compare_models(
    paths: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    models: Sequence[str] = DEFAULT_MODELS,
    splits: Sequence[str] = ("random",),
    random_state: int = 0,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> Comparison:
    """Train and test ``models`` on the same split(s) of the flow files at ``paths``.

    Parameters
    ----------
    paths : flow CSV files or folders (any layout ``load_flows`` reads).
    out : run directory; each fitted model is saved as a model directory ``out/models/<split>/<model>/``.
    models : registry names (``iotids.models.base.DETECTORS``).
    splits : protocols among ``"random"`` and ``"time"``.
    random_state : seed of the split and of every model.
    params : per-model constructor overrides, e.g. ``{"rf": {"n_estimators": 50}}``.
    log : receives one progress line per step (the CLI prints them to stderr).

    Returns
    -------
    Comparison
        The results in the order split × model; :func:`write_comparison` writes them out.

    Examples
    --------
    >>> result = compare_models(["data/"], "runs/cmp", models=["svm", "lightgbm"])  # doctest: +SKIP
    """
    from iotids.artifacts import DETECTOR_DIR, TrainedModel, save_model
    from iotids.data import load_dataset, split_flows
    from iotids.evaluate.metrics import binary_report
    from iotids.features.preprocess import FlowPreprocessor
    from iotids.train import rows_sha256

    models = _check_models(models)
    splits = list(dict.fromkeys(splits))
    if not splits or any(s not in SPLITS for s in splits):
        raise InvalidParameterError(
            f"The 'splits' parameter of compare must hold 'random' and/or 'time'. Got {splits} instead."
        )
    params = dict(params or {})
    if set(params) - set(models):
        raise InvalidParameterError(
            f"Parameters were given for {', '.join(sorted(set(params) - set(models)))}, which is not among the "
            f"compared models ({', '.join(models)})."
        )
    detectors: dict[str, Callable[[], Detector]] = {name: _factory(name, random_state, params.get(name, {}))
                                                    for name in models}
    out = Path(out)
    log(f"loading {', '.join(str(p) for p in paths)}")
    dataset = load_dataset(list(paths), split=splits[0], random_state=random_state)
    files, layouts = (dataset.summary()[key] for key in ("files", "layouts"))
    results: list[ModelResult] = []
    summaries: dict[str, dict[str, Any]] = {}
    for strategy in splits:
        parts = (dataset.splits if strategy == splits[0]
                 else split_flows(dataset.frame, strategy=strategy, random_state=random_state))
        train, val, test = parts
        summaries[strategy] = {name: {"rows": len(part), "attacks": int(part["is_attack"].sum())}
                               for name, part in zip(("train", "val", "test"), parts, strict=True)}
        preprocessor = FlowPreprocessor().fit(train)
        X_train, X_val, X_test = (preprocessor.transform(part) for part in parts)
        y_train, y_val, y_test = (part["is_attack"].to_numpy(np.int8) for part in parts)
        columns = preprocessor.input_columns_
        info = {"data": {"files": files, "layouts": layouts, "split": strategy, "random_state": random_state,
                         "rows": {k: v["rows"] for k, v in summaries[strategy].items()},
                         "train_rows_sha256": rows_sha256(train, columns)},
                "made_by": "iotids compare"}
        split_results = []
        for i, name in enumerate(models, 1):
            log(f"[{strategy} {i}/{len(models)}] {name}: training on {len(train):,} flows")
            detector = detectors[name]()
            start = time.perf_counter()
            detector.fit(X_train, y_train, eval_set=(X_val, y_val))
            train_seconds = time.perf_counter() - start
            scores = detector.decision_function(X_test)
            report = binary_report(y_test, scores, threshold=THRESHOLD, families=test["family"])
            directory = out / "models" / strategy / name
            history = getattr(detector, "history_", None)
            save_model(directory, TrainedModel(preprocessor, detector, THRESHOLD, info), metrics_json=report.to_json(),
                       history=history if history and all(isinstance(h, dict) for h in history) else None)
            result = ModelResult(name, strategy, report, train_seconds, _throughput(detector, X_test),
                                 _dir_bytes(directory / DETECTOR_DIR), rows_sha256(test, columns),
                                 rows_sha256(val, columns))
            log(f"[{strategy} {i}/{len(models)}] {name}: F1 {report.f1:.4f}, false alarm rate "
                f"{report.false_alarm_rate:.4f}, {train_seconds:.1f} s")
            split_results.append(result)
        if len({r.test_rows_sha256 for r in split_results}) != 1:
            raise RuntimeError(f"models of the {strategy} split were scored on different test rows")
        results += split_results
    environment = {"cpus": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version()}
    return Comparison(results, summaries, random_state, environment=environment)


# --------------------------------------------------------------------------------------------------- output
def _pct(value: Any) -> str:
    return "—" if value is None or pd.isna(value) else f"{100 * float(value):.2f} %"


def _num(value: Any, fmt: str) -> str:
    return "—" if value is None or pd.isna(value) else format(value, fmt)


_SPLIT_TITLES = {"random": "Random split (stratified 70/15/15)", "time": "Time split (earliest 70 % train, "
                 "next 15 % validation, latest 15 % test)"}


def _markdown(comparison: Comparison, frame: pd.DataFrame) -> str:
    ours = frame[frame["source"] == "ours"]
    published = frame[frame["source"] == "published"].set_index("model")
    lines = ["# Detector comparison on one split", ""]
    if comparison.command:
        lines += [f"Command: `{comparison.command}`", ""]
    env = comparison.environment
    lines += [
        f"Seed {comparison.random_state}; {env.get('cpus')} CPUs ({env.get('machine')}), Python {env.get('python')}. "
        f"Every model was fitted on the training rows (validation rows for early stopping, calibration and the "
        f"autoencoder's threshold) and scored once on the same test rows; every metric of a row comes from its "
        f"one confusion matrix at threshold {THRESHOLD} (for the anomaly autoencoder, 0.5 is its reconstruction-"
        f"error threshold chosen on validation). Throughput: batch scoring of the test matrix repeated to "
        f"{THROUGHPUT_ROWS:,} rows (after a warm-up call); size: the detector's saved files (the preprocessor, "
        f"the same for all, excluded). Training time includes the ONNX conversion of the SVM and the forests.",
        "",
        "Rows marked *published* are the paper's Table 1. They come from other papers, not from one split or one "
        "confusion matrix, and are shown for reference only. The CNN-LSTM's published false alarm rate (0.14 %) "
        "is the one its text states; the confusion matrix it prints (TN 165,703, FP 2,174) gives 1.30 %.",
        "",
    ]
    header = ("| model | source | accuracy | precision | recall | F1 | false alarm rate | ROC-AUC | TN | FP | FN | "
              "TP | training s | flows/s | size |")
    for strategy in dict.fromkeys(ours["split"]):
        summary = comparison.summaries[strategy]
        rows = ", ".join(f"{part} {s['rows']:,} ({s['attacks']:,} attacks)" for part, s in summary.items())
        digest = ours.loc[ours["split"] == strategy, "test_rows_sha256"].iloc[0]
        lines += [f"## {_SPLIT_TITLES[strategy]}", "", f"Rows: {rows}. Test rows SHA-256 (identical for every "
                  f"model): `{digest[:16]}…`", "", header, "|" + "---|" * 2 + "---:|" * 13]
        for _, row in ours[ours["split"] == strategy].iterrows():
            lines.append(
                f"| {TITLES.get(row['model'], row['model'])} | ours | {_pct(row['accuracy'])} | "
                f"{_pct(row['precision'])} | {_pct(row['recall'])} | {_pct(row['f1'])} | "
                f"{_pct(row['false_alarm_rate'])} | {_num(row['roc_auc'], '.4f')} | {int(row['tn']):,} | "
                f"{int(row['fp']):,} | {int(row['fn']):,} | {int(row['tp']):,} | {row['train_seconds']:.1f} | "
                f"{int(row['throughput_flows_per_s']):,} | {row['model_bytes'] / 1e6:.2f} MB |"
            )
            if row["model"] in published.index:
                pub = published.loc[row["model"]]
                lines.append(
                    f"| {PUBLISHED_NAMES[row['model']]} | *published* | {_pct(pub['accuracy'])} | "
                    f"{_pct(pub['precision'])} | {_pct(pub['recall'])} | {_pct(pub['f1'])} | "
                    f"{_pct(pub.get('false_alarm_rate'))} | — | — | — | — | — | — | — | — |"
                )
        lines += ["", *_family_table(comparison, strategy), ""]
    strategies = list(dict.fromkeys(ours["split"]))
    if len(strategies) > 1:
        lines += ["## Both protocols side by side", "",
                  "| model | " + " | ".join(f"{m} ({s})" for m in ("F1", "false alarm rate", "ROC-AUC")
                                          for s in strategies) + " |",
                  "|---|" + "---:|" * (3 * len(strategies))]
        for model in dict.fromkeys(ours["model"]):
            cells = []
            for metric, fmt in (("f1", _pct), ("false_alarm_rate", _pct),
                                ("roc_auc", lambda v: _num(v, ".4f"))):
                for s in strategies:
                    match = ours[(ours["model"] == model) & (ours["split"] == s)]
                    cells.append(fmt(match[metric].iloc[0]) if len(match) else "—")
            lines.append(f"| {TITLES.get(model, model)} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["Figures: `roc.png` (ROC curves), `pr.png` (precision-recall curves).", ""]
    return "\n".join(lines)


def _family_table(comparison: Comparison, strategy: str) -> list[str]:
    """Detection rate (recall) of each attack family in the test rows, per model."""
    results = [r for r in comparison.results if r.split == strategy]
    families = sorted({f for r in results for f in r.report.per_family})
    if not families:
        return []
    support = {f: next(r.report.per_family[f]["support"] for r in results if f in r.report.per_family)
               for f in families}
    lines = ["Detection rate per attack family (test flows of the family flagged at the threshold):", "",
             "| model | " + " | ".join(f"{f} ({support[f]:,})" for f in families) + " |",
             "|---|" + "---:|" * len(families)]
    for r in results:
        cells = [_pct(r.report.per_family[f]["recall"]) if f in r.report.per_family else "—" for f in families]
        lines.append(f"| {TITLES.get(r.model, r.model)} | " + " | ".join(cells) + " |")
    return lines


def _figure(comparison: Comparison, kind: str) -> Any:
    """One figure, one panel per split, every model's ROC (``kind="roc"``) or precision-recall curve."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from iotids.evaluate.plots import plot_pr, plot_roc

    strategies = list(dict.fromkeys(r.split for r in comparison.results))
    fig = Figure(figsize=(6.5 * len(strategies), 5.5), layout="constrained")
    FigureCanvasAgg(fig)
    plot = plot_roc if kind == "roc" else plot_pr
    for ax, strategy in zip(fig.subplots(1, len(strategies), squeeze=False)[0], strategies, strict=True):
        for result in (r for r in comparison.results if r.split == strategy):
            plot(result.report, ax=ax, label=TITLES.get(result.model, result.model))
        ax.set_title(f"{'ROC' if kind == 'roc' else 'Precision-recall'} curves, {strategy} split "
                     "(dots: each model's threshold)")
    return fig


def write_comparison(comparison: Comparison, out: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``comparison.csv``, ``comparison.md``, ``roc.png`` and ``pr.png`` into ``out`` (atomically)."""
    from iotids.artifacts import write_atomic
    from iotids.evaluate.plots import figure_png

    out = Path(out)
    frame = comparison.to_frame()
    paths = {name: out / name for name in ("comparison.csv", "comparison.md", "roc.png", "pr.png")}
    write_atomic(paths["comparison.csv"], frame.to_csv(index=False).encode())
    write_atomic(paths["comparison.md"], _markdown(comparison, frame).encode())
    for kind in ("roc", "pr"):
        write_atomic(paths[f"{kind}.png"], figure_png(_figure(comparison, kind)))
    return paths

