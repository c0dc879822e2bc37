"""Deep autoencoders in PyTorch, in the two ways the intrusion detection literature uses them.

``AutoencoderDetector`` (registry name ``autoencoder``): **anomaly detection**. A symmetric deep autoencoder
(d → 64 → 32 → 16 → 32 → 64 → d by default) learns to reconstruct *benign* training flows only; the attack
labels of the training split are never seen. A flow's reconstruction error (mean squared error over its features)
is its anomaly score, and the error threshold is chosen on the validation split only (``eval_set``): the one that
maximises F1 there, or with ``threshold_objective="far"`` the one whose false alarm rate on the validation benign
flows is ``target_far``. This is the mode that can flag attacks of kinds never seen in training.
``decision_function`` returns ``e / (e + threshold_)``: monotone in the error ``e``, in [0, 1), and exactly 0.5 at
the chosen threshold, so every detector of iotids shares the default threshold 0.5.

``StackedAutoencoderDetector`` (registry name ``autoencoder-shone``): **Shone et al. (2018)**, "A Deep Learning
Approach to Network Intrusion Detection" (the paper's reference 7): two stacked non-symmetric deep autoencoders
(NDAE; an encoder of three sigmoid layers, 14 → 28 → 28 units by default, and a single linear decoder layer, no
mirrored decoder) are trained greedily and unsupervised on all training flows, the second on the codes of the
first; a Random Forest is then trained on the final codes with the labels. Its score is the forest's probability.

Weights are saved as safetensors, the parameters and learned scalars in ``detector.json``; the forest of the
Shone model in its own ONNX sub-directory ``head/``. Nothing is pickled.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from sklearn.base import BaseEstimator
from torch import nn

from iotids.errors import InvalidParameterError
from iotids.models.baselines import (
    RandomForestDetector,
    check_fitted,
    check_labels,
    check_matrix,
    check_param,
    iter_chunks,
    model_file_errors,
    read_model_dir,
    write_model_dir,
)
from iotids.models.threshold import threshold_for_f1, threshold_for_far
from iotids.models.training import fit_module, torch_threads

__all__ = ["AutoencoderDetector", "StackedAutoencoderDetector"]

_SCORE_BATCH = 65_536


class _Autoencoder(nn.Module):
    """Encoder MLP and decoder MLP; ``forward`` reconstructs, ``encode`` gives the code."""

    def __init__(self, n_features: int, encoder: Sequence[int], decoder: Sequence[int], activation: str) -> None:
        super().__init__()
        act: type[nn.Module] = nn.ReLU if activation == "relu" else nn.Sigmoid
        layers: list[nn.Module] = []
        width = n_features
        for units in encoder:
            layers += [nn.Linear(width, units), act()]
            width = units
        self.encoder = nn.Sequential(*layers)
        layers = []
        for units in decoder:
            layers += [nn.Linear(width, units), act()]
            width = units
        layers.append(nn.Linear(width, n_features))
        self.decoder = nn.Sequential(*layers)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def _row_errors(module: _Autoencoder, X: np.ndarray) -> np.ndarray:
    """Per-row mean squared reconstruction error (float32), in batches."""
    module.eval()
    out = []
    with torch.inference_mode():
        for part in iter_chunks(X.shape[0], _SCORE_BATCH):
            x = torch.from_numpy(X[part])
            out.append(((module(x) - x) ** 2).mean(dim=1).numpy())
    return np.concatenate(out).astype(np.float32, copy=False)


def _encode(module: _Autoencoder, X: np.ndarray) -> np.ndarray:
    module.eval()
    with torch.inference_mode():
        return np.concatenate([module.encode(torch.from_numpy(X[part])).numpy()
                               for part in iter_chunks(X.shape[0], _SCORE_BATCH)]).astype(np.float32, copy=False)


def _train(module: nn.Module, X: np.ndarray, X_val: np.ndarray | None, *, owner: Any, seed: int,
           label: str) -> list[dict[str, Any]]:
    """Minimise the reconstruction MSE (:func:`~iotids.models.training.fit_module`, one torch thread); early
    stopping on ``X_val`` restores the best weights. Returns the per-epoch history."""
    with torch_threads(1):
        outcome = fit_module(module, X, None, eval_set=None if X_val is None else (X_val, None),
                             learning_rate=owner.learning_rate, batch_size=owner.batch_size,
                             max_epochs=owner.epochs, patience=owner.patience, random_state=seed,
                             progress=sys.stderr.isatty(), description=label, reconstruct=True)
    return outcome.history


def choose_threshold(errors: np.ndarray, y: np.ndarray, *, objective: str, target_far: float) -> float:
    """The reconstruction-error threshold on validation rows: best F1, or the wanted false alarm rate."""
    return threshold_for_f1(errors, y) if objective == "f1" else threshold_for_far(errors, y, target_far)


def _check_training_params(owner: Any) -> None:
    check_param(owner, "epochs", owner.epochs, isinstance(owner.epochs, int) and owner.epochs >= 1,
                "an int in [1, inf)")
    check_param(owner, "batch_size", owner.batch_size,
                isinstance(owner.batch_size, int) and owner.batch_size >= 1, "an int in [1, inf)")
    check_param(owner, "learning_rate", owner.learning_rate,
                isinstance(owner.learning_rate, int | float) and owner.learning_rate > 0, "a float > 0")
    check_param(owner, "patience", owner.patience, isinstance(owner.patience, int) and owner.patience >= 1,
                "an int in [1, inf)")


def _weights(modules: Sequence[nn.Module]) -> bytes:
    return save_safetensors({f"{i}.{k}": v.contiguous() for i, m in enumerate(modules)
                             for k, v in m.state_dict().items()})


def _restore(modules: Sequence[nn.Module], blob: bytes) -> None:
    tensors = load_safetensors(blob)
    for i, module in enumerate(modules):
        prefix = f"{i}."
        module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
        module.eval()


# --------------------------------------------------------------------------------------------------- anomaly mode
class AutoencoderDetector(BaseEstimator):
    """Deep autoencoder trained on benign flows; reconstruction error thresholded on validation (see module doc).

    Parameters
    ----------
    hidden : encoder widths; the decoder mirrors them (the last one is the code size).
    epochs, batch_size, learning_rate : Adam training on the benign training rows.
    patience : early stopping on the validation benign rows' reconstruction error.
    threshold_objective : ``"f1"`` (maximise F1 on ``eval_set``) or ``"far"`` (false alarm rate ``target_far`` on
        the benign rows of ``eval_set``).
    target_far : the wanted validation false alarm rate for ``threshold_objective="far"``.
    random_state : seed of initialisation and shuffling.

    Examples
    --------
    >>> det = AutoencoderDetector().fit(X_train, y_train, eval_set=(X_val, y_val))  # doctest: +SKIP
    >>> det.threshold_, det.reconstruction_error(X_test)  # doctest: +SKIP
    """

    name: ClassVar[str] = "autoencoder"

    def __init__(
        self,
        *,
        hidden: Sequence[int] = (64, 32, 16),
        epochs: int = 100,
        batch_size: int = 128,
        learning_rate: float = 3e-3,
        patience: int = 5,
        threshold_objective: str = "f1",
        target_far: float = 0.01,
        random_state: int = 0,
    ) -> None:
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.threshold_objective = threshold_objective
        self.target_far = target_far
        self.random_state = random_state

    def _build(self, n_features: int) -> _Autoencoder:
        hidden = [int(h) for h in self.hidden]
        return _Autoencoder(n_features, hidden, hidden[-2::-1], "relu")

    def fit(self, X: np.ndarray, y: np.ndarray, *, eval_set: tuple[np.ndarray, np.ndarray] | None = None) -> Self:
        """Train on the benign rows of ``(X, y)``; choose ``threshold_`` on ``eval_set`` (required)."""
        _check_training_params(self)
        check_param(self, "hidden", self.hidden, len(self.hidden) >= 1 and all(int(h) >= 1 for h in self.hidden),
                    "a non-empty sequence of positive ints")
        check_param(self, "threshold_objective", self.threshold_objective,
                    self.threshold_objective in ("f1", "far"), "'f1' or 'far'")
        check_param(self, "target_far", self.target_far,
                    isinstance(self.target_far, int | float) and 0 < self.target_far < 1, "a float in (0, 1)")
        if eval_set is None:
            raise InvalidParameterError(
                "AutoencoderDetector needs eval_set=(X_val, y_val): its threshold is chosen on validation rows."
            )
        X = check_matrix(X, self)
        y = check_labels(y, X.shape[0], self, both_classes=False)
        X_val = check_matrix(eval_set[0], self, X.shape[1])
        y_val = check_labels(eval_set[1], X_val.shape[0], self)
        benign, benign_val = X[y == 0], X_val[y_val == 0]
        if benign.shape[0] == 0:
            raise InvalidParameterError("AutoencoderDetector learns benign traffic: the training rows hold none.")
        torch.manual_seed(self.random_state)
        module = self._build(X.shape[1])
        self.history_ = _train(module, benign, benign_val, owner=self, seed=self.random_state,
                               label="autoencoder (benign only)")
        self.module_ = module
        self.n_features_in_ = X.shape[1]
        errors = _row_errors(module, X_val)
        threshold = choose_threshold(errors, y_val, objective=self.threshold_objective, target_far=self.target_far)
        self.threshold_ = float(max(np.float32(threshold), np.finfo(np.float32).tiny))
        return self

    def reconstruction_error(self, X: np.ndarray) -> np.ndarray:
        """Mean squared reconstruction error of each row (float32), the raw anomaly score."""
        check_fitted(self, "module_")
        return _row_errors(self.module_, check_matrix(X, self, self.n_features_in_))

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """``e / (e + threshold_)`` per row (float32): 0.5 at the validation threshold, higher = attack."""
        errors = self.reconstruction_error(X)
        threshold = np.float32(self.threshold_)
        scores = errors / (errors + threshold)
        # rounding may lift an error just below the threshold to 0.5: keep "score >= 0.5" == "error >= threshold"
        np.minimum(scores, np.nextafter(np.float32(0.5), np.float32(0)), out=scores, where=errors < threshold)
        return scores

    def save(self, directory: Path) -> None:
        """Write ``model.safetensors`` and ``detector.json`` into ``directory``."""
        check_fitted(self, "module_")
        write_model_dir(directory, self, {"model.safetensors": _weights([self.module_])},
                        state={"n_features_in": self.n_features_in_, "threshold": self.threshold_,
                               "history": self.history_})

    @classmethod
    def load(cls, directory: Path) -> Self:
        """Load a directory written by :meth:`save`."""
        manifest, files = read_model_dir(directory, cls)
        with model_file_errors(directory, cls):
            det = cls(**{**manifest["params"], "hidden": tuple(manifest["params"]["hidden"])})
            state = manifest["state"]
            det.n_features_in_ = int(state["n_features_in"])
            det.threshold_ = float(state["threshold"])
            det.history_ = state["history"]
            det.module_ = det._build(det.n_features_in_)
            _restore([det.module_], files["model.safetensors"])
        return det


# --------------------------------------------------------------------------------------------------- Shone et al.
class StackedAutoencoderDetector(BaseEstimator):
    """Shone et al. (2018): stacked non-symmetric deep autoencoders + Random Forest on the codes (module doc).

    Parameters
    ----------
    hidden : encoder widths of each NDAE (Shone et al.: 14, 28, 28); its decoder is one linear layer.
    n_stacked : number of NDAEs stacked (Shone et al.: 2).
    epochs, batch_size, learning_rate, patience : training of each NDAE (early stopping on ``eval_set`` rows).
    n_estimators : trees of the Random Forest on the codes.
    random_state : seed.
    """

    name: ClassVar[str] = "autoencoder-shone"

    def __init__(
        self,
        *,
        hidden: Sequence[int] = (14, 28, 28),
        n_stacked: int = 2,
        epochs: int = 20,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        patience: int = 3,
        n_estimators: int = 100,
        random_state: int = 0,
    ) -> None:
        self.hidden = hidden
        self.n_stacked = n_stacked
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.n_estimators = n_estimators
        self.random_state = random_state

    def _build(self, n_features: int) -> list[_Autoencoder]:
        hidden = [int(h) for h in self.hidden]
        return [_Autoencoder(n_features if i == 0 else hidden[-1], hidden, (), "sigmoid")
                for i in range(self.n_stacked)]

    def _codes(self, X: np.ndarray) -> np.ndarray:
        for module in self.modules_:
            X = _encode(module, X)
        return X

    def fit(self, X: np.ndarray, y: np.ndarray, *, eval_set: tuple[np.ndarray, np.ndarray] | None = None) -> Self:
        """Train the NDAEs greedily on all rows of ``X`` (no labels), then the forest on the codes with ``y``."""
        _check_training_params(self)
        check_param(self, "n_stacked", self.n_stacked, isinstance(self.n_stacked, int) and self.n_stacked >= 1,
                    "an int in [1, inf)")
        X = check_matrix(X, self)
        y = check_labels(y, X.shape[0], self)
        X_val = None if eval_set is None else check_matrix(eval_set[0], self, X.shape[1])
        torch.manual_seed(self.random_state)
        modules = self._build(X.shape[1])
        self.history_ = []
        codes, codes_val = X, X_val
        for i, module in enumerate(modules):
            self.history_.append(_train(module, codes, codes_val, owner=self, seed=self.random_state + i,
                                        label=f"NDAE {i + 1}/{len(modules)}"))
            codes = _encode(module, codes)
            codes_val = None if codes_val is None else _encode(module, codes_val)
        self.modules_ = modules
        self.n_features_in_ = X.shape[1]
        self.head_ = RandomForestDetector(n_estimators=self.n_estimators, random_state=self.random_state)
        self.head_.fit(codes, y)
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """The forest's attack probability on the stacked codes (float32)."""
        check_fitted(self, "head_")
        return self.head_.decision_function(self._codes(check_matrix(X, self, self.n_features_in_)))

    def save(self, directory: Path) -> None:
        """Write ``model.safetensors``, the forest in ``head/`` and ``detector.json`` into ``directory``."""
        check_fitted(self, "head_")
        self.head_.save(Path(directory) / "head")
        write_model_dir(directory, self, {"model.safetensors": _weights(self.modules_)},
                        state={"n_features_in": self.n_features_in_, "history": self.history_},
                        hashed=("head/detector.json",))

    @classmethod
    def load(cls, directory: Path) -> Self:
        """Load a directory written by :meth:`save`."""
        manifest, files = read_model_dir(directory, cls)
        with model_file_errors(directory, cls):
            det = cls(**{**manifest["params"], "hidden": tuple(manifest["params"]["hidden"])})
            det.n_features_in_ = int(manifest["state"]["n_features_in"])
            det.history_ = manifest["state"]["history"]
            det.modules_ = det._build(det.n_features_in_)
            _restore(det.modules_, files["model.safetensors"])
        det.head_ = RandomForestDetector.load(Path(directory) / "head")
        return det
