"""``iotids data inspect`` and ``iotids data download``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from iotids.cli import app

data_app = typer.Typer(help="Inspect and download CICIDS2017 flow data.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def inspect_report(
    paths: list[Path], *, attempted: str = "benign", nonfinite: str = "drop", skip_bad_rows: bool = False,
    cache: bool = True,
) -> dict[str, Any]:
    """Per file and in total: layout, rows, rows per label, and what cleaning does."""
    from iotids.data import clean_flows, load_flows

    frame, load_report = load_flows(paths, attempted=attempted, cache=cache,
                                    on_bad_rows="skip" if skip_bad_rows else "error", progress=True)
    _, cleaning = clean_flows(frame, nonfinite=nonfinite, load_report=load_report)
    cleaned = cleaning.to_dict()
    files = [{**f.to_dict(), "cleaning": cleaned["files"].get(f.file, {})} for f in load_report.files]
    labels: dict[str, int] = {}
    for f in load_report.files:
        for label, count in f.labels.items():
            labels[label] = labels.get(label, 0) + count
    return {
        "files": files,
        "total": {
            "files": len(files),
            "rows": sum(f.rows for f in load_report.files),
            "empty_rows": sum(f.empty_rows for f in load_report.files),
            "bad_rows": sum(f.bad_rows for f in load_report.files),
            "labels": dict(sorted(labels.items(), key=lambda kv: (-kv[1], kv[0]))),
            "cleaning": cleaned["total"],
        },
        "attempted": {"policy": attempted, "rows": load_report.attempted_rows,
                      "dropped": load_report.attempted_dropped},
        "nonfinite_policy": nonfinite,
        "constant_columns": cleaned["constant_columns"],
        "duplicate_header_column_files": cleaned["duplicate_header_column_files"],
        "identifier_columns": cleaned["identifier_columns"],
    }


def _print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="Files", show_lines=False)
    for column in ("file", "layout", "rows", "labels", "NaN/Inf", "duplicates", "kept"):
        table.add_column(column, justify="right" if column not in ("file", "layout", "labels") else "left")
    for f in report["files"]:
        labels = ", ".join(f"{k} {v}" for k, v in sorted(f["labels"].items(), key=lambda kv: -kv[1]))
        c = f["cleaning"]
        table.add_row(Path(f["file"]).name, f["layout"], str(f["rows"]), labels, str(c.get("nonfinite_rows", 0)),
                      str(c.get("duplicate_rows", 0)), str(c.get("rows_out", 0)))
    console.print(table)
    total = report["total"]
    labels = Table(title=f"Labels ({len(total['labels'])}) in {total['files']} files, {total['rows']} rows")
    labels.add_column("label")
    labels.add_column("rows", justify="right")
    for label, count in total["labels"].items():
        labels.add_row(label, str(count))
    console.print(labels)
    c = total["cleaning"]
    console.print(
        f"cleaning ({report['nonfinite_policy']} NaN/Infinity): {c['nonfinite_rows']} rows with NaN/Infinity, "
        f"{c['imputed_rows']} imputed, {c['duplicate_rows']} exact duplicates removed, {c['sentinel_rows']} rows "
        f"with -1 sentinels (kept), {c['negative_rows']} rows with other negative values (kept); "
        f"{c['rows_out']} rows remain.\n"
        f"empty rows skipped: {total['empty_rows']}; bad rows skipped: {total['bad_rows']}; "
        f"'Attempted' flows: {report['attempted']['rows']} (policy {report['attempted']['policy']}).\n"
        f"constant columns: {', '.join(report['constant_columns']) or 'none'}\n"
        f"duplicated 'Fwd Header Length' column dropped in {len(report['duplicate_header_column_files'])} files; "
        f"identifier columns kept out of the features: {', '.join(report['identifier_columns']) or 'none'}"
    )


@data_app.command("inspect")
def inspect(
    paths: Annotated[list[Path], typer.Argument(help="CSV, .csv.gz or .zip files, or directories of them.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    attempted: Annotated[str, typer.Option(help="Corrected release's 'Attempted' flows: benign, drop or attack.")]
    = "benign",
    nonfinite: Annotated[str, typer.Option(help="Rows with NaN/Infinity: drop or impute.")] = "drop",
    skip_bad_rows: Annotated[bool, typer.Option(help="Count and skip malformed rows instead of stopping.")]
    = False,
    cache: Annotated[bool, typer.Option(help="Use the Parquet cache (IOTIDS_CACHE_DIR).")] = True,
) -> None:
    """Recognise the layout of each file and report rows, labels and cleaning counts."""
    report = inspect_report(paths, attempted=attempted, nonfinite=nonfinite, skip_bad_rows=skip_bad_rows,
                            cache=cache)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        _print_report(report)


@data_app.command("download")
def download(
    dest: Annotated[Path, typer.Option(help="Directory to save the archive in.")] = Path("data"),
    url: Annotated[str | None, typer.Option(help="Archive URL (default: CIC's MachineLearningCSV.zip).")] = None,
    md5: Annotated[str | None, typer.Option(help="Expected MD5 (default: the .md5 CIC publishes).")] = None,
    sha256: Annotated[str | None, typer.Option(help="Expected SHA-256 instead of MD5.")] = None,
) -> None:
    """Download CIC's official CICIDS2017 CSV archive and verify its checksum."""
    from iotids.data.download import OFFICIAL_URL, download_archive

    path = download_archive(url or OFFICIAL_URL, dest, md5=md5, sha256=sha256)
    typer.echo(f"saved {path}; next: iotids data inspect {path}")
