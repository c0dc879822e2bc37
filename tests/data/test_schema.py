"""Header recognition for every layout, label normalisation for every broken encoding."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from iotids.data.reader import read_header
from iotids.data.sources import Source
from iotids.schema import (
    FLAVOR_FEATURES,
    header_for,
    label_family,
    normalize_label,
    resolve_header,
    split_attempted,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"Web Attack \x96 Brute Force", "Web Attack - Brute Force"),  # CIC's cp1252 byte
        ("Web Attack \ufffd XSS", "Web Attack - XSS"),  # U+FFFD (pandas re-serialised)
        ("Web Attack \u00ef\u00bf\u00bd Sql Injection", "Web Attack - Sql Injection"),  # double-encoded UTF-8
        (b"Web Attack \xc2\x96 XSS", "Web Attack - XSS"),  # UTF-8 of the C1 control read as Latin-1
        ("Web Attack \u2013 Brute Force", "Web Attack - Brute Force"),  # a real en dash
        ("\ufeffBENIGN ", "BENIGN"),
        ("FTP-Patator", "FTP-Patator"),
        ("DoS Hulk - Attempted", "DoS Hulk - Attempted"),
    ],
)
def test_normalize_label(raw: str | bytes, expected: str) -> None:
    assert normalize_label(raw) == expected


def test_families_and_attempted() -> None:
    assert label_family("DoS slowloris") == "DoS"
    assert label_family("DDoS") == "DDoS"
    assert label_family("Bot") == label_family("Botnet") == "Botnet"
    assert label_family("Infiltration - Portscan") == "Infiltration"
    assert split_attempted("Web Attack - XSS - Attempted") == ("Web Attack - XSS", True)


def test_every_pcap_csv_layout_is_recognised(shared_data: Path) -> None:
    layouts = {}
    for path in sorted((shared_data / "pcap").glob("*.csv")):
        header = read_header(Source(path))
        layouts[path.name] = header.layout
        assert "flow_duration" in header.features
    assert layouts["cfm40_slowloris.cicflowmeter.csv"] == "CSE-CIC-IDS2018"
    assert layouts["cfm40master_home-browsing.cicflowmeter.csv"] == "CICFlowMeter-4.0"
    assert layouts["engelen_ping.cicflowmeter.csv"] == "CICFlowMeter-Engelen"
    assert layouts["cic2018_2015-03-31-exercise.cicflowmeter.csv"] == "TrafficLabelling"


def test_real_headers(cicids2017_dir: Path, improved_dir: Path) -> None:
    for path in sorted(cicids2017_dir.glob("*.csv.gz")):
        header = read_header(Source(path))
        assert set(FLAVOR_FEATURES["cicids2017"]) <= set(header.features), path.name
    improved = next(improved_dir.glob("*.csv.gz"))
    with gzip.open(improved, "rt") as f:
        first = f.readline().rstrip("\n").split(",")
    header = resolve_header(first)
    assert header.layout == "Engelen2021"
    assert header.columns[0] == "record_id" and header.columns[-1] == "attempted_category"


def test_header_for_round_trips() -> None:
    for flavor in ("cicids2017", "engelen2021"):
        pairs = header_for(flavor)
        header = resolve_header([h for _, h in pairs])
        assert list(header.columns) == [name for name, _ in pairs]
