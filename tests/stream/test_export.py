"""ONNX export: the one graph (preprocessing + network) gives PyTorch's scores on real rows; stale files refused."""

from __future__ import annotations

import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from iotids.artifacts import load_model, save_model
from iotids.errors import ModelFileError
from iotids.runtime import MAX_EXPORT_DIFFERENCE, ONNX_FILE, OnnxScorer, TorchScorer, export_onnx, load_scorer


def test_onnx_runtime_matches_pytorch_on_real_rows(tiny_model) -> None:
    rows = tiny_model.test_frame[tiny_model.columns].to_numpy(np.float32)
    onnx, pytorch = load_scorer(tiny_model.path, backend="onnx"), load_scorer(tiny_model.path, backend="torch")
    assert isinstance(onnx, OnnxScorer) and isinstance(pytorch, TorchScorer)
    assert onnx.feature_columns == pytorch.feature_columns == tuple(tiny_model.columns)
    assert (onnx.name, onnx.threshold) == (pytorch.name, pytorch.threshold)
    expected = load_model(tiny_model.path).score_frame(tiny_model.test_frame)
    for scorer in (onnx, pytorch):
        scores = scorer.score_matrix(rows)
        assert scores.dtype == np.float32 and scores.shape == (len(rows),)
        assert np.abs(scores - expected).max() <= 1e-5
    assert len(rows) > 5000 and 0.05 < (expected >= 0.5).mean() < 0.95  # real, varied rows
    out_of_range = rows[:100] * 1000 + 7  # clipped to [0, 1] by both; unseen protocol 7 goes to "other"
    assert np.abs(onnx.score_matrix(out_of_range) - pytorch.score_matrix(out_of_range)).max() <= 1e-5
    parallel = load_scorer(tiny_model.path, backend="onnx", threads=2)  # the chunks of a call on two threads
    np.testing.assert_array_equal(parallel.score_matrix(rows), onnx.score_matrix(rows))


def test_cli_export_and_stale_files(tmp_path: Path, tiny_model) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_model.path, model)
    (model / ONNX_FILE).unlink()
    assert load_scorer(model).backend == "torch"  # no ONNX file yet: PyTorch
    with pytest.raises(ModelFileError, match="iotids export"):
        load_scorer(model, backend="onnx")
    done = subprocess.run([sys.executable, "-c", "from iotids.cli import main; main()", "export", "--model",
                           str(model)], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "max abs difference" in done.stderr and (model / ONNX_FILE).is_file()
    assert load_scorer(model).backend == "onnx"
    other = tmp_path / "other.onnx"
    report = export_onnx(model, other)
    assert report.path == other and report.max_abs_diff <= MAX_EXPORT_DIFFERENCE and report.rows == 4096
    retrained = load_model(model)  # new weights saved over the directory: the old export is stale
    with torch.no_grad():
        next(retrained.detector.module_.parameters()).add_(0.01)
    save_model(model, retrained)
    with pytest.raises(ModelFileError, match="other model files"):
        load_scorer(model, backend="onnx")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert load_scorer(model).backend == "torch"
    assert any("iotids export" in str(w.message) for w in caught)
    (model / ONNX_FILE).write_bytes(b"not onnx")
    with pytest.raises(ModelFileError, match="not a readable ONNX model"):
        OnnxScorer(model / ONNX_FILE)
