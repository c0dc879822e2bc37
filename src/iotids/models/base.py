"""The interface every detector shares: scores first, then the threshold.

A detector works on the float32 matrix that ``FlowPreprocessor.transform`` makes. ``decision_function`` returns
one float32 score per row, higher = more likely an attack (a probability for the classifiers, so the default
threshold 0.5 means something). Thresholds are chosen on validation data only, outside the detector.
A detector saves itself into a directory without pickle and loads from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, Self, runtime_checkable

import numpy as np


@runtime_checkable
class Detector(Protocol):
    """What ``train``, ``compare``, ``evaluate`` and ``detect`` need of a model."""

    #: registry name: "cnn-lstm", "svm", "rf", "autoencoder", "lightgbm"
    name: str

    def fit(
        self, X: np.ndarray, y: np.ndarray, *, eval_set: tuple[np.ndarray, np.ndarray] | None = None
    ) -> Self: ...

    def decision_function(self, X: np.ndarray) -> np.ndarray: ...

    def save(self, directory: Path) -> None: ...

    @classmethod
    def load(cls, directory: Path) -> Self: ...
