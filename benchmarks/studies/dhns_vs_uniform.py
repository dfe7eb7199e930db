"""DHNS against uniform negatives with the same model, budget and seed:
epoch time and filtered valid/test metrics, as a markdown table.

    python benchmarks/studies/dhns_vs_uniform.py --root DATA_ROOT --dataset MKG-Y
    python benchmarks/studies/dhns_vs_uniform.py --root DATA_ROOT --shares 1,0.25 --epochs 2
    python benchmarks/studies/dhns_vs_uniform.py --root DATA_ROOT --features auto \
        --num-negatives 1024 --shared-negatives --lr 0.02   # at the defaults

``--shares`` runs DHNS once per ``--dhns-share`` (the share of each batch
the generator serves) and ``--widths`` once per ``--dhns-width`` (the
denoiser's hidden width over dim), every pair of them; every ratio is to the
uniform run of the same call.
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
    parser.add_argument("--out", default="runs/bench-dhns")
    parser.add_argument("--scorer", default="rotate")
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--features", default="none", help="none or auto")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--num-negatives", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.005)
    parser.add_argument("--shared-negatives", action="store_true",
                        help="the K negatives drawn once per batch (the 0.2 defaults)")
    parser.add_argument("--shares", default="1", help="comma-separated --dhns-share values")
    parser.add_argument("--widths", default="4", help="comma-separated --dhns-width values")
    args = parser.parse_args()
    rows = []
    variants = [("uniform", {"sampler": "uniform"})] + [
        (f"dhns share {share}" + (f" width {width}" if float(width) != 4 else ""),
         {"sampler": "dhns", "dhns_share": float(share), "dhns_width": float(width)})
        for share in args.shares.split(",") for width in args.widths.split(",")]
    for sampler, values in variants:
        cfg = TrainConfig(dataset=args.dataset, root=args.root, scorer=args.scorer,
                          dim=args.dim, num_negatives=args.num_negatives,
                          batch_size=args.batch_size, features=args.features,
                          lr=args.lr, shared_negatives=args.shared_negatives,
                          epochs=args.epochs, eval_every=5, patience=100, lr_plateau_factor=1.0,
                          seed=args.seed, **values)
        run_dir = Path(args.out) / (f"{args.dataset}-{sampler.replace(' ', '')}-d{args.dim}-"
                                    f"{args.features}-b{args.batch_size}-k{args.num_negatives}"
                                    f"{'-shared' if args.shared_negatives else ''}"
                                    f"-lr{args.lr}-e{args.epochs}-seed{args.seed}")
        resume = (run_dir / "config.json").exists()
        metrics = run_training(cfg, run_dir, resume=resume,
                               log=lambda line: print(sampler, line, flush=True),
                               progress=False)
        history = list(csv.DictReader((run_dir / "history.csv").open()))
        epoch_s = statistics.median(float(h["seconds"]) for h in history)
        rows.append((sampler, epoch_s, metrics))
    print("\n| sampler | median epoch (s) | valid MRR | test MRR | test Hits@1 | test Hits@10 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for sampler, epoch_s, m in rows:
        print(f"| {sampler} | {epoch_s:.2f} | {m['valid']['mrr']:.4f} | "
              f"{m['test']['mrr']:.4f} | {m['test']['hits@1']:.4f} | "
              f"{m['test']['hits@10']:.4f} |")
    for sampler, epoch_s, _ in rows[1:]:
        print(f"{sampler} epoch / uniform epoch: {epoch_s / rows[0][1]:.2f}x")


if __name__ == "__main__":
    main()
