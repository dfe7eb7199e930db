"""Time of one training step per regime on the same data and dim: 1-vs-all
(cross-entropy over all entities, reciprocal relations) against sampled
negatives (a shared pool, and each positive's own as RotatE's code draws).

    python benchmarks/regime_step.py --root DATA_ROOT --dataset FB15k-237 \
        --dim 200 --batch-size 1000 --steps 10

Each regime runs ``--warmup`` steps, then the median of ``--steps`` timed
steps is taken (one process, regimes alternating step by step so that the
machine's drift is shared). Steps are ``Trainer.train_step`` on the same
fixed batches; the 1-vs-all step scores ``B`` queries against all ``N``
entities, a sampled step ``B x K`` candidates.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from dhns_geo.config import TrainConfig
from dhns_geo.datasets import load_dataset
from dhns_geo.training import Trainer

REGIMES = {
    "1vsall, reciprocal (ComplEx)": dict(scorer="complex", training="1vsall",
                                         reciprocal=True, regularizer="n3",
                                         reg_weight=0.05, optimizer="adagrad"),
    "shared negatives K (ComplEx)": dict(scorer="complex"),
    "shared negatives K (RotatE, p=1)": dict(scorer="rotate", rotate_p=1.0),
    "per-positive negatives K (RotatE, p=1)": dict(scorer="rotate", rotate_p=1.0,
                                                   shared_negatives=False),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None)
    parser.add_argument("--dataset", default="FB15k-237")
    parser.add_argument("--dim", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--num-negatives", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--regimes", default=",".join(str(i) for i in range(len(REGIMES))),
                        help="comma-separated indices into the regimes (default all)")
    args = parser.parse_args()
    data = load_dataset(args.dataset, args.root)
    names = [list(REGIMES)[int(i)] for i in args.regimes.split(",")]
    trainers = {}
    for name in names:
        extra = dict(REGIMES[name])
        if extra.get("training") != "1vsall":
            extra["num_negatives"] = args.num_negatives
        config = TrainConfig(dataset=args.dataset, root=args.root, dim=args.dim,
                             batch_size=args.batch_size, **extra)
        trainers[name] = Trainer.from_config(config, data, torch.device("cpu"),
                                             log=lambda line: None, progress=False)
    g = torch.Generator().manual_seed(0)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for step in range(args.warmup + args.steps):
        for name, trainer in trainers.items():
            triples = trainer.train_triples
            batch = triples[torch.randint(0, triples.size(0), (args.batch_size,),
                                          generator=g)]
            start = time.perf_counter()
            trainer.train_step(batch)
            if step >= args.warmup:
                seconds[name].append(time.perf_counter() - start)
    n = trainers[names[0]].model.num_entities
    print(f"{args.dataset}: N {n}, dim {args.dim}, batch {args.batch_size}, "
          f"K {args.num_negatives}, {torch.get_num_threads()} threads, "
          f"median of {args.steps} steps\n")
    print("| regime | scores per step | step (s) | positives/s |")
    print("| --- | --- | --- | --- |")
    for name in names:
        median = statistics.median(seconds[name])
        scores = n if "1vsall" in name else args.num_negatives
        print(f"| {name} | B x {scores} | {median:.3f} | {args.batch_size / median:,.0f} |")


if __name__ == "__main__":
    main()
