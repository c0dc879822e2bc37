"""Load + clean of the full CICIDS2017 size: real rows resampled to 2.8 M, cold and from the Parquet cache.

The real MachineLearningCVE rows of ../shared/data/cicids2017 are drawn with replacement (their own text, so
Infinity/NaN and formatting stay as CIC wrote them) into eight day files of the official layout. Each
measurement runs in a fresh process so that its peak memory (ru_maxrss) is its own.

    python benchmarks/bench_load.py [--rows 2830743] [--workdir /tmp/iotids-bench-load]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cicids2017"
DAYS = ("Monday-WorkingHours", "Tuesday-WorkingHours", "Wednesday-workingHours",
        "Thursday-WorkingHours-Morning-WebAttacks",
        "Thursday-WorkingHours-Afternoon-Infilteration", "Friday-WorkingHours-Morning",
        "Friday-WorkingHours-Afternoon-PortScan", "Friday-WorkingHours-Afternoon-DDos")

MEASURE = """
import json, resource, sys, time
t0 = time.perf_counter()
from iotids.data import clean_flows, load_flows
frame, report = load_flows(sys.argv[1])
t1 = time.perf_counter()
clean, cleaning = clean_flows(frame, load_report=report)
t2 = time.perf_counter()
print(json.dumps({"load_s": t1 - t0, "clean_s": t2 - t1, "total_s": t2 - t0, "rows_in": len(frame),
                  "rows_out": len(clean), "cached_files": report.cached_files,
                  "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def build(workdir: Path, rows: int, seed: int = 0, *, unique: bool = False) -> Path:
    """Write ``rows`` resampled real rows as eight MachineLearningCVE day files; reuse them if present.

    With ``unique``, each drawn row's Flow Duration (the second column) gets a random 0-999,999 µs added, so that
    de-duplication keeps nearly every row (a workload of the full data set's size, not a copy of its contents)."""
    out = workdir / f"MachineLearningCVE-{rows}{'-unique' if unique else ''}"
    if out.is_dir() and len(list(out.glob("*.csv"))) == len(DAYS):
        return out
    header, lines = None, []
    for path in sorted(SHARED.glob("*MLCVE*.csv.gz")):
        text = gzip.decompress(path.read_bytes()).decode("latin-1").replace("\r\n", "\n").replace("\ufeff", "")
        head, *body = text.rstrip("\n").split("\n")
        header = header or head.replace("ï»¿", "")
        lines.extend(body)
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    for i, day in enumerate(DAYS):
        count = rows // len(DAYS) + (1 if i < rows % len(DAYS) else 0)
        tmp = out / f".{day}.tmp"
        with open(tmp, "w", encoding="latin-1") as f:
            f.write(header + "\n")
            for start in range(0, count, 200_000):
                picks = rng.integers(0, len(lines), min(200_000, count - start))
                chosen = [lines[j] for j in picks]
                if unique:
                    offsets = rng.integers(0, 1_000_000, len(picks))
                    chosen = [_longer(line, int(k)) for line, k in zip(chosen, offsets, strict=True)]
                f.write("\n".join(chosen) + "\n")
        os.replace(tmp, out / f"{day}.pcap_ISCX.csv")
    return out


def _longer(line: str, microseconds: int) -> str:
    port, duration, rest = line.split(",", 2)
    return f"{port},{int(duration) + microseconds},{rest}" if duration.strip().lstrip("-").isdigit() else line


def measure(data: Path, cache_dir: Path) -> dict:
    env = {**os.environ, "IOTIDS_CACHE_DIR": str(cache_dir)}
    result = subprocess.run([sys.executable, "-c", MEASURE, str(data)], env=env, capture_output=True, text=True,
                            check=True)
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_830_743)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "iotids-bench-load")
    args = parser.parse_args()
    started = time.perf_counter()
    data = build(args.workdir, args.rows)
    size = sum(p.stat().st_size for p in data.glob("*.csv"))
    print(f"data: {data} ({args.rows} rows, {size / 2**30:.2f} GiB, built in {time.perf_counter() - started:.0f} s)")
    cache_dir = args.workdir / "cache"
    for old in cache_dir.glob("*.parquet"):
        old.unlink()
    cold = measure(data, cache_dir)
    warm = measure(data, cache_dir)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print("| run | load s | clean s | total s | rows in | rows out | peak RSS GiB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in (("cold (CSV parse + cache write)", cold), ("warm (Parquet cache)", warm)):
        print(f"| {name} | {r['load_s']:.1f} | {r['clean_s']:.1f} | {r['total_s']:.1f} | {r['rows_in']:,} | "
              f"{r['rows_out']:,} | {r['peak_rss_gib']:.2f} |")


if __name__ == "__main__":
    main()
