"""``iotids data inspect``: the report a user reads, as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from iotids.cli import _register, app

from .test_loader import CICIDS2017_LABELS, IMPROVED_LABELS

_register()
runner = CliRunner()


def _inspect(*args: str) -> dict:
    result = runner.invoke(app, ["data", "inspect", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_inspect_original_release(cicids2017_dir: Path) -> None:
    report = _inspect(str(cicids2017_dir))
    assert report["total"]["labels"] == CICIDS2017_LABELS
    assert len(report["total"]["labels"]) == 13
    assert report["total"]["rows"] == 40477
    assert report["total"]["cleaning"]["nonfinite_rows"] == 54
    assert report["total"]["cleaning"]["duplicate_rows"] == 653
    assert len(report["files"]) == 11 and len(report["duplicate_header_column_files"]) == 11
    sketchflow = next(f for f in report["files"] if "sketchflow" in f["file"])
    assert sketchflow["labels"]["Web Attack - Brute Force"] == 1507  # double-encoded in the file, one spelling here


def test_inspect_improved_release(improved_dir: Path) -> None:
    report = _inspect(str(improved_dir))
    assert report["total"]["labels"] == IMPROVED_LABELS
    assert len(report["total"]["labels"]) == 16
    assert report["files"][0]["layout"] == "Engelen2021"


def test_inspect_text_output(improved_dir: Path) -> None:
    result = runner.invoke(app, ["data", "inspect", str(improved_dir)])
    assert result.exit_code == 0
    assert "Engelen2021" in result.stdout and "Heartbleed" in result.stdout and "duplicates" in result.stdout


def test_attempted_policy(tmp_path: Path, improved_dir: Path) -> None:
    import gzip

    lines = gzip.decompress(next(improved_dir.glob("*.csv.gz")).read_bytes()).decode().splitlines()[:3]
    attempted = lines[2].rsplit(",", 2)
    lines[2] = ",".join([attempted[0], "DoS Hulk - Attempted", "0"])
    path = tmp_path / "attempted.csv"
    path.write_text("\n".join(lines) + "\n")
    benign = _inspect(str(path))
    assert benign["attempted"] == {"policy": "benign", "rows": 1, "dropped": 0}
    assert _inspect(str(path), "--attempted", "drop")["attempted"]["dropped"] == 1

    from iotids.data import load_flows

    frame, _ = load_flows(path, attempted="benign", cache=False)
    assert frame.loc[frame["label"] == "DoS Hulk - Attempted", "is_attack"].tolist() == [0]
    frame, _ = load_flows(path, attempted="attack", cache=False)
    row = frame[frame["label"] == "DoS Hulk - Attempted"]
    assert row["is_attack"].tolist() == [1] and row["family"].tolist() == ["DoS"]
