"""The mini-batch training loop of the torch detectors: Adam, early stopping with restore of the best epoch.

:func:`fit_module` trains a module that maps a float32 batch ``(b, d)`` either to one logit per row (the
classifiers: binary cross-entropy against the labels, optionally class-weighted) or, with ``reconstruct=True``,
back to ``(b, d)`` (the autoencoders: mean squared error against the input; no labels). Each epoch it
shuffles the training rows (a seeded generator), takes Adam steps on the loss, then scores the validation rows.
Early stopping watches the validation loss: after ``patience`` epochs without an improvement of more than
``min_delta`` it stops, and the weights of the best epoch are put back. Ctrl-C (``KeyboardInterrupt``) ends
training the same way, keeping the best epoch so far.

With ``threads`` > 1, that many copies of the module each take an equal share of every batch in their own thread
and their gradients are summed: the step of the whole batch, computed on several cores (:class:`_Replicas`).

The history is a list of one dict per epoch (``epoch``, ``loss``, ``accuracy``, ``val_loss``,
``val_accuracy``, ``seconds``, ``flows_per_s``; the accuracies are None when reconstructing), ready for JSON
and for the training figures. A rich progress bar on stderr shows the epoch, the running loss, the last validation
loss and the throughput.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from iotids.errors import InvalidParameterError

__all__ = ["Dropout", "FitOutcome", "fit_module", "predict_logits", "seeded", "torch_threads"]

#: Rows per forward pass when scoring (inference); large enough to amortise per-call overhead.
PREDICT_BATCH = 2048


@dataclass
class FitOutcome:
    """What :func:`fit_module` did: the per-epoch history and how training ended."""

    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    interrupted: bool = False
    seconds: float = 0.0
    flows_per_s: float = 0.0


@contextmanager
def seeded(random_state: int) -> Iterator[None]:
    """Seed torch's global generator and switch on deterministic algorithms, restoring the settings afterwards.

    Deterministic mode would also fill every new tensor's memory before use (a debugging aid against kernels that
    read it uninitialised): 1,200 extra fills per 20 training steps of the default CNN-LSTM, about 5 % of its
    training time (benchmarks/results/train.md). That part is switched off; the results do not depend on it.
    """
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    previous_fill = torch.utils.deterministic.fill_uninitialized_memory
    torch.manual_seed(random_state)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn)
        torch.utils.deterministic.fill_uninitialized_memory = previous_fill  # type: ignore[attr-defined]


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run with ``n`` torch CPU threads, restoring the previous count afterwards.

    The torch detectors train with one torch thread: their layers are too narrow to split, and on this project's
    2-core machine one thread trained the default CNN-LSTM 1.7x faster than two (16,963 against 10,241 flows/s,
    ``benchmarks/results/train.md``). Cores are put to work by copies of the network instead (``fit_module``'s
    ``threads``), whose result does not depend on the core count either.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class Dropout(nn.Dropout):
    """``nn.Dropout`` that draws its masks from its own ``generator`` once one is set (:func:`fit_module` sets one
    per replica, so that replicas training side by side stay reproducible); torch's global generator otherwise."""

    generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.generator is None or not self.training or self.p == 0:
            return super().forward(x)
        keep = torch.empty_like(x).bernoulli_(1.0 - self.p, generator=self.generator)
        return x * keep / (1.0 - self.p)


class _Replicas:
    """Copies of a module that take equal shares of each batch side by side, one thread each.

    Each copy computes its share's loss (weighted by the share's size, so the shares add up to the batch's mean)
    and its gradient; the gradients are summed into the first copy, the module itself, whose optimizer step is
    then copied to the others. One step is therefore a step on the whole batch, as with one copy, while torch's
    small kernels run on as many cores as there are copies. Dropout layers must be :class:`Dropout`: each copy
    draws its masks from its own seeded generator.

    While training, each copy's parameters and gradients are views into one flat buffer each (``weights``,
    ``grads``), so that the optimizer's step (over :attr:`parameter`), the gradient sum and the weight copy are one
    kernel each instead of one per parameter tensor; :meth:`close` gives the parameters their own memory back.
    """

    def __init__(self, module: nn.Module, n: int, random_state: int) -> None:
        self.copies = [module, *(copy.deepcopy(module) for _ in range(n - 1))]
        for k, replica in enumerate(self.copies if n > 1 else []):  # one copy: torch's generator, as nn.Dropout
            for layer in replica.modules():
                if isinstance(layer, nn.Dropout) and not isinstance(layer, Dropout):
                    raise InvalidParameterError(f"{type(module).__name__}: training on {n} threads needs "
                                                "iotids.models.training.Dropout layers (seeded per thread)")
                if isinstance(layer, Dropout):
                    layer.generator = torch.Generator().manual_seed(random_state * 1_000 + k)
        self.pool = ThreadPoolExecutor(n - 1, thread_name_prefix="iotids-replica") if n > 1 else None
        self.weights: list[torch.Tensor] = []
        self.grads: list[torch.Tensor] = []
        for replica in self.copies:
            params = [p for p in replica.parameters() if p.requires_grad]
            weights = torch.cat([p.detach().reshape(-1) for p in params])
            grads = torch.zeros_like(weights)
            offset = 0
            for p in params:
                p.data = weights[offset : offset + p.numel()].view_as(p)
                p.grad = grads[offset : offset + p.numel()].view_as(p)  # autograd adds into it in place
                offset += p.numel()
            self.weights.append(weights)
            self.grads.append(grads)
        #: The module's trainable weights as one tensor (with their gradient), for the optimizer.
        self.parameter = nn.Parameter(self.weights[0])
        self.parameter.grad = self.grads[0]

    def train(self) -> None:
        for replica in self.copies:
            replica.train()

    def step(self, xb: torch.Tensor, yb: torch.Tensor | None,
             loss_of: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor],
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward and backward of one batch over the copies; returns the outputs and the batch's loss."""
        n = len(xb)
        parts = min(len(self.copies), n)  # a last batch smaller than the copies leaves some idle
        xs = xb.tensor_split(parts)
        ys = [None] * parts if yb is None else yb.tensor_split(parts)

        def share(k: int) -> tuple[torch.Tensor, torch.Tensor]:
            self.grads[k].zero_()
            output = self.copies[k](xs[k])
            loss = loss_of(output, xs[k], ys[k]) * (len(xs[k]) / n)
            loss.backward()
            return output.detach(), loss.detach()

        if self.pool is None or parts == 1:
            return share(0)
        futures = [self.pool.submit(share, k) for k in range(1, parts)]
        results = [share(0), *(f.result() for f in futures)]
        for grads in self.grads[1:parts]:
            self.grads[0].add_(grads)
        return torch.cat([r[0] for r in results]), torch.stack([r[1] for r in results]).sum()

    def sync(self) -> None:
        """Copy the module's weights (after its optimizer step) to the other copies."""
        for weights in self.weights[1:]:
            weights.copy_(self.weights[0])

    def close(self) -> None:
        """Stop the threads; the module's parameters get their own memory back and its dropout torch's generator."""
        if self.pool is not None:
            self.pool.shutdown()
        module = self.copies[0]
        for p in module.parameters():
            if p.requires_grad:
                p.data, p.grad = p.data.clone(), None
        for layer in module.modules():
            if isinstance(layer, Dropout):
                layer.generator = None


def predict_logits(module: nn.Module, X: torch.Tensor, batch_size: int = PREDICT_BATCH) -> torch.Tensor:
    """Logits of every row in eval mode, without autograd, ``batch_size`` rows per forward pass."""
    module.eval()
    with torch.inference_mode():
        if len(X) <= batch_size:
            return module(X)
        return torch.cat([module(X[i : i + batch_size]) for i in range(0, len(X), batch_size)])


def _class_weights(y: torch.Tensor, class_weight: str | None) -> torch.Tensor | None:
    """Per-class weights ``n / (2 n_c)`` for ``"balanced"``, else ``None``."""
    if class_weight is None:
        return None
    n, n_pos = len(y), float(y.sum())
    return torch.tensor([n / (2 * max(n - n_pos, 1.0)), n / (2 * max(n_pos, 1.0))], dtype=torch.float32)


def _loss(logits: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None, reduction: str = "mean") -> torch.Tensor:
    weight = None if weights is None else weights[y.long()]
    return F.binary_cross_entropy_with_logits(logits, y, weight=weight, reduction=reduction)


def _evaluate(module: nn.Module, X: torch.Tensor, y: torch.Tensor | None,
              weights: torch.Tensor | None) -> tuple[float, float | None]:
    output = predict_logits(module, X)
    if y is None:  # reconstruction
        return float(F.mse_loss(output, X)), None
    accuracy = float(((output > 0).float() == y).float().mean())
    return float(_loss(output, y, weights)), accuracy


def _progress(enabled: bool, description: str) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}  val {task.fields[val_loss]}  {task.fields[rate]} flows/s"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not enabled,
    )


def _tensor(values: np.ndarray | None) -> torch.Tensor | None:
    return None if values is None else torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))


def fit_module(
    module: nn.Module,
    X: np.ndarray,
    y: np.ndarray | None,
    *,
    eval_set: tuple[np.ndarray, np.ndarray | None] | None,
    learning_rate: float,
    batch_size: int,
    max_epochs: int,
    patience: int,
    min_delta: float = 0.0,
    class_weight: str | None = None,
    schedule: str = "constant",
    batch_growth: int = 1,
    random_state: int = 0,
    progress: bool = False,
    description: str = "training",
    reconstruct: bool = False,
    threads: int = 1,
) -> FitOutcome:
    """Train ``module`` in place; on return it holds the weights of the best validation epoch.

    Parameters
    ----------
    module : maps float32 ``(b, d)`` to logits ``(b,)`` (or to ``(b, d)`` with ``reconstruct``).
    X, y : training rows (float32) and 0/1 labels (``None`` with ``reconstruct``).
    eval_set : validation rows and labels for early stopping; ``None`` trains ``max_epochs`` epochs.
    learning_rate, batch_size, max_epochs : Adam's step size, rows per step, epoch budget.
    patience, min_delta : stop after ``patience`` epochs whose validation loss is not below the best minus
        ``min_delta``.
    class_weight : ``None`` or ``"balanced"`` (each class weighs half of the loss).
    schedule : ``"constant"`` learning rate; ``"cosine"`` (from ``learning_rate`` down to 0 along a half cosine
        over the ``max_epochs`` budget); or ``"onecycle"`` (warm up to ``learning_rate`` over the first 30 % of
        the budget, then anneal to 1/10,000 of it). Both are stepped per batch.
    batch_growth : the batches of the second half of the ``max_epochs`` budget are this many times larger. A
        larger batch lowers the gradient's noise as a smaller step does (Smith et al., "Don't Decay the Learning
        Rate, Increase the Batch Size", 2018), in fewer steps, each cheaper per row.
    random_state : seeds the shuffling (and, through :func:`seeded`, dropout).
    progress : show a rich progress bar on stderr.
    reconstruct : train an autoencoder: the loss is the mean squared error between output and input, labels are
        ignored.
    threads : copies of the module that share each batch, one thread each (see :class:`_Replicas`); call it
        with torch set to one thread (:func:`torch_threads`). The result depends on this number, not on the cores.
    """
    X_t = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    y_t = None if reconstruct else _tensor(y)
    val = None
    if eval_set is not None:
        val = (torch.from_numpy(np.ascontiguousarray(eval_set[0], dtype=np.float32)),
               None if reconstruct else _tensor(eval_set[1]))
    weights = None if y_t is None else _class_weights(y_t, class_weight)
    if schedule not in ("constant", "cosine", "onecycle"):
        raise InvalidParameterError(
            f"The 'schedule' parameter of fit_module must be 'constant', 'cosine' or 'onecycle'. Got {schedule!r}."
        )
    if not isinstance(batch_growth, int) or batch_growth < 1:
        raise InvalidParameterError(
            f"The 'batch_growth' parameter of fit_module must be an int >= 1. Got {batch_growth!r}."
        )
    replicas = _Replicas(module, threads, random_state)
    optimizer = torch.optim.Adam([replicas.parameter], lr=learning_rate, fused=True)  # one kernel for all weights
    generator = torch.Generator().manual_seed(random_state)
    n = len(X_t)

    def epoch_batch(epoch: int) -> int:
        return batch_size * (batch_growth if 2 * (epoch - 1) >= max_epochs else 1)

    total_steps = sum(math.ceil(n / epoch_batch(epoch)) for epoch in range(1, max_epochs + 1))
    scheduler = None
    if schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=learning_rate, total_steps=total_steps)
    elif schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)

    def loss_of(output: torch.Tensor, xb: torch.Tensor, yb: torch.Tensor | None) -> torch.Tensor:
        return F.mse_loss(output, xb) if yb is None else _loss(output, yb, weights)

    outcome = FitOutcome()
    best_loss, best_state = math.inf, None
    bad_epochs = 0
    start = time.perf_counter()
    with _progress(progress, description) as bar:
        task = bar.add_task(description, total=total_steps, loss="-", val_loss="-", rate="-")
        try:
            for epoch in range(1, max_epochs + 1):
                bar.update(task, description=f"{description}: epoch {epoch}/{max_epochs}")
                replicas.train()
                order = torch.randperm(n, generator=generator)
                X_epoch, y_epoch = X_t[order], None if y_t is None else y_t[order]
                tick = time.perf_counter()
                loss_sum = correct = 0.0
                rows = epoch_batch(epoch)
                for i in range(0, n, rows):
                    xb = X_epoch[i : i + rows]
                    yb = None if y_epoch is None else y_epoch[i : i + rows]
                    output, loss = replicas.step(xb, yb, loss_of)
                    optimizer.step()
                    replicas.sync()
                    if scheduler is not None:
                        scheduler.step()
                    if yb is not None:
                        correct += float(((output > 0).float() == yb).sum())
                    loss_sum += loss.item() * len(xb)
                    seen = min(i + rows, n)
                    bar.update(task, advance=1, loss=f"{loss_sum / seen:.4f}",
                               rate=f"{seen / (time.perf_counter() - tick):,.0f}")
                seconds = time.perf_counter() - tick
                record: dict[str, Any] = {"epoch": epoch, "loss": loss_sum / n,
                                          "accuracy": None if y_t is None else correct / n,
                                          "val_loss": None, "val_accuracy": None, "seconds": seconds,
                                          "flows_per_s": n / seconds}
                if val is not None:
                    record["val_loss"], record["val_accuracy"] = _evaluate(module, *val, weights)
                    bar.update(task, val_loss=f"{record['val_loss']:.4f}")
                outcome.history.append(record)
                monitored = record["val_loss"] if val is not None else record["loss"]
                if monitored < best_loss - min_delta:
                    best_loss, bad_epochs, outcome.best_epoch = monitored, 0, epoch
                    best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
                else:
                    bad_epochs += 1
                    if val is not None and bad_epochs >= patience:
                        outcome.stopped_early = True
                        break
        except KeyboardInterrupt:
            if best_state is None:
                raise
            outcome.interrupted = True
        finally:
            replicas.close()
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    outcome.seconds = time.perf_counter() - start
    epochs_seconds = sum(r["seconds"] for r in outcome.history)
    outcome.flows_per_s = n * len(outcome.history) / epochs_seconds if epochs_seconds else 0.0
    return outcome
