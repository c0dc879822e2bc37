"""Grid search over batch size x learning rate (x model width), scored on the validation rows only.

Every candidate is a :class:`~iotids.models.cnn_lstm.CnnLstmDetector` trained on the training rows with early
stopping on the validation rows; its score is the validation loss of its best epoch (lower is better, ties
broken by the order of the grid). The best candidate is kept as trained, so the test rows are scored once, by
the caller, after the search. ``width`` multiplies the convolution filters, the LSTM units and the dense units;
``batch_size`` is the batch of the first half of the epochs (the detector's ``batch_growth`` enlarges the rest).

The default grid keeps the default width: width 2 trained and scored at about half the speed, with test figures
within the seeds' spread of the default width's on both data sets (three seeds each; benchmarks/results/train.md,
"The grid's width"). Wider candidates are there when asked for (``widths``, ``iotids train --grid-width``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from iotids.errors import InvalidParameterError

__all__ = ["DEFAULT_GRID", "GridResult", "check_widths", "grid_search", "widened"]

#: The grid of ``iotids train --grid``.
DEFAULT_GRID: dict[str, tuple[float, ...]] = {
    "batch_size": (256, 1024),
    "learning_rate": (3e-3, 1e-2),
    "width": (1,),
}


def widened(params: Mapping[str, Any], width: int) -> dict[str, Any]:
    """``params`` of a CnnLstmDetector with filters, LSTM units and dense units multiplied by ``width``."""
    from iotids.models.cnn_lstm import CnnLstmDetector

    defaults = CnnLstmDetector().get_params()
    merged = {**defaults, **params}
    return {**merged, "filters": tuple(int(f) * width for f in merged["filters"]),
            "lstm_units": int(merged["lstm_units"]) * width, "dense_units": int(merged["dense_units"]) * width}


def check_widths(widths: Sequence[int]) -> None:
    """Raise :class:`InvalidParameterError` unless every width is an int >= 1."""
    bad = [w for w in widths if isinstance(w, bool) or not isinstance(w, int | np.integer) or w < 1]
    if bad:
        raise InvalidParameterError(f"Model widths must be ints >= 1. Got {bad[0]!r} instead.")


@dataclass
class GridResult:
    """One row per candidate (``table``), the index of the best and the best detector, fitted."""

    table: list[dict[str, Any]]
    best_index: int
    best: Any

    @property
    def best_params(self) -> dict[str, Any]:
        row = self.table[self.best_index]
        return {k: row[k] for k in ("batch_size", "learning_rate", "width")}

    def to_markdown(self) -> str:
        """The results as a markdown table (validation figures only), the best row in bold."""
        lines = ["| batch size | learning rate | width | epochs | best epoch | val loss | val accuracy | val F1 "
                 "| val AP | train flows/s | seconds |",
                 "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for i, row in enumerate(self.table):
            cells = [f"{row['batch_size']}", f"{row['learning_rate']:g}", f"{row['width']}", f"{row['epochs']}",
                     f"{row['best_epoch']}", f"{row['val_loss']:.5f}", f"{row['val_accuracy']:.5f}",
                     f"{row['val_f1']:.5f}", f"{row['val_average_precision']:.5f}",
                     f"{row['train_flows_per_s']:,.0f}", f"{row['seconds']:.1f}"]
            if i == self.best_index:
                cells = [f"**{c}**" for c in cells]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"


def grid_search(
    X: np.ndarray,
    y: np.ndarray,
    *,
    eval_set: tuple[np.ndarray, np.ndarray],
    batch_sizes: Sequence[int] = DEFAULT_GRID["batch_size"],  # type: ignore[assignment]
    learning_rates: Sequence[float] = DEFAULT_GRID["learning_rate"],
    widths: Sequence[int] = DEFAULT_GRID["width"],  # type: ignore[assignment]
    params: Mapping[str, Any] | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> GridResult:
    """Train one CNN-LSTM per grid point and keep the one with the lowest validation loss.

    Parameters
    ----------
    X, y : training rows and labels.
    eval_set : validation rows and labels: early stopping and the score of each candidate.
    batch_sizes, learning_rates, widths : the grid.
    params : other CnnLstmDetector parameters shared by every candidate (e.g. ``random_state``, ``max_epochs``).
    log : receives one line per finished candidate.
    """
    from sklearn.metrics import average_precision_score

    from iotids.models.cnn_lstm import CnnLstmDetector

    grid = list(itertools.product(batch_sizes, learning_rates, widths))
    if not grid:
        raise InvalidParameterError("grid_search needs at least one batch size, learning rate and width.")
    check_widths(widths)
    X_val, y_val = eval_set
    y_val = np.asarray(y_val)
    table: list[dict[str, Any]] = []
    best_index, best, best_loss = 0, None, np.inf
    for i, (batch_size, learning_rate, width) in enumerate(grid):
        candidate = CnnLstmDetector(**{**widened(params or {}, int(width)), "batch_size": int(batch_size),
                                       "learning_rate": float(learning_rate)})
        candidate.fit(X, y, eval_set=eval_set)
        scores = candidate.decision_function(X_val)
        flagged = scores >= 0.5
        tp = int(np.sum(flagged & (y_val == 1)))
        errors = int(np.sum(flagged != (y_val == 1)))
        best_record = candidate.history_[candidate.best_epoch_ - 1]
        row = {
            "batch_size": int(batch_size), "learning_rate": float(learning_rate), "width": int(width),
            "epochs": len(candidate.history_), "best_epoch": candidate.best_epoch_,
            "val_loss": float(best_record["val_loss"]), "val_accuracy": float(best_record["val_accuracy"]),
            "val_f1": 2 * tp / (2 * tp + errors) if tp + errors else 0.0,
            "val_average_precision": float(average_precision_score(y_val, scores)),
            "train_flows_per_s": float(candidate.train_flows_per_s_), "seconds": float(candidate.train_seconds_),
        }
        table.append(row)
        log(f"grid {i + 1}/{len(grid)}: batch {batch_size}, lr {learning_rate:g}, width {width}: val loss "
            f"{row['val_loss']:.5f}, val F1 {row['val_f1']:.5f} ({row['seconds']:.0f} s)")
        if row["val_loss"] < best_loss:
            best_index, best, best_loss = i, candidate, row["val_loss"]
        if candidate.interrupted_:
            break
    return GridResult(table, best_index, best)
