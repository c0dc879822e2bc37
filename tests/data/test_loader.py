"""Loading the real rows in ../shared/data: layouts, exact counts, labels, cache."""

from __future__ import annotations

import gzip
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from iotids.data import clean_flows, feature_columns, load_flows
from iotids.data.sources import find_sources

CICIDS2017_LABELS = {
    "BENIGN": 33958, "PortScan": 1673, "DDoS": 1515, "Web Attack - Brute Force": 1507, "DoS Hulk": 985,
    "Web Attack - XSS": 652, "DoS GoldenEye": 51, "FTP-Patator": 35, "SSH-Patator": 27, "DoS Slowhttptest": 25,
    "DoS slowloris": 22, "Web Attack - Sql Injection": 21, "Bot": 6,
}
IMPROVED_LABELS = {
    "BENIGN": 5000, "Botnet": 736, "DDoS": 5000, "DoS GoldenEye": 5000, "DoS Hulk": 5000, "DoS Slowhttptest": 1740,
    "DoS Slowloris": 3859, "FTP-Patator": 3972, "Heartbleed": 11, "Infiltration - Portscan": 5000,
    "Infiltration": 36, "Portscan": 5000, "SSH-Patator": 2961, "Web Attack - Brute Force": 73,
    "Web Attack - SQL Injection": 13, "Web Attack - XSS": 18,
}


def _label_counts(frame) -> dict[str, int]:
    return {str(k): int(v) for k, v in frame["label"].value_counts().items() if v}


def test_original_release_exact_counts(cicids2017_dir: Path) -> None:
    frame, report = load_flows(cicids2017_dir)
    assert len(report.files) == 11
    assert sorted({f.layout for f in report.files}) == ["MachineLearningCVE", "TrafficLabelling"]
    assert len(frame) == 40477
    assert _label_counts(frame) == CICIDS2017_LABELS
    assert all(f.duplicate_header_column for f in report.files)
    assert "fwd_header_length_dup" not in frame.columns
    cleaned, cleaning = clean_flows(frame, load_report=report)
    total = cleaning.total
    assert (total.nonfinite_rows, total.duplicate_rows, total.rows_out) == (54, 653, 39770)
    paris = next(v for k, v in cleaning.files.items() if "Paris-svg" in k)
    assert (paris.rows_in, paris.nonfinite_rows, paris.duplicate_rows) == (9998, 7, 74)
    assert np.isfinite(cleaned[feature_columns(cleaned)].to_numpy()).all()
    assert cleaned["row_hash"].is_unique
    assert "bwd_psh_flags" in cleaning.constant_columns
    # the web attacks arrive in two broken encodings (U+FFFD and double-encoded UTF-8) and leave as one spelling
    web = cleaned.loc[cleaned["family"] == "Web Attack", "label"].astype(str).unique()
    assert sorted(web) == ["Web Attack - Brute Force", "Web Attack - Sql Injection", "Web Attack - XSS"]


def test_original_release_metadata(cicids2017_dir: Path) -> None:
    frame, _ = load_flows(cicids2017_dir)
    traffic = frame[frame["source_file"].str.contains("TrafficLabelling")]
    assert traffic["timestamp"].notna().all()
    # 12-hour clock without AM/PM in TrafficLabelling: the DDoS ran in the afternoon
    assert traffic["timestamp"].dt.hour.between(8, 18).all()
    assert set(traffic["protocol"].unique()) <= {0.0, 6.0, 17.0}
    monday = frame[frame["source_file"].str.contains("Monday")]
    assert set(monday["day"].astype(str)) == {"2017-07-03"}
    assert (frame.loc[frame["label"] == "BENIGN", "is_attack"] == 0).all()
    assert (frame.loc[frame["label"] != "BENIGN", "is_attack"] == 1).all()
    assert frame["source_row"].min() == 1


def test_improved_release_exact_counts(improved_dir: Path) -> None:
    frame, report = load_flows(improved_dir)
    assert [f.layout for f in report.files] == ["Engelen2021"]
    assert len(frame) == 43419
    assert _label_counts(frame) == IMPROVED_LABELS
    assert report.attempted_rows == 0
    for column in ("fwd_rst_flags", "icmp_type", "total_tcp_flow_time", "flow_id", "src_ip", "timestamp"):
        assert column in frame.columns
    days = frame["day"].astype(str).value_counts().to_dict()
    assert days == {"2017-07-03": 1244, "2017-07-04": 7864, "2017-07-05": 16615, "2017-07-06": 6074,
                    "2017-07-07": 11622}
    _, cleaning = clean_flows(frame, load_report=report)
    assert (cleaning.total.nonfinite_rows, cleaning.total.duplicate_rows) == (0, 624)


def test_mixing_releases_is_refused(cicids2017_dir: Path, improved_dir: Path) -> None:
    from iotids.errors import DataFormatError

    with pytest.raises(DataFormatError, match="cannot mix"):
        load_flows([cicids2017_dir, improved_dir])


def test_plain_gz_zip_and_directory_give_the_same_rows(cicids2017_dir: Path, tmp_path: Path) -> None:
    gz = sorted(cicids2017_dir.glob("Tuesday*.csv.gz"))[0]
    plain = tmp_path / "plain" / "Tuesday-WorkingHours.pcap_ISCX.csv"
    plain.parent.mkdir()
    plain.write_bytes(gzip.decompress(gz.read_bytes()))
    archive = tmp_path / "MachineLearningCSV.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(plain, "MachineLearningCVE/Tuesday-WorkingHours.pcap_ISCX.csv")
        z.writestr("MachineLearningCVE/readme.txt", "not a csv")
    frames = [load_flows(p, cache=False)[0] for p in (gz, plain, plain.parent, archive)]
    for frame in frames[1:]:
        assert frame["row_hash"].tolist() == frames[0]["row_hash"].tolist()
    member = "MachineLearningCVE/Tuesday-WorkingHours.pcap_ISCX.csv"
    assert [s.name for s in find_sources([archive])] == [f"{archive}:{member}"]


def test_cache_is_used_and_invalidated(cicids2017_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "monday.csv.gz"
    shutil.copy(sorted(cicids2017_dir.glob("Monday*.csv.gz"))[0], path)
    first, report = load_flows(path)
    assert report.cached_files == 0
    second, report = load_flows(path)
    assert report.cached_files == 1
    assert second.equals(first)
    text = gzip.decompress(path.read_bytes()).decode("latin-1").splitlines(keepends=True)
    path.write_bytes(gzip.compress("".join(text[:101]).encode("latin-1")))
    os.utime(path, ns=(1, 1))
    third, report = load_flows(path)
    assert report.cached_files == 0
    assert len(third) == 100
