"""EVE alert lines: field names and types, community ID where the 5-tuple is known, --all verdicts, rejects."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa

from iotids.stream import AlertWriter, BadRecord, FlowBlock, RejectWriter, community_id
from iotids.stream.alerts import EVE_TUPLE


def _batch(with_tuple: bool = True) -> FlowBlock:
    n = 4
    text = {"src_ip": pa.array(["192.168.10.5", "10.0.0.1", None, "fe80::1"]),
            "dst_ip": pa.array(["192.168.10.3", "10.0.0.2", "10.0.0.9", "fe80::2"])} if with_tuple else {}
    numbers = {"src_port": np.array([58181, 0, 1, 5353]), "dst_port": np.array([53, 0, 2, 5353]),
               "protocol": np.array([17, 1, 6, 17]), "icmp_type": np.array([-1, 8, -1, -1]),
               "icmp_code": np.array([-1, 0, -1, -1])} if with_tuple else {}
    return FlowBlock("flows.csv", np.array([2, 3, 4, 5]), np.zeros(n), np.zeros((n, 2), np.float32), text,
                     {k: v.astype(np.float64) for k, v in numbers.items()})


def test_alert_lines_follow_eve(check_eve_alert) -> None:
    out = io.BytesIO()
    writer = AlertWriter(out, model="cnn-lstm", threshold=0.5)
    scores = np.array([0.99, 0.8, 0.6, 0.1], np.float32)
    assert writer.write(_batch(), scores) == 3
    events = [json.loads(line) for line in out.getvalue().decode().splitlines()]
    assert len(events) == 3
    for event in events:
        check_eve_alert(event)
    udp, icmp, partial = events
    assert {k: udp[k] for k in EVE_TUPLE} == {"src_ip": "192.168.10.5", "src_port": 58181,
                                              "dest_ip": "192.168.10.3", "dest_port": 53, "proto": "UDP"}
    assert udp["community_id"] == community_id("192.168.10.5", "192.168.10.3", 17, 58181, 53)
    assert icmp["proto"] == "ICMP" and icmp["community_id"] == community_id("10.0.0.1", "10.0.0.2", 1, 8, 0)
    assert "src_ip" not in partial and "community_id" not in partial  # tuple incomplete: no id
    assert [e["alert"]["severity"] for e in events] == [1, 2, 3]
    assert [e["input"]["line"] for e in events] == [2, 3, 4]
    assert udp["score"] == 0.99 and udp["model"] == "cnn-lstm" and udp["input"]["file"] == "flows.csv"


def test_all_flows_writes_benign_verdicts_as_flow_events() -> None:
    out = io.BytesIO()
    AlertWriter(out, model="m", threshold=0.5, all_flows=True).write(_batch(False), np.array([0.9, 0.1, 0.2, 0.3]))
    events = [json.loads(line) for line in out.getvalue().decode().splitlines()]
    assert [e["event_type"] for e in events] == ["alert", "flow", "flow", "flow"]
    assert "alert" not in events[1] and "src_ip" not in events[0]


def test_flow_ids_are_stable_and_distinct() -> None:
    first, second = io.BytesIO(), io.BytesIO()
    for out in (first, second):
        AlertWriter(out, model="m", threshold=0.0).write(_batch(), np.ones(4, np.float32))
    events = [json.loads(line) for line in first.getvalue().decode().splitlines()]
    assert events[3]["community_id"] == community_id("fe80::1", "fe80::2", 17, 5353, 5353)  # IPv6: slow path
    ids = [event["flow_id"] for event in events]
    assert ids == [json.loads(line)["flow_id"] for line in second.getvalue().decode().splitlines()]
    assert len(set(ids)) == 4


def test_rejects_are_json_lines_with_file_and_line(caplog) -> None:
    out = io.StringIO()
    writer = RejectWriter(out, log_first=1)
    writer.write([BadRecord("in.csv", 7, "missing value", "a,,b"), BadRecord("in.csv", 9, "x", "y")])
    assert [json.loads(line) for line in out.getvalue().splitlines()] == [
        {"file": "in.csv", "line": 7, "reason": "missing value", "raw": "a,,b"},
        {"file": "in.csv", "line": 9, "reason": "x", "raw": "y"},
    ]
    assert writer.count == 2 and "in.csv:7: missing value" in caplog.text and "in.csv:9" not in caplog.text
