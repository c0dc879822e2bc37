"""``iotids flows``: the CSV it writes and its errors."""

from __future__ import annotations

import csv
from pathlib import Path

from typer.testing import CliRunner

from iotids.cli import _register, app
from iotids.schema import header_for

from .packets import ACK, FIN, SYN, tcp, write_pcap

C, S = "10.0.0.1", "10.0.0.2"


def run(*args: str) -> tuple[int, str]:
    _register()
    result = CliRunner().invoke(app, ["flows", *args])
    return result.exit_code, result.output


def test_writes_the_data_sets_columns(tmp_path: Path) -> None:
    pcap = write_pcap(tmp_path / "c.pcap", [tcp(0.0, C, 1, S, 80, SYN), tcp(0.5, S, 80, C, 1, SYN | ACK),
                                            tcp(1.0, C, 1, S, 80, FIN | ACK)])
    for flavor in ("cicids2017", "engelen2021"):
        out = tmp_path / flavor / "flows.csv"
        code, output = run(str(pcap), "--out", str(out), "--flavor", flavor, "--label", "BENIGN")
        assert code == 0, output
        rows = list(csv.reader(out.open()))
        assert rows[0] == [name for _, name in header_for(flavor)]
        assert len(rows) == 2 and rows[1][-1] == "BENIGN"
        record = dict(zip(rows[0], rows[1], strict=True))
        assert record["Timestamp"] == "1970-01-01 00:00:00.000000"
        assert record["Flow Duration"] == "1000000"
        assert "1 flows from 3 packets" in " ".join(output.split())


def test_bad_input_leaves_no_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture at all, really")
    out = tmp_path / "flows.csv"
    code, _ = run(str(bad), "--out", str(out))
    assert code != 0 and not out.exists() and list(tmp_path.iterdir()) == [bad]
    code, _ = run(str(bad), "--out", str(out), "--label", "a,b")
    assert code != 0
