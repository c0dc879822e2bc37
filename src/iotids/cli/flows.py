"""``iotids flows``: capture files to a flow CSV with the data set's columns (CICFlowMeter-compatible)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from iotids.cli import app


@app.command()
def flows(
    pcaps: Annotated[list[Path], typer.Argument(help="pcap or pcapng files; each is its own capture.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV file to write (atomically).")],
    flavor: Annotated[str, typer.Option(help="cicids2017 (the CICIDS2017 generator) or engelen2021 (the corrected "
                                             "CICFlowMeter).")] = "cicids2017",
    label: Annotated[str, typer.Option(help="Value of the Label column.")] = "NeedManualLabel",
    flow_timeout: Annotated[float, typer.Option(help="Flow timeout in seconds.")] = 120.0,
    activity_timeout: Annotated[float, typer.Option(help="Active/Idle threshold in seconds.")] = 5.0,
    reorder_window: Annotated[float, typer.Option(help="Sort packets by time within this many seconds "
                                                       "(0: keep the file order).")] = 1.0,
) -> None:
    """Extract CICFlowMeter flows from captures into a CSV (features in the data set's units)."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    from iotids.flows import ExtractStats, iter_flow_tables
    from iotids.flows.output import check_label, write_csv

    check_label(label)
    stats = ExtractStats()
    tables = iter_flow_tables(pcaps, flavor=flavor, flow_timeout=flow_timeout, activity_timeout=activity_timeout,
                              reorder_window=reorder_window, stats=stats)
    console = Console(stderr=True)
    total = sum(os.path.getsize(p) for p in pcaps if p.is_file())
    with Progress(TextColumn("flows"), BarColumn(), DownloadColumn(), TimeRemainingColumn(), console=console,
                  transient=True) as progress:
        task = progress.add_task("flows", total=total or None)

        def tracked():  # type: ignore[no-untyped-def]
            for table in tables:
                progress.update(task, completed=stats.bytes)
                yield table

        write_csv(tracked(), out, flavor=flavor, label=label)
    skipped = ", ".join(f"{k} {v}" for k, v in sorted(stats.skipped.items())) or "none"
    console.print(f"{stats.flows} flows from {stats.packets} packets ({stats.frames} frames in {stats.files} "
                  f"files) -> {out}; frames skipped: {skipped}; non-TCP/UDP packets: {stats.other_protocol}; "
                  f"out of order beyond the window: {stats.late}; damaged files: {stats.truncated_files}")
