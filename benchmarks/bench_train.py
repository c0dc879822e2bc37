"""CNN-LSTM accuracy beside a default LightGBM, candidate configurations, and training / inference speed.

Sections (each optional), written as markdown to ``--out`` (default ``benchmarks/results/train.md``):

* ``accuracy``: per data folder, the real rows de-duplicated and split stratified 70/15/15 (seed 0), one
  preprocessor fitted on the training rows; the default CnnLstmDetector (early stopping on validation) and
  ``lightgbm.LGBMClassifier()`` on the same matrices, both scored once on the test rows at threshold 0.5.
* ``candidates``: configurations considered for the defaults (and the log transform on/off), trained on the
  corrected release's split; validation loss, test figures and speed.
* ``widths``: the default width against width 2 (``--grid-width 2``), at the default batch and the grid's
  other batch, three model seeds on each data set: validation loss and test figures, to decide the grid's widths.
* ``speed``: training flows/s (steady-state epochs, no validation) and batch-inference flows/s for the default
  model (the default grid's largest) and the width-2 model, with torch threads 1 and 2, their arithmetic per flow
  beside this machine's matrix-product peak, and what was tried to go faster (batch sizes, bfloat16 autocast,
  torch.compile).

    python benchmarks/bench_train.py [--sections accuracy,candidates,widths,speed] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
DATASETS = {"cicids2017-improved": SHARED / "cicids2017-improved", "cicids2017": SHARED / "cicids2017"}
#: Fits per model and thread count in the speed section's training column (median and range reported).
TRAIN_RUNS = 5
#: The wider model measured beside the default (``iotids train --grid --grid-width 2``).
WIDE = 2

#: Configurations tried for the defaults, each spelled out in full (the defaults are the last row).
_BASE = {"filters": (16, 32), "lstm_units": 64, "dense_units": 64, "dropout": 0.2, "learning_rate": 1e-2,
         "schedule": "constant"}
CANDIDATES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("LSTM 32, dense 32, lr 3e-3, constant (first guess)",
     {**_BASE, "lstm_units": 32, "dense_units": 32, "learning_rate": 3e-3}, {}),
    ("LSTM 32, dense 32, lr 1e-2, constant", {**_BASE, "lstm_units": 32, "dense_units": 32}, {}),
    ("LSTM 64, dense 64, lr 1e-2, constant", _BASE, {}),
    ("same, without the log transform", _BASE, {"log_transform": False}),
    ("same, dropout 0", {**_BASE, "dropout": 0.0}, {}),
    ("same, cosine learning-rate schedule", {**_BASE, "schedule": "cosine"}, {}),
    ("same (constant), LSTM 128", {**_BASE, "lstm_units": 128}, {}),
    ("same (constant), filters (32, 32)", {**_BASE, "filters": (32, 32)}, {}),
    ("cosine, filters (32, 32)", {**_BASE, "filters": (32, 32), "schedule": "cosine"}, {}),
    ("cosine, LSTM 48, dense 48 (the default before the third session)",
     {**_BASE, "schedule": "cosine", "lstm_units": 48, "dense_units": 48}, {}),
    ("one-cycle, LSTM 48, dense 48 (the default)",
     {**_BASE, "schedule": "onecycle", "lstm_units": 48, "dense_units": 48}, {}),
]


def _matrices(path: Path, preprocess: dict[str, Any] | None = None) -> dict[str, Any]:
    from iotids.data import load_dataset
    from iotids.features.preprocess import FlowPreprocessor

    dataset = load_dataset(path, split="random", random_state=0)
    pre = FlowPreprocessor(**(preprocess or {})).fit(dataset.splits.train)
    out = {name: (pre.transform(part), part["is_attack"].to_numpy(np.int8), part["family"])
           for name, part in zip(("train", "val", "test"), dataset.splits, strict=True)}
    out["columns"] = pre.n_features_out_
    out["preprocessor"] = pre
    out["raw_test"] = pre.raw_matrix(dataset.splits.test)
    return out


def _row(name: str, report: Any, extra: str) -> str:
    cm = report.confusion_matrix
    return (f"| {name} | {report.f1:.5f} | {100 * report.false_alarm_rate:.3f} % | {report.roc_auc:.5f} | "
            f"{report.average_precision:.5f} | {report.accuracy:.5f} | {cm['tn']:,} / {cm['fp']:,} / {cm['fn']:,} / "
            f"{cm['tp']:,} | {extra} |")


def accuracy(threads: int, seeds: tuple[int, ...] = (0, 1, 2)) -> list[str]:
    import lightgbm

    from iotids.evaluate.metrics import binary_report
    from iotids.models.cnn_lstm import CnnLstmDetector

    lines = ["## Accuracy: default CNN-LSTM beside a default LightGBM (same split, same run)", "",
             "Real rows, de-duplicated, stratified 70/15/15 split, seed 0; one preprocessor fitted on the training "
             "rows; every model scored once on the test rows at threshold 0.5 (metrics from one confusion matrix). "
             f"The CNN-LSTM is trained with the model seeds {', '.join(map(str, seeds))} (weights, shuffling, "
             "dropout) on the same split, to show how much one seed can be trusted.", ""]
    for name, path in DATASETS.items():
        m = _matrices(path)
        (X, y, _), (X_val, y_val, _), (X_test, y_test, families) = m["train"], m["val"], m["test"]
        lines += [f"### {name}", "", f"train {len(y):,} ({int(y.sum()):,} attacks), validation {len(y_val):,}, test "
                  f"{len(y_test):,} ({int(y_test.sum()):,} attacks, {int((y_test == 0).sum()):,} benign); "
                  f"{m['columns']} model inputs.", "",
                  "| model | F1 | false alarm rate | ROC AUC | AP | accuracy | TN / FP / FN / TP | training |",
                  "|---|---:|---:|---:|---:|---:|---|---|"]
        reports = []
        for seed in seeds:
            start = time.perf_counter()
            det = CnnLstmDetector(n_threads=threads, random_state=seed).fit(X, y, eval_set=(X_val, y_val))
            seconds = time.perf_counter() - start
            reports.append(binary_report(y_test, det.decision_function(X_test), 0.5, families=families))
            val_loss = det.history_[det.best_epoch_ - 1]["val_loss"]
            lines.append(_row(f"CNN-LSTM (default), seed {seed}", reports[-1],
                              f"{len(det.history_)} epochs (best {det.best_epoch_}, val loss {val_loss:.5f}), "
                              f"{seconds:.0f} s, {det.train_flows_per_s_:,.0f} flows/s"))
            print(lines[-1], flush=True)
        start = time.perf_counter()
        gbm = lightgbm.LGBMClassifier(verbose=-1, n_jobs=threads).fit(X, y)
        seconds = time.perf_counter() - start
        gbm_report = binary_report(y_test, gbm.predict_proba(X_test)[:, 1], 0.5, families=families)
        lines.append(_row("LightGBM (LGBMClassifier())", gbm_report, f"{seconds:.1f} s"))
        f1 = [r.f1 for r in reports]
        far = [100 * r.false_alarm_rate for r in reports]
        lines += ["", f"CNN-LSTM over the {len(seeds)} seeds: F1 {min(f1):.5f}-{max(f1):.5f}, false alarm rate "
                  f"{min(far):.3f}-{max(far):.3f} %.", "",
                  f"Detection rate per attack family (test rows, CNN-LSTM seed {seeds[0]}): " + ", ".join(
                      f"{fam} {v['detected']}/{v['support']} (LightGBM {gbm_report.per_family[fam]['detected']})"
                      for fam, v in reports[0].per_family.items()), ""]
        print(lines[-4], flush=True)
    return lines


def candidates(threads: int) -> list[str]:
    from iotids.evaluate.metrics import binary_report
    from iotids.models.cnn_lstm import CnnLstmDetector

    lines = ["## Candidate configurations (cicids2017-improved, seed 0)", "",
             "Each trained with early stopping on the validation rows (at most 20 epochs); the choice of the "
             "defaults is made on the validation loss, the test figures are shown for the record.", "",
             "| configuration | parameters | val loss | test F1 | test FAR | test ROC AUC | epochs | train flows/s | "
             "inference flows/s |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    cache: dict[str, Any] = {}
    for title, params, preprocess in CANDIDATES:
        key = json.dumps(preprocess, sort_keys=True)
        if key not in cache:
            cache[key] = _matrices(DATASETS["cicids2017-improved"], preprocess)
        m = cache[key]
        (X, y, _), (X_val, y_val, _), (X_test, y_test, _) = m["train"], m["val"], m["test"]
        det = CnnLstmDetector(n_threads=threads, **params).fit(X, y, eval_set=(X_val, y_val))
        report = binary_report(y_test, det.decision_function(X_test), 0.5)
        n_params = sum(p.numel() for p in det.module_.parameters())
        val_loss = det.history_[det.best_epoch_ - 1]["val_loss"]
        lines.append(f"| {title} | {n_params:,} | {val_loss:.5f} | {report.f1:.5f} | "
                     f"{100 * report.false_alarm_rate:.3f} % | {report.roc_auc:.5f} | {len(det.history_)} "
                     f"(best {det.best_epoch_}) | {det.train_flows_per_s_:,.0f} | "
                     f"{det.scoring_speed(np.tile(X_test, (10, 1))):,.0f} |")
        print(lines[-1], flush=True)
    return [*lines, ""]


def widths(threads: int, seeds: tuple[int, ...] = (0, 1, 2)) -> list[str]:
    from iotids.evaluate.metrics import binary_report
    from iotids.models.cnn_lstm import CnnLstmDetector
    from iotids.models.search import DEFAULT_GRID, widened

    batches = (CnnLstmDetector().batch_size, max(DEFAULT_GRID["batch_size"]))
    lines = [f"## The grid's width: width 1 against width {WIDE}", "",
             "The split and the preprocessing of the accuracy section; learning rate 1e-2 (the default), each "
             f"width at batch {batches[0]} (the default) and {batches[1]:,} (the grid's other batch size), model "
             f"seeds {', '.join(map(str, seeds))}; test rows scored at threshold 0.5.", ""]
    for name, path in DATASETS.items():
        m = _matrices(path)
        (X, y, _), (X_val, y_val, _), (X_test, y_test, families) = m["train"], m["val"], m["test"]
        lines += [f"### {name}", "", "| width | batch | seed | val loss | F1 | false alarm rate | ROC AUC | AP | "
                  "accuracy | TN / FP / FN / TP | training |", "|---:|---:|---:|---|---:|---:|---:|---:|---:|---|---|"]
        for seed in seeds:
            for width in (1, WIDE):
                for batch in batches:
                    start = time.perf_counter()
                    det = CnnLstmDetector(**{**widened({"random_state": seed, "n_threads": threads}, width),
                                             "batch_size": batch}).fit(X, y, eval_set=(X_val, y_val))
                    seconds = time.perf_counter() - start
                    report = binary_report(y_test, det.decision_function(X_test), 0.5, families=families)
                    val_loss = det.history_[det.best_epoch_ - 1]["val_loss"]
                    lines.append(_row(f"{width} | {batch:,} | {seed} | {val_loss:.5f}", report,
                                      f"{len(det.history_)} epochs, {seconds:.0f} s"))
                    print(lines[-1], flush=True)
        lines.append("")
    return lines


def _train_speed(params: dict[str, Any], X: np.ndarray, y: np.ndarray, threads: int, epochs: int = 2,
                 onednn: bool = True) -> float:
    import torch

    from iotids.models.cnn_lstm import CnnLstmDetector

    with torch.backends.mkldnn.flags(enabled=onednn):
        det = CnnLstmDetector(**{**params, "n_threads": threads, "max_epochs": epochs}).fit(X, y)
    return det.train_flows_per_s_


def _flops_per_flow(det: Any, n_features: int, *, training: bool, rows: int = 128) -> float:
    """Floating-point operations per flow of the network's forward pass, or with ``training`` of one training step
    (forward and backward): the convolutions and the dense layers as torch's ``FlopCounterMode`` counts them, plus
    the LSTM, which it does not count (oneDNN's fused kernel): ``2 L 4H (C + H)`` per flow forward, three times that
    for a training step."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from iotids.models.cnn_lstm import sequence_length

    net = det.module_
    net.train(training)
    with FlopCounterMode(display=False) as counter:
        if training:
            net(torch.rand(rows, n_features)).sum().backward()
        else:
            with torch.no_grad():
                net(torch.rand(rows, n_features))
    net.zero_grad(set_to_none=True)
    net.eval()
    lstm = net.lstm
    length = sequence_length(n_features, len(det.filters), det.kernel_size, det.pool_size)
    lstm_forward = 2 * length * 4 * lstm.hidden_size * (lstm.input_size + lstm.hidden_size)
    return counter.get_total_flops() / rows + (3 if training else 1) * lstm_forward


def _matmul_peak() -> float:
    """GFLOP/s of a 1,024 x 1,024 float32 matrix product on one torch thread, best of 5: what one core of this
    machine sustains in the best case."""
    import torch

    torch.set_num_threads(1)
    a = torch.rand(1024, 1024)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(10):
            a @ a
        best = min(best, (time.perf_counter() - start) / 10)
    return 2 * 1024**3 / best / 1e9


def _infer_speed(det: Any, X: np.ndarray, threads: int, batch: int | None = None, autocast: bool = False,
                 compiled: bool = False, onednn: bool = True) -> tuple[float, float]:
    """Best-of-3 flows/s of scoring ``X`` and the seconds of the first (warm-up/compile) call."""
    import torch

    from iotids.models import training

    torch.set_num_threads(threads)
    module = torch.compile(det.module_) if compiled else det.module_
    X_t = torch.from_numpy(X)
    size = batch or training.PREDICT_BATCH

    def run() -> None:
        with (torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast),
              torch.backends.mkldnn.flags(enabled=onednn)):
            for i in range(0, len(X_t), size):
                torch.sigmoid(module(X_t[i : i + size]).float())

    start = time.perf_counter()
    run()
    first = time.perf_counter() - start
    best = np.inf
    for _ in range(3):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return len(X) / best, first


def _onnx_speed(det: Any, pre: Any, raw: np.ndarray, threads: int) -> float:
    """Best-of-3 flows/s of ONNX Runtime on raw canonical features (preprocessing inside the graph)."""
    import tempfile

    from iotids.artifacts import TrainedModel, save_model
    from iotids.runtime import export_onnx, load_scorer

    with tempfile.TemporaryDirectory() as tmp:
        save_model(tmp, TrainedModel(pre, det, 0.5))
        export_onnx(tmp)
        scorer = load_scorer(tmp, backend="onnx", threads=threads)
        best = np.inf
        for _ in range(4):
            start = time.perf_counter()
            for i in range(0, len(raw), 8192):
                scorer.score_matrix(raw[i : i + 8192])
            best = min(best, time.perf_counter() - start)
    return len(raw) / best


def speed(threads: int) -> list[str]:
    from iotids.models import training
    from iotids.models.cnn_lstm import CnnLstmDetector
    from iotids.models.search import DEFAULT_GRID, widened

    m = _matrices(DATASETS["cicids2017-improved"])
    X, y, _ = m["train"]
    X_big = np.ascontiguousarray(np.tile(m["test"][0], (40, 1)))  # ~257,000 rows
    raw_big = np.ascontiguousarray(np.tile(m["raw_test"], (40, 1)))
    assert DEFAULT_GRID["width"] == (1,), "the default model is no longer the default grid's largest"
    wide = f"width {WIDE} (`--grid-width {WIDE}`)"
    models = {"default (the default grid's largest)": {}, wide: widened({}, WIDE)}
    lines = ["## Speed", "",
             f"Training: flows/s over 2 epochs on the {len(X):,} training rows (optimizer steps only, no "
             f"validation pass), the median of {TRAIN_RUNS} fits with their range (the runs of one model alternate "
             "between the thread counts, as this VM's speed drifts from minute to minute); inference: "
             f"`decision_function` on {len(X_big):,} rows, best of 3. Batch size of training: the model's default "
             "unless stated, 256 rows, doubled in the second half of the epochs (so the second of the 2 epochs, as "
             "the last 10 of a full fit). Threads: for training, copies of the network sharing each batch, one torch "
             "thread each (the model's `n_threads`, default 2); for inference, torch's or ONNX Runtime's threads.",
             "",
             "ONNX Runtime: the model exported by `iotids.runtime.export_onnx` (preprocessing + network + sigmoid in "
             "one graph), raw canonical features in, 8,192 rows per call, best of 4.", "",
             "MFLOP per flow: the network's arithmetic per flow (`_flops_per_flow`) in one training step (forward and "
             "backward) and in one forward pass; GFLOP/s: that times the median training or the ONNX Runtime flows/s.",
             "",
             "| model | parameters | threads | training flows/s | training MFLOP per flow | training GFLOP/s | "
             "inference flows/s (PyTorch) | inference flows/s (ONNX Runtime, raw features in) | inference MFLOP "
             "per flow | ONNX Runtime GFLOP/s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    fitted: dict[str, Any] = {}
    for title, params in models.items():
        det = CnnLstmDetector(**{**params, "max_epochs": 1}).fit(X[:4096], y[:4096])
        fitted[title] = det
        n_params = sum(p.numel() for p in det.module_.parameters())
        flops = _flops_per_flow(det, X.shape[1], training=True)
        forward_flops = _flops_per_flow(det, X.shape[1], training=False)
        counts = sorted({1, threads})
        runs: dict[int, list[float]] = {t: [] for t in counts}
        for _ in range(TRAIN_RUNS):
            for t in counts:
                runs[t].append(_train_speed(params, X, y, t))
        for t in counts:
            train = f"{np.median(runs[t]):,.0f} ({min(runs[t]):,.0f}-{max(runs[t]):,.0f})"
            infer, _ = _infer_speed(det, X_big, t)
            onnx = _onnx_speed(det, m["preprocessor"], raw_big, t)
            lines.append(f"| {title} | {n_params:,} | {t} | {train} | {flops / 1e6:.2f} | "
                         f"{flops * np.median(runs[t]) / 1e9:.1f} | {infer:,.0f} | {onnx:,.0f} | "
                         f"{forward_flops / 1e6:.2f} | {forward_flops * onnx / 1e9:.1f} |")
            print(lines[-1], flush=True)
    peak = _matmul_peak()
    lines += ["", f"For scale: a 1,024 x 1,024 float32 matrix product runs at {peak:.0f} GFLOP/s on one torch thread "
              f"of this machine ({2 * peak:.0f} on both cores at best).", ""]
    tried = len(lines)
    lines += [f"What was tried on the default model unless stated ({threads} threads):", "",
              "| variant | training flows/s | inference flows/s | note |", "|---|---:|---:|---|"]
    det = fitted["default (the default grid's largest)"]
    for batch in (128, 256, 1024):
        lines.append(f"| training batch size {batch} throughout (`batch_growth=1`) | "
                     f"{_train_speed({'batch_size': batch, 'batch_growth': 1}, X, y, threads):,.0f} | "
                     "| default: 256, then 512 in the second half of the epochs |")
    big_batch = max(DEFAULT_GRID["batch_size"])
    for title, params in models.items():
        lines.append(f"| {title} at training batch {big_batch:,} (then {2 * big_batch:,}) | "
                     f"{_train_speed({**params, 'batch_size': big_batch}, X, y, threads):,.0f} | "
                     "| the grid's other batch size |")
    for batch in (1024, 65536):
        lines.append(f"| inference batch {batch} rows | | {_infer_speed(det, X_big, threads, batch)[0]:,.0f} | "
                     f"default is {training.PREDICT_BATCH} |")
    lines.append(f"| oneDNN (mkldnn) off: native LSTM and convolution kernels | "
                 f"{_train_speed({}, X, y, threads, onednn=False):,.0f} | "
                 f"{_infer_speed(det, X_big, threads, onednn=False)[0]:,.0f} | on by default |")
    bf16, _ = _infer_speed(det, X_big, threads, autocast=True)
    lines.append(f"| bfloat16 autocast | | {bf16:,.0f} | this CPU has AVX2 only (no AVX-512 BF16 / AMX) |")
    try:
        compiled, first = _infer_speed(det, X_big, threads, compiled=True)
        lines.append(f"| torch.compile (inductor) | | {compiled:,.0f} | first call {first:.0f} s (compilation) |")
    except Exception as exc:  # a missing compiler or an inductor limitation: record it
        lines.append(f"| torch.compile (inductor) | | failed | {type(exc).__name__}: {str(exc)[:80]} |")
    print("\n".join(lines[tried:]), flush=True)
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", default="accuracy,candidates,widths,speed")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "train.md")
    args = parser.parse_args()
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    load = os.getloadavg()
    lines = ["# Training benchmark (CNN-LSTM)", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPUs (AMD EPYC, 24 GiB), Python "
             f"{platform.python_version()}; load average at start {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
             "(other sessions share the 2 cores, so timings are noisy). OMP_WAIT_POLICY="
             f"{os.environ.get('OMP_WAIT_POLICY')}.", "",
             f"Command: `python benchmarks/bench_train.py --sections {','.join(sections)} --threads {args.threads}`",
             ""]
    runners = {"accuracy": accuracy, "candidates": candidates, "widths": widths, "speed": speed}
    for section in sections:
        lines += runners[section](args.threads)
    end = os.getloadavg()
    lines += [f"Load average at the end: {end[0]:.1f} / {end[1]:.1f} / {end[2]:.1f}.", ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text("\n".join(lines))
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
