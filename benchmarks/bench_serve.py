"""Latency of ``iotids serve`` on loopback: single flows and batches of 1,000 (JSON and CSV), by a load generator.

The server runs as its own process (``iotids serve``); this script is the load generator, a second process with
one keep-alive HTTP/1.1 connection sending requests one after another (closed loop, no concurrency), bounded both
in count and in time. The client is a minimal one on a raw socket (about 0.05 ms of its own per request);
``--client httpx`` uses httpx instead, whose own Python work adds about 1 ms per request on this machine.
The flows are real rows of ../shared/data in the model's layout, converted to the canonical JSON the service
takes. Latency is measured by the client, from sending the request to having the whole response.

    python benchmarks/bench_serve.py --model DIR [--singles 2000] [--batches 300] [--max-seconds 120]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

from bench_detect import SOURCES, flavor_of


def flows(model: Path, count: int, seed: int = 0) -> list[dict]:
    """``count`` real flows as canonical JSON objects (the model's features only)."""
    from iotids.data import load_flows
    from iotids.runtime import load_scorer

    columns = list(load_scorer(model).feature_columns)
    frame, _ = load_flows(SOURCES[flavor_of(model)])
    frame = frame[columns].dropna()
    frame = frame[np.isfinite(frame.to_numpy()).all(axis=1)]
    picked = frame.sample(count, replace=True, random_state=seed)
    # float32 values in their shortest text (as a flow exporter writes them), not float64 expansions
    return [{c: float(str(v)) for c, v in zip(columns, row, strict=True)} for row in picked.to_numpy(np.float32)]


def csv_lines(model: Path) -> tuple[str, list[str]]:
    """The header and the data lines of the model's layout that the service accepts (all features finite)."""
    from iotids.runtime import load_scorer
    from iotids.stream.readers import CsvParser

    columns = list(load_scorer(model).feature_columns)
    path = SOURCES[flavor_of(model)][0]
    header, *lines = gzip.decompress(path.read_bytes()).decode("latin-1").splitlines()
    block = CsvParser(header.encode("latin-1"), str(path), columns).parse(
        ("\n".join(lines) + "\n").encode("latin-1"), 2, 0.0)
    return header, [lines[n - 2] for n in block.lines.tolist()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RawClient:
    """``POST /v1/score`` over one keep-alive HTTP/1.1 connection: the request written in one call, the response
    read up to its Content-Length (uvicorn always sends one) and its status checked."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def post(self, body: bytes, kind: str) -> None:
        head = (f"POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        self.sock.sendall(head + body)
        data = b""
        while b"\r\n\r\n" not in data:
            data += self._recv()
        header, _, rest = data.partition(b"\r\n\r\n")
        status = header.split(b" ", 2)[1]
        length = next(int(line.split(b":", 1)[1]) for line in header.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        while len(rest) < length:
            rest += self._recv()
        if status != b"200":
            raise SystemExit(f"server answered {status.decode()}: {rest[:200]!r}")

    def _recv(self) -> bytes:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise SystemExit("server closed the connection")
        return chunk

    def close(self) -> None:
        self.sock.close()


class HttpxClient:
    """The same exchange through httpx (for comparison: its own per-request cost is about 1 ms here)."""

    def __init__(self, port: int) -> None:
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)

    def post(self, body: bytes, kind: str) -> None:
        self.client.post("/v1/score", content=body, headers={"content-type": kind}).raise_for_status()

    def close(self) -> None:
        self.client.close()


def measure(client: RawClient | HttpxClient, bodies: list[bytes], max_seconds: float,
            kind: str = "application/json") -> np.ndarray:
    """Latency (ms) of each request; the bodies are encoded beforehand, so only the exchange is timed."""
    latencies = []
    deadline = time.monotonic() + max_seconds
    for body in bodies:
        started = time.perf_counter()
        client.post(body, kind)
        latencies.append(time.perf_counter() - started)
        if time.monotonic() > deadline:
            break
    return np.array(latencies) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--singles", type=int, default=2000)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--batch-flows", type=int, default=1000)
    parser.add_argument("--max-seconds", type=float, default=120.0, help="per phase")
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw", help="the load generator's client")
    parser.add_argument("--out", type=Path, default=None, help="append the markdown section to this file")
    args, extra = parser.parse_known_args()
    pool = flows(args.model, 20_000)
    rng = np.random.default_rng(1)
    singles = [json.dumps({"flows": [pool[i]]}).encode() for i in rng.integers(0, len(pool), args.singles)]
    batches = [json.dumps({"flows": [pool[i] for i in rng.integers(0, len(pool), args.batch_flows)]}).encode()
               for _ in range(args.batches)]
    header, lines = csv_lines(args.model)
    tables = [("\n".join([header, *(lines[i] for i in rng.integers(0, len(lines), args.batch_flows))]) + "\n")
              .encode("latin-1") for _ in range(args.batches)]
    port = free_port()
    command = [sys.executable, "-c", "from iotids.cli import main; main()", "serve", "--model", str(args.model),
               "--port", str(port), *extra]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as control:
            deadline = time.monotonic() + 60
            while True:
                try:
                    health = control.get("/healthz").json()
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        detail = server.stderr.read() if server.stderr else ""
                        raise SystemExit(f"server did not start: {detail}") from None
                    time.sleep(0.2)
            client = RawClient(port) if args.client == "raw" else HttpxClient(port)
            try:
                measure(client, singles[:100] + batches[:10], 30)  # warm-up, not counted
                load = os.getloadavg()
                single = measure(client, singles, args.max_seconds)
                batch = measure(client, batches, args.max_seconds)
                table = measure(client, tables, args.max_seconds, "text/csv")
            finally:
                client.close()
            metrics = control.get("/metrics").text
    finally:
        server.terminate()
        server.wait(timeout=30)
    scored = next(line for line in metrics.splitlines() if line.startswith("iotids_flows_scored_total"))

    def row(name: str, values: np.ndarray, flows_each: int) -> str:
        return (f"| {name} | {len(values):,} | {np.percentile(values, 50):.2f} | {np.percentile(values, 99):.2f} | "
                f"{values.max():.2f} | {flows_each * len(values) / (values.sum() / 1e3):,.0f} |")

    section = "\n".join([
        f"### serve: loopback latency ({health['model']}, backend {health['backend']})",
        "",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores; load average before measuring {load[0]:.2f}",
        f"- server: `iotids serve --model {args.model} --port {port} {' '.join(extra)}` (uvicorn, one worker)",
        f"- load generator: this script in a second process, one keep-alive connection ({args.client} client), "
        f"requests sent one after another, at most {args.max_seconds:.0f} s per phase; real flows as canonical "
        f"JSON, encoded before timing ({len(batches[0]) / 2**20:.2f} MiB per {args.batch_flows:,}-flow body)",
        "",
        "| request | requests | p50 ms | p99 ms | max ms | flows/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        row("1 flow", single, 1),
        row(f"{args.batch_flows:,} flows, JSON", batch, args.batch_flows),
        row(f"{args.batch_flows:,} flows, CICFlowMeter CSV ({len(tables[0]) / 2**20:.2f} MiB)", table,
            args.batch_flows),
        "",
        f"- server counter after the run: `{scored}`",
        "",
    ])
    print(section)
    if args.out:
        with args.out.open("a", encoding="utf-8") as f:
            f.write(section + "\n")


if __name__ == "__main__":
    main()
