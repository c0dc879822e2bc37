"""The CNN-LSTM detector on a few thousand real rows of the corrected CICIDS2017: quality floor, contract,
reproducibility, early stopping with restore, Ctrl-C, save/load, grid search, the feature order, the input encoding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score, roc_auc_score

from iotids.errors import InvalidParameterError, ModelFileError, NotFittedError
from iotids.models.base import Detector, detector_class
from iotids.models.cnn_lstm import BinEncoding, CnnLstmDetector, CnnLstmNet, boosted_splits, correlation_order
from iotids.models.search import grid_search
from iotids.models.training import Dropout, _Replicas, fit_module

#: A tiny configuration: ~4,000 parameters, a few seconds per fit on 3,000 rows. Batch 64: with 128 (24 steps per
#: epoch) model seed 0 sat at the class prior for five of its ten epochs.
TINY = {"filters": (16, 16), "lstm_units": 16, "dense_units": 16, "batch_size": 64, "learning_rate": 1e-2,
        "max_epochs": 10, "patience": 3}
#: Floors on the test rows for TINY (measured, two training threads, batches doubled from epoch 6, the encoding's
#: bins at a boosted model's splits: seeds 0-2 F1 0.992 / 0.989 / 0.990, ROC AUC 0.980 / 0.996 / 0.995). Flagging
#: every row would give F1 0.937 and AUC 0.5; the same fits on shuffled labels gave F1 0.937, AUC 0.38-0.65.
F1_FLOOR, AUC_FLOOR = 0.985, 0.97


@pytest.fixture(scope="module")
def data(improved_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from iotids.data import load_dataset
    from iotids.features.preprocess import FlowPreprocessor

    splits = load_dataset(improved_dir).splits
    parts = {"train": splits.train.sample(3000, random_state=0), "val": splits.val.sample(1000, random_state=0),
             "test": splits.test.sample(2000, random_state=0)}
    pre = FlowPreprocessor().fit(parts["train"])
    return {name: (pre.transform(part), part["is_attack"].to_numpy(np.int8)) for name, part in parts.items()}


@pytest.fixture(scope="module")
def fitted(data: dict) -> CnnLstmDetector:
    return CnnLstmDetector(**TINY).fit(*data["train"], eval_set=data["val"])


def test_tiny_model_reaches_the_floor(fitted: CnnLstmDetector, data: dict) -> None:
    X, y = data["test"]
    scores = fitted.decision_function(X)
    assert f1_score(y, scores >= 0.5) >= F1_FLOOR
    assert roc_auc_score(y, scores) >= AUC_FLOOR


def test_shuffled_labels_fall_below_the_floor(data: dict) -> None:
    """The floor is not reachable without learning: the same fit on permuted labels stays under it."""
    X, y = data["train"]
    shuffled = np.random.default_rng(0).permutation(y)
    det = CnnLstmDetector(**TINY).fit(X, shuffled, eval_set=data["val"])
    X_test, y_test = data["test"]
    scores = det.decision_function(X_test)
    assert f1_score(y_test, scores >= 0.5) < F1_FLOOR or roc_auc_score(y_test, scores) < AUC_FLOOR


def test_contract_and_history(fitted: CnnLstmDetector, data: dict) -> None:
    assert isinstance(fitted, Detector) and detector_class("cnn-lstm") is CnnLstmDetector
    scores = fitted.decision_function(data["test"][0])
    assert scores.dtype == np.float32 and scores.shape == (len(data["test"][0]),)
    assert scores.min() >= 0 and scores.max() <= 1
    history = fitted.history_
    assert 1 <= len(history) <= TINY["max_epochs"]
    assert set(history[0]) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds", "flows_per_s"}
    best = min(range(len(history)), key=lambda i: history[i]["val_loss"])
    assert fitted.best_epoch_ == best + 1
    if fitted.stopped_early_:
        assert len(history) - fitted.best_epoch_ == TINY["patience"]


def test_best_epoch_weights_are_restored(fitted: CnnLstmDetector, data: dict) -> None:
    X, y = data["val"]
    scores = fitted.decision_function(X).astype(np.float64)
    eps = 1e-7
    loss = -np.mean(y * np.log(scores + eps) + (1 - y) * np.log(1 - scores + eps))
    assert loss == pytest.approx(fitted.history_[fitted.best_epoch_ - 1]["val_loss"], rel=1e-3, abs=1e-5)


def test_bin_encoding_is_piecewise_linear_over_bins_the_labels_choose() -> None:
    """Edges where a column's values separate the labels: 1 left of the value, its position inside its bin, 0 right
    of it; bins the labels do not need stay 0, and a column with one value becomes a step there."""
    x = np.linspace(0, 1, 1001)
    X = np.stack([x, np.full(1001, 0.3)], axis=1).astype(np.float32)
    y = ((x > 0.6) & (x < 0.9)).astype(np.int8)  # attacks in (0.6, 0.9): two splits, three bins
    encoding = BinEncoding(3, 2)
    encoding.fit(X, y)
    low = encoding.low[:, 0].numpy()
    np.testing.assert_allclose(low, [0.0, 0.6, 0.9], atol=2e-3)  # LightGBM splits between its histogram's bins
    out = encoding(torch.tensor([[low[1] / 2, 0.2], [0.75, 0.4], [2.0, 0.3], [-1.0, 0.3]])).numpy()
    assert out.shape == (4, 3, 2)
    np.testing.assert_allclose(out[0, :, 0], [0.5, 0.0, 0.0], atol=1e-5)
    np.testing.assert_allclose(out[1, :, 0], [1.0, (0.75 - low[1]) / (low[2] - low[1]), 0.0], atol=1e-5)
    np.testing.assert_array_equal(out[2, :, 0], [1, 1, 1])  # beyond the training range: clipped
    np.testing.assert_array_equal(out[3, :, 0], [0, 0, 0])
    np.testing.assert_array_equal(out[:, :, 1], [[0] * 3, [1, 0, 0], [0] * 3, [0] * 3])


def test_boosted_splits_rank_a_columns_thresholds_by_gain() -> None:
    """The thresholds that separate the labels come first, also where a column does so only beside another; a
    column the model never splits has none, and with one class (or no bins to place) there is nothing to split."""
    rng = np.random.default_rng(0)
    X = rng.random((4000, 3)).astype(np.float32)
    y = ((X[:, 0] > 0.5) ^ (X[:, 1] > 0.25)).astype(np.int8)  # column 1 separates them only beside column 0
    X[:, 2] = 0.7
    splits = boosted_splits(X, y, 1)
    assert abs(splits[0][0] - 0.5) < 0.01 and abs(splits[1][0] - 0.25) < 0.01
    assert len(splits[2]) == 0
    more = boosted_splits(X, y, 5)
    assert all(len(s) <= 5 for s in more) and np.all(np.diff(more[0]) > 0)
    assert all(len(s) == 0 for s in boosted_splits(X, np.zeros(4000, np.int8), 5) + boosted_splits(X, y, 0))


def test_the_encoding_is_fitted_on_the_training_rows_and_saved(fitted: CnnLstmDetector, data: dict,
                                                               tmp_path: Path) -> None:
    """The default network encodes each feature as 8 channels with edges from ``fit``'s rows and labels;
    ``bins=0`` feeds the convolution the scaled values themselves (the paper's network)."""
    X, y = data["train"]
    assert fitted.module_.order is None
    Xo = X  # the default network sees the features in X's order
    encoding = fitted.module_.encoding
    assert fitted.bins == 8 and fitted.module_.cnn[0].in_channels == 8
    np.testing.assert_allclose(encoding.low[0].numpy(), Xo.min(axis=0), atol=1e-6)
    informative = np.flatnonzero((encoding.inverse_width > 0).sum(0).numpy() > 2)
    assert len(informative) > Xo.shape[1] // 4  # most flow features split the labels somewhere
    splits = boosted_splits(Xo, y, 7)
    for j in informative:
        used = int((encoding.inverse_width[:, j] > 0).sum())
        np.testing.assert_allclose(encoding.low[1:used, j].numpy(), splits[j].astype(np.float32), atol=1e-6)
    fitted.save(tmp_path)
    np.testing.assert_array_equal(CnnLstmDetector.load(tmp_path).module_.encoding.low.numpy(), encoding.low.numpy())
    plain = CnnLstmDetector(**{**TINY, "max_epochs": 1}, bins=0).fit(X, y)
    assert plain.module_.encoding is None and plain.module_.cnn[0].in_channels == 1
    # a model saved before the encoding existed has no "bins" parameter: it is the paper's network
    plain.save(tmp_path / "old")
    manifest = json.loads((tmp_path / "old" / "detector.json").read_text())
    del manifest["params"]["bins"]
    (tmp_path / "old" / "detector.json").write_text(json.dumps(manifest))
    old = CnnLstmDetector.load(tmp_path / "old")
    assert old.bins == 0
    np.testing.assert_array_equal(old.decision_function(X[:50]), plain.decision_function(X[:50]))


@pytest.mark.parametrize("threads", [1, 2])
def test_same_seed_same_scores_other_seed_other_scores(data: dict, threads: int) -> None:
    X, y = data["train"]
    quick = {**TINY, "max_epochs": 2, "n_threads": threads}
    a = CnnLstmDetector(**quick, random_state=3).fit(X, y, eval_set=data["val"])
    b = CnnLstmDetector(**quick, random_state=3).fit(X, y, eval_set=data["val"])
    c = CnnLstmDetector(**quick, random_state=4).fit(X, y, eval_set=data["val"])
    X_test = data["test"][0]
    np.testing.assert_array_equal(a.decision_function(X_test), b.decision_function(X_test))
    assert not np.array_equal(a.decision_function(X_test), c.decision_function(X_test))


def test_copies_on_two_threads_take_the_gradient_of_the_whole_batch(data: dict) -> None:
    """Training on two threads: each copy takes half of the batch, and their summed gradients are the batch's."""
    X, y = data["train"]
    torch.manual_seed(0)
    net = CnnLstmNet(X.shape[1], filters=(8,), kernel_size=3, pool_size=4, lstm_units=8, dense_units=8, dropout=0.0,
                     bins=4)

    def loss_of(output: torch.Tensor, _x: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        return torch.nn.functional.binary_cross_entropy_with_logits(output, target)

    for rows in (201, 1):  # halves of 101 and 100 rows; one row (the second copy stays idle)
        xb, yb = torch.from_numpy(X[:rows]), torch.from_numpy(y[:rows].astype(np.float32))
        loss = loss_of(net(xb), xb, yb)
        expected = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, list(net.parameters()))])
        assert expected.abs().max() > 1e-4  # a gradient worth comparing
        for threads in (1, 2):
            gradient = _step(_Replicas(net, threads, 0), xb, yb, loss_of, loss)
            torch.testing.assert_close(gradient, expected, rtol=1e-4, atol=1e-6)


def _step(replicas: _Replicas, xb: torch.Tensor, yb: torch.Tensor, loss_of: object,
          expected_loss: torch.Tensor) -> torch.Tensor:
    """The module's gradient (all parameters, flat) after one step of ``replicas``."""
    output, loss = replicas.step(xb, yb, loss_of)  # type: ignore[arg-type]
    gradient = replicas.parameter.grad.clone()
    replicas.close()
    assert output.shape == (len(xb),)
    torch.testing.assert_close(loss, expected_loss.detach())
    assert all(p.grad is None for p in replicas.copies[0].parameters())  # and their own memory again:
    assert replicas.parameter.data_ptr() not in {p.data_ptr() for p in replicas.copies[0].parameters()}
    return gradient


def test_training_on_two_threads_needs_seeded_dropout(data: dict) -> None:
    X, y = data["train"]
    net = CnnLstmNet(X.shape[1], filters=(4,), kernel_size=3, pool_size=4, lstm_units=4, dense_units=4, dropout=0.1)
    assert isinstance(net.dropout, Dropout)
    net.dropout = torch.nn.Dropout(0.1)
    with pytest.raises(InvalidParameterError, match="Dropout"):
        fit_module(net, X, y, eval_set=None, learning_rate=1e-2, batch_size=256, max_epochs=1, patience=1,
                   threads=2)


def test_save_load_gives_identical_scores_and_refuses_tampering(fitted: CnnLstmDetector, data: dict,
                                                                tmp_path: Path) -> None:
    fitted.save(tmp_path)
    again = CnnLstmDetector.load(tmp_path)
    X = data["test"][0]
    np.testing.assert_array_equal(again.decision_function(X), fitted.decision_function(X))
    assert again.get_params() == fitted.get_params() and again.history_ == fitted.history_
    weights = tmp_path / "model.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 0xFF
    weights.write_bytes(bytes(blob))
    with pytest.raises(ModelFileError, match="differs"):
        CnnLstmDetector.load(tmp_path)


def _resave(det: CnnLstmDetector, directory: Path, state: dict, drop_param: str | None = None) -> None:
    """Save ``det`` with the weights ``state`` (and without the parameter ``drop_param``), as an earlier version did."""
    import hashlib

    from safetensors.torch import save

    det.save(directory)
    blob = save(state)
    (directory / "model.safetensors").write_bytes(blob)
    manifest = json.loads((directory / "detector.json").read_text())
    manifest["files"]["model.safetensors"] = hashlib.sha256(blob).hexdigest()
    manifest["params"].pop(drop_param, None)
    (directory / "detector.json").write_text(json.dumps(manifest))


def test_models_saved_by_earlier_versions_load(fitted: CnnLstmDetector, data: dict, tmp_path: Path) -> None:
    """Models saved before the blocks ran as 1 x k Conv2d layers hold Conv1d weights ``(out, in, k)``; models saved
    before the features were reordered have no ``order`` and no ``feature_order``: the preprocessor's order; the
    previous version saved that order as the identity ``order``."""
    X = data["test"][0]
    state = {k: v.squeeze(2) if v.ndim == 4 else v for k, v in fitted.module_.state_dict().items()}
    assert sum(v.ndim == 3 for v in state.values()) == len(fitted.filters)
    _resave(fitted, tmp_path / "conv1d", state)
    np.testing.assert_array_equal(CnnLstmDetector.load(tmp_path / "conv1d").decision_function(X),
                                  fitted.decision_function(X))
    unordered = CnnLstmDetector(**{**TINY, "max_epochs": 1}, feature_order="input").fit(*data["train"])
    state = unordered.module_.state_dict()
    assert "order" not in state
    _resave(unordered, tmp_path / "unordered", state, drop_param="feature_order")
    old = CnnLstmDetector.load(tmp_path / "unordered")
    assert old.feature_order == "input"
    np.testing.assert_array_equal(old.decision_function(X), unordered.decision_function(X))
    _resave(unordered, tmp_path / "identity", {**state, "order": torch.arange(X.shape[1])})
    np.testing.assert_array_equal(CnnLstmDetector.load(tmp_path / "identity").decision_function(X),
                                  unordered.decision_function(X))


def test_correlated_features_are_put_side_by_side(fitted: CnnLstmDetector, data: dict) -> None:
    """``correlation_order`` puts each column next to its noisy copy; ``feature_order="correlation"`` shows the
    convolutions the features in that order of the training rows, the default in the preprocessor's."""
    rng = np.random.default_rng(0)
    base = rng.random((500, 3))
    X = np.column_stack([base, base + rng.normal(0, 0.05, base.shape), np.full(500, 0.5)])  # a, b, c, a', b', c', k
    order = list(correlation_order(X))
    assert sorted(order) == list(range(7))
    for j in range(3):
        assert abs(order.index(j) - order.index(j + 3)) == 1
    X_train = data["train"][0]
    assert fitted.module_.order is None
    ordered = CnnLstmDetector(**{**TINY, "max_epochs": 1}, feature_order="correlation").fit(*data["train"])
    np.testing.assert_array_equal(ordered.module_.order.numpy(), correlation_order(X_train))
    assert not np.array_equal(ordered.module_.order.numpy(), np.arange(X_train.shape[1]))
    # the encoding's bins follow the features into their new places
    np.testing.assert_allclose(ordered.module_.encoding.low[0].numpy(),
                               X_train[:, ordered.module_.order.numpy()].min(axis=0), atol=1e-6)
    scores = ordered.decision_function(data["test"][0])
    ordered.module_.order.copy_(torch.arange(X_train.shape[1]))  # the order is part of the network
    assert not np.array_equal(ordered.decision_function(data["test"][0]), scores)
    with pytest.raises(InvalidParameterError, match="feature_order"):
        CnnLstmDetector(feature_order="random").fit(*data["train"])


def test_keyboard_interrupt_keeps_the_best_epoch(data: dict) -> None:
    """Ctrl-C during epoch 3: training ends, the weights of the best of epochs 1-2 are kept."""
    X, y = data["train"]
    net = CnnLstmNet(X.shape[1], filters=(8,), kernel_size=3, pool_size=4, lstm_units=8, dense_units=8, dropout=0.0)
    calls = {"n": 0}
    per_epoch = -(-len(X) // 256)

    def interrupt(*_: object) -> None:
        calls["n"] += 1
        if calls["n"] == 2 * per_epoch + 3:
            raise KeyboardInterrupt

    hook = net.register_forward_pre_hook(lambda module, args: interrupt() if module.training else None)
    outcome = fit_module(net, X, y, eval_set=data["val"], learning_rate=1e-2, batch_size=256, max_epochs=10,
                         patience=5)
    hook.remove()
    assert outcome.interrupted and len(outcome.history) == 2
    assert outcome.best_epoch == 1 + int(np.argmin([r["val_loss"] for r in outcome.history]))
    assert not net.training


def test_batches_grow_in_the_second_half_of_the_budget(data: dict) -> None:
    """batch_growth=2 over 4 epochs: epochs 1-2 in batches of 256, epochs 3-4 of 512; the one-cycle schedule is
    sized to those steps (stepping past its end would raise)."""
    X, y = data["train"]
    net = CnnLstmNet(X.shape[1], filters=(4,), kernel_size=3, pool_size=4, lstm_units=4, dense_units=4, dropout=0.0)
    rows: list[int] = []
    net.register_forward_pre_hook(lambda module, args: rows.append(len(args[0])) if module.training else None)
    outcome = fit_module(net, X, y, eval_set=None, learning_rate=1e-2, batch_size=256, max_epochs=4, patience=4,
                         schedule="onecycle", batch_growth=2)
    per_epoch = [-(-len(X) // 256)] * 2 + [-(-len(X) // 512)] * 2
    assert len(outcome.history) == 4 and len(rows) == sum(per_epoch)
    assert max(rows[: 2 * per_epoch[0]]) == 256 and max(rows[2 * per_epoch[0] :]) == 512
    with pytest.raises(InvalidParameterError, match="batch_growth"):
        fit_module(net, X, y, eval_set=None, learning_rate=1e-2, batch_size=256, max_epochs=1, patience=1,
                   batch_growth=0)


def test_keyboard_interrupt_before_any_epoch_propagates(data: dict) -> None:
    X, y = data["train"]
    net = CnnLstmNet(X.shape[1], filters=(4,), kernel_size=3, pool_size=4, lstm_units=4, dense_units=4, dropout=0.0)

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    net.register_forward_pre_hook(stop)
    with pytest.raises(KeyboardInterrupt):
        fit_module(net, X, y, eval_set=data["val"], learning_rate=1e-2, batch_size=256, max_epochs=2, patience=1)


def test_parameters_are_checked(data: dict) -> None:
    X, y = data["train"]
    with pytest.raises(NotFittedError, match="not fitted"):
        CnnLstmDetector().decision_function(X)
    for bad in ({"filters": ()}, {"bins": -1}, {"dropout": 1.0}, {"batch_size": 0}, {"batch_growth": 0},
                {"schedule": "linear"}, {"class_weight": "auto"}):
        with pytest.raises(InvalidParameterError, match=next(iter(bad))):
            CnnLstmDetector(**bad).fit(X, y)
    with pytest.raises(InvalidParameterError, match="empty sequence; keep more features \\(at least 256 inputs"):
        CnnLstmDetector(filters=(4, 4, 4, 4), pool_size=4).fit(X, y)
    with pytest.raises(InvalidParameterError, match="columns"):
        CnnLstmDetector(**{**TINY, "max_epochs": 1}).fit(X, y).decision_function(X[:, :-1])


def test_grid_search_scores_on_validation_and_keeps_the_best(data: dict) -> None:
    X, y = data["train"]
    result = grid_search(X, y, eval_set=data["val"], batch_sizes=(256,), learning_rates=(1e-3, 1e-2), widths=(1,),
                         params={**TINY, "max_epochs": 2})
    assert len(result.table) == 2
    losses = [row["val_loss"] for row in result.table]
    assert result.best_index == int(np.argmin(losses))
    assert result.best.learning_rate == result.table[result.best_index]["learning_rate"]
    assert "**" in result.to_markdown() and result.best_params["batch_size"] == 256
