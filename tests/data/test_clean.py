"""Cleaning policies on small frames made here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from iotids.data import clean_flows, load_flows


@pytest.fixture(scope="module")
def frame(cicids2017_dir: Path):
    return load_flows(cicids2017_dir)[0]


def test_impute_recomputes_rates_with_a_1us_duration(frame) -> None:
    nonfinite = ~np.isfinite(frame["flow_bytes_per_s"].to_numpy()) | ~np.isfinite(frame["flow_packets_per_s"])
    dropped, drop_report = clean_flows(frame, nonfinite="drop", drop_duplicates=False)
    imputed, impute_report = clean_flows(frame, nonfinite="impute", drop_duplicates=False)
    assert drop_report.total.nonfinite_rows == impute_report.total.nonfinite_rows == int(nonfinite.sum()) == 54
    assert impute_report.total.imputed_rows == 54
    assert len(imputed) == len(frame) and len(dropped) == len(frame) - 54
    fixed = imputed[nonfinite]
    duration = np.maximum(fixed["flow_duration"].to_numpy(np.float64), 1) / 1e6
    packets = fixed["fwd_packets"].to_numpy(np.float64) + fixed["bwd_packets"].to_numpy(np.float64)
    np.testing.assert_allclose(fixed["flow_packets_per_s"], packets / duration, rtol=1e-6)


def test_sentinels_are_values_not_errors(frame) -> None:
    cleaned, report = clean_flows(frame)
    assert report.total.sentinel_rows > 0
    assert (cleaned["bwd_init_win_bytes"] == -1).sum() > 0  # kept


def test_report_counts_add_up(frame) -> None:
    _, report = clean_flows(frame)
    for counts in report.files.values():
        assert counts.rows_out == counts.rows_in - counts.nonfinite_rows - counts.duplicate_rows
    assert report.to_dict()["total"]["rows_out"] == report.total.rows_out


def test_unknown_policy(frame) -> None:
    from iotids.errors import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="'nonfinite'"):
        clean_flows(frame, nonfinite="zero")
