"""``iotids train`` and ``iotids evaluate``: the CNN-LSTM run, its model directory and its report.

Progress goes to stderr; the test metrics (``metrics.json``'s content) are printed to stdout as one JSON line.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from iotids.cli import app


def _console_log() -> Callable[[str], None]:
    from rich.console import Console

    console = Console(stderr=True)
    return lambda message: console.print(message, highlight=False)


@app.command()
def train(
    data: Annotated[list[Path], typer.Option("--data", help="Flow CSV file(s) or folder(s); repeat the option.")],
    out: Annotated[Path, typer.Option("--out", help="Run directory: the model files and the report.")],
    split: Annotated[str, typer.Option("--split", help="random (stratified 70/15/15) or time.")] = "random",
    grid: Annotated[bool, typer.Option("--grid", help="Grid-search batch size x learning rate x width.")] = False,
    grid_width: Annotated[list[int] | None, typer.Option(
        "--grid-width", help="A model width for --grid (multiplies filters, LSTM and dense units); repeat for "
                             "several (default: 1 only; 2 trains and scores at half the speed).",
    )] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split, the weights and the shuffling.")] = 0,
    epochs: Annotated[int, typer.Option("--epochs", help="At most this many epochs (early stopping).")] = 20,
    target_far: Annotated[float | None, typer.Option(
        "--target-far", help="Choose the threshold on the validation split for this false alarm rate "
                             "(default: threshold 0.5).",
    )] = None,
    max_features: Annotated[int | None, typer.Option(
        "--max-features", help="Keep only this many features, the most important to an extra-trees forest fitted "
                               "on the training rows (default: all).",
    )] = None,
    bins: Annotated[int | None, typer.Option(
        "--bins", help="Bins of the network's input encoding, at the split points a LightGBM grown on the training "
                       "rows used most per feature (default 8); 0 feeds it the scaled values themselves, as in the "
                       "paper.",
    )] = None,
    feature_order: Annotated[str | None, typer.Option(
        "--feature-order", help="input (default): the convolutions see the features in the preprocessor's "
                                "order, as in the paper; correlation: correlated features side by side.",
    )] = None,
    threads: Annotated[int | None, typer.Option(
        "--threads", help="Training threads: copies of the network that share each batch, one thread each "
                          "(default 2; the result depends on this number, not on the cores). Scoring: torch threads.",
    )] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Train the CNN-LSTM, test it once on the test split, write the model and the report into OUT."""
    from iotids.train import TrainConfig, train_model

    log = _console_log()
    config = TrainConfig(
        data=tuple(str(p) for p in data), out=str(out), split=split, random_state=seed, max_epochs=epochs,
        grid=grid, grid_widths=tuple(grid_width) if grid_width else None, target_far=target_far,
        model={k: v for k, v in (("bins", bins), ("feature_order", feature_order), ("n_threads", threads))
               if v is not None},
        preprocess={} if max_features is None else {"max_features": max_features, "random_state": seed},
        progress=not quiet,
    )
    result = train_model(config, log=log)
    typer.echo(json.dumps(result.report.to_dict()))
    log(f"report: {result.paths['report.html']} (and report.md); model directory: {out}")


@app.command()
def evaluate(
    model: Annotated[Path, typer.Option("--model", help="A model directory written by `iotids train`.")],
    data: Annotated[list[Path], typer.Option("--data", help="Flow CSV file(s) or folder(s); repeat the option.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for metrics.json, the figures and the report.")],
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Score flow files with a trained model; write the same metrics and figures as `train` into OUT."""
    from iotids.train import evaluate_model

    log = _console_log()
    result = evaluate_model(model, data, out, progress=not quiet, log=log)
    typer.echo(json.dumps(result.report.to_dict()))
    log(f"report: {result.paths['report.html']} (and report.md)")
