"""The run report: ``metrics.json``, the five figures, ``report.md`` and a self-contained ``report.html``.

:func:`write_report` writes into ``out``::

    metrics.json                  exactly the keys of iotids.evaluate.metrics.METRIC_KEYS
    figures/accuracy.png          figure 3   training / validation accuracy per epoch
    figures/loss.png              figure 4   training / validation loss per epoch
    figures/confusion_matrix.png  figure 5
    figures/precision_recall.png  figure 6   with the average precision
    figures/roc.png               figure 7   with the ROC AUC
    report.md                     metrics table, per-family detection, data summary, configuration, figures
    report.html                   the same, one file, the figures embedded as base64 PNG

Every file is written atomically.
"""

from __future__ import annotations

import base64
import html
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from iotids.artifacts import write_atomic
from iotids.evaluate.metrics import BinaryReport
from iotids.evaluate.plots import (
    figure_png,
    plot_accuracy,
    plot_confusion_matrix,
    plot_loss,
    plot_pr,
    plot_roc,
)

__all__ = ["FIGURES", "ReportInput", "write_report"]

#: file name -> caption of each figure, in the paper's order (figures 3-7).
FIGURES: dict[str, str] = {
    "accuracy.png": "Figure 3: training and validation accuracy per epoch",
    "loss.png": "Figure 4: training and validation loss per epoch (log scale)",
    "confusion_matrix.png": "Figure 5: confusion matrix",
    "precision_recall.png": "Figure 6: precision-recall curve",
    "roc.png": "Figure 7: ROC curve (false positive rate on a log scale)",
}


@dataclass
class ReportInput:
    """What a report shows.

    Attributes
    ----------
    title : heading, e.g. ``"CNN-LSTM on cicids2017-improved (test split)"``.
    report : the metrics of the scored rows.
    history : training history (one dict per epoch), for figures 3 and 4.
    best_epoch : the epoch whose weights were kept.
    data : data summary (files, rows and attacks per part, labels, cleaning).
    config : the configuration of the run (model, training, threshold, command).
    grid_markdown : the grid-search table, when there was one.
    notes : free sentences shown under the title.
    """

    title: str
    report: BinaryReport
    history: Sequence[Mapping[str, Any]] = ()
    best_epoch: int | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)
    grid_markdown: str | None = None
    notes: Sequence[str] = ()


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.3f} %"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.5f}"


def _metric_rows(r: BinaryReport) -> list[tuple[str, str]]:
    return [
        ("accuracy", _pct(r.accuracy)), ("precision", _pct(r.precision)), ("recall (detection rate)", _pct(r.recall)),
        ("F1", _pct(r.f1)), ("false alarm rate FP/(FP+TN)", _pct(r.false_alarm_rate)),
        ("ROC AUC", _num(r.roc_auc)), ("average precision", _num(r.average_precision)),
        ("threshold", f"{r.threshold:.6g}"), ("flows scored", f"{r.n:,}"),
        ("TN / FP / FN / TP", f"{r.tn:,} / {r.fp:,} / {r.fn:,} / {r.tp:,}"),
    ]


def _family_rows(r: BinaryReport) -> list[tuple[str, str, str, str]]:
    return [(name, f"{v['support']:,}", f"{v['detected']:,}", _pct(float(v["recall"])))
            for name, v in r.per_family.items()]


def _data_rows(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for key, value in data.items():
        if key == "labels":
            continue
        if isinstance(value, Mapping):
            text = ", ".join(f"{k}: {v:,}" if isinstance(v, int) else f"{k}: {v}" for k, v in value.items())
        elif isinstance(value, list | tuple):
            text = ", ".join(str(v) for v in value)
        else:
            text = str(value)
        rows.append((key, text))
    return rows


def _label_rows(data: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    labels = data.get("labels")
    if not isinstance(labels, Mapping) or not labels:
        return [], []
    parts = list(labels)
    names = sorted({name for counts in labels.values() for name in counts})
    rows = [[name, *(f"{labels[p].get(name, 0):,}" for p in parts)] for name in names]
    return ["label", *parts], rows


def _config_rows(config: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            rows += _config_rows(value, f"{name}.")
        else:
            rows.append((name, json.dumps(value) if not isinstance(value, str) else value))
    return rows


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def esc(cell: str) -> str:
        return str(cell).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _markdown(inp: ReportInput, created: str) -> str:
    r = inp.report
    lines = [f"# {inp.title}", "", f"Generated {created}.", ""]
    lines += [f"{note}" for note in inp.notes] + ([""] if inp.notes else [])
    lines += ["## Metrics", "", "Every thresholded figure comes from the one confusion matrix below "
              f"(a flow is an attack when its score is >= {r.threshold:.6g}).", ""]
    lines += _md_table(("metric", "value"), _metric_rows(r))
    if r.per_family:
        lines += ["## Detection rate per attack family", ""]
        lines += _md_table(("family", "flows", "detected", "recall"), _family_rows(r))
    lines += ["## Figures", ""]
    lines += [f"![{caption}](figures/{name})\n\n*{caption}*\n" for name, caption in FIGURES.items()]
    if inp.data:
        lines += ["## Data", ""]
        lines += _md_table(("item", "value"), _data_rows(inp.data))
        header, rows = _label_rows(inp.data)
        if rows:
            lines += _md_table(header, rows)
    if inp.grid_markdown:
        lines += ["## Grid search (validation split only)", "", inp.grid_markdown, ""]
    if inp.config:
        lines += ["## Configuration", ""]
        lines += _md_table(("setting", "value"), _config_rows(inp.config))
    return "\n".join(lines)


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
figure { display: inline-block; margin: 0.5rem; width: 28rem; }
figure img { width: 100%; } figcaption { font-size: 0.9rem; color: #555; }
"""


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td{' class=n' if i else ''}>{html.escape(str(c))}</td>" for i, c in enumerate(row))
        + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _grid_html(markdown: str) -> str:
    rows = [line.strip("|").split("|") for line in markdown.strip().splitlines()]
    header = [c.strip() for c in rows[0]]
    body = [[c.strip().strip("*") for c in row] for row in rows[2:]]
    return _html_table(header, body)


def _html(inp: ReportInput, created: str, pngs: Mapping[str, bytes]) -> str:
    r = inp.report
    parts = [f"<h1>{html.escape(inp.title)}</h1>", f"<p>Generated {html.escape(created)}.</p>"]
    parts += [f"<p>{html.escape(note)}</p>" for note in inp.notes]
    parts += ["<h2>Metrics</h2>", f"<p>Every thresholded figure comes from one confusion matrix (a flow is an "
              f"attack when its score is &gt;= {r.threshold:.6g}).</p>", _html_table(("metric", "value"),
                                                                                   _metric_rows(r))]
    if r.per_family:
        parts += ["<h2>Detection rate per attack family</h2>",
                  _html_table(("family", "flows", "detected", "recall"), _family_rows(r))]
    parts.append("<h2>Figures</h2>")
    for name, caption in FIGURES.items():
        data = base64.b64encode(pngs[name]).decode()
        parts.append(f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    if inp.data:
        parts += ["<h2>Data</h2>", _html_table(("item", "value"), _data_rows(inp.data))]
        header, rows = _label_rows(inp.data)
        if rows:
            parts.append(_html_table(header, rows))
    if inp.grid_markdown:
        parts += ["<h2>Grid search (validation split only)</h2>", _grid_html(inp.grid_markdown)]
    if inp.config:
        parts += ["<h2>Configuration</h2>", _html_table(("setting", "value"), _config_rows(inp.config))]
    return (f"<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>{html.escape(inp.title)}</title>"
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def write_report(out: str | os.PathLike[str], inp: ReportInput) -> dict[str, Path]:
    """Write metrics, figures, ``report.md`` and ``report.html`` into ``out``; returns the paths by name."""
    root = Path(out)
    figures = {
        "accuracy.png": plot_accuracy(inp.history, best_epoch=inp.best_epoch),
        "loss.png": plot_loss(inp.history, best_epoch=inp.best_epoch),
        "confusion_matrix.png": plot_confusion_matrix(inp.report),
        "precision_recall.png": plot_pr(inp.report),
        "roc.png": plot_roc(inp.report),
    }
    pngs = {name: figure_png(fig) for name, fig in figures.items()}
    created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    paths = {"metrics.json": write_atomic(root / "metrics.json", inp.report.to_json())}
    for name, png in pngs.items():
        paths[name] = write_atomic(root / "figures" / name, png)
    paths["report.md"] = write_atomic(root / "report.md", _markdown(inp, created))
    paths["report.html"] = write_atomic(root / "report.html", _html(inp, created, pngs))
    return paths
