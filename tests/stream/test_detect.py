"""End-to-end detection with a trained model: the library pipeline and the ``iotids detect`` command."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from iotids.errors import InvalidParameterError
from iotids.runtime import load_scorer
from iotids.stream import AlertWriter, RejectWriter, iter_blocks, run_stream

CLI = [sys.executable, "-c", "from iotids.cli import main; main()"]


def _test_lines(tiny_model, count: int) -> tuple[str, list[str]]:
    """Header and the raw CSV lines of ``count`` test-split rows (not seen in training)."""
    rows = tiny_model.test_frame["source_row"].to_numpy()[:count]
    return tiny_model.header, [tiny_model.lines[r] for r in rows]


def test_pipeline_alerts_on_attacks_and_keeps_counts(tmp_path: Path, tiny_model, check_eve_alert) -> None:
    header, lines = _test_lines(tiny_model, 3000)
    bad = [lines[5].replace(",", ";"), "1,2,3"]
    path = tmp_path / "flows.csv"
    path.write_text("\n".join([header, *lines[:100], *bad, *lines[100:]]) + "\n")
    scorer = load_scorer(tiny_model.path)
    out, rejects = io.BytesIO(), io.StringIO()
    stats = run_stream(iter_blocks(str(path), scorer.feature_columns), scorer,
                       AlertWriter(out, model=scorer.name, threshold=scorer.threshold),
                       rejects=RejectWriter(rejects), batch_size=512)
    events = [json.loads(line) for line in out.getvalue().decode().splitlines()]
    truth = tiny_model.test_frame["is_attack"].to_numpy()[:3000]
    assert stats.flows == 3000 and stats.bad_records == 2 and stats.batches == 6
    assert stats.alerts == len(events) == stats.true_alerts + stats.false_alerts
    assert stats.labelled == 3000 and stats.labelled_attacks == truth.sum()
    assert stats.true_alerts >= 0.9 * truth.sum() and stats.false_alerts <= 0.1 * (3000 - truth.sum())
    assert [json.loads(r)["line"] for r in rejects.getvalue().splitlines()] == [102, 103]
    expected = scorer.score_matrix(tiny_model.test_frame[list(scorer.feature_columns)].to_numpy(np.float32)[:3000])
    lines = [e["input"]["line"] for e in events]
    assert lines == sorted(lines)  # batches scored side by side are written in input order
    assert set(lines) == {n if n < 102 else n + 2 for n in np.flatnonzero(expected >= scorer.threshold) + 2}
    for event in events[:50]:
        check_eve_alert(event)
        assert event["input"]["file"] == str(path)


def test_run_stream_refuses_a_bad_number_of_scoring_threads(tiny_model) -> None:
    scorer = load_scorer(tiny_model.path)
    with pytest.raises(InvalidParameterError, match="score_threads"):
        run_stream([], scorer, AlertWriter(io.BytesIO(), model="m", threshold=0.5), score_threads=0)


def test_cli_reads_stdin_writes_rejects_and_exits_cleanly(tmp_path: Path, tiny_model) -> None:
    header, lines = _test_lines(tiny_model, 400)
    body = "\n".join([header, *lines[:10], lines[10][:50], *lines[11:]]) + "\n"
    done = subprocess.run([*CLI, "detect", "--model", str(tiny_model.path), "--reject", str(tmp_path / "r.jsonl"),
                           "--all"], input=body, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    stats = json.loads(done.stderr.splitlines()[-1])
    assert len(events) == stats["flows"] == 399 and stats["bad_records"] == 1
    assert {e["event_type"] for e in events} == {"alert", "flow"}
    assert sum(e["event_type"] == "alert" for e in events) == stats["alerts"]
    reject = json.loads((tmp_path / "r.jsonl").read_text())
    assert reject["line"] == 12 and reject["file"] == "-" and "fields" in reject["reason"]
    assert "bad record: -:12:" in done.stderr


def _set(row: str, index: int, value: str) -> str:
    cells = row.split(",")
    cells[index] = value
    return ",".join(cells)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_every_malformed_record_lands_in_the_reject_file(tmp_path: Path, tiny_model, fmt: str) -> None:
    header, lines = _test_lines(tiny_model, 30)
    names = header.split(",")
    duration, rate = names.index("Flow Duration"), names.index("Flow Bytes/s")
    if fmt == "csv":
        bad = [",".join(lines[0].split(",")[:30]), _set(lines[1], duration, "abc"), _set(lines[2], rate, "NaN"),
               _set(lines[3], rate, "Infinity"), _set(lines[4], duration, "1e300"), '{"not": "csv"}']
        body = [header, *bad, *lines[6:]]
    else:
        frame = tiny_model.test_frame.iloc[:30]
        flows = [{c: float(frame[c].iloc[i]) for c in tiny_model.columns} for i in range(30)]
        bad = [json.dumps({k: v for k, v in flows[0].items() if k != "flow_duration"}),
               json.dumps(flows[1] | {"flow_duration": "abc"}),
               json.dumps(flows[2] | {"flow_bytes_per_s": float("nan")}),
               json.dumps(flows[3] | {"flow_bytes_per_s": float("inf")}),
               json.dumps(flows[4]).replace('"flow_duration": ', '"flow_duration": 1e999'),
               "not json at all"]
        body = [*bad, *(json.dumps(f) for f in flows[6:])]
    path = tmp_path / f"flows.{fmt}"
    path.write_text("\n".join(body) + "\n")
    reject = tmp_path / "rejects.jsonl"
    done = subprocess.run([*CLI, "detect", "--model", str(tiny_model.path), "--input", str(path), "--reject",
                           str(reject), "--all"], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stderr.splitlines()[-1])
    assert stats["flows"] == 24 == len(done.stdout.splitlines()) and stats["bad_records"] == 6
    first = 2 if fmt == "csv" else 1
    records = [json.loads(line) for line in reject.read_text().splitlines()]
    assert [r["line"] for r in records] == list(range(first, first + 6))
    assert [r["raw"] for r in records] == bad and all(r["file"] == str(path) and r["reason"] for r in records)


def test_cli_follow_flushes_on_sigterm(tmp_path: Path, tiny_model) -> None:
    header, lines = _test_lines(tiny_model, 60)
    path, alerts = tmp_path / "live.csv", tmp_path / "alerts.jsonl"
    path.write_text("\n".join([header, *lines[:20]]) + "\n")
    process = subprocess.Popen(
        [*CLI, "detect", "--model", str(tiny_model.path), "--input", str(path), "--follow", "--all",
         "--alerts", str(alerts), "--max-wait-ms", "60000", "--batch-size", "100000"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stderr is not None
        assert "detect:" in process.stderr.readline()
        with path.open("a") as f:
            f.write("\n".join(lines[20:]) + "\n")
        time.sleep(1.0)  # the batch waits for 60 s or 100,000 flows: only SIGTERM can release it now
        assert not alerts.exists() or not alerts.read_text()
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, err
    events = [json.loads(line) for line in alerts.read_text().splitlines()]
    assert sorted(e["input"]["line"] for e in events) == list(range(2, 62))
    assert json.loads(err.splitlines()[-1])["flows"] == 60


def test_cli_usage_errors(tmp_path: Path, tiny_model) -> None:
    done = subprocess.run([*CLI, "detect", "--model", str(tmp_path / "none"), "--input", "x.csv"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "no such model directory" in done.stderr
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    done = subprocess.run([*CLI, "detect", "--model", str(tiny_model.path), "--input", str(tmp_path / "other.csv")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "unknown layout" in done.stderr and "Traceback" not in done.stderr


def test_both_backends_raise_the_same_alerts(tmp_path: Path, tiny_model) -> None:
    header, lines = _test_lines(tiny_model, 1000)
    path = tmp_path / "flows.csv"
    path.write_text("\n".join([header, *lines]) + "\n")
    found = {}
    for backend in ("onnx", "torch"):
        scorer = load_scorer(tiny_model.path, backend=backend)
        assert scorer.backend == backend
        out = io.BytesIO()
        run_stream(iter_blocks(str(path), scorer.feature_columns), scorer,
                   AlertWriter(out, model=scorer.name, threshold=scorer.threshold, all_flows=True))
        events = [json.loads(line) for line in out.getvalue().decode().splitlines()]
        found[backend] = {e["input"]["line"]: (e["event_type"], e["score"]) for e in events}
    assert found["onnx"].keys() == found["torch"].keys() and len(found["onnx"]) == 1000
    for line, (kind, score) in found["onnx"].items():
        assert abs(score - found["torch"][line][1]) <= 1e-5  # alert scores are printed with 6 decimals
        assert kind == found["torch"][line][0] or abs(score - tiny_model.threshold) < 1e-5


def test_cli_scores_the_flows_of_a_packet_capture(tmp_path: Path, tiny_model, shared_data: Path,
                                                  check_eve_alert) -> None:
    from iotids.flows import iter_flows

    capture = shared_data / "pcap" / "engelen_nmap-a-t4.pcap"
    done = subprocess.run([*CLI, "detect", "--model", str(tiny_model.path), "--pcap", str(capture), "--all"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    flows = list(iter_flows(str(capture), flavor="engelen2021"))
    stats = json.loads(done.stderr.splitlines()[-1])
    assert len(events) == stats["flows"] == len(flows) - stats["bad_records"] and stats["flows"] > 100
    assert sorted(e["input"]["line"] for e in events)[:3] == [1, 2, 3]
    tcp = [e for e in events if e.get("proto") == "TCP"]
    assert tcp and all(e["community_id"].startswith("1:") and e["input"]["file"] == str(capture) for e in tcp)
    for event in events:
        if event["event_type"] == "alert":
            check_eve_alert(event)
