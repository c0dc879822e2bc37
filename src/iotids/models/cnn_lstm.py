"""The hybrid CNN-LSTM of the paper (section 3.2) as a PyTorch module and an sklearn-style detector.

Network (:class:`CnnLstmNet`), for a preprocessed flow vector of ``d`` values in [0, 1]::

    (b, d) -> (b, d)                                      the features in the preprocessor's order, or with
                                                          feature_order="correlation" in correlation_order
    (b, d) -> (b, bins, d)                                each value encoded over target-aware bins (BinEncoding);
                                                          with bins=0, (b, 1, d): the values themselves (the paper)
    per block k: Conv1d(c_{k-1} -> filters[k], kernel_size, padding kernel_size // 2), ReLU, MaxPool1d(pool_size)
    (b, c, L) -> (b, L, c)                                the pooled positions as a sequence of c-vectors
    LSTM(c -> lstm_units), last hidden state              (b, lstm_units)
    Dropout(dropout), Linear(lstm_units -> dense_units), ReLU, Linear(dense_units -> 1)   one logit per flow

The score is ``sigmoid(logit)``. In each block the pooling runs before the ReLU: max-pooling and ReLU commute
(ReLU is monotone), so the function is the paper's Conv -> ReLU -> MaxPool, with the ReLU on a tensor
``pool_size`` times smaller. The 1-D blocks are computed as ``1 x k`` Conv2d / MaxPool2d layers over a height-1
image in channels-last memory: the same function, but torch's channels-last max-pooling took 0.21 against 1.15 ms
forward and backward for the first block's 128 x 16 x 80 values (it vectorises over channels), a training step of
128 rows 5.6 against 8.2 ms (one thread), and ONNX Runtime's 2-D kernels score 1.7 times faster per CPU second
than its 1-D ones (235k against 140k flows/s, one thread); the LSTM then reads the sequence without a copy. The
last block's ReLU is applied to that sequence (the same values): its gradient then reaches the last pooling in
channels-last layout, which saves two layout copies per training step (3-4 % of it).
:class:`CnnLstmDetector` adds the training of :mod:`iotids.models.training` and saving without pickle
(``model.safetensors`` + ``detector.json``).

The defaults (8 bins, filters (16, 32), kernel 3, pool 5, LSTM 48, dense 48, dropout 0.2; Adam at 1e-2 with a
one-cycle schedule, batch 256 and 512 from the eleventh epoch, patience 10, at most 20 epochs) were chosen on
validation loss and speed among the configurations measured in ``benchmarks/results/train.md``. The input encoding
is our one departure from the paper's layers: it lowered the mean validation loss on the corrected release from
0.0105 to 0.0054 (six model seeds, bins at one decision tree's splits per feature; at training quantiles: 0.0066)
and on the original files from 0.030 to 0.018 (three seeds; quantile bins 0.026). Bins at the splits of a boosted
model grown on all features (the default since the twelfth session) went 14 % and 16 % lower than one tree per
feature with the current defaults (six seeds each). 16 bins went lower still but cost 30 % of the single-thread
inference speed. The encoding lets the first convolution put sharp thresholds on single features, as trees do;
how it behaves away from the training flows (a later time, another lab's capture) is measured in train.md too.
Putting correlated features side by side for the convolutions (``feature_order="correlation"``) lowered the original
files' mean validation loss by a quarter but raised the false alarm rates on the time split (3-18 % against 1-3 %,
three seeds). LSTM 48 matched LSTM 64 over three seeds at 60 % of its LSTM cost. Pool 5 (the LSTM reads 3 positions
of the corrected release's 80 inputs, 2 of the original files' 60) trained 1.03-1.57 times as fast as pool 4 (5
positions) in six alternated pairs of runs (1.22 on average, two threads), with test false alarm rates and F1 within
the spread of pool 4's six seeds, at a mean validation loss a tenth higher on the corrected release (0.0060 against
0.0054) and about the same on the original files (0.0193 against 0.0189). The one-cycle schedule (warm-up to 1e-2
over the first 30 % of the steps, then annealing) lowered the mean validation loss by a fifth against a cosine
schedule over six seeds, with less than half its spread; the last epochs (small steps) are the best ones, and
patience 5 stopped seeds before them. Doubling the batch for the second half of the epochs (the annealing phase)
trained those epochs about 1.4 times as fast (a whole fit 1.2-1.3 times) with the same mean validation loss on the
original files (0.0193, six seeds) and 7 % more on the corrected release (0.0064 against 0.0060), test false alarm
rates within 1 % and ROC AUC >= 0.999 for six seeds of six there; batch 512 throughout lost more (0.0064-0.0065 and
0.0200-0.0209, one seed over 1 %).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch
from sklearn.base import BaseEstimator
from torch import nn

from iotids.errors import InvalidParameterError, ModelFileError
from iotids.models.baselines import (
    check_fitted,
    check_labels,
    check_matrix,
    check_param,
    read_model_dir,
    write_model_dir,
)
from iotids.models.training import Dropout, FitOutcome, fit_module, predict_logits, seeded, torch_threads

__all__ = ["CnnLstmDetector", "CnnLstmNet", "boosted_splits", "correlation_order", "sequence_length"]

WEIGHTS = "model.safetensors"
SCHEDULES = ("constant", "cosine", "onecycle")
#: Narrowest bin of :class:`BinEncoding`, in units of the preprocessed [0, 1] values.
MIN_BIN_WIDTH = 1e-3
#: Threads (copies of the network sharing each batch) of ``fit`` by default: two trained the default model 1.3x
#: faster than one on a 2-core machine, as accurately over six seeds (benchmarks/results/train.md, "Two training
#: threads").
TRAIN_THREADS = 2


FEATURE_ORDERS = ("correlation", "input")


def correlation_order(X: np.ndarray, *, max_rows: int = 100_000, random_state: int = 0) -> np.ndarray:
    """An order of the columns of ``X`` that puts correlated ones side by side, for the convolutions: the leaves of
    an average-linkage clustering under the distance ``1 - |Spearman correlation|`` (a column without variance is
    at distance 1 from every other), over at most ``max_rows`` rows."""
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform
    from scipy.stats import rankdata

    if X.shape[1] < 3:
        return np.arange(X.shape[1])
    if len(X) > max_rows:
        X = X[np.sort(np.random.default_rng(random_state).choice(len(X), max_rows, replace=False))]
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.nan_to_num(np.corrcoef(rankdata(X, axis=0), rowvar=False))
    distance = 1.0 - np.abs(rho)
    np.fill_diagonal(distance, 0.0)
    return leaves_list(linkage(squareform((distance + distance.T) / 2, checks=False), "average"))


def sequence_length(n_features: int, n_blocks: int, kernel_size: int, pool_size: int) -> int:
    """Length of the sequence the LSTM reads: each block keeps ``L + 2 (k // 2) - k + 1`` then pools."""
    length = n_features
    for _ in range(n_blocks):
        length = (length + 2 * (kernel_size // 2) - kernel_size + 1) // pool_size
    return length


def boosted_splits(X: np.ndarray, y: np.ndarray, n: int, *, random_state: int = 0) -> list[np.ndarray]:
    """Per column of ``X``, the at most ``n`` split thresholds with the most total gain in a default LightGBM
    classifier grown on ``(X, y)`` (one thread, so the same rows give the same splits), in increasing order."""
    import lightgbm

    if n < 1 or len(np.unique(y)) < 2:
        return [np.empty(0)] * X.shape[1]
    booster = lightgbm.LGBMClassifier(n_jobs=1, random_state=random_state, verbose=-1).fit(X, y).booster_
    nodes = booster.trees_to_dataframe().dropna(subset=["split_feature"])
    gain = nodes.groupby(["split_feature", "threshold"])["split_gain"].sum()
    columns = {name: j for j, name in enumerate(booster.feature_name())}
    splits = [np.empty(0)] * X.shape[1]
    for name, per_threshold in gain.groupby(level="split_feature"):
        best = per_threshold.droplevel("split_feature").nlargest(n)
        splits[columns[name]] = np.sort(best.index.to_numpy(np.float64))
    return splits


class BinEncoding(nn.Module):
    """Piecewise-linear encoding of each input value over ``bins`` bins chosen on the training rows and labels.

    For bin ``t`` of feature ``j`` with edges ``lo_tj < hi_tj`` the channel is ``clamp((x_j - lo_tj) / (hi_tj -
    lo_tj), 0, 1)``: 1 for bins left of the value, its position inside its own bin, 0 to the right. The edges are
    target-aware: the split points that a default LightGBM classifier, grown on all features against the labels,
    used on that feature with the most total gain (up to ``bins - 1`` of them), so the bins fall where the feature's
    values separate attacks from benign flows, alone or beside other features (a range of TCP window sizes among
    empty flows, say). This is the tree-based piecewise-linear encoding of Gorishniy et al. ("On Embeddings for
    Numerical Features in Tabular Deep Learning", 2022) with the splits of a boosted model instead of one tree per
    feature: it lowered the mean validation loss by 16 % on the original files and 14 % on the corrected release
    (six model seeds, benchmarks/results/train.md). A feature split fewer times leaves its last bins unused
    (constant 0). The inputs are in [0, 1]; a bin is at least :data:`MIN_BIN_WIDTH` wide, so a column with a single
    value becomes a steep ramp starting at that value, and a rounding difference of the preprocessing between
    runtimes (~1e-7) moves a channel by no more than ~1e-4.
    :meth:`fit` sets the edges; they are buffers, saved with the weights.
    """

    def __init__(self, bins: int, n_features: int) -> None:
        super().__init__()
        self.register_buffer("low", torch.zeros(bins, n_features))
        self.register_buffer("inverse_width", torch.ones(bins, n_features))

    def fit(self, X: np.ndarray, y: np.ndarray, *, max_rows: int = 100_000, random_state: int = 0) -> None:
        """Edges of each column: its minimum, its :func:`boosted_splits`, its maximum; from at most ``max_rows``
        rows of ``(X, y)``."""
        if len(X) > max_rows:
            keep = np.sort(np.random.default_rng(random_state).choice(len(X), max_rows, replace=False))
            X, y = X[keep], y[keep]
        bins, n_features = self.low.shape
        splits = boosted_splits(X, y, bins - 1, random_state=random_state)
        low = np.zeros((bins, n_features), np.float32)
        inverse_width = np.zeros((bins, n_features), np.float32)  # unused bins: constant 0
        for j in range(n_features):
            column = X[:, j]
            edges = np.unique(np.concatenate([[column.min(), column.max()], splits[j]]).astype(np.float32))
            used = max(len(edges) - 1, 1)
            low[:used, j] = edges[:used]
            inverse_width[:used, j] = 1.0 / np.maximum(np.diff(edges, append=edges[-1])[:used], MIN_BIN_WIDTH)
        self.low.copy_(torch.from_numpy(low))
        self.inverse_width.copy_(torch.from_numpy(inverse_width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(b, d)`` -> ``(b, bins, d)``."""
        return torch.clamp((x.unsqueeze(1) - self.low) * self.inverse_width, 0.0, 1.0)


class CnnLstmNet(nn.Module):
    """Input encoding -> Conv1d/MaxPool1d/ReLU blocks -> LSTM -> dropout -> dense -> one logit (module docstring)."""

    def __init__(self, n_features: int, *, filters: tuple[int, ...], kernel_size: int, pool_size: int,
                 lstm_units: int, dense_units: int, dropout: float, bins: int = 0, reorder: bool = False) -> None:
        super().__init__()
        # with ``reorder``, the order of the features (set by the detector); None (not saved) for the input order
        self.register_buffer("order", torch.arange(n_features) if reorder else None)
        self.encoding = BinEncoding(bins, n_features) if bins else None
        layers: list[nn.Module] = []
        channels = bins or 1
        for width in filters:
            layers += [nn.Conv2d(channels, width, (1, kernel_size), padding=(0, kernel_size // 2)),
                       nn.MaxPool2d((1, pool_size)), nn.ReLU()]
            channels = width
        self.cnn = nn.Sequential(*layers[:-1])  # the last block's ReLU is applied to the sequence (forward)
        self.lstm = nn.LSTM(channels, lstm_units, batch_first=True)
        self.dropout = Dropout(dropout)
        self.dense = nn.Sequential(nn.Linear(lstm_units, dense_units), nn.ReLU(), nn.Linear(dense_units, 1))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """float32 ``(b, d)`` -> the first convolution's input ``(b, channels, 1, d)``, channels last."""
        if self.order is not None:  # no gather for the input order: 5 % of the exported graph's time (width 2)
            x = x.index_select(1, self.order)
        channels = x.unsqueeze(1) if self.encoding is None else self.encoding(x)
        return channels.unsqueeze(2).contiguous(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """float32 ``(b, d)`` -> logits ``(b,)``."""
        sequence = torch.relu(self.cnn(self.encode(x)).squeeze(2).transpose(1, 2))  # (b, L, c), contiguous
        _, (hidden, _) = self.lstm(sequence)
        return self.dense(self.dropout(hidden[-1])).squeeze(1)


class CnnLstmDetector(BaseEstimator):
    """The paper's CNN-LSTM binary detector; ``decision_function`` is the attack probability.

    Parameters
    ----------
    feature_order : ``"input"``: the convolutions see the features in the preprocessor's order (the paper);
        ``"correlation"``: in :func:`correlation_order` of the training rows, correlated features side by side.
    bins : bins of the input encoding (:class:`BinEncoding`; each feature becomes ``bins`` channels of
        the first convolution); ``0`` gives the convolution the scaled values themselves, as in the paper.
    filters : output channels of each Conv1d block (the number of blocks is its length).
    kernel_size : width of every convolution.
    pool_size : max-pooling window (and stride) of every block.
    lstm_units : size of the LSTM's hidden state.
    dense_units : width of the dense layer before the output.
    dropout : dropout rate after the LSTM.
    learning_rate, batch_size : Adam's step size and rows per step.
    batch_growth : the batches of the second half of the epoch budget are this many times larger (``1``: the same
        size throughout); see ``training.fit_module``.
    max_epochs, patience : epoch budget, and early stopping on the validation loss (``eval_set``).
    class_weight : ``None`` or ``"balanced"``.
    schedule : learning-rate schedule, ``"constant"``, ``"cosine"`` or ``"onecycle"`` (see ``training.fit_module``).
    random_state : seed of the weights, the shuffling and dropout.
    n_threads : threads. ``fit``: that many copies of the network each take an equal share of every batch, one
        thread each (``None``: :data:`TRAIN_THREADS`; a result depends on this number, not on the machine's
        cores). Scoring: torch's threads (``None``: torch's setting).
    progress : show a progress bar on stderr while training.

    Examples
    --------
    >>> det = CnnLstmDetector().fit(X_train, y_train, eval_set=(X_val, y_val))  # doctest: +SKIP
    >>> scores = det.decision_function(X_test)  # float32 in [0, 1], higher = attack  # doctest: +SKIP
    """

    name: ClassVar[str] = "cnn-lstm"

    def __init__(
        self,
        *,
        feature_order: str = "input",
        bins: int = 8,
        filters: tuple[int, ...] = (16, 32),
        kernel_size: int = 3,
        pool_size: int = 5,
        lstm_units: int = 48,
        dense_units: int = 48,
        dropout: float = 0.2,
        learning_rate: float = 1e-2,
        batch_size: int = 256,
        batch_growth: int = 2,
        max_epochs: int = 20,
        patience: int = 10,
        class_weight: str | None = None,
        schedule: str = "onecycle",
        random_state: int = 0,
        n_threads: int | None = None,
        progress: bool = False,
    ) -> None:
        self.feature_order = feature_order
        self.bins = bins
        self.filters = filters
        self.kernel_size = kernel_size
        self.pool_size = pool_size
        self.lstm_units = lstm_units
        self.dense_units = dense_units
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.batch_growth = batch_growth
        self.max_epochs = max_epochs
        self.patience = patience
        self.class_weight = class_weight
        self.schedule = schedule
        self.random_state = random_state
        self.n_threads = n_threads
        self.progress = progress

    # ---------------------------------------------------------------------------------------------- build
    def _check_params(self) -> None:
        def positive_int(value: Any) -> bool:
            return isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= 1

        check_param(self, "filters", self.filters,
                    isinstance(self.filters, tuple | list) and len(self.filters) >= 1
                    and all(positive_int(f) for f in self.filters), "a non-empty tuple of ints >= 1")
        for name in ("kernel_size", "pool_size", "lstm_units", "dense_units", "batch_size", "batch_growth",
                     "max_epochs", "patience"):
            check_param(self, name, getattr(self, name), positive_int(getattr(self, name)), "an int in [1, inf)")
        check_param(self, "bins", self.bins, isinstance(self.bins, int | np.integer) and not isinstance(self.bins, bool)
                    and self.bins >= 0, "an int in [0, inf)")
        check_param(self, "dropout", self.dropout, isinstance(self.dropout, float | int) and 0 <= self.dropout < 1,
                    "a float in [0, 1)")
        check_param(self, "learning_rate", self.learning_rate,
                    isinstance(self.learning_rate, float | int) and self.learning_rate > 0, "a float in (0, inf)")
        check_param(self, "class_weight", self.class_weight, self.class_weight in (None, "balanced"),
                    "None or 'balanced'")
        check_param(self, "schedule", self.schedule, self.schedule in SCHEDULES, f"one of {', '.join(SCHEDULES)}")
        check_param(self, "feature_order", self.feature_order, self.feature_order in FEATURE_ORDERS,
                    f"one of {', '.join(FEATURE_ORDERS)}")
        check_param(self, "n_threads", self.n_threads, self.n_threads is None or positive_int(self.n_threads),
                    "None or an int >= 1")

    def _build(self, n_features: int) -> CnnLstmNet:
        def length(d: int) -> int:
            return sequence_length(d, len(self.filters), self.kernel_size, self.pool_size)

        if length(n_features) < 1:
            least = next(d for d in range(n_features, self.pool_size ** len(self.filters) + 1) if length(d) >= 1)
            raise InvalidParameterError(
                f"CnnLstmDetector: {len(self.filters)} blocks with pool_size {self.pool_size} shrink {n_features} "
                f"model inputs to an empty sequence; keep more features (at least {least} inputs), or use fewer "
                "blocks or a smaller pool_size."
            )
        return CnnLstmNet(n_features, filters=tuple(int(f) for f in self.filters), kernel_size=self.kernel_size,
                          pool_size=self.pool_size, lstm_units=self.lstm_units, dense_units=self.dense_units,
                          dropout=float(self.dropout), bins=int(self.bins),
                          reorder=self.feature_order != "input")

    def _threads(self) -> None:
        if self.n_threads is not None:
            torch.set_num_threads(int(self.n_threads))

    # ------------------------------------------------------------------------------------------------ fit
    def fit(self, X: np.ndarray, y: np.ndarray, *, eval_set: tuple[np.ndarray, np.ndarray] | None = None) -> Self:
        """Train on ``(X, y)``; ``eval_set`` (validation rows) drives early stopping and restores the best epoch."""
        self._check_params()
        X = check_matrix(X, self)
        y = check_labels(y, len(X), self)
        if eval_set is not None:
            X_val = check_matrix(eval_set[0], self, X.shape[1])
            eval_set = (X_val, check_labels(eval_set[1], len(X_val), self, both_classes=False))
        with torch_threads(1), seeded(self.random_state):
            module = self._build(X.shape[1])
            if module.order is not None:
                module.order.copy_(torch.from_numpy(correlation_order(X, random_state=self.random_state)))
            if module.encoding is not None:
                module.encoding.fit(X if module.order is None else X[:, module.order.numpy()], y,
                                    random_state=self.random_state)
            outcome: FitOutcome = fit_module(
                module, X, y, eval_set=eval_set, learning_rate=float(self.learning_rate),
                batch_size=int(self.batch_size), batch_growth=int(self.batch_growth), max_epochs=int(self.max_epochs),
                patience=int(self.patience),
                class_weight=self.class_weight, schedule=self.schedule, random_state=self.random_state,
                progress=self.progress, threads=int(self.n_threads or TRAIN_THREADS),
            )
        self.module_ = module
        self.n_features_in_ = X.shape[1]
        self.history_ = outcome.history
        self.best_epoch_ = outcome.best_epoch
        self.stopped_early_ = outcome.stopped_early
        self.interrupted_ = outcome.interrupted
        self.train_seconds_ = outcome.seconds
        self.train_flows_per_s_ = outcome.flows_per_s
        return self

    # -------------------------------------------------------------------------------------------- scoring
    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Attack probability of each row, float32 ``(n,)``."""
        check_fitted(self, "module_")
        X = check_matrix(X, self, self.n_features_in_)
        self._threads()
        logits = predict_logits(self.module_, torch.from_numpy(X))
        return torch.sigmoid(logits).numpy().astype(np.float32, copy=False)

    def scoring_speed(self, X: np.ndarray, *, repeats: int = 3) -> float:
        """Flows per second of :meth:`decision_function` on ``X`` (best of ``repeats`` runs)."""
        best = np.inf
        for _ in range(repeats):
            start = time.perf_counter()
            self.decision_function(X)
            best = min(best, time.perf_counter() - start)
        return len(X) / best

    # ------------------------------------------------------------------------------------------ save/load
    def save(self, directory: Path) -> None:
        """Write ``model.safetensors`` and ``detector.json`` (parameters, history) into ``directory``."""
        from safetensors.torch import save

        check_fitted(self, "module_")
        weights = save({k: v.contiguous() for k, v in self.module_.state_dict().items()})
        state = {"n_features_in": int(self.n_features_in_), "best_epoch": int(self.best_epoch_),
                 "stopped_early": bool(self.stopped_early_), "interrupted": bool(self.interrupted_),
                 "history": self.history_, "train_seconds": float(self.train_seconds_),
                 "train_flows_per_s": float(self.train_flows_per_s_)}
        write_model_dir(directory, self, {WEIGHTS: weights}, state=state)

    @classmethod
    def load(cls, directory: Path) -> Self:
        """Load a directory written by :meth:`save`; refuses altered or incomplete files."""
        from safetensors import SafetensorError
        from safetensors.torch import load

        manifest, files = read_model_dir(directory, cls)
        try:
            params = dict(manifest["params"])
            params["filters"] = tuple(params["filters"])
            params.setdefault("bins", 0)  # saved before the input encoding existed
            params.setdefault("feature_order", "input")  # saved before the features were reordered
            det = cls(**params)
            state = manifest["state"]
            det.n_features_in_ = int(state["n_features_in"])
            det.best_epoch_ = int(state["best_epoch"])
            det.stopped_early_ = bool(state["stopped_early"])
            det.interrupted_ = bool(state["interrupted"])
            det.history_ = list(state["history"])
            det.train_seconds_ = float(state["train_seconds"])
            det.train_flows_per_s_ = float(state["train_flows_per_s"])
            module = det._build(det.n_features_in_)
            weights = load(files[WEIGHTS])
            # saved before the blocks became 1 x k Conv2d layers: Conv1d weights (out, in, k)
            weights = {k: v.unsqueeze(2) if k.startswith("cnn.") and v.ndim == 3 else v for k, v in weights.items()}
            if module.order is None:
                weights.pop("order", None)  # the identity: how the previous version saved the input order
            module.load_state_dict(weights)
        except (KeyError, TypeError, ValueError, RuntimeError, SafetensorError) as exc:
            raise ModelFileError(f"{directory}: not a loadable CNN-LSTM ({exc})") from None
        det.module_ = module.eval()
        return det
