"""Readers on real CICFlowMeter lines: layouts, line numbers, every malformed-record case, JSON lines, --follow."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from iotids.errors import DataFormatError, SchemaMismatchError
from iotids.schema import resolve_header
from iotids.stream import FlowBlock, blocks_from_flows, blocks_from_tables, iter_blocks

COLUMNS = ["flow_duration", "fwd_packets", "bwd_packets", "fwd_bytes", "flow_bytes_per_s", "fwd_pkt_len_max"]


def _read(path: Path | str, columns: list[str] = COLUMNS, **kw) -> FlowBlock:
    blocks = list(iter_blocks(str(path), columns, **kw))
    return FlowBlock.concat(blocks) if blocks else FlowBlock.empty(str(path), len(columns))


def _cell(lines: list[str], line: int, column: str) -> str:
    """The raw text of canonical ``column`` on 1-based ``line``."""
    header = resolve_header(lines[0].split(","))
    return lines[line - 1].split(",")[header.columns.index(column)]


def _set(row: str, index: int, value: str) -> str:
    cells = row.split(",")
    cells[index] = value
    return ",".join(cells)


def test_improved_rows_are_read_with_their_line_numbers(tmp_path: Path, improved_lines: list[str]) -> None:
    lines = improved_lines[:3001]
    path = tmp_path / "flows.csv"
    path.write_text("\n".join(lines) + "\n")
    block = _read(path, chunk_bytes=256 << 10)  # several chunks
    assert len(block) == 3000 and not block.bad
    np.testing.assert_array_equal(block.lines, np.arange(2, 3002))
    for line in (2, 1500, 3001):
        row = int(np.flatnonzero(block.lines == line)[0])
        for j, column in enumerate(COLUMNS):
            assert block.X[row, j] == np.float32(float(_cell(lines, line, column)))
    assert block.text["src_ip"][0].as_py() == _cell(lines, 2, "src_ip")
    assert block.numbers["dst_port"][0] == float(_cell(lines, 2, "dst_port"))
    labels = [line.rsplit(",", 2)[1] for line in lines[1:]]
    np.testing.assert_array_equal(block.truth, [int(lab != "BENIGN") for lab in labels])


def test_mlcve_layout_crlf_and_blank_lines(tmp_path: Path, mlcve_lines: list[str]) -> None:
    body = mlcve_lines[1:201]
    path = tmp_path / "mlcve.csv"
    path.write_bytes(("\r\n".join([mlcve_lines[0], *body[:100], "", *body[100:]]) + "\r\n").encode("latin-1"))
    block = _read(path)
    nonfinite = sum(1 for row in body if "Infinity" in row.split(",")[14:16] or "NaN" in row.split(",")[14:16])
    assert len(block) + len(block.bad) == 200 and len(block.bad) == nonfinite
    assert block.lines[0] == 2 and 102 not in block.lines and block.lines[-1] == 202  # the blank line is 102


def test_cicflowmeter_output_without_label_column(tmp_path: Path, shared_data: Path) -> None:
    lines = (shared_data / "pcap" / "cfm40_slowloris.cicflowmeter.csv").read_text().splitlines()
    header = lines[0].split(",")
    keep = [i for i, name in enumerate(header) if name != "Label"]
    path = tmp_path / "live.csv"
    path.write_text("\n".join(",".join(row.split(",")[i] for i in keep) for row in lines) + "\n")
    block = _read(path)
    assert len(block) + len(block.bad) == len(lines) - 1 and block.truth is None


def test_every_malformed_case_is_counted_and_the_stream_goes_on(tmp_path: Path,
                                                                  improved_lines: list[str]) -> None:
    header, rows = improved_lines[0], improved_lines[1:40]
    duration = header.split(",").index("Flow Duration")
    rate = header.split(",").index("Flow Bytes/s")
    cases = [
        (",".join(rows[0].split(",")[:20]), "expected 91 fields"),  # missing fields
        (_set(rows[1], duration, "abc"), "expected a number in column 'Flow Duration'"),
        (_set(rows[2], rate, "NaN"), "not a finite number"),
        (_set(rows[3], rate, "Infinity"), "not a finite number"),
        (_set(rows[4], duration, "1e300"), "out of the float32 range"),
        (_set(rows[5], duration, ""), "missing value in column 'Flow Duration'"),
        ('{"flow_duration": 1}', "expected 91 fields"),  # not a CSV line at all
        (rows[6] + ",extra", "found 92"),
    ]
    good = rows[10:39]
    lines = [header, good[0], *(c for c, _ in cases), *good[1:]]
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    block = _read(path)
    assert len(block) == len(good)
    assert [b.line for b in block.bad] == list(range(3, 3 + len(cases)))
    for bad, (raw, reason) in zip(sorted(block.bad, key=lambda b: b.line), cases, strict=True):
        assert reason in bad.reason and bad.raw == raw and bad.source == str(path)
    assert list(block.lines) == [2, *range(3 + len(cases), len(lines) + 1)]


def test_a_bad_line_inside_a_large_chunk_costs_only_itself(tmp_path: Path, improved_lines: list[str]) -> None:
    header, rows = improved_lines[0], improved_lines[1:5001]
    duration = header.split(",").index("Flow Duration")
    rows[3333] = _set(rows[3333], duration, "12abc")
    path = tmp_path / "one-bad.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    block = _read(path)
    assert len(block) == 4999 and [b.line for b in block.bad] == [3335]


def test_json_lines_every_malformed_case(tmp_path: Path) -> None:
    good = {"flow_duration": 10, "Total Fwd Packets": 2, "bwd_packets": 1, "fwd_bytes": 100,
            "Flow Bytes/s": 5.5, "fwd_pkt_len_max": "60", "src_ip": "10.0.0.1", "Label": "DoS Hulk"}
    cases = [
        ({k: v for k, v in good.items() if k != "fwd_bytes"}, "missing field 'fwd_bytes'"),
        (good | {"fwd_bytes": "abc"}, "expected a number"),
        ("NaN", "not a finite number"),
        ("Infinity", "not a finite number"),
        (good | {"fwd_bytes": 1e39}, "out of the float32 range"),
        (good | {"fwd_bytes": 10**400}, "out of the float32 range"),
        (good | {"fwd_bytes": True}, "expected a number"),
        ("{not json", "not valid JSON"),
        ([1, 2], "expected a JSON object"),
    ]
    lines = [json.dumps(good)]
    for value, _ in cases:
        if value in ("NaN", "Infinity"):
            lines.append(json.dumps(good).replace('"Flow Bytes/s": 5.5', f'"Flow Bytes/s": {value}'))
        elif value == "{not json":
            lines.append(value)
        else:
            lines.append(json.dumps(value))
    lines.append(json.dumps(good))
    path = tmp_path / "flows.jsonl"
    path.write_text("\n".join(lines) + "\n")
    block = _read(path)
    assert list(block.lines) == [1, len(lines)]
    assert block.X[0].tolist() == [10, 2, 1, 100, 5.5, 60]
    assert block.truth.tolist() == [1, 1] and block.text["src_ip"].to_pylist() == ["10.0.0.1"] * 2
    assert [b.line for b in block.bad] == list(range(2, 2 + len(cases)))
    for bad, (_, reason) in zip(block.bad, cases, strict=True):
        assert reason in bad.reason


def test_flow_dicts_source(tmp_path: Path) -> None:
    flows = [dict(zip(COLUMNS, [1.0, 2, 3, 4, 5, 6], strict=True)), {"flow_duration": 1}]
    block = FlowBlock.concat(list(blocks_from_flows(flows, COLUMNS, source="capture.pcap")))
    assert list(block.lines) == [1] and block.bad[0].line == 2 and "missing field" in block.bad[0].reason


def test_arrow_tables_source_numbers_flows_across_tables() -> None:
    def table(values: list[float]) -> pa.Table:
        return pa.table({**{c: pa.array([1.0] * len(values)) for c in COLUMNS[1:]}, "flow_duration": values,
                         "src_ip": ["10.0.0.1"] * len(values), "protocol": [6] * len(values),
                         "label": ["NeedManualLabel"] * len(values)})

    blocks = list(blocks_from_tables([table([1, 2]), table([3, float("inf"), None])], COLUMNS, source="cap.pcap"))
    block = FlowBlock.concat(blocks)
    assert block.lines.tolist() == [1, 2, 3] and block.X[:, COLUMNS.index("flow_duration")].tolist() == [1, 2, 3]
    assert [(b.line, "flow_duration" in b.reason) for b in block.bad] == [(4, True), (5, True)]
    assert block.truth.tolist() == [-1, -1, -1]  # CICFlowMeter's placeholder label is no ground truth
    assert block.numbers["protocol"].tolist() == [6, 6, 6] and block.text["src_ip"][0].as_py() == "10.0.0.1"
    with pytest.raises(SchemaMismatchError, match="fwd_bytes"):
        list(blocks_from_tables([table([1]).drop_columns(["fwd_bytes"])], COLUMNS, source="cap.pcap"))


def test_follow_picks_up_appended_lines(tmp_path: Path, improved_lines: list[str]) -> None:
    path = tmp_path / "growing.csv"
    path.write_text("\n".join(improved_lines[:11]) + "\n")
    stop = threading.Event()
    seen: list[int] = []

    def consume() -> None:
        for block in iter_blocks(str(path), COLUMNS, follow=True, stop=stop, poll_s=0.02):
            seen.extend(block.lines.tolist())

    reader = threading.Thread(target=consume)
    reader.start()
    _wait_for(lambda: len(seen) == 10)
    with path.open("a") as f:
        f.write("\n".join(improved_lines[11:21]) + "\n")
        f.flush()
        f.write(improved_lines[21][:30])  # half a line: held back until its newline arrives
        f.flush()
        _wait_for(lambda: len(seen) == 20)
        time.sleep(0.1)
        assert len(seen) == 20
        f.write(improved_lines[21][30:] + "\n")
    _wait_for(lambda: len(seen) == 21)
    stop.set()
    reader.join(timeout=5)
    assert not reader.is_alive() and seen == list(range(2, 23))


def test_follow_rereads_a_replaced_file(tmp_path: Path, improved_lines: list[str]) -> None:
    path = tmp_path / "rotating.csv"
    path.write_text("\n".join(improved_lines[:6]) + "\n")
    stop = threading.Event()
    seen: list[int] = []
    reader = threading.Thread(target=lambda: [seen.extend(b.lines.tolist()) for b in iter_blocks(
        str(path), COLUMNS, follow=True, stop=stop, poll_s=0.02)])
    reader.start()
    _wait_for(lambda: len(seen) == 5)
    replacement = tmp_path / "new.csv"
    replacement.write_text("\n".join([improved_lines[0], *improved_lines[100:103]]) + "\n")
    replacement.replace(path)
    _wait_for(lambda: len(seen) == 8)
    stop.set()
    reader.join(timeout=5)
    assert seen == [2, 3, 4, 5, 6, 2, 3, 4]


def test_whole_input_problems_raise_before_the_first_record(tmp_path: Path, improved_lines: list[str]) -> None:
    with pytest.raises(DataFormatError, match="cannot open"):
        _read(tmp_path / "absent.csv")
    (tmp_path / "other.csv").write_text("a,b,c\n1,2,3\n")
    with pytest.raises(DataFormatError, match="unknown layout"):
        _read(tmp_path / "other.csv")
    (tmp_path / "flows.csv").write_text("\n".join(improved_lines[:3]) + "\n")
    with pytest.raises(SchemaMismatchError, match="bwd_act_data_pkts"):
        _read(tmp_path / "flows.csv", [*COLUMNS, "bwd_act_data_pkts"])


def _wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
