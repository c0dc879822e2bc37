"""Metrics from one confusion matrix, metrics.json keys, and the validation-only threshold choice."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from iotids.errors import InvalidParameterError
from iotids.evaluate.metrics import METRIC_KEYS, binary_report
from iotids.models.threshold import threshold_for_far


def test_every_number_agrees_with_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    scores = np.clip(y * 0.4 + rng.random(500) * 0.7, 0, 1).astype(np.float32)
    r = binary_report(y, scores, 0.5)
    pred = scores >= 0.5
    assert (r.tn, r.fp, r.fn, r.tp) == (
        int((~pred & (y == 0)).sum()), int((pred & (y == 0)).sum()), int((~pred & (y == 1)).sum()),
        int((pred & (y == 1)).sum()))
    assert r.accuracy == pytest.approx(accuracy_score(y, pred))
    assert r.precision == pytest.approx(precision_score(y, pred))
    assert r.recall == pytest.approx(recall_score(y, pred))
    assert r.f1 == pytest.approx(f1_score(y, pred))
    assert r.false_alarm_rate == pytest.approx(r.fp / (r.fp + r.tn))
    assert r.roc_auc == pytest.approx(roc_auc_score(y, scores))


def test_metrics_json_has_exactly_the_issue_keys() -> None:
    r = binary_report([0, 0, 1, 1, 1], [0.1, 0.7, 0.2, 0.8, 0.9], 0.5,
                      families=["BENIGN", "BENIGN", "DoS", "DoS", "PortScan"])
    d = r.to_dict()
    assert tuple(d) == METRIC_KEYS == ("accuracy", "precision", "recall", "f1", "false_alarm_rate", "roc_auc",
                                       "average_precision", "threshold", "confusion_matrix", "per_family")
    assert d["confusion_matrix"] == {"tn": 1, "fp": 1, "fn": 1, "tp": 2}
    assert d["per_family"] == {"DoS": {"support": 2, "detected": 1, "recall": 0.5},
                               "PortScan": {"support": 1, "detected": 1, "recall": 1.0}}
    assert d["false_alarm_rate"] == 0.5 and d["threshold"] == 0.5


def test_one_class_rows_have_no_auc_but_still_a_report() -> None:
    r = binary_report([0, 0, 0], [0.1, 0.2, 0.9], 0.5)
    assert r.roc_auc is None and r.average_precision is None and r.roc_curve is None
    assert r.false_alarm_rate == pytest.approx(1 / 3) and r.recall == 0.0 and r.f1 == 0.0


def test_bad_input_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="0/1"):
        binary_report([0, 2], [0.1, 0.2])
    with pytest.raises(InvalidParameterError, match="NaN"):
        binary_report([0, 1], [0.1, np.nan])


@pytest.mark.parametrize("target", [0.0, 0.01, 0.05, 0.3])
def test_threshold_for_far_is_the_lowest_meeting_the_target(target: float) -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 2000)
    scores = np.clip(y * 0.3 + rng.random(2000), 0, 1).astype(np.float32)
    t = threshold_for_far(scores, y, target)
    benign = scores[y == 0]
    assert (benign >= t).mean() <= target
    lower = np.nextafter(np.float32(t), np.float32(-np.inf))
    assert (benign >= lower).mean() > target


def test_threshold_for_far_refuses_bad_targets() -> None:
    with pytest.raises(InvalidParameterError, match="target_far"):
        threshold_for_far(np.array([0.5]), np.array([0]), 1.0)
    with pytest.raises(InvalidParameterError, match="benign"):
        threshold_for_far(np.array([0.5]), np.array([1]), 0.01)
