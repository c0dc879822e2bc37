"""The interface every detector shares: scores first, then the threshold.

A detector works on the float32 matrix that ``FlowPreprocessor.transform`` makes. ``decision_function`` returns
one float32 score per row, higher = more likely an attack (a probability for the classifiers, so the default
threshold 0.5 means something). Thresholds are chosen on validation data only, outside the detector.
A detector saves itself into a directory without pickle and loads from it.

:data:`DETECTORS` names the class of each registry name, so a model directory can say which class loads it
(:func:`detector_class`); the classes are imported only when asked for.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Protocol, Self, runtime_checkable

import numpy as np

from iotids.errors import ModelFileError


@runtime_checkable
class Detector(Protocol):
    """What ``train``, ``compare``, ``evaluate`` and ``detect`` need of a model."""

    #: registry name: "cnn-lstm", "svm", "rf", "autoencoder", "autoencoder-shone", "lightgbm"
    name: str

    def fit(
        self, X: np.ndarray, y: np.ndarray, *, eval_set: tuple[np.ndarray, np.ndarray] | None = None
    ) -> Self: ...

    def decision_function(self, X: np.ndarray) -> np.ndarray: ...

    def save(self, directory: Path) -> None: ...

    @classmethod
    def load(cls, directory: Path) -> Self: ...


#: registry name -> ``"module:Class"`` of the detector.
DETECTORS: dict[str, str] = {
    "cnn-lstm": "iotids.models.cnn_lstm:CnnLstmDetector",
    "svm": "iotids.models.baselines:SvmDetector",
    "rf": "iotids.models.baselines:RandomForestDetector",
    "lightgbm": "iotids.models.baselines:LightGbmDetector",
    "autoencoder": "iotids.models.autoencoder:AutoencoderDetector",
    "autoencoder-shone": "iotids.models.autoencoder:StackedAutoencoderDetector",
}


def detector_class(name: str) -> type[Detector]:
    """The detector class registered as ``name``; :class:`ModelFileError` for an unknown name."""
    if name not in DETECTORS:
        raise ModelFileError(f"unknown detector {name!r}; this iotids knows {', '.join(DETECTORS)}")
    module, _, attr = DETECTORS[name].partition(":")
    return getattr(importlib.import_module(module), attr)
