"""The report: five figures, report.md, a self-contained report.html, metrics.json."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from iotids.evaluate.metrics import METRIC_KEYS, binary_report
from iotids.evaluate.report import FIGURES, ReportInput, write_report

PNG = b"\x89PNG\r\n\x1a\n"


def test_report_has_all_five_figures_and_embeds_them(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    report = binary_report(y, np.clip(y * 0.5 + rng.random(300) * 0.6, 0, 1), 0.5,
                           families=np.where(y == 1, "DoS", "BENIGN"))
    history = [{"epoch": e, "loss": 1 / e, "accuracy": 1 - 0.1 / e, "val_loss": 1.1 / e,
                "val_accuracy": 1 - 0.12 / e} for e in range(1, 6)]
    paths = write_report(tmp_path, ReportInput(
        title="test run", report=report, history=history, best_epoch=4,
        data={"rows": {"train": 10, "test": 300}, "labels": {"test": {"BENIGN": 150, "DoS": 150}}},
        config={"model": {"filters": [16, 32]}}, grid_markdown="| a | b |\n|---|---|\n| **1** | 2 |\n",
    ))
    assert set(FIGURES) == {"accuracy.png", "loss.png", "confusion_matrix.png", "precision_recall.png", "roc.png"}
    for name in FIGURES:
        assert (tmp_path / "figures" / name).read_bytes().startswith(PNG)
    markdown = (tmp_path / "report.md").read_text()
    assert all(f"figures/{name}" in markdown for name in FIGURES)
    assert "false alarm rate" in markdown and "| DoS |" in markdown and "model.filters" in markdown
    page = (tmp_path / "report.html").read_text()
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 5
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing outside the file
    assert tuple(json.loads((tmp_path / "metrics.json").read_text())) == METRIC_KEYS
    assert set(paths) >= {"metrics.json", "report.md", "report.html", *FIGURES}
    assert not list(tmp_path.rglob("*.tmp"))


def test_report_without_history_or_second_class_still_renders(tmp_path: Path) -> None:
    report = binary_report([0, 0, 0], [0.2, 0.4, 0.6], 0.5)
    write_report(tmp_path, ReportInput(title="benign only", report=report))
    assert all((tmp_path / "figures" / name).stat().st_size > 1000 for name in FIGURES)
    assert "n/a" in (tmp_path / "report.md").read_text()


def test_curves_zoom_in_and_mark_the_threshold() -> None:
    """ROC on a log false positive rate, both curves with a dot at the threshold's (rate, recall) and a y axis
    that starts below the lowest of the curves sharing the axes; the chance line is drawn once."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from iotids.evaluate.plots import plot_loss, plot_pr, plot_roc

    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(400, int), np.ones(1600, int)]
    good, worse = (binary_report(y, 1 / (1 + np.exp(-(8 * y - 4 + rng.normal(0, noise, len(y))))), 0.5)
                   for noise in (1.0, 2.0))
    points = {plot_roc: lambda r: (max(r.false_alarm_rate, 0.5 / 400), r.recall),  # the axis ends at half a flow
              plot_pr: lambda r: (r.recall, r.precision)}
    for plot, dot in points.items():
        fig = Figure()
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for report in (good, worse):
            plot(report, ax=ax, label="m")
        dots = [tuple(line.get_xydata()[0]) for line in ax.lines if line.get_marker() == "o"]
        assert dots == [pytest.approx(dot(good)), pytest.approx(dot(worse))]
        assert sum(line.get_gid() == "chance" for line in ax.lines) == 1
        curves = [line for line in ax.lines if line.get_marker() != "o" and line.get_gid() != "chance"]
        lowest = min(float(np.min(line.get_ydata())) for line in curves)
        assert 0 < ax.get_ylim()[0] < lowest  # zoomed in, nothing cut off
    assert ax.get_xscale() == "linear" and plot_roc(good).axes[0].get_xscale() == "log"
    history = [{"epoch": e, "loss": 1 / e, "val_loss": 1.1 / e} for e in range(1, 4)]
    assert plot_loss(history).axes[0].get_yscale() == "log"
