"""``iotids detect``: score flow records as they come and write EVE alert lines."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO

import typer

from iotids.cli import app
from iotids.errors import DataFormatError, InvalidParameterError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from iotids.stream import FlowBlock


@app.command()
def detect(
    model: Annotated[Path, typer.Option("--model", "-m", help="trained model directory")],
    input_path: Annotated[str, typer.Option("--input", "-i", help="flow records: CSV (any CICFlowMeter layout) or "
                                                               "JSON lines; '-' reads stdin")] = "-",
    pcap: Annotated[Path | None, typer.Option("--pcap", help="a packet capture (pcap/pcapng): build its "
                                                           "CICFlowMeter flows and score them")] = None,
    interface: Annotated[str | None, typer.Option("--interface", help="capture live on this network interface "
                                                                      "(root or CAP_NET_RAW); flows are scored as "
                                                                      "they end or time out")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep reading as the file grows")] = False,
    alerts: Annotated[Path | None, typer.Option("--alerts", help="append alerts to this file (default: "
                                                                  "stdout)")] = None,
    all_flows: Annotated[bool, typer.Option("--all", help="write a verdict for benign flows too "
                                                          "(event_type 'flow')")] = False,
    reject: Annotated[Path | None, typer.Option("--reject", help="append refused records (file, line, reason, "
                                                                 "raw) to this file")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="flows per micro-batch")] = 8192,
    max_wait_ms: Annotated[float, typer.Option("--max-wait-ms", min=0.0,
                                               help="longest a flow waits for its batch to fill")] = 100.0,
    fmt: Annotated[str, typer.Option("--format", help="auto, csv or jsonl")] = "auto",
    backend: Annotated[str, typer.Option("--backend", help="auto (ONNX Runtime when model.onnx exists), onnx "
                                                           "or torch")] = "auto",
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="threads splitting each micro-batch, "
                                                "per scoring thread (default 1 with ONNX Runtime: two micro-batches "
                                                "are scored at once already)")] = None,
    stats_every: Annotated[float, typer.Option("--stats-every", min=0.1,
                                               help="seconds between statistics lines on stderr")] = 10.0,
) -> None:
    """Score flow records in micro-batches and write one EVE JSON line per alert.

    Statistics go to stderr every --stats-every seconds and at the end (last line: JSON). SIGTERM or Ctrl-C
    stops reading; the records already read are scored and written before exiting (with --interface, the flows
    still open are ended and scored too).
    """
    from iotids.runtime import load_scorer
    from iotids.stream import AlertWriter, RejectWriter, iter_blocks, run_stream

    _log_to_stderr()
    if pcap is not None and (input_path != "-" or follow or interface is not None):
        raise InvalidParameterError("--pcap reads a capture file; it cannot be combined with --input, --follow or "
                                    "--interface.")
    if interface is not None and (input_path != "-" or follow):
        raise InvalidParameterError("--interface captures live; it cannot be combined with --input or --follow.")
    stop = threading.Event()
    frames = None
    if interface is not None:
        from iotids.flows.live import iter_live_frames  # imported only here: the flow engine starts slowly

        frames = iter_live_frames(interface, stop=stop)
    scorer = load_scorer(model, backend=backend, threads=threads)
    if pcap is not None:
        blocks = _pcap_blocks(pcap, scorer.feature_columns)
        input_path = str(pcap)
    elif frames is not None:
        input_path = f"interface {interface}"
        blocks = _live_blocks(frames, scorer.feature_columns, input_path)
    else:
        blocks = iter_blocks(input_path, scorer.feature_columns, fmt=fmt, follow=follow, stop=stop)  # type: ignore[arg-type]
    with ExitStack() as stack:
        out: BinaryIO = stack.enter_context(alerts.open("ab")) if alerts else sys.stdout.buffer
        rejects = RejectWriter(stack.enter_context(reject.open("a", encoding="utf-8")) if reject else None)
        writer = AlertWriter(out, model=scorer.name, threshold=scorer.threshold, all_flows=all_flows)
        stack.enter_context(_stop_on_signals(stop))
        typer.echo(f"detect: {scorer.name} ({scorer.backend}), threshold {scorer.threshold:g}, reading "
                   f"{'stdin' if input_path == '-' else input_path}{' (following)' if follow else ''}", err=True)
        try:
            stats = run_stream(blocks, scorer, writer, rejects=rejects, batch_size=batch_size,
                               max_wait_ms=max_wait_ms, stop=stop, stats_every_s=stats_every,
                               on_stats=lambda s: typer.echo(f"detect: {s.summary()}", err=True))
        except BrokenPipeError:  # the reader of our output went away (`iotids detect ... | head`)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None
    typer.echo(f"detect: done: {stats.summary()}", err=True)
    typer.echo(json.dumps(stats.to_dict()), err=True)


def _pcap_blocks(pcap: Path, columns: tuple[str, ...]) -> Iterator[FlowBlock]:
    """Flows built from a capture with the CICFlowMeter variant whose features the model reads."""
    from iotids.flows import iter_flow_tables
    from iotids.stream import blocks_from_tables

    flavor = _model_flavor(columns, "--pcap")
    if not pcap.is_file():
        raise DataFormatError("no such capture file", path=pcap)
    return blocks_from_tables(iter_flow_tables(str(pcap), flavor=flavor), columns, source=str(pcap))


def _live_blocks(frames: Iterable[tuple[float, bytes] | None], columns: tuple[str, ...],
                 source: str) -> Iterator[FlowBlock]:
    """Flows of live Ethernet frames (in time order), as they end or time out."""
    from iotids.flows import iter_flow_tables
    from iotids.stream import blocks_from_tables

    tables = iter_flow_tables(frames, flavor=_model_flavor(columns, "--interface"), linktype=1, reorder_window=0)
    return blocks_from_tables(tables, columns, source=source)


def _model_flavor(columns: tuple[str, ...], option: str) -> str:
    """The CICFlowMeter variant that computes every feature the model reads (``option`` names the flag)."""
    from iotids.schema import FLAVOR_FEATURES

    needed = set(columns) - {"protocol"}
    flavor = next((f for f in ("cicids2017", "engelen2021") if needed <= set(FLAVOR_FEATURES[f])), None)
    if flavor is None:
        raise InvalidParameterError(f"{option}: no CICFlowMeter variant computes every feature this model reads.")
    return flavor


def _log_to_stderr() -> None:
    logger = logging.getLogger("iotids.stream")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("detect: bad record: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False


class _stop_on_signals:
    """SIGTERM and SIGINT set ``stop`` instead of killing the process (restored on exit)."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.previous: dict[int, object] = {}

    def __enter__(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.previous[sig] = signal.signal(sig, lambda *_: self.stop.set())

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
