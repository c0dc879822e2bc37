"""Decision thresholds, chosen on validation rows only.

A flow is flagged when ``score >= threshold``. The default 0.5 suits detectors whose score is a probability.
:func:`threshold_for_far` instead picks the lowest threshold whose false alarm rate on the given (validation)
rows does not exceed a target, i.e. it flags as many attacks as that budget of benign flags allows;
:func:`threshold_for_f1` the one with the best F1 (the anomaly autoencoder's default).
"""

from __future__ import annotations

import numpy as np

from iotids.errors import InvalidParameterError

__all__ = ["DEFAULT_THRESHOLD", "threshold_for_f1", "threshold_for_far"]

DEFAULT_THRESHOLD = 0.5


def threshold_for_far(scores: np.ndarray, y: np.ndarray, target_far: float) -> float:
    """The lowest threshold with ``FP / (FP + TN) <= target_far`` on these rows.

    With ``k = floor(target_far * n_benign)`` benign flags allowed, the threshold is the next float32 above the
    ``(k + 1)``-th highest benign score, so at most ``k`` benign rows reach it (scores compare as float32).

    Examples
    --------
    >>> threshold_for_far(np.array([0.1, 0.2, 0.3, 0.9], np.float32), np.array([0, 0, 0, 1]), 0.0)
    0.30000004172325134
    """
    if not isinstance(target_far, float | int) or not 0 <= target_far < 1:
        raise InvalidParameterError(
            f"The 'target_far' parameter must be a float in [0, 1). Got {target_far!r} instead."
        )
    s = np.asarray(scores, dtype=np.float32).ravel()
    labels = np.asarray(y).ravel()
    benign = np.sort(s[labels == 0])[::-1]
    if benign.size == 0:
        raise InvalidParameterError("threshold_for_far needs benign (0) rows among the validation rows; got none.")
    allowed = min(int(np.floor(target_far * benign.size + 1e-9)), benign.size - 1)
    return float(np.nextafter(benign[allowed], np.float32(np.inf)))


def threshold_for_f1(scores: np.ndarray, y: np.ndarray) -> float:
    """The score threshold (flag when ``score >= threshold``) with the highest F1 on these rows."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(y, scores)
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], np.finfo(np.float64).tiny)
    return float(thresholds[int(np.argmax(f1))])
