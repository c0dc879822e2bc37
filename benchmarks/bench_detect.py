"""End-to-end throughput of ``iotids detect`` on 1,000,000 real flows.

Real rows of ../shared/data are drawn with replacement (their own text, as CIC wrote them) into one CSV of the
layout the model was trained on, in a temporary directory. Then ``iotids detect --model DIR --input FILE
--alerts FILE`` runs as a separate process; the wall time covers everything: start-up, model loading, parsing,
scoring and writing every alert line. The pipeline's own statistics (its last stderr line) are recorded too.

Two inputs (``--inputs``): ``uniform`` draws the sample's rows uniformly, so its label mix is the sample's (at most
5,000 rows per label: 88 % attacks, nearly every flow raises an alert); ``label-mix`` (engelen2021 only) first
draws a label with the probability it has in the whole improved data set (the "Totals vs the improved data set"
table of ../shared/data/cicids2017-improved/PROVENANCE.md: 75.8 % benign), then a row of that label.

    python benchmarks/bench_detect.py --model DIR [--rows 1000000] [--inputs uniform,label-mix] [--batch-size 8192]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SOURCES = {
    "engelen2021": sorted((SHARED / "cicids2017-improved").glob("*.csv.gz")),
    "cicids2017": sorted((SHARED / "cicids2017").glob("*MLCVE*.csv.gz")),
}


#: Rows per label of the improved CICIDS2017 without its "- Attempted" flows (PROVENANCE.md of the sample).
LABEL_MIX = {
    "engelen2021": {
        "BENIGN": 1582566, "Botnet": 736, "DDoS": 95144, "DoS GoldenEye": 7567, "DoS Hulk": 158468,
        "DoS Slowhttptest": 1740, "DoS Slowloris": 3859, "FTP-Patator": 3972, "Heartbleed": 11,
        "Infiltration - Portscan": 71767, "Infiltration": 36, "Portscan": 159066, "SSH-Patator": 2961,
        "Web Attack - Brute Force": 73, "Web Attack - SQL Injection": 13, "Web Attack - XSS": 18,
    },
}
INPUTS = {"uniform": "rows resampled uniformly: the sample's label mix, 88 % attacks",
          "label-mix": "rows resampled to the full data set's label mix, 76 % benign"}


def flavor_of(model: Path) -> str:
    """The data layout whose header carries every feature the model reads."""
    from iotids.runtime import load_scorer
    from iotids.schema import FLAVOR_FEATURES

    columns = set(load_scorer(model, backend="auto").feature_columns) - {"protocol"}
    for flavor in ("engelen2021", "cicids2017"):
        if columns <= set(FLAVOR_FEATURES[flavor]):  # type: ignore[index]
            return flavor
    raise SystemExit(f"no data layout in {SHARED} carries all the features of {model}")


def build(workdir: Path, flavor: str, rows: int, kind: str = "uniform", seed: int = 0) -> Path:
    """``rows`` real rows of ``flavor`` drawn with replacement into one CSV (reused if present).

    ``kind``: ``uniform`` over the sample's rows, or ``label-mix``: a label drawn with its share in the full data
    set (:data:`LABEL_MIX`), then a row of that label.
    """
    out = workdir / (f"{flavor}-{rows}.csv" if kind == "uniform" else f"{flavor}-{rows}-{kind}.csv")
    if out.exists():
        return out
    header, lines = None, []
    for path in SOURCES[flavor]:
        text = gzip.decompress(path.read_bytes()).decode("latin-1").replace("\r\n", "\n").replace("\ufeff", "")
        head, *body = text.rstrip("\n").split("\n")
        if header is not None and head.replace("ï»¿", "") != header:
            continue  # another layout of the same flavour: keep one header per file
        header = head.replace("ï»¿", "")
        lines.extend(body)
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        pick = rng.integers(0, len(lines), rows)
    else:
        column = header.split(",").index("Label")
        labels = np.array([line.split(",")[column].strip() for line in lines])
        mix = LABEL_MIX[flavor]
        names = [name for name in mix if (labels == name).any()]
        weights = np.array([mix[name] for name in names], np.float64)
        drawn = rng.choice(len(names), rows, p=weights / weights.sum())
        pick = np.empty(rows, np.int64)
        for k, name in enumerate(names):
            members = np.flatnonzero(labels == name)
            where = np.flatnonzero(drawn == k)
            pick[where] = members[rng.integers(0, len(members), len(where))]
    tmp = out.with_suffix(".tmp")
    with tmp.open("w", encoding="latin-1") as f:
        f.write(header + "\n")
        for start in range(0, rows, 100_000):
            f.write("\n".join(lines[i] for i in pick[start:start + 100_000]) + "\n")
    os.replace(tmp, out)
    return out


def run(model: Path, data: Path, workdir: Path, extra: list[str]) -> dict:
    alerts = workdir / "alerts.jsonl"
    alerts.unlink(missing_ok=True)
    command = [sys.executable, "-c", "from iotids.cli import main; main()", "detect", "--model", str(model),
               "--input", str(data), "--alerts", str(alerts), *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode:
        raise SystemExit(f"detect failed ({done.returncode}):\n{done.stderr}")
    stats = json.loads(done.stderr.strip().splitlines()[-1])
    with alerts.open("rb") as f:
        alert_lines = sum(1 for _ in f)
    return {"wall_s": wall, "cpu_s": cpu, "stats": stats, "alert_lines": alert_lines,
            "command": " ".join(command[3:])}


def stages(model: Path, data: Path, rows: int = 200_000) -> dict[str, float]:
    """CPU microseconds per flow of each stage, measured one after the other in this process on ``rows`` flows."""
    from iotids.runtime import load_scorer
    from iotids.stream import AlertWriter, FlowBlock, iter_blocks

    scorer = load_scorer(model)
    cost: dict[str, float] = {}
    started = time.process_time()
    blocks, n = [], 0
    for block in iter_blocks(str(data), scorer.feature_columns):
        blocks.append(block)
        n += len(block)
        if n >= rows:
            break
    batch = FlowBlock.concat(blocks)
    cost["read + parse"] = (time.process_time() - started) / len(batch) * 1e6
    started = time.process_time()
    scores = np.concatenate([scorer.score_matrix(batch.X[i:i + 8192]) for i in range(0, len(batch), 8192)])
    cost[f"score ({scorer.backend})"] = (time.process_time() - started) / len(batch) * 1e6
    with open(os.devnull, "wb") as sink:
        writer = AlertWriter(sink, model=scorer.name, threshold=scorer.threshold)
        started = time.process_time()
        for i in range(0, len(batch), 8192):
            writer.write(batch.take(i, min(i + 8192, len(batch)), with_bad=False), scores[i:i + 8192])
    cost[f"alert lines ({(scores >= scorer.threshold).mean():.0%} of flows alert)"] = (
        (time.process_time() - started) / len(batch) * 1e6)
    return cost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--inputs", default="uniform,label-mix", help=f"comma-separated, of: {', '.join(INPUTS)}")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "iotids-bench-detect")
    parser.add_argument("--out", type=Path, default=None, help="append the markdown sections to this file")
    args, extra = parser.parse_known_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    flavor = flavor_of(args.model)
    for kind in args.inputs.split(","):
        if kind not in INPUTS or (kind != "uniform" and flavor not in LABEL_MIX):
            raise SystemExit(f"--inputs: {kind!r} is not available for {flavor} data (choose from {', '.join(INPUTS)})")
        section = measure(args.model, build(args.workdir, flavor, args.rows, kind), args.workdir, extra,
                          f"{args.rows:,} real flows ({flavor} {INPUTS[kind]})")
        print(section)
        if args.out:
            with args.out.open("a", encoding="utf-8") as f:
                f.write(section + "\n")


def measure(model: Path, data: Path, workdir: Path, extra: list[str], title: str) -> str:
    """One end-to-end run and the stage costs, as a markdown section."""
    load = os.getloadavg()
    result = run(model, data, workdir, extra)
    stats = result["stats"]
    cost = stages(model, data)
    flows = stats["flows"]
    return "\n".join([
        f"### detect: {title}, end to end",
        "",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores; load average before the run {load[0]:.2f}, "
        f"after {os.getloadavg()[0]:.2f}",
        f"- input: {data.stat().st_size / 2**20:,.0f} MiB CSV; command: `iotids {result['command']}`",
        f"- wall time, process start to exit: {result['wall_s']:.2f} s -> "
        f"**{flows / result['wall_s']:,.0f} flows/s end to end**",
        f"- CPU time of the detect process (user + system): {result['cpu_s']:.1f} s, i.e. "
        f"{flows / result['cpu_s']:,.0f} flows per CPU-second; on {os.cpu_count()} idle cores the wall time "
        f"cannot go below {result['cpu_s'] / (os.cpu_count() or 1):.1f} s",
        f"- pipeline (read + parse + score + write, after start-up): {stats['flows_per_s']:,.0f} flows/s; "
        f"latency p50 {stats['latency_p50_ms']:.1f} ms, p99 {stats['latency_p99_ms']:.1f} ms",
        f"- flows scored {flows:,}, bad records {stats['bad_records']:,}, alerts {stats['alerts']:,} "
        f"({result['alert_lines']:,} lines written); labelled attacks {stats.get('labelled_attacks', 0):,}, "
        f"alerts on them {stats.get('true_alerts', 0):,}, on benign flows {stats.get('false_alerts', 0):,}",
        "- CPU cost per flow of each stage, measured one after the other in one process on 200,000 of the flows "
        "(load average then " f"{os.getloadavg()[0]:.2f}): "
        + "; ".join(f"{name} {us:.2f} µs" for name, us in cost.items())
        + f"; total {sum(cost.values()):.2f} µs, i.e. at most {2e6 / sum(cost.values()):,.0f} flows/s on two "
        "fully available cores",
        "",
    ])


if __name__ == "__main__":
    main()
