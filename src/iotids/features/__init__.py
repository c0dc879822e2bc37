"""Feature preprocessing: the fitted, JSON-serialisable transform from canonical flow columns to model input."""

from iotids.features.preprocess import FlowPreprocessor

__all__ = ["FlowPreprocessor"]
