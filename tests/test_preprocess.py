"""FlowPreprocessor: column selection, the documented arithmetic, unseen values, JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from iotids.errors import InvalidParameterError, ModelFileError, NotFittedError, SchemaMismatchError
from iotids.features.preprocess import FlowPreprocessor


def _frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "flow_duration": rng.exponential(1e6, n).astype(np.float32),
        "fwd_packets": rng.integers(1, 1000, n).astype(np.float32),
        "fwd_bytes": rng.exponential(1e4, n).astype(np.float32),
        "subflow_fwd_bytes": np.zeros(n, np.float32),  # replaced below by a copy of fwd_bytes
        "fwd_urg_flags": np.zeros(n, np.float32),  # constant
        "fwd_init_win_bytes": rng.choice([-1, 8192, 65535], n).astype(np.float32),
        "dst_port": rng.integers(0, 65536, n).astype(np.float32),  # an identifier, never a feature
        "protocol": rng.choice([6, 17], n).astype(np.float32),
        "is_attack": rng.integers(0, 2, n).astype(np.int8),
    }).assign(subflow_fwd_bytes=lambda f: f["fwd_bytes"])


def test_selection_drops_identifiers_constant_and_duplicate_columns() -> None:
    pre = FlowPreprocessor().fit(_frame())
    assert pre.numeric_columns_ == ["flow_duration", "fwd_packets", "fwd_bytes", "fwd_init_win_bytes"]
    assert pre.dropped_ == {"missing": [], "constant": ["fwd_urg_flags"], "duplicate": ["subflow_fwd_bytes"]}
    assert pre.input_columns_ == [*pre.numeric_columns_, "protocol"]
    assert pre.get_feature_names_out()[-3:] == ["protocol_6", "protocol_17", "protocol_other"]


def test_training_rows_map_into_the_unit_interval_and_follow_the_documented_formula() -> None:
    frame = _frame()
    pre = FlowPreprocessor().fit(frame)
    X = pre.transform(frame)
    assert X.dtype == np.float32 and X.shape == (len(frame), pre.n_features_out_)
    assert X.min() == 0.0 and X.max() == 1.0
    raw = frame["fwd_bytes"].to_numpy(np.float64)
    logged = np.log1p(raw)
    expected = (logged - logged.min()) / (logged.max() - logged.min())
    np.testing.assert_allclose(X[:, pre.numeric_columns_.index("fwd_bytes")], expected, atol=1e-5)
    one_hot = X[:, -3:]
    assert (one_hot.sum(axis=1) == 1).all() and (one_hot[:, -1] == 0).all()


def test_large_inputs_are_transformed_in_row_blocks_with_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    """``transform_matrix`` works through the rows in blocks (bounded temporaries at millions of rows): the same
    output as in one block, infinities and NaN included."""
    from iotids.features import preprocess

    frame = _frame(1000, seed=1)
    frame.loc[::7, "fwd_bytes"] = np.inf
    frame.loc[::11, "flow_duration"] = np.nan
    pre = FlowPreprocessor().fit(_frame())
    whole = pre.transform(frame)
    monkeypatch.setattr(preprocess, "TRANSFORM_ROWS", 64)
    np.testing.assert_array_equal(pre.transform(frame), whole)


def test_unseen_values_are_clipped_or_other_never_an_error() -> None:
    pre = FlowPreprocessor().fit(_frame())
    new = _frame(5, seed=1)
    new.loc[0, "flow_duration"] = 1e12  # far above the training range
    new.loc[1, "fwd_packets"] = -50.0  # below
    new.loc[2, "fwd_bytes"] = np.nan
    new.loc[3, "fwd_bytes"] = np.inf
    new.loc[4, "protocol"] = 1.0  # ICMP: never seen in training
    X = pre.transform(new)
    assert np.isfinite(X).all() and X.min() >= 0 and X.max() <= 1
    col = pre.numeric_columns_.index
    assert X[0, col("flow_duration")] == 1.0 and X[1, col("fwd_packets")] == 0.0
    assert X[2, col("fwd_bytes")] == 0.0 and X[3, col("fwd_bytes")] == 1.0
    assert X[4, -1] == 1.0 and X[4, -3:-1].sum() == 0


def test_protocol_with_gaps_is_not_used_unless_required() -> None:
    frame = _frame()
    frame.loc[:20, "protocol"] = np.nan  # e.g. MachineLearningCVE rows mixed with TrafficLabelling rows
    assert FlowPreprocessor().fit(frame).protocol_categories_ is None
    assert FlowPreprocessor(protocol=False).fit(_frame()).input_columns_[-1] != "protocol"
    with pytest.raises(InvalidParameterError, match="protocol"):
        FlowPreprocessor(protocol=True).fit(frame)


def test_log_transform_choice() -> None:
    frame = _frame()
    none = FlowPreprocessor(log_transform=False).fit(frame)
    some = FlowPreprocessor(log_transform=["fwd_bytes"]).fit(frame)
    assert not none.log_mask_.any()
    assert some.log_mask_.tolist() == [c == "fwd_bytes" for c in some.numeric_columns_]
    raw = frame["flow_duration"].to_numpy(np.float64)
    np.testing.assert_allclose(none.transform(frame)[:, 0], (raw - raw.min()) / (raw.max() - raw.min()), atol=1e-5)
    with pytest.raises(InvalidParameterError, match="log_transform"):
        FlowPreprocessor(log_transform=["dst_port"]).fit(frame)


def test_max_features_keeps_the_columns_that_carry_the_label() -> None:
    frame = _frame(400)
    rng = np.random.default_rng(1)
    # the label is a threshold on fwd_init_win_bytes and flow_duration; the other columns are noise
    frame["is_attack"] = ((frame["fwd_init_win_bytes"] == 8192) & (frame["flow_duration"] > 5e5)).astype(np.int8)
    frame["fwd_packets"] = rng.integers(1, 1000, len(frame)).astype(np.float32)
    pre = FlowPreprocessor(max_features=2).fit(frame)
    assert pre.numeric_columns_ == ["flow_duration", "fwd_init_win_bytes"]  # canonical order kept
    assert pre.dropped_["unimportant"] == ["fwd_packets", "fwd_bytes"]
    by_bytes = (frame["fwd_bytes"] > frame["fwd_bytes"].median()).astype(np.int8)  # an explicit y wins
    assert FlowPreprocessor(max_features=1).fit(frame, by_bytes).numeric_columns_ == ["fwd_bytes"]
    assert FlowPreprocessor.from_json(pre.to_json()).numeric_columns_ == pre.numeric_columns_
    with pytest.raises(InvalidParameterError, match="is_attack"):
        FlowPreprocessor(max_features=2).fit(frame.drop(columns="is_attack"))
    with pytest.raises(InvalidParameterError, match="max_features"):
        FlowPreprocessor(max_features=0).fit(frame)


def test_json_round_trip_gives_identical_output() -> None:
    frame = _frame()
    pre = FlowPreprocessor().fit(frame)
    text = json.dumps(pre.to_dict())
    again = FlowPreprocessor.from_json(text)
    np.testing.assert_array_equal(again.transform(frame), pre.transform(frame))
    assert again.input_columns_ == pre.input_columns_
    broken = json.loads(text)
    broken["min"] = broken["min"][:-1]
    with pytest.raises(ModelFileError):
        FlowPreprocessor.from_dict(broken)


def test_torch_parameters_reproduce_the_transform() -> None:
    """The positional parameters another runtime (ONNX) uses give the same matrix as ``transform``."""
    frame = _frame()
    pre = FlowPreprocessor().fit(frame)
    p = pre.torch_parameters()
    raw = pre.raw_matrix(frame)
    x = raw[:, p["numeric_index"]]
    x = np.where(p["log_mask"], np.sign(x) * np.log1p(np.abs(x)), x)
    x = np.clip((x - np.float32(p["min"])) * np.float32(p["scale"]), 0, 1)
    hot = (raw[:, [p["protocol_index"]]] == np.float32(p["categories"])).astype(np.float32)
    expected = np.hstack([x, hot, 1 - hot.sum(axis=1, keepdims=True)])
    np.testing.assert_allclose(pre.transform(frame), expected, atol=1e-6)


def test_errors() -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        FlowPreprocessor().transform(_frame())
    pre = FlowPreprocessor().fit(_frame())
    with pytest.raises(SchemaMismatchError, match="fwd_bytes"):
        pre.transform(_frame().drop(columns=["fwd_bytes"]))
    with pytest.raises(InvalidParameterError, match="columns"):
        pre.transform_matrix(np.zeros((3, 2), np.float32))
    with pytest.raises(InvalidParameterError, match="empty"):
        FlowPreprocessor().fit(_frame().iloc[:0])


def test_fit_uses_only_the_rows_it_is_given() -> None:
    """Fitting on the training part differs from fitting on all rows when the test part holds larger values."""
    frame = _frame(400)
    train, test = frame.iloc[:300].copy(), frame.iloc[300:].copy()
    test["fwd_bytes"] *= 1000
    pre = FlowPreprocessor().fit(train)
    assert pre.n_samples_seen_ == len(train)
    assert pre.raw_max_[pre.numeric_columns_.index("fwd_bytes")] == train["fwd_bytes"].max()
    leaked = FlowPreprocessor().fit(pd.concat([train, test]))
    assert not np.array_equal(pre.transform(test), leaked.transform(test))
