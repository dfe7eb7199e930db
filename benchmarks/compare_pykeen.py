"""Training throughput, filtered evaluation time and peak memory of dhns-geo
against PyKEEN at one configuration: RotatE, 256 real numbers per entity
(128 complex), 64 negatives per positive, batch 1024, self-adversarial loss,
Adam, `--epochs` (3) training epochs. Each framework runs in its own
subprocess so peak RSS is its own.

PyKEEN is installed only in the benchmark's environment::

    python3 -m venv /tmp/bench && /tmp/bench/bin/pip install torch==2.13.0 \\
        'pykeen==1.11.*' -e .
    /tmp/bench/bin/python benchmarks/compare_pykeen.py --root DATA_ROOT \\
        --datasets MKG-Y DB15K
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

DIM, NEGATIVES, BATCH, LR, MARGIN = 256, 64, 1024, 1e-3, 6.0


def run_ours(dataset: str, root: str, epochs: int) -> dict:
    import torch

    from dhns_geo.config import TrainConfig
    from dhns_geo.training import Trainer
    from dhns_geo.runs import load_dataset_for

    cfg = TrainConfig(dataset=dataset, root=root, scorer="rotate", dim=DIM,
                      num_negatives=NEGATIVES, batch_size=BATCH, lr=LR,
                      margin=MARGIN, loss="self-adversarial", features="none",
                      shared_negatives=False)
    trainer = Trainer.from_config(cfg, load_dataset_for(cfg), torch.device("cpu"),
                                  progress=False)
    seconds = sum(trainer.train_epoch()["seconds"] for _ in range(epochs))
    n = trainer.train_triples.size(0) * epochs
    start = time.perf_counter()
    metrics = trainer.evaluate("test")
    return {"train_triples_per_s": n / seconds,
            "eval_seconds": time.perf_counter() - start, "mrr": metrics["mrr"]}


def pykeen_rotate(dataset: str, root: str, lr: float) -> tuple:
    """PyKEEN's side of the comparison: ``(model, training loop, train
    triples factory, {split: [n, 3] triples})`` for RotatE as above."""
    import torch
    from pykeen.losses import NSSALoss
    from pykeen.models import RotatE
    from pykeen.training import SLCWATrainingLoop
    from pykeen.triples import TriplesFactory

    from dhns_geo.data import split_triples
    from dhns_geo.datasets import load_dataset

    data = load_dataset(dataset, root)
    ents = {str(i): i for i in range(data["entity"].num_nodes)}
    rels = {str(i): i for i in range(data.num_relations)}
    splits = {s: split_triples(data, s) for s in ("train", "valid", "test")}
    train = TriplesFactory(splits["train"], ents, rels)
    model = RotatE(triples_factory=train, embedding_dim=DIM // 2,
                   loss=NSSALoss(margin=MARGIN, adversarial_temperature=1.0),
                   random_seed=0)
    loop = SLCWATrainingLoop(model=model, triples_factory=train,
                             optimizer=torch.optim.Adam(model.parameters(), lr=lr),
                             negative_sampler="basic",
                             negative_sampler_kwargs={"num_negs_per_pos": NEGATIVES})
    return model, loop, train, splits


def run_pykeen(dataset: str, root: str, epochs: int) -> dict:
    from pykeen.evaluation import RankBasedEvaluator

    model, loop, train, splits = pykeen_rotate(dataset, root, LR)
    start = time.perf_counter()
    loop.train(triples_factory=train, num_epochs=epochs, batch_size=BATCH,
               use_tqdm=False)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    result = RankBasedEvaluator(filtered=True).evaluate(
        model, splits["test"], batch_size=256, use_tqdm=False,
        additional_filter_triples=[splits["train"], splits["valid"]])
    return {"train_triples_per_s": splits["train"].size(0) * epochs / seconds,
            "eval_seconds": time.perf_counter() - start,
            "mrr": float(result.get_metric("both.realistic.inverse_harmonic_mean_rank"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="dataset root with <NAME>/raw")
    parser.add_argument("--datasets", nargs="+", default=["MKG-Y", "DB15K"])
    parser.add_argument("--frameworks", nargs="+", default=["dhns-geo", "pykeen"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--only", help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        fn = run_ours if args.only == "dhns-geo" else run_pykeen
        out = fn(args.dataset, args.root, args.epochs)
        out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(out))
        return
    print("| dataset | framework | train triples/s | filtered test eval (s) | peak RSS (MiB) | test MRR after training |")
    print("| --- | --- | --- | --- | --- | --- |")
    for dataset in args.datasets:
        for fw in args.frameworks:
            proc = subprocess.run([sys.executable, __file__, "--root", args.root,
                                   "--only", fw, "--dataset", dataset,
                                   "--epochs", str(args.epochs)],
                                  capture_output=True, text=True)
            if proc.returncode:
                print(f"| {dataset} | {fw} | failed: {proc.stderr.strip().splitlines()[-1]} |")
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"| {dataset} | {fw} | {r['train_triples_per_s']:,.0f} | "
                  f"{r['eval_seconds']:.1f} | {r['peak_rss_mib']:,.0f} | {r['mrr']:.4f} |",
                  flush=True)


if __name__ == "__main__":
    main()
