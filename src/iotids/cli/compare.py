"""``iotids compare``: every detector on one split, one table (comparison.md/.csv) and the ROC and PR figures."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Annotated, Any

import typer

from iotids.cli import app

#: Kept in step with ``iotids.compare.DEFAULT_MODELS`` (not imported here so that the CLI starts fast).
_DEFAULT_MODELS = "cnn-lstm,svm,rf,autoencoder,autoencoder-shone,lightgbm"


def _params(items: list[str]) -> dict[str, dict[str, Any]]:
    """``["rf.n_estimators=50", ...]`` -> ``{"rf": {"n_estimators": 50}}``."""
    from iotids.errors import InvalidParameterError

    params: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, text = item.partition("=")
        model, dot, name = key.partition(".")
        if not (sep and dot and model and name):
            raise InvalidParameterError(f"--param must look like MODEL.NAME=VALUE (rf.n_estimators=50). Got {item!r}.")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        params.setdefault(model, {})[name] = value
    return params


@app.command()
def compare(
    data: Annotated[list[Path], typer.Option("--data", help="Flow CSV file(s) or folder(s); repeat the option.")],
    out: Annotated[Path, typer.Option("--out", help="Run directory for the table, the figures and the models.")],
    models: Annotated[str, typer.Option(
        "--models", help="Comma-separated: cnn-lstm, svm, rf, autoencoder, autoencoder-shone, lightgbm.",
    )] = _DEFAULT_MODELS,
    split: Annotated[str, typer.Option(
        "--split", help="random (stratified 70/15/15), time (earliest flows train, latest test) or both.",
    )] = "random",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split and of every model.")] = 0,
    param: Annotated[list[str] | None, typer.Option(
        "--param", help="MODEL.NAME=VALUE: a model's constructor parameter (VALUE as JSON, else text); "
        "repeat the option. Example: --param rf.n_estimators=50.",
    )] = None,
) -> None:
    """Train every model on the same split, score the same test rows, write comparison.md/.csv and figures.

    Progress goes to stderr; the result rows are printed to stdout as JSON lines.
    """
    from rich.console import Console

    from iotids.compare import compare_models, write_comparison
    from iotids.errors import InvalidParameterError

    if split not in ("random", "time", "both"):
        raise InvalidParameterError(f"--split must be random, time or both. Got {split!r} instead.")
    console = Console(stderr=True)
    comparison = compare_models(
        data, out, models=[m.strip() for m in models.split(",") if m.strip()],
        splits=("random", "time") if split == "both" else (split,), random_state=seed, params=_params(param or []),
        log=lambda message: console.print(message, markup=False, highlight=False),
    )
    comparison.command = " ".join(
        ["iotids compare", *(f"--data {shlex.quote(str(p))}" for p in data), f"--out {shlex.quote(str(out))}",
         f"--models {models}", f"--split {split}", f"--seed {seed}", *(f"--param {p}" for p in param or [])]
    )
    paths = write_comparison(comparison, out)
    for result in comparison.results:
        typer.echo(json.dumps(result.row()))
    console.print(f"wrote {', '.join(str(p) for p in paths.values())}", highlight=False)
