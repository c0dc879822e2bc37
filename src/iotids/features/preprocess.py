"""``FlowPreprocessor``: canonical flow columns in, the model's float32 matrix out; fitted on training rows only.

The transform is plain arithmetic with per-column parameters, so it can be written in any runtime (NumPy here,
torch/ONNX in :mod:`iotids.runtime`). For the raw row ``r`` (float32, in :attr:`input_columns_` order)::

    x_j = r_j                                      for the numeric columns j = 0 .. n_numeric-1
    x_j = sign(x_j) * log1p(|x_j|)                 where log_mask_[j]          (signed log1p)
    x_j = clip((x_j - min_[j]) * scale_[j], 0, 1)  scale_ = 1 / (max - min) over the training rows
    x_j = 0                                        where x_j is NaN (a missing value at inference time)
    then, when the protocol is used (the last raw column):
    one-hot of r_protocol over protocol_categories_, plus one "other" column for any value not seen in training
    (NaN included)

Output columns: the numeric columns, then ``protocol_<n>`` for each training category, then ``protocol_other``.

Column selection at ``fit``: every canonical feature of the frame (identifier columns such as ports and
addresses are never features), minus columns with missing values in the training rows (a feature that only
some layouts carry), constant columns and exact duplicates of an earlier column (``subflow_fwd_bytes`` equals
``fwd_bytes`` in CICIDS2017). With ``max_features`` set, only that many of the remaining columns are kept: those
an extra-trees forest fitted on (at most 100,000 of) the training rows and their ``is_attack`` labels finds most
important, in their canonical order (the paper's feature selection, optional). The protocol is one-hot encoded
when every training row has one: in the original CICIDS2017 files only the TrafficLabelling layout carries it, so
whether it is present would tell the layout, not the traffic.

Why the signed log1p: byte counts, durations and rates span 8-10 orders of magnitude; min/max scaling alone
squeezes almost every flow into the lowest 0.1 % of [0, 1]. Measured in ``benchmarks/results/train.md``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from iotids.errors import InvalidParameterError, ModelFileError, NotFittedError, SchemaMismatchError
from iotids.schema import FEATURE_NAMES

__all__ = ["PROTOCOL", "FlowPreprocessor"]

PROTOCOL = "protocol"
FORMAT = "iotids-preprocessor"
FORMAT_VERSION = 1


#: Rows :meth:`FlowPreprocessor.transform_matrix` processes at a time.
TRANSFORM_ROWS = 65_536


def signed_log1p(x: np.ndarray) -> np.ndarray:
    """``sign(x) * log1p(|x|)``: monotone, odd, identity-like near 0, logarithmic for large magnitudes."""
    return np.sign(x) * np.log1p(np.abs(x))


class FlowPreprocessor(BaseEstimator):
    """Select, log-transform, scale to [0, 1] and one-hot encode flow features.

    Parameters
    ----------
    features : candidate canonical feature columns; ``None`` = every canonical feature of the training frame.
    log_transform : ``True`` = signed log1p on every numeric column, ``False`` = none, or the column names.
    protocol : one-hot encode ``protocol``: ``True`` (required), ``False`` (never) or ``None`` (when the
        training frame has it for every row).
    drop_constant : drop columns that are constant over the training rows.
    drop_duplicates : drop columns identical to an earlier column over the training rows.
    max_features : keep only this many numeric columns, the most important to an extra-trees forest trained on
        the training rows (``None``: keep all).
    random_state : seed of that forest.

    Examples
    --------
    >>> pre = FlowPreprocessor().fit(splits.train)  # doctest: +SKIP
    >>> X_test = pre.transform(splits.test)  # float32 (n, pre.n_features_out_)  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        features: Sequence[str] | None = None,
        log_transform: bool | Sequence[str] = True,
        protocol: bool | None = None,
        drop_constant: bool = True,
        drop_duplicates: bool = True,
        max_features: int | None = None,
        random_state: int = 0,
    ) -> None:
        self.features = features
        self.log_transform = log_transform
        self.protocol = protocol
        self.drop_constant = drop_constant
        self.drop_duplicates = drop_duplicates
        self.max_features = max_features
        self.random_state = random_state

    # ------------------------------------------------------------------------------------------------ fit
    def _check_params(self) -> None:
        if self.protocol not in (True, False, None):
            raise InvalidParameterError(
                f"The 'protocol' parameter of FlowPreprocessor must be True, False or None. Got {self.protocol!r} "
                "instead."
            )
        if not isinstance(self.log_transform, bool) and (
            isinstance(self.log_transform, str) or not all(isinstance(c, str) for c in self.log_transform)
        ):
            raise InvalidParameterError(
                "The 'log_transform' parameter of FlowPreprocessor must be a bool or a list of column names. Got "
                f"{self.log_transform!r} instead."
            )
        k = self.max_features
        if k is not None and (not isinstance(k, int | np.integer) or isinstance(k, bool) or k < 1):
            raise InvalidParameterError(
                f"The 'max_features' parameter of FlowPreprocessor must be None or an int >= 1. Got {k!r} instead."
            )

    def fit(self, frame: pd.DataFrame, y: Any = None) -> Self:
        """Learn columns, log mask, ranges and protocol categories from the training rows ``frame``.

        ``y`` (0/1 per row) is only used with ``max_features``; by default it is the frame's ``is_attack`` column.
        """
        self._check_params()
        if len(frame) == 0:
            raise InvalidParameterError("FlowPreprocessor.fit needs at least one training row. Got an empty frame.")
        if self.features is None:
            candidates = [c for c in FEATURE_NAMES if c in frame.columns]
        else:
            candidates = list(self.features)
            missing = [c for c in candidates if c not in frame.columns]
            if missing:
                raise SchemaMismatchError("FlowPreprocessor.fit: the training frame lacks requested features",
                                          missing)
        if not isinstance(self.log_transform, bool):
            unknown = [c for c in self.log_transform if c not in candidates]
            if unknown:
                raise InvalidParameterError(
                    f"The 'log_transform' parameter of FlowPreprocessor names columns that are not features: "
                    f"{', '.join(unknown[:5])}."
                )
        dropped: dict[str, list[str]] = {"missing": [], "constant": [], "duplicate": []}
        kept: list[str] = []
        ranges: dict[str, tuple[float, float]] = {}  # of each kept column's finite values
        seen: dict[bytes, list[tuple[str, np.ndarray]]] = {}
        for name in candidates:  # one column at a time: memory stays a few columns, whatever the row count
            values = frame[name].to_numpy(np.float32)
            if np.isnan(values).any():
                dropped["missing"].append(name)
                continue
            finite = values[np.isfinite(values)]
            if self.drop_constant and (finite.size == 0 or finite.min() == finite.max()):
                dropped["constant"].append(name)
                continue
            if self.drop_duplicates:
                key = values[: min(len(values), 64)].tobytes()
                if any(np.array_equal(values, other) for _, other in seen.get(key, [])):
                    dropped["duplicate"].append(name)
                    continue
                seen.setdefault(key, []).append((name, values))
            kept.append(name)
            ranges[name] = (finite.min(), finite.max()) if finite.size else (np.nan, np.nan)
        if not kept:
            raise InvalidParameterError(
                f"FlowPreprocessor.fit found no usable feature among {len(candidates)} candidates (missing values: "
                f"{len(dropped['missing'])}, constant: {len(dropped['constant'])})."
            )
        if self.max_features is not None and len(kept) > self.max_features:
            dropped["unimportant"] = self._unimportant(frame, kept, y)
            kept = [c for c in kept if c not in set(dropped["unimportant"])]
        log_names = set(kept) if self.log_transform is True else set(self.log_transform or ())
        self.numeric_columns_ = kept
        self.log_mask_ = np.array([c in log_names for c in kept], dtype=bool)
        lowest, highest = (np.array([ranges[c][side] for c in kept], dtype=np.float32) for side in (0, 1))
        self.raw_min_, self.raw_max_ = lowest, highest
        # signed_log1p is monotone: the transformed range is the transformed raw range
        low = np.where(self.log_mask_, signed_log1p(lowest), lowest).astype(np.float32)
        span = np.where(self.log_mask_, signed_log1p(highest), highest).astype(np.float32) - low
        self.min_ = low
        self.scale_ = np.where(span > 0, 1.0 / np.where(span > 0, span, 1.0), 1.0).astype(np.float32)
        self.protocol_categories_ = self._fit_protocol(frame)
        self.dropped_ = dropped
        self.n_samples_seen_ = len(frame)
        return self

    def _unimportant(self, frame: pd.DataFrame, columns: list[str], y: Any) -> list[str]:
        """The columns beyond the ``max_features`` most important ones (extra-trees impurity importance)."""
        from sklearn.ensemble import ExtraTreesClassifier

        if y is None:
            if "is_attack" not in frame.columns:
                raise InvalidParameterError(
                    "FlowPreprocessor.fit: max_features needs labels; pass y or a frame with an 'is_attack' column."
                )
            y = frame["is_attack"]
        labels = np.asarray(y).astype(np.int8)
        rows = np.random.default_rng(self.random_state).permutation(len(frame))[:100_000]
        X = frame[columns].to_numpy(np.float32)[rows]
        X = np.nan_to_num(X, nan=0.0, posinf=np.finfo(np.float32).max, neginf=np.finfo(np.float32).min)
        forest = ExtraTreesClassifier(n_estimators=100, min_samples_leaf=2, random_state=self.random_state,
                                      n_jobs=-1).fit(X, labels[rows])
        order = np.argsort(-forest.feature_importances_, kind="stable")
        return [columns[i] for i in sorted(order[int(self.max_features):])]

    def _fit_protocol(self, frame: pd.DataFrame) -> list[int] | None:
        if self.protocol is False:
            return None
        if PROTOCOL not in frame.columns:
            if self.protocol:
                raise SchemaMismatchError("FlowPreprocessor.fit: protocol=True but the training frame", [PROTOCOL])
            return None
        values = frame[PROTOCOL].to_numpy(np.float32)
        if np.isnan(values).any():
            if self.protocol:
                raise InvalidParameterError(
                    f"FlowPreprocessor.fit: protocol=True but {int(np.isnan(values).sum())} training rows have no "
                    "protocol (MachineLearningCVE files do not carry one); use protocol=None or False."
                )
            return None
        return [int(v) for v in np.unique(values)]

    def fit_transform(self, frame: pd.DataFrame, y: Any = None) -> np.ndarray:
        return self.fit(frame).transform(frame)

    # ------------------------------------------------------------------------------------------ transform
    def _check_fitted(self) -> None:
        if not hasattr(self, "min_"):
            raise NotFittedError(
                "This FlowPreprocessor instance is not fitted yet. Call 'fit' with the training rows first."
            )

    @property
    def input_columns_(self) -> list[str]:
        """The raw canonical columns ``transform`` reads, in the order of ``transform_matrix``'s input."""
        self._check_fitted()
        return [*self.numeric_columns_, *([PROTOCOL] if self.protocol_categories_ is not None else [])]

    @property
    def n_features_in_(self) -> int:
        return len(self.input_columns_)

    def get_feature_names_out(self) -> list[str]:
        """Names of the output columns: numeric features, ``protocol_<n>`` ..., ``protocol_other``."""
        self._check_fitted()
        if self.protocol_categories_ is None:
            return list(self.numeric_columns_)
        return [*self.numeric_columns_, *(f"protocol_{c}" for c in self.protocol_categories_), "protocol_other"]

    @property
    def n_features_out_(self) -> int:
        return len(self.get_feature_names_out())

    def raw_matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """The float32 matrix of :attr:`input_columns_` from a frame (extra columns are ignored)."""
        columns = self.input_columns_
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise SchemaMismatchError("the flows lack columns the model was trained on", missing)
        return frame[columns].to_numpy(np.float32)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Canonical flow frame -> float32 (n, n_features_out_) model input."""
        return self.transform_matrix(self.raw_matrix(frame))

    def transform_matrix(self, raw: np.ndarray) -> np.ndarray:
        """Raw float32 values in :attr:`input_columns_` order -> float32 model input (the streaming path).

        Out-of-range values are clipped into [0, 1], NaN becomes 0, an unseen protocol goes to "other".
        """
        self._check_fitted()
        raw = np.asarray(raw, dtype=np.float32)
        n_in = len(self.numeric_columns_) + (self.protocol_categories_ is not None)
        if raw.ndim != 2 or raw.shape[1] != n_in:
            raise InvalidParameterError(
                f"FlowPreprocessor.transform_matrix expects a 2-D matrix with {n_in} columns "
                f"({', '.join(self.input_columns_[:3])}, ...). Got shape {raw.shape} instead."
            )
        out = np.empty((raw.shape[0], self.n_features_out_), dtype=np.float32)
        for start in range(0, len(raw), TRANSFORM_ROWS):  # row blocks: the temporaries stay small
            self._transform_rows(raw[start : start + TRANSFORM_ROWS], out[start : start + TRANSFORM_ROWS])
        return out

    def _transform_rows(self, raw: np.ndarray, out: np.ndarray) -> None:
        n_num = len(self.numeric_columns_)
        x = out[:, :n_num]
        x[...] = raw[:, :n_num]
        if self.log_mask_.any():
            x[:, self.log_mask_] = signed_log1p(x[:, self.log_mask_])
        x -= self.min_
        x *= self.scale_
        np.clip(x, 0.0, 1.0, out=x)
        x[np.isnan(x)] = 0.0
        if self.protocol_categories_ is not None:
            categories = np.asarray(self.protocol_categories_, dtype=np.float32)
            hot = raw[:, n_num, None] == categories[None, :]
            out[:, n_num:-1] = hot
            out[:, -1] = ~hot.any(axis=1)

    # -------------------------------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """Everything needed to rebuild the fitted preprocessor, as JSON-ready values (floats are float32-exact)."""
        self._check_fitted()
        log = self.log_transform if isinstance(self.log_transform, bool) else list(self.log_transform)
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "params": {"features": None if self.features is None else list(self.features), "log_transform": log,
                       "protocol": self.protocol, "drop_constant": self.drop_constant,
                       "drop_duplicates": self.drop_duplicates, "max_features": self.max_features,
                       "random_state": self.random_state},
            "numeric_columns": list(self.numeric_columns_),
            "log_mask": [bool(v) for v in self.log_mask_],
            "min": [float(v) for v in self.min_],
            "scale": [float(v) for v in self.scale_],
            "raw_min": [float(v) for v in self.raw_min_],
            "raw_max": [float(v) for v in self.raw_max_],
            "protocol_categories": self.protocol_categories_,
            "dropped": {k: list(v) for k, v in self.dropped_.items()},
            "n_samples_seen": int(self.n_samples_seen_),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FlowPreprocessor:
        """Rebuild a fitted preprocessor from :meth:`to_dict` output; :class:`ModelFileError` if inconsistent."""
        try:
            if data["format"] != FORMAT or data["version"] != FORMAT_VERSION:
                raise ValueError(f"format {data['format']!r} version {data['version']!r}")
            pre = cls(**data["params"])
            pre.numeric_columns_ = [str(c) for c in data["numeric_columns"]]
            n = len(pre.numeric_columns_)
            pre.log_mask_ = np.asarray(data["log_mask"], dtype=bool)
            for attr, key in (("min_", "min"), ("scale_", "scale"), ("raw_min_", "raw_min"), ("raw_max_", "raw_max")):
                setattr(pre, attr, np.asarray(data[key], dtype=np.float32))
            cats = data["protocol_categories"]
            pre.protocol_categories_ = None if cats is None else [int(c) for c in cats]
            pre.dropped_ = {str(k): list(v) for k, v in data["dropped"].items()}
            pre.n_samples_seen_ = int(data["n_samples_seen"])
            lengths = {len(pre.log_mask_), len(pre.min_), len(pre.scale_), len(pre.raw_min_), len(pre.raw_max_)}
            if lengths != {n} or n == 0:
                raise ValueError(f"{n} columns but parameter lengths {sorted(lengths)}")
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"not a valid FlowPreprocessor description ({exc})") from None
        return pre

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str) -> FlowPreprocessor:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelFileError(f"preprocessor JSON is not readable ({exc})") from None
        return cls.from_dict(data)

    def torch_parameters(self) -> dict[str, Any]:
        """The transform's parameters by position, for re-expressing it in torch/ONNX (see the module docstring)."""
        self._check_fitted()
        n = len(self.numeric_columns_)
        params: dict[str, Any] = {
            "numeric_index": list(range(n)),
            "log_mask": [bool(v) for v in self.log_mask_],
            "min": [float(v) for v in self.min_],
            "scale": [float(v) for v in self.scale_],
            "raw_min": [float(v) for v in self.raw_min_],
            "raw_max": [float(v) for v in self.raw_max_],
            "protocol_index": None,
        }
        if self.protocol_categories_ is not None:
            params["protocol_index"] = n
            params["categories"] = [float(c) for c in self.protocol_categories_]
        return params
