"""The report: five figures, report.md, a self-contained report.html, metrics.json."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

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
