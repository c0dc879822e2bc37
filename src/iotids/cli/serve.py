"""``iotids serve``: the HTTP scoring service (FastAPI on uvicorn)."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Annotated

import typer

from iotids.cli import app


@app.command()
def serve(
    model: Annotated[Path, typer.Option("--model", "-m", help="trained model directory")],
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port")] = 8080,
    max_body_bytes: Annotated[int, typer.Option("--max-body-bytes", min=1,
                                                help="larger request bodies get 413")] = 16 << 20,
    max_flows: Annotated[int, typer.Option("--max-flows", min=1, help="most flows per request")] = 10_000,
    backend: Annotated[str, typer.Option("--backend", help="auto, onnx or torch")] = "auto",
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="inference threads")] = None,
) -> None:
    """Serve POST /v1/score, GET /healthz, GET /metrics and the OpenAPI description at /docs."""
    import uvicorn

    from iotids.runtime import load_scorer
    from iotids.serve import create_app

    scorer = load_scorer(model, backend=backend, threads=threads)
    application = create_app(scorer, max_body_bytes=max_body_bytes, max_flows=max_flows)
    # The ~90,000 objects of the loaded libraries never become garbage: frozen, the collector stops scanning them,
    # so its full collections (61 ms each with them, measured) no longer land in a request. 1,000-flow JSON
    # requests, p99 over three alternated runs: 35.6-40.2 ms against 33.1-49.5 ms (benchmarks/results/realtime.md).
    gc.freeze()
    typer.echo(f"serve: {scorer.name} ({scorer.backend}) on http://{host}:{port} (docs at /docs)", err=True)
    uvicorn.run(application, host=host, port=port, log_level="warning", access_log=False)
