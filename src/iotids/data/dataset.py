"""One call from files to splits: load, clean, split, with every report kept together."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pandas as pd

from iotids.data.clean import CleaningReport, clean_flows
from iotids.data.loader import LoadReport, feature_columns, load_flows
from iotids.data.reader import BadRows
from iotids.data.split import Splits, split_flows


@dataclass(slots=True)
class Dataset:
    """A cleaned frame, its splits and the reports of how it was made."""

    frame: pd.DataFrame
    splits: Splits
    load_report: LoadReport
    cleaning_report: CleaningReport
    strategy: str
    random_state: int

    @property
    def features(self) -> list[str]:
        return feature_columns(self.frame)

    def summary(self) -> dict[str, Any]:
        """Rows per part and label, for reports."""
        parts = {name: part for name, part in zip(("train", "val", "test"), self.splits, strict=True)}
        return {
            "files": [f.file for f in self.load_report.files],
            "layouts": sorted({f.layout for f in self.load_report.files}),
            "split": self.strategy,
            "random_state": self.random_state,
            "rows": {name: len(part) for name, part in parts.items()},
            "attacks": {name: int(part["is_attack"].sum()) for name, part in parts.items()},
            "labels": {
                name: {str(k): int(v) for k, v in part["label"].value_counts().items() if v}
                for name, part in parts.items()
            },
            "cleaning": self.cleaning_report.to_dict()["total"],
        }


def load_dataset(
    paths: list[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    split: str = "random",
    random_state: int = 0,
    attempted: str = "benign",
    nonfinite: str = "drop",
    cache: bool = True,
    on_bad_rows: BadRows = "error",
    progress: bool = False,
) -> Dataset:
    """Load, clean (de-duplicated) and split flow files; see the three steps for the parameters."""
    frame, load_report = load_flows(paths, attempted=attempted, cache=cache, on_bad_rows=on_bad_rows,
                                    progress=progress)
    frame, cleaning_report = clean_flows(frame, nonfinite=nonfinite, load_report=load_report)
    splits = split_flows(frame, strategy=split, random_state=random_state)
    return Dataset(frame, splits, load_report, cleaning_report, split, random_state)
