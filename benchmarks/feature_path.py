"""Epoch time of the modality-feature path: structure-only against textual
features, with per-positive and with batch-shared negatives, in one call.

    python benchmarks/feature_path.py --root DATA_ROOT --dataset MKG-Y --epochs 2
    python benchmarks/feature_path.py --root DATA_ROOT --negatives shared \
        --num-negatives 1024 --lr 0.02 --epochs 3          # the 0.2 defaults

Per-positive negatives touch about every entity at the grid's configuration
(B 1024 x K 64 draws over 15k entities), so each step fuses all ``N``
entities (feature projection + attention, forward and backward); shared
negatives touch ``2B + K`` entities and fuse only those.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

from dhns_geo.config import TrainConfig
from dhns_geo.runs import run_training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True)
    parser.add_argument("--dataset", default="MKG-Y")
    parser.add_argument("--out", default="runs/bench-features")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--num-negatives", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--negatives", default="per-positive,shared",
                        help="comma-separated: per-positive, shared")
    args = parser.parse_args()
    seconds = {}
    sharing = [kind == "shared" for kind in args.negatives.split(",")]
    for shared in sharing:
        for features in ("none", "auto"):
            cfg = TrainConfig(dataset=args.dataset, root=args.root, dim=args.dim,
                              batch_size=args.batch_size, num_negatives=args.num_negatives,
                              lr=args.lr, epochs=args.epochs, eval_every=args.epochs,
                              patience=100, features=features, shared_negatives=shared)
            name = (f"{args.dataset}-{'shared' if shared else 'per-positive'}-{features}"
                    f"-d{args.dim}-b{args.batch_size}-k{args.num_negatives}-e{args.epochs}")
            run_dir = Path(args.out) / name
            m = run_training(cfg, run_dir, resume=(run_dir / "config.json").exists(),
                             log=lambda line: None, progress=False)
            history = list(csv.DictReader((run_dir / "history.csv").open()))
            seconds[shared, features] = statistics.median(float(h["seconds"])
                                                          for h in history)
            print(f"{name}: epoch {seconds[shared, features]:.2f} s, valid MRR "
                  f"{m['valid']['mrr']:.4f}", flush=True)
    print("\n| negatives | structure-only epoch (s) | textual epoch (s) | ratio |")
    print("| --- | --- | --- | --- |")
    for shared in sharing:
        a, b = seconds[shared, "none"], seconds[shared, "auto"]
        print(f"| {'shared' if shared else 'per-positive'} | {a:.2f} | {b:.2f} | "
              f"{b / a:.2f}x |")
    if len(set(sharing)) == 2:
        print(f"\ntextual, shared / textual, per-positive: "
              f"{seconds[True, 'auto'] / seconds[False, 'auto']:.2f}x")


if __name__ == "__main__":
    main()
