"""Loading, cleaning and splitting CICIDS2017 flow data.

files -> :func:`load_flows` -> :func:`clean_flows` -> :func:`split_flows`; :func:`load_dataset` chains them.
"""

from iotids.data.clean import CleaningReport, clean_flows
from iotids.data.dataset import Dataset, load_dataset
from iotids.data.loader import LoadReport, feature_columns, load_flows
from iotids.data.split import Splits, split_flows

__all__ = [
    "CleaningReport",
    "Dataset",
    "LoadReport",
    "Splits",
    "clean_flows",
    "feature_columns",
    "load_dataset",
    "load_flows",
    "split_flows",
]
