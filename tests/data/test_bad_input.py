"""Broken input: each case gives one clear error naming file, line and column, or is counted and skipped."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from iotids.data import load_flows
from iotids.errors import DataFormatError
from iotids.schema import header_for

_IDS = {"flow_id", "src_ip", "src_port", "dst_ip", "protocol", "timestamp"}
HEADER = ",".join(" " + h for name, h in header_for("cicids2017") if name not in _IDS)  # MachineLearningCVE
WIDTH = HEADER.count(",") + 1


def _row(label: str = "BENIGN", port: str = "80", value: str = "1") -> str:
    return ",".join([port] + [value] * (WIDTH - 2) + [label])


def _write(path: Path, lines: list[str], *, gz: bool = False) -> Path:
    data = ("\n".join(lines) + "\n").encode("latin-1")
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def test_fixture_header_is_machine_learning_cve(tmp_path: Path) -> None:
    _, report = load_flows(_write(tmp_path / "ok.csv", [HEADER, _row(), _row(port="443")]), cache=False)
    assert report.files[0].layout == "MachineLearningCVE"
    assert report.files[0].rows == 2


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="no such file") as info:
        load_flows(tmp_path / "nope.csv")
    assert info.value.path.endswith("nope.csv")


def test_unknown_layout_names_expected_columns(tmp_path: Path) -> None:
    path = _write(tmp_path / "other.csv", ["a,b,c", "1,2,3"])
    with pytest.raises(DataFormatError, match="unknown layout") as info:
        load_flows(path, cache=False)
    message = str(info.value)
    assert "'Flow Duration'" in message and "'Label'" in message and "line 1" in message


def test_truncated_gzip(tmp_path: Path) -> None:
    data = gzip.compress(("\n".join([HEADER] + [_row(port=str(i)) for i in range(2000)]) + "\n").encode())
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match="truncated or corrupt") as info:
        load_flows(path, cache=False)
    assert "cut.csv.gz" in str(info.value)


def test_wrong_number_of_fields_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "wide.csv", [HEADER, _row(), _row() + ",extra", _row()])
    with pytest.raises(DataFormatError, match=f"expected {WIDTH} fields") as info:
        load_flows(path, cache=False)
    assert info.value.line == 3
    frame, report = load_flows(path, cache=False, on_bad_rows="skip")
    assert (len(frame), report.files[0].bad_rows) == (2, 1)


def test_text_in_numeric_column_names_line_and_column(tmp_path: Path) -> None:
    bad = _row().split(",")
    bad[1] = "fast"  # Flow Duration
    path = _write(tmp_path / "text.csv.gz", [HEADER, _row(), _row(), ",".join(bad)], gz=True)
    with pytest.raises(DataFormatError) as info:
        load_flows(path, cache=False)
    assert (info.value.line, info.value.column) == (4, "Flow Duration")
    assert "'fast'" in str(info.value)
    frame, report = load_flows(path, cache=False, on_bad_rows="skip")
    assert (len(frame), report.files[0].bad_rows) == (2, 1)


def test_trailing_empty_rows_are_counted_not_errors(tmp_path: Path) -> None:
    empty = "," * (WIDTH - 1)
    path = _write(tmp_path / "thursday.csv", [HEADER, _row(), _row(port="22"), empty, empty, empty])
    frame, report = load_flows(path, cache=False)
    assert (len(frame), report.files[0].empty_rows) == (2, 3)


def test_row_without_label(tmp_path: Path) -> None:
    path = _write(tmp_path / "nolabel.csv", [HEADER, _row(), _row(label="")])
    with pytest.raises(DataFormatError, match="no label") as info:
        load_flows(path, cache=False)
    assert (info.value.line, info.value.column) == (3, "Label")


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="empty"):
        load_flows(_write(tmp_path / "empty.csv", [""]), cache=False)


def test_cli_prints_one_line_and_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from iotids.cli import main

    path = _write(tmp_path / "other.csv", ["a,b,c", "1,2,3"])
    import sys

    argv, sys.argv = sys.argv, ["iotids", "data", "inspect", str(path)]
    try:
        with pytest.raises(SystemExit) as info:
            main()
    finally:
        sys.argv = argv
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown layout" in err and "Traceback" not in err
