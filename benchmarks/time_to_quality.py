"""Time to a good model: training seconds and epochs until the
filtered valid MRR first reaches a threshold, for dhns-geo and for PyKEEN,
each over a learning-rate sweep, on the same data and model.

Model: RotatE with 256 real numbers per entity (128 complex), 64 negatives
per positive, batch 1024, self-adversarial loss (temperature 1, margin 6),
Adam, structure only (PyKEEN has no modality features). Valid MRR is
measured every ``--eval-every`` epochs on one fixed sample of valid triples
(``--valid-sample``, the same for both), filtered by all splits; evaluation
time is not counted as training time. Each (framework, lr) runs in its own
process, one thread, until the threshold or ``--budget`` training seconds.

PyKEEN is installed only in the benchmark's environment::

    python3 -m venv /tmp/bench && /tmp/bench/bin/pip install torch==2.13.0 \\
        'pykeen==1.11.*' -e .
    OMP_NUM_THREADS=1 /tmp/bench/bin/python benchmarks/time_to_quality.py \\
        --root DATA --dataset MKG-Y --threshold 0.30 --out ttq.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from typing import Callable, Iterator

from compare_pykeen import BATCH, DIM, MARGIN, NEGATIVES, pykeen_rotate

LRS = {"dhns-geo": [0.005, 0.02, 0.05, 0.1], "pykeen": [0.001, 0.005, 0.02, 0.05]}


def valid_sample(valid, size: int):
    """A fixed sample of ``size`` of the ``[n, 3]`` valid triples."""
    import torch
    g = torch.Generator().manual_seed(0)
    return valid[torch.randperm(valid.size(0), generator=g)[:size]]


def ours(dataset: str, root: str, lr: float, size: int
         ) -> Iterator[tuple[float, Callable[[], float]]]:
    """Yields ``(training seconds of the epoch, valid MRR function)``."""
    import torch

    from dhns_geo.config import TrainConfig
    from dhns_geo.data import split_triples
    from dhns_geo.training import Trainer
    from dhns_geo.runs import load_dataset_for
    cfg = TrainConfig(dataset=dataset, root=root, scorer="rotate", dim=DIM,
                      num_negatives=NEGATIVES, batch_size=BATCH, lr=lr,
                      margin=MARGIN, loss="self-adversarial", features="none",
                      shared_negatives=False, device="cpu")
    data = load_dataset_for(cfg)
    trainer = Trainer.from_config(cfg, data, torch.device("cpu"),
                                  log=lambda _: None, progress=False)
    sample = valid_sample(split_triples(data, "valid"), size)
    while True:
        yield trainer.train_epoch()["seconds"], lambda: trainer.evaluate(sample)["mrr"]


def pykeen(dataset: str, root: str, lr: float, size: int
           ) -> Iterator[tuple[float, Callable[[], float]]]:
    from pykeen.evaluation import RankBasedEvaluator

    model, loop, train, splits = pykeen_rotate(dataset, root, lr)
    sample = valid_sample(splits["valid"], size)

    def mrr() -> float:
        result = RankBasedEvaluator(filtered=True).evaluate(
            model, sample, batch_size=256, use_tqdm=False,
            additional_filter_triples=[splits["train"], splits["valid"],
                                       splits["test"]])
        return float(result.get_metric("both.realistic.inverse_harmonic_mean_rank"))

    epoch = 0
    while True:
        epoch += 1
        start = time.perf_counter()
        loop.train(triples_factory=train, num_epochs=epoch, batch_size=BATCH,
                   use_tqdm=False, continue_training=epoch > 1)
        yield time.perf_counter() - start, mrr


def measure(framework: str, args: argparse.Namespace, lr: float) -> dict:
    """Trains until the threshold or the budget; the curve and the result."""
    epochs = (ours if framework == "dhns-geo" else pykeen)(
        args.dataset, args.root, lr, args.valid_sample)
    seconds, curve, reached = 0.0, [], None
    for epoch, (spent, mrr) in enumerate(epochs, 1):
        seconds += spent
        if epoch % args.eval_every == 0:
            value = mrr()
            curve.append((epoch, round(seconds, 2), round(value, 4)))
            if value >= args.threshold:
                reached = (epoch, seconds)
                break
        if seconds >= args.budget:
            break
    return {"framework": framework, "lr": lr, "epochs": epoch,
            "train_s": round(seconds, 1), "best_mrr": max(c[2] for c in curve),
            "reached_epoch": reached[0] if reached else "",
            "reached_s": round(reached[1], 1) if reached else "",
            "curve": json.dumps(curve)}


def report(path: str, thresholds: list[float]) -> str:
    """A markdown table of a run CSV: per (framework, lr), the training
    seconds (epoch) at which the valid MRR sample first reached each
    threshold, from the stored curves."""
    lines = ["| framework | lr | best valid MRR (epochs, s) | "
             + " | ".join(f"to {t}" for t in thresholds) + " |",
             "| --- | --- | --- | " + " | ".join("---" for _ in thresholds) + " |"]
    for row in csv.DictReader(open(path)):
        curve = json.loads(row["curve"])
        cells = []
        for t in thresholds:
            hit = next(((e, s) for e, s, m in curve if m >= t), None)
            cells.append(f"{hit[1]:.0f} s (ep. {hit[0]})" if hit else "–")
        lines.append(f"| {row['framework']} | {row['lr']} | {float(row['best_mrr']):.4f} "
                     f"({row['epochs']}, {row['train_s']} s) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True)
    parser.add_argument("--dataset", default="MKG-Y")
    parser.add_argument("--frameworks", default="dhns-geo,pykeen")
    parser.add_argument("--threshold", type=float, default=0.30)
    parser.add_argument("--budget", type=float, default=300,
                        help="training seconds per run at most")
    parser.add_argument("--eval-every", type=int, default=2)
    parser.add_argument("--valid-sample", type=int, default=500)
    parser.add_argument("--out", required=True, help="CSV of the runs")
    parser.add_argument("--report", default=None, metavar="THRESHOLDS",
                        help="print the table of an existing --out CSV for "
                             "comma-separated thresholds, and exit")
    parser.add_argument("--only", help=argparse.SUPPRESS)
    parser.add_argument("--lr", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.report:
        print(report(args.out, [float(t) for t in args.report.split(",")]))
        return
    if args.only:
        print(json.dumps(measure(args.only, args, args.lr)))
        return
    rows = []
    for framework in args.frameworks.split(","):
        for lr in LRS[framework]:
            proc = subprocess.run(
                [sys.executable, __file__, *sys.argv[1:], "--only", framework,
                 "--lr", str(lr)], capture_output=True, text=True)
            if proc.returncode:
                print(f"{framework} lr {lr}: failed: "
                      f"{proc.stderr.strip().splitlines()[-1]}", flush=True)
                continue
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            r = rows[-1]
            print(f"{framework} lr {lr}: best valid MRR {r['best_mrr']:.4f} in "
                  f"{r['epochs']} epochs ({r['train_s']} s); "
                  + (f">= {args.threshold} at epoch {r['reached_epoch']}, "
                     f"{r['reached_s']} s" if r["reached_s"] != "" else
                     f"never reached {args.threshold}"), flush=True)
            with open(args.out, "w", newline="") as f:
                writer = csv.DictWriter(f, list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)


if __name__ == "__main__":
    main()
