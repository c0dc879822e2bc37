"""``iotids train`` at the full data set's size: 2.83 M unique flows, time split, one process, wall time and memory.

The real MachineLearningCVE rows of ../shared/data/cicids2017 are drawn with replacement into the eight day files
of the official layout (``bench_load.build``), each drawn row's Flow Duration lengthened by a random 0-999,999 µs
so that de-duplication keeps nearly all of them: a workload of the full data set's size, not its contents (the
same 40,000 flows, slightly altered, on both sides of any split), so the test figures it prints say nothing
about accuracy. ``iotids train`` then runs as a separate process under ``/usr/bin/time -v`` (loading, cleaning,
splitting, preprocessing, the CNN-LSTM's training with early stopping, the test scoring and the report; no
progress bars).

    python benchmarks/bench_scale.py [--rows 2830743] [--split time] [--workdir /tmp/iotids-bench-scale]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_load import build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_830_743)
    parser.add_argument("--split", default="time", choices=("random", "time"))
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "iotids-bench-scale")
    args = parser.parse_args()
    started = time.perf_counter()
    data = build(args.workdir, args.rows, unique=True)
    size = sum(p.stat().st_size for p in data.glob("*.csv"))
    built = time.perf_counter() - started
    out = args.workdir / "model"
    command = [str(Path(sys.executable).with_name("iotids")), "train", "--data", str(data), "--out", str(out),
               "--split", args.split, "--seed", "0", "--quiet"]
    env = {**os.environ, "IOTIDS_CACHE_DIR": str(args.workdir / "cache")}
    load = os.getloadavg()[0]
    cold = not (args.workdir / "cache").exists()
    result = subprocess.run(["/usr/bin/time", "-v", *command], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"iotids train failed:\n{result.stderr[-3000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", result.stderr).group(1)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
    cpu = sum(float(re.search(rf"{kind} time \(seconds\): ([\d.]+)", result.stderr).group(1))
              for kind in ("User", "System"))
    info = json.loads((out / "manifest.json").read_text())["info"]
    metrics = json.loads((out / "metrics.json").read_text())
    training = info["config"]["training"]
    rows = info["data"]["rows"]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"load average before {load:.2f}, after {os.getloadavg()[0]:.2f}")
    print(f"data: {args.rows:,} rows in {len(list(data.glob('*.csv')))} files, {size / 2**30:.2f} GiB "
          f"(built in {built:.0f} s, reused if present)")
    shown = " ".join(["iotids", *command[1:]])
    print(f"command: `/usr/bin/time -v {shown}`" + (" (cold: no Parquet cache yet)" if cold else ""))
    print()
    print("| wall (m:ss or h:mm:ss) | CPU s | peak RSS GiB | train / val / test rows | epochs (best) | training s | "
          "training flows/s | test scoring flows/s |")
    print("|---|---:|---:|---|---|---:|---:|---:|")
    print(f"| {wall} | {cpu:,.0f} | {rss / 2**20:.2f} | {rows['train']:,} / {rows['val']:,} / {rows['test']:,} | "
          f"{training['epochs_run']} ({training['best_epoch']}) | {training['seconds']:,.0f} | "
          f"{training['flows_per_s']:,} | {training['test_scoring_flows_per_s']:,} |")
    print()
    auc = "undefined" if metrics["roc_auc"] is None else f"{metrics['roc_auc']:.5f}"
    print(f"Test figures (not an accuracy result, see above): F1 {metrics['f1']:.5f}, false alarm rate "
          f"{metrics['false_alarm_rate']:.4%}, ROC AUC {auc}.")
    print("The command's log:")
    print("```")
    print(result.stderr.split("\tCommand being timed")[0].rstrip())
    print("```")


if __name__ == "__main__":
    main()
