"""The paper's figures 3-7 with matplotlib's Agg canvas (no display, no pyplot state).

=============================  =========================================  ====================
function                       figure                                     paper
=============================  =========================================  ====================
:func:`plot_accuracy`          training / validation accuracy per epoch   figure 3
:func:`plot_loss`              training / validation loss per epoch       figure 4
:func:`plot_confusion_matrix`  confusion matrix at the threshold          figure 5
:func:`plot_pr`                precision-recall curve with AP             figure 6
:func:`plot_roc`               ROC curve with AUC                         figure 7
=============================  =========================================  ====================

Each takes an optional ``ax`` (to draw into an existing figure) and returns the ``Figure``;
:func:`figure_png` renders one to PNG bytes. Where the paper's linear axes would flatten a good detector's
curves into its corners, these zoom in: the loss and the ROC curve's false positive rate are on log scales, the
precision and true positive rate axes start just below the lowest curve, and both curves mark the point of the
report's threshold.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from iotids.evaluate.metrics import BinaryReport

__all__ = ["figure_png", "plot_accuracy", "plot_confusion_matrix", "plot_loss", "plot_pr", "plot_roc"]

FIGSIZE = (6.4, 4.8)


def _axes(ax: Any) -> tuple[Any, Any]:
    if ax is not None:
        return ax.figure, ax
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def figure_png(fig: Any, *, dpi: int = 110) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _plot_history(history: Sequence[dict[str, Any]], key: str, title: str, ylabel: str, ax: Any,
                  best_epoch: int | None, *, log: bool = False) -> Any:
    from matplotlib.ticker import MaxNLocator

    fig, ax = _axes(ax)
    epochs = [int(r["epoch"]) for r in history]
    train = [(e, r[key]) for e, r in zip(epochs, history, strict=True) if r.get(key) is not None]
    if train:
        ax.plot(*zip(*train, strict=True), marker="o", ms=3, label="training")
    val = [(e, r[f"val_{key}"]) for e, r in zip(epochs, history, strict=True) if r.get(f"val_{key}") is not None]
    if val:
        ax.plot(*zip(*val, strict=True), marker="o", ms=3, label="validation")
    if best_epoch:
        ax.axvline(best_epoch, color="grey", ls=":", lw=1, label=f"best epoch ({best_epoch})")
    if not history:
        ax.text(0.5, 0.5, "no training history", ha="center", va="center", transform=ax.transAxes)
    if log and train + val and min(v for _, v in train + val) > 0:
        ax.set_yscale("log")
    ax.set(title=title, xlabel="epoch", ylabel=ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    if history:
        ax.legend()
    return fig


def plot_accuracy(history: Sequence[dict[str, Any]], *, ax: Any = None, best_epoch: int | None = None) -> Any:
    """Figure 3: training and validation accuracy per epoch."""
    return _plot_history(history, "accuracy", "Training and validation accuracy", "accuracy", ax, best_epoch)


def plot_loss(history: Sequence[dict[str, Any]], *, ax: Any = None, best_epoch: int | None = None) -> Any:
    """Figure 4: training and validation binary cross-entropy per epoch (log scale: the last epochs' differences
    are a hundredth of the first epoch's loss)."""
    return _plot_history(history, "loss", "Training and validation loss", "binary cross-entropy (log scale)", ax,
                         best_epoch, log=True)


def plot_confusion_matrix(report: BinaryReport, *, ax: Any = None) -> Any:
    """Figure 5: the confusion matrix (rows: true class, columns: predicted), counts and row shares."""
    fig, ax = _axes(ax)
    cells = np.array([[report.tn, report.fp], [report.fn, report.tp]], dtype=float)
    shares = cells / np.maximum(cells.sum(axis=1, keepdims=True), 1)
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(2):
        for j in range(2):
            ax.text(j, i, f"{int(cells[i, j]):,}\n({100 * shares[i, j]:.2f} %)", ha="center", va="center",
                    color="white" if shares[i, j] > 0.5 else "black", fontsize=11)
    ax.set_xticks([0, 1], ["benign", "attack"])
    ax.set_yticks([0, 1], ["benign", "attack"])
    ax.set(xlabel="predicted", ylabel="true", title=f"Confusion matrix (threshold {report.threshold:.4g})")
    return fig


def _no_curve(ax: Any) -> None:
    ax.text(0.5, 0.5, "undefined: the rows hold one class only", ha="center", va="center", transform=ax.transAxes)


def _chance(ax: Any, x: Any, y: Any) -> None:
    """The dashed line of a detector without skill, drawn once per axes (several curves may share them)."""
    if not any(line.get_gid() == "chance" for line in ax.lines):
        ax.plot(x, y, color="grey", ls="--", lw=1, gid="chance")


def _floor(ax: Any) -> float:
    """A y axis bottom just below the lowest point of the curves on ``ax`` (not the chance line): the axis zooms in
    on curves that stay near 1, whichever of them runs lowest."""
    low = min(float(np.min(line.get_ydata())) for line in ax.lines if line.get_gid() != "chance")
    return max(0.0, low - max(0.05 * (1 - low), 0.002))


def _curve_label(label: str | None, area: str) -> str:
    return f"{label} ({area})" if label else f"({area})"


def plot_pr(report: BinaryReport, *, ax: Any = None, label: str | None = None) -> Any:
    """Figure 6: precision against recall over all thresholds, with the average precision and a dot at the
    report's threshold. The precision axis starts just below the lowest curve, which ends at recall 1 on the share
    of attacks (dashed: the precision of flagging every flow)."""
    fig, ax = _axes(ax)
    bottom = 0.0
    if report.pr_curve is None:
        _no_curve(ax)
    else:
        recall, precision = report.pr_curve
        share = (report.tp + report.fn) / report.n
        (line,) = ax.step(recall, precision, where="post",
                          label=_curve_label(label, f"AP = {report.average_precision:.4f}"))
        ax.plot([report.recall], [report.precision], "o", color=line.get_color())
        _chance(ax, [0, 1], [share, share])
        ax.legend(loc="lower left")
        bottom = _floor(ax)
    ax.set(title=f"Precision-recall curve (dot: threshold {report.threshold:.4g})", xlabel="recall",
           ylabel="precision", xlim=(0, 1.01), ylim=(bottom, 1 + 0.01 * (1 - bottom)))
    ax.grid(alpha=0.3)
    return fig


def plot_roc(report: BinaryReport, *, ax: Any = None, label: str | None = None) -> Any:
    """Figure 7: true positive rate against false positive rate, with the area under the curve and a dot at the
    report's threshold. The false positive rate is on a log scale down to half a benign flow (the low false alarm
    rates that a deployment runs at), the true positive rate starts just below the lowest curve; the dashed line
    is chance."""
    fig, ax = _axes(ax)
    left = 0.5 / max(report.tn + report.fp, 1)
    bottom = 0.0
    if report.roc_curve is None:
        _no_curve(ax)
    else:
        fpr, tpr = report.roc_curve
        start = max(int(np.searchsorted(fpr, 0.0, side="right")) - 1, 0)  # the last point without a false positive
        (line,) = ax.plot(np.maximum(fpr[start:], left), tpr[start:],
                          label=_curve_label(label, f"AUC = {report.roc_auc:.4f}"))
        ax.plot([max(report.false_alarm_rate, left)], [report.recall], "o", color=line.get_color())
        chance = np.geomspace(left, 1, 50)
        _chance(ax, chance, chance)
        ax.legend(loc="lower right")
        bottom = _floor(ax)
    ax.set_xscale("log")
    ax.set(title=f"ROC curve (dot: threshold {report.threshold:.4g})", xlabel="false positive rate (log scale)",
           ylabel="true positive rate", xlim=(left, 1), ylim=(bottom, 1 + 0.01 * (1 - bottom)))
    ax.grid(alpha=0.3, which="both")
    return fig
