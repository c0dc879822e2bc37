"""The fast inference path: one ONNX graph (preprocessing + network + sigmoid), scored with ONNX Runtime.

``export_onnx(model_dir)`` writes ``model_dir/model.onnx``: raw canonical features in (float32, the model's
``feature_columns`` order), scores out. The preprocessing (signed log1p, min/max scaling with clipping, protocol
one-hot with "other") is expressed in torch ops inside the exported module, so a stream feeds the columns it
reads and gets probabilities. The file carries the model's name, threshold, columns and a fingerprint of the
model files it was made from.

``load_scorer(model_dir)`` returns a :class:`Scorer`: ONNX Runtime when ``model.onnx`` exists and matches the
model files (``backend="auto"``), otherwise the PyTorch model. This is the only module that imports onnxruntime.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from iotids.errors import InvalidParameterError, ModelFileError

if TYPE_CHECKING:
    import torch

ONNX_FILE = "model.onnx"
MANIFEST = "manifest.json"  # iotids.artifacts.MANIFEST
OPSET = 17
_INPUT, _OUTPUT = "features", "score"
BACKENDS = ("auto", "onnx", "torch")
#: An export whose scores differ more than this from PyTorch's on the check rows is refused. The check rows are
#: drawn over the whole training range of every column at once, mostly far from any real flow, where a sharp
#: model amplifies the runtimes' rounding differences: 2.2e-6 for the demo model, 2.1e-5 for the test suite's tiny
#: one (measured); on real rows the two agree within 1e-5 (1.1e-6 for the demo model on every row of the corrected
#: release; tests/stream/test_export.py). A wrong graph differs by orders of magnitude more.
MAX_EXPORT_DIFFERENCE = 1e-4


@runtime_checkable
class Scorer(Protocol):
    """Raw canonical features -> scores; what ``detect`` and ``serve`` need of a model."""

    name: str
    backend: str
    threshold: float
    feature_columns: tuple[str, ...]

    def score_matrix(self, X: np.ndarray) -> np.ndarray:
        """float32 (n, len(feature_columns)) raw values -> float32 (n,) scores, higher = attack."""
        ...


def _threads(threads: int | None) -> int:
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise InvalidParameterError(f"The 'threads' parameter must be an int >= 1. Got {threads!r} instead.")
    return threads or max(1, min(2, os.cpu_count() or 1))


class TorchScorer:
    """The PyTorch model of a model directory (the fallback when there is no usable ONNX file)."""

    backend = "torch"

    def __init__(self, model_dir: str | Path, *, threads: int | None = None) -> None:
        import torch

        from iotids.artifacts import load_model

        torch.set_num_threads(_threads(threads))
        self.model = load_model(model_dir)
        self.name = str(self.model.name)
        self.threshold = float(self.model.threshold)
        self.feature_columns = tuple(self.model.feature_columns)

    def score_matrix(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.score_matrix(np.ascontiguousarray(X, np.float32)), np.float32)


class OnnxScorer:
    """An exported ``model.onnx`` run by ONNX Runtime on the CPU.

    Rows are scored ``chunk_rows`` at a time: measured on the default model, 256-row runs take about 10 % less CPU
    per row than 2,048-row ones, and those about 35 % less than 8,192-row ones (the activations stay in cache).
    Each run uses one ONNX Runtime thread; ``threads`` (default 1: ``detect`` runs two scoring threads of its
    own beside the reader) is how many chunks of one call are scored at once. Splitting the rows between two
    threads gave 1.6-1.9x the flows/s of one; ONNX Runtime's own intra-op threads, splitting each small operator,
    gave 1.07x (benchmarks/results/train.md).
    """

    backend = "onnx"
    chunk_rows = 256

    def __init__(self, path: str | Path, *, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelFileError(f"{path}: not a readable ONNX model ({exc}); run `iotids export` again") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        try:
            self.name = meta["iotids.name"]
            self.threshold = float(meta["iotids.threshold"])
            self.feature_columns = tuple(json.loads(meta["iotids.feature_columns"]))
            self.fingerprint = meta["iotids.fingerprint"]
        except (KeyError, ValueError) as exc:
            raise ModelFileError(f"{path}: not exported by iotids (metadata {exc} missing)") from None
        workers = _threads(threads) if threads is not None else 1
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="onnx") if workers > 1 else None

    def _run(self, X: np.ndarray) -> np.ndarray:
        return self.session.run([_OUTPUT], {_INPUT: X})[0]  # releases the GIL

    def score_matrix(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, np.float32)
        if len(X) <= self.chunk_rows:
            return self._run(X)
        chunks = [X[i : i + self.chunk_rows] for i in range(0, len(X), self.chunk_rows)]
        return np.concatenate(list((self._pool.map if self._pool is not None else map)(self._run, chunks)))


def fingerprint(model_dir: str | Path) -> str:
    """SHA-256 of the model's manifest, which records the SHA-256 of every model file (see
    :mod:`iotids.artifacts`): any retraining or change of the model files changes it. Read without importing
    the training stack, so that ``detect`` and ``serve`` start fast."""
    path = Path(model_dir) / MANIFEST
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot be read ({exc.strerror or exc}); not an iotids model directory") from None


def load_scorer(model_dir: str | Path, *, backend: str = "auto", threads: int | None = None) -> Scorer:
    """The scorer of a model directory.

    Parameters
    ----------
    backend : ``"onnx"`` (``model.onnx`` must exist and match the model), ``"torch"``, or ``"auto"``: ONNX
        Runtime when it can be used, else PyTorch (with a warning when the ONNX file is stale).
    threads : inference threads (default: 1 for ONNX Runtime, see :class:`OnnxScorer`; up to 2 for PyTorch).
    """
    if backend not in BACKENDS:
        raise InvalidParameterError(f"The 'backend' parameter must be one of {', '.join(BACKENDS)}. Got "
                                    f"{backend!r} instead.")
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelFileError(f"{model_dir}: no such model directory (train one with `iotids train`)")
    onnx_path = model_dir / ONNX_FILE
    if backend == "torch" or (backend == "auto" and not onnx_path.exists()):
        return TorchScorer(model_dir, threads=threads)
    if not onnx_path.exists():
        raise ModelFileError(f"{onnx_path} does not exist; create it with `iotids export --model {model_dir}`")
    scorer = OnnxScorer(onnx_path, threads=threads)
    if scorer.fingerprint != fingerprint(model_dir):
        message = f"{onnx_path} was exported from other model files; run `iotids export --model {model_dir}`"
        if backend == "onnx":
            raise ModelFileError(message)
        warnings.warn(message + " (scoring with PyTorch meanwhile)", stacklevel=2)
        return TorchScorer(model_dir, threads=threads)
    return scorer


# ----------------------------------------------------------------------------------------------------------------
# Export


@dataclass(frozen=True)
class ExportReport:
    """What ``export_onnx`` wrote and how closely ONNX Runtime matches PyTorch on sample rows."""

    path: Path
    size_bytes: int
    rows: int
    max_abs_diff: float


def scoring_module(model: Any) -> torch.nn.Module:
    """A torch module computing the model's scores from raw canonical features: preprocessing + net + sigmoid."""
    import torch
    from torch import nn

    params = model.preprocessor.torch_parameters()
    net = model.detector.module_

    class Scoring(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net
            index = list(params["numeric_index"])
            self.first = index[0] if index == list(range(index[0], index[0] + len(index))) else None
            self.register_buffer("numeric", torch.as_tensor(index, dtype=torch.long))
            self.register_buffer("log", torch.as_tensor(params["log_mask"], dtype=torch.bool))
            self.log_all = all(params["log_mask"])
            self.register_buffer("low", torch.as_tensor(params["min"], dtype=torch.float32))
            self.register_buffer("scale", torch.as_tensor(params["scale"], dtype=torch.float32))
            self.protocol = params.get("protocol_index")
            self.register_buffer("categories", torch.as_tensor(params.get("categories", []), dtype=torch.float32))

        def forward(self, raw: torch.Tensor) -> torch.Tensor:
            if self.first is not None:  # contiguous columns: a slice, cheaper than a gather
                x = raw[:, self.first : self.first + len(self.numeric)]
            else:
                x = raw.index_select(1, self.numeric)
            # the log in float64: ONNX Runtime's float32 log is a few ulp off numpy's, and the input encoding's
            # steep bins turned that into score differences of 1.3e-5 on real rows (1.1e-6 this way, for about 5 %
            # more scoring time)
            logged = torch.sign(x) * torch.log1p(torch.abs(x).double()).float()
            x = logged if self.log_all else torch.where(self.log, logged, x)  # the default logs every column
            x = torch.clamp((x - self.low) * self.scale, 0.0, 1.0)
            x = torch.where(torch.isnan(x), torch.zeros_like(x), x)  # as transform_matrix: missing -> 0
            if self.protocol is not None:
                proto = raw[:, self.protocol : self.protocol + 1]
                hot = (proto == self.categories).to(torch.float32)
                other = 1.0 - hot.sum(dim=1, keepdim=True).clamp(max=1.0)
                x = torch.cat([x, hot, other], dim=1)
            return torch.sigmoid(self.net(x))

    return Scoring().eval()


def export_onnx(model_dir: str | Path, out: str | Path | None = None, *, check_rows: int = 4096) -> ExportReport:
    """Export a trained model with its preprocessing to ONNX and check ONNX Runtime against PyTorch.

    The check scores ``check_rows`` rows drawn uniformly over each feature's training range (widened by 10 %
    on both sides, to exercise the clipping) with ONNX Runtime and with the model's PyTorch scoring; the file is
    written (atomically) only when they agree within ``MAX_EXPORT_DIFFERENCE``.

    Raises
    ------
    ModelFileError
        The model directory cannot be loaded, or the exported graph does not reproduce its scores.
    """
    import onnx
    import torch

    from iotids.artifacts import load_model

    model_dir = Path(model_dir)
    model = load_model(model_dir)
    module = scoring_module(model)
    columns = list(model.feature_columns)
    rows = sample_rows(model, check_rows)
    target = Path(out) if out is not None else model_dir / ONNX_FILE
    tmp = target.with_name(f".{target.name}.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        with torch.no_grad():
            torch.onnx.export(
                module, (torch.from_numpy(rows[:2]),), str(tmp), dynamo=False, input_names=[_INPUT],
                output_names=[_OUTPUT], dynamic_axes={_INPUT: {0: "flows"}, _OUTPUT: {0: "flows"}},
                opset_version=OPSET,
            )
    graph = onnx.load(str(tmp))
    meta = {"iotids.name": str(model.name), "iotids.threshold": repr(float(model.threshold)),
            "iotids.feature_columns": json.dumps(columns), "iotids.fingerprint": fingerprint(model_dir)}
    for key, value in meta.items():
        graph.metadata_props.add(key=key, value=value)
    onnx.save(graph, str(tmp))
    expected = np.asarray(model.score_matrix(rows), np.float32)  # the model's own PyTorch scoring
    difference = float(np.abs(OnnxScorer(tmp, threads=1).score_matrix(rows) - expected).max())
    if not difference <= MAX_EXPORT_DIFFERENCE:
        tmp.unlink()
        raise ModelFileError(f"{model_dir}: the ONNX graph does not reproduce the model's scores (max abs "
                             f"difference {difference:.2e} > {MAX_EXPORT_DIFFERENCE:g}); nothing written")
    os.replace(tmp, target)
    return ExportReport(target, target.stat().st_size, len(rows), difference)


def sample_rows(model: Any, n: int, random_state: int = 0) -> np.ndarray:
    """Rows drawn over the training range of each raw column (protocols from the known categories)."""
    params = model.preprocessor.torch_parameters()
    rng = np.random.default_rng(random_state)
    rows = np.zeros((n, len(model.feature_columns)), np.float32)
    low, high = np.asarray(params["raw_min"], np.float64), np.asarray(params["raw_max"], np.float64)
    margin = 0.1 * (high - low)
    rows[:, params["numeric_index"]] = rng.uniform(low - margin, high + margin, (n, len(low)))
    if params.get("protocol_index") is not None:
        choices = [*params["categories"], 99.0]
        rows[:, params["protocol_index"]] = rng.choice(choices, n)
    return rows
