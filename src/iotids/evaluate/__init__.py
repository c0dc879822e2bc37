"""Evaluation: metrics from one confusion matrix, the paper's figures 3-7, and the report."""

from iotids.evaluate.metrics import METRIC_KEYS, BinaryReport, binary_report

__all__ = ["METRIC_KEYS", "BinaryReport", "binary_report"]
