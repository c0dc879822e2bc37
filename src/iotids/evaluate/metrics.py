"""Binary detection metrics, every thresholded number from ONE confusion matrix.

Direction of each name: ``accuracy``, ``precision``, ``recall``, ``f1``, ``roc_auc`` and ``average_precision``
are higher-better; ``false_alarm_rate`` (FP / (FP + TN), the share of benign flows flagged) is lower-better.
A row is flagged as an attack when its score is ``>= threshold``. Ratios with an empty denominator are 0.0;
``roc_auc`` and ``average_precision`` are ``None`` when the rows hold a single class (they are undefined).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from iotids.errors import InvalidParameterError
from iotids.schema import BENIGN

__all__ = ["METRIC_KEYS", "BinaryReport", "binary_report"]

#: The keys of ``metrics.json``, exactly.
METRIC_KEYS = ("accuracy", "precision", "recall", "f1", "false_alarm_rate", "roc_auc", "average_precision",
               "threshold", "confusion_matrix", "per_family")


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


@dataclass(frozen=True)
class BinaryReport:
    """Test-set figures of one detector at one threshold, with the curves for the figures.

    ``per_family`` maps each attack family to ``{"support", "detected", "recall"}``: how many of its flows
    there are, how many the binary detector flagged, and the share.
    """

    tn: int
    fp: int
    fn: int
    tp: int
    threshold: float
    roc_auc: float | None
    average_precision: float | None
    per_family: dict[str, dict[str, float | int]] = field(default_factory=dict)
    roc_curve: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)  # (fpr, tpr)
    pr_curve: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)  # (recall, precision)

    @property
    def n(self) -> int:
        return self.tn + self.fp + self.fn + self.tp

    @property
    def accuracy(self) -> float:
        return _ratio(self.tp + self.tn, self.n)

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def false_alarm_rate(self) -> float:
        return _ratio(self.fp, self.fp + self.tn)

    @property
    def confusion_matrix(self) -> dict[str, int]:
        return {"tn": self.tn, "fp": self.fp, "fn": self.fn, "tp": self.tp}

    def to_dict(self) -> dict[str, Any]:
        """The content of ``metrics.json``: exactly the keys of :data:`METRIC_KEYS`."""
        return {
            "accuracy": self.accuracy,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "false_alarm_rate": self.false_alarm_rate,
            "roc_auc": self.roc_auc,
            "average_precision": self.average_precision,
            "threshold": self.threshold,
            "confusion_matrix": self.confusion_matrix,
            "per_family": {k: dict(v) for k, v in self.per_family.items()},
        }

    def to_json(self) -> str:
        """The text of ``metrics.json``."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"


def binary_report(
    y_true: Any, scores: Any, threshold: float = 0.5, *, families: Any = None
) -> BinaryReport:
    """Score-based report of a binary detector.

    Parameters
    ----------
    y_true : 0 (benign) / 1 (attack) per row.
    scores : float per row, higher = more likely an attack.
    threshold : a row is flagged when ``score >= threshold``.
    families : optional attack family per row (``BENIGN`` for benign rows), for the per-family recall.

    Examples
    --------
    >>> r = binary_report([0, 0, 1, 1], [0.1, 0.6, 0.7, 0.9])
    >>> (r.tn, r.fp, r.fn, r.tp), r.false_alarm_rate
    ((1, 1, 0, 2), 0.5)
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    y = np.asarray(y_true).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape or not np.isin(y, (0, 1)).all():
        raise InvalidParameterError(
            f"binary_report needs one 0/1 label per score. Got {y.shape[0]} labels with values "
            f"{np.unique(y)[:5].tolist()} for {s.shape[0]} scores."
        )
    if not np.isfinite(s).all():
        raise InvalidParameterError(f"binary_report: {int((~np.isfinite(s)).sum())} scores are NaN or infinite.")
    if not np.isfinite(threshold):
        raise InvalidParameterError(f"The 'threshold' parameter of binary_report must be finite. Got {threshold}.")
    y = y.astype(bool)
    flagged = s >= threshold
    tp = int(np.sum(flagged & y))
    fp = int(np.sum(flagged & ~y))
    fn = int(np.sum(~flagged & y))
    tn = int(np.sum(~flagged & ~y))
    roc_auc = average_precision = None
    roc = pr = None
    if 0 < y.sum() < len(y):
        roc_auc = float(roc_auc_score(y, s))
        average_precision = float(average_precision_score(y, s))
        fpr, tpr, _ = roc_curve(y, s)
        precision, recall, _ = precision_recall_curve(y, s)
        roc, pr = (fpr, tpr), (recall, precision)
    per_family: dict[str, dict[str, float | int]] = {}
    if families is not None:
        fam = pd.Series(np.asarray(families, dtype=object)).astype(str).to_numpy()
        if fam.shape != y.shape:
            raise InvalidParameterError(f"binary_report: {fam.shape[0]} families for {y.shape[0]} rows.")
        for name in sorted(set(fam[y]) - {BENIGN}):
            rows = (fam == name) & y
            support, detected = int(rows.sum()), int((rows & flagged).sum())
            per_family[name] = {"support": support, "detected": detected, "recall": _ratio(detected, support)}
    return BinaryReport(tn, fp, fn, tp, float(threshold), roc_auc, average_precision, per_family, roc, pr)
