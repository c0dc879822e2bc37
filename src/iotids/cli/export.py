"""``iotids export``: the model and its preprocessing as one ONNX graph (raw features in, scores out)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from iotids.cli import app


@app.command()
def export(
    model: Annotated[Path, typer.Option("--model", "-m", help="trained model directory")],
    out: Annotated[Path | None, typer.Option("--out", help="ONNX file (default: DIR/model.onnx)")] = None,
) -> None:
    """Export to ONNX, then check ONNX Runtime against PyTorch on sample rows and print the difference."""
    from iotids.runtime import export_onnx

    report = export_onnx(model, out)
    typer.echo(f"export: wrote {report.path} ({report.size_bytes:,} bytes); ONNX Runtime vs PyTorch on "
               f"{report.rows} rows: max abs difference {report.max_abs_diff:.2e}", err=True)
