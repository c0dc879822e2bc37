"""The model directory: the only thing that crosses from training to detection.

Layout (every file written atomically: a temporary file in the same directory, then ``os.replace``)::

    DIR/manifest.json      format, detector name, threshold, feature columns, versions, training facts (data
                           files and SHA-256 of the training rows, split, seed, configuration) and the SHA-256
                           of every file below; written last
    DIR/preprocessor.json  the fitted FlowPreprocessor (:meth:`FlowPreprocessor.to_dict`)
    DIR/detector/          the detector's own files (``Detector.save``: weights + ``detector.json``)
    DIR/history.json       training history, one dict per epoch
    DIR/metrics.json       the test metrics of the training run

The report (``report.md``, ``report.html``, ``figures/``) and an exported ``model.onnx`` may sit beside them;
they are not model files. :func:`load_model` needs no pickle and refuses a directory whose manifest is missing
or of another format, or whose listed files are missing or differ from their recorded SHA-256.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from iotids.errors import ModelFileError
from iotids.features.preprocess import FlowPreprocessor
from iotids.models.base import Detector, detector_class

__all__ = ["MANIFEST", "TrainedModel", "load_model", "model_files", "save_model", "write_atomic"]

MANIFEST = "manifest.json"
PREPROCESSOR = "preprocessor.json"
DETECTOR_DIR = "detector"
FORMAT = "iotids-model"
FORMAT_VERSION = 1


def write_atomic(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same directory and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide the file from other users (a server, a reader)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, allow_nan=False) + "\n"


def _checksum(manifest: Mapping[str, Any]) -> str:
    """SHA-256 of the manifest's own content (without ``checksum``): a hand-edited threshold is refused too."""
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, allow_nan=False).encode()).hexdigest()


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


@dataclass
class TrainedModel:
    """A fitted preprocessor + detector + threshold: raw canonical flow columns in, scores and verdicts out.

    Attributes
    ----------
    preprocessor : the fitted :class:`FlowPreprocessor`.
    detector : the fitted detector (``decision_function`` on the preprocessed matrix).
    threshold : a flow is an attack when its score is ``>= threshold``.
    info : what the manifest records about the training run (data, split, seed, configuration, versions).
    """

    preprocessor: FlowPreprocessor
    detector: Detector
    threshold: float
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The detector's registry name (``"cnn-lstm"``, ``"lightgbm"``, ...)."""
        return str(self.detector.name)

    @property
    def feature_columns(self) -> tuple[str, ...]:
        """The canonical columns the model reads, in the order :meth:`score_matrix` expects them."""
        return tuple(self.preprocessor.input_columns_)

    def score_matrix(self, raw: np.ndarray) -> np.ndarray:
        """Raw float32 values ``(n, len(feature_columns))`` in :attr:`feature_columns` order -> float32 scores."""
        return self.detector.decision_function(self.preprocessor.transform_matrix(raw))

    def score_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """A canonical flow frame (extra columns ignored) -> float32 scores, higher = attack."""
        return self.score_matrix(self.preprocessor.raw_matrix(frame))

    def predict_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """0/1 (int8) verdict per flow at :attr:`threshold`."""
        return (self.score_frame(frame) >= self.threshold).astype(np.int8)


def save_model(
    directory: str | os.PathLike[str],
    model: TrainedModel,
    *,
    history: list[dict[str, Any]] | None = None,
    metrics_json: str | None = None,
) -> Path:
    """Write ``model`` (and the training ``history`` and the text of the test ``metrics.json``) as a model directory.

    An existing manifest is removed first, so a directory whose writing was interrupted never loads.
    """
    from iotids import __version__

    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    (root / MANIFEST).unlink(missing_ok=True)
    if (root / DETECTOR_DIR).exists():
        shutil.rmtree(root / DETECTOR_DIR)
    written = [write_atomic(root / PREPROCESSOR, model.preprocessor.to_json())]
    model.detector.save(root / DETECTOR_DIR)
    written += sorted(p for p in (root / DETECTOR_DIR).rglob("*") if p.is_file())
    for name, text in (("history.json", None if history is None else _json(history)), ("metrics.json", metrics_json)):
        if text is not None:
            written.append(write_atomic(root / name, text))
        else:
            (root / name).unlink(missing_ok=True)
    threshold = float(model.threshold)
    if not math.isfinite(threshold):
        raise ModelFileError(f"cannot save a model with threshold {threshold}")
    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "name": model.name,
        "threshold": threshold,
        "feature_columns": list(model.feature_columns),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": {"iotids": __version__, **{lib: _version(lib) for lib in ("numpy", "torch", "lightgbm")}},
        "info": model.info,
        "files": {p.relative_to(root).as_posix(): _sha256(p) for p in written},
    }
    manifest["checksum"] = _checksum(manifest)
    write_atomic(root / MANIFEST, _json(manifest))
    return root


def _read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    if not root.is_dir():
        raise ModelFileError(f"{root}: no such model directory (train one with `iotids train`)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFileError(f"{root}: no {MANIFEST}; not an iotids model directory (or its writing was "
                             "interrupted)") from None
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: cannot be read as JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not an iotids model manifest")
    if manifest.get("version") != FORMAT_VERSION:
        raise ModelFileError(f"{path}: model format version {manifest.get('version')!r}; this iotids reads "
                             f"version {FORMAT_VERSION}")
    if manifest.get("checksum") != _checksum(manifest):
        raise ModelFileError(f"{path}: its content differs from its checksum; the manifest was altered")
    files = manifest.get("files")
    if not isinstance(files, dict) or PREPROCESSOR not in files:
        raise ModelFileError(f"{path}: lists no model files")
    return manifest


def model_files(directory: str | os.PathLike[str]) -> list[Path]:
    """The files a model is loaded from: the manifest and every file it lists (not reports or ONNX exports)."""
    root = Path(directory)
    manifest = _read_manifest(root)
    return [root / MANIFEST, *(root / name for name in sorted(manifest["files"]))]


def load_model(directory: str | os.PathLike[str]) -> TrainedModel:
    """Load and verify a model directory written by :func:`save_model`.

    Raises
    ------
    ModelFileError
        If the manifest is missing, unreadable or of another format version, a listed file is missing or differs
        from its recorded SHA-256, or the parts do not fit together.

    Examples
    --------
    >>> model = load_model("runs/demo")  # doctest: +SKIP
    >>> scores = model.score_frame(flows)  # doctest: +SKIP
    """
    root = Path(directory)
    manifest = _read_manifest(root)
    for name, digest in manifest["files"].items():
        path = root / name
        if not path.is_file():
            raise ModelFileError(f"{path}: missing (listed in {root / MANIFEST})")
        if _sha256(path) != digest:
            raise ModelFileError(f"{path}: content differs from the SHA-256 recorded in {root / MANIFEST}; the "
                                 "model directory was altered")
    preprocessor = FlowPreprocessor.from_json((root / PREPROCESSOR).read_text(encoding="utf-8"))
    detector = detector_class(str(manifest.get("name")))
    loaded = detector.load(root / DETECTOR_DIR)
    n_in = getattr(loaded, "n_features_in_", None)
    if n_in is not None and n_in != preprocessor.n_features_out_:
        raise ModelFileError(f"{root}: the detector reads {n_in} columns but the preprocessor makes "
                             f"{preprocessor.n_features_out_}")
    if list(manifest.get("feature_columns", [])) != preprocessor.input_columns_:
        raise ModelFileError(f"{root}: the manifest's feature columns differ from the preprocessor's")
    try:
        threshold = float(manifest["threshold"])
    except (KeyError, TypeError, ValueError):
        raise ModelFileError(f"{root / MANIFEST}: no valid threshold") from None
    return TrainedModel(preprocessor, loaded, threshold, dict(manifest.get("info") or {}))
