"""Peak memory of training and evaluation against entities and dim.

Each configuration runs in its own process on a generated graph (``5 N``
random training triples over 50 relations): a number of training steps
(uniform negatives, self-adversarial loss, Adam) and then the filtered
evaluation of 1,000 test triples against all ``N`` entities. The peak
resident memory (``ru_maxrss``) is measured after building the data, after
training and after evaluation.

    python benchmarks/memory.py                     # 15k, 100k, 1M entities, dim 256
    python benchmarks/memory.py --entities 1000000 --dim 256 --eval-batch-size 16
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(entities: int, dim: int, steps: int, batch_size: int,
            negatives: int, eval_batch_size: int) -> dict:
    """Runs one configuration in this process; returns its figures."""
    from dhns_geo.data import FilterIndex
    from dhns_geo.evaluation import evaluate_link_prediction
    from dhns_geo.losses import KGELoss
    from dhns_geo.nn import KGCModel, RotatE
    from dhns_geo.sampling import UniformSampler

    torch.manual_seed(0)
    relations = 50
    triples = torch.stack([torch.randint(entities, (5 * entities,)),
                           torch.randint(relations, (5 * entities,)),
                           torch.randint(entities, (5 * entities,))], dim=1)
    test = triples[:1000]
    index = FilterIndex(triples, entities, relations)
    model = KGCModel(entities, relations, dim, RotatE())
    sampler = UniformSampler(entities, relations, negatives)
    loss_fn = KGELoss("self-adversarial")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    out = {"entities": entities, "dim": dim, "parameters_mib":
           sum(p.numel() for p in model.parameters()) * 4 / 2**20,
           "data_mib": peak_mib()}
    start = time.perf_counter()
    for step in range(steps):
        batch = triples[torch.randint(triples.size(0), (batch_size,), generator=g)]
        table = model.encode()
        h, r, t = batch.unbind(1)
        head, rel, tail = table.fused(h), model.relations(r), table.fused(t)
        pos = model.scorer(head, rel, tail)
        loss = sum(loss_fn(pos, neg.score(model.scorer, head, rel, tail, table))
                   for neg in sampler.sample(batch, model, table, g))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    out["train_s_per_step"] = (time.perf_counter() - start) / steps
    out["train_peak_mib"] = peak_mib()
    model.eval()
    start = time.perf_counter()
    evaluate_link_prediction(model.score_all_fn(), test, index, eval_batch_size)
    out["eval_s"] = time.perf_counter() - start
    out["eval_batch_size"] = eval_batch_size
    out["eval_peak_mib"] = peak_mib()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", default="15000,100000,1000000")
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--negatives", type=int, default=64)
    parser.add_argument("--eval-batch-size", type=int, default=64)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(int(args.entities), args.dim, args.steps,
                                 args.batch_size, args.negatives,
                                 args.eval_batch_size)))
        return
    print("| entities | dim | parameters (MiB) | peak after data (MiB) | "
          "peak after training (MiB) | s / step | eval batch | "
          "peak after eval (MiB) | eval of 1000 triples (s) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for n in args.entities.split(","):
        cmd = [sys.executable, __file__, "--child", "--entities", n,
               "--dim", str(args.dim), "--steps", str(args.steps),
               "--batch-size", str(args.batch_size), "--negatives",
               str(args.negatives), "--eval-batch-size", str(args.eval_batch_size)]
        r = json.loads(subprocess.run(cmd, capture_output=True, text=True,
                                      check=True).stdout)
        print(f"| {r['entities']:,} | {r['dim']} | {r['parameters_mib']:,.0f} | "
              f"{r['data_mib']:,.0f} | {r['train_peak_mib']:,.0f} | "
              f"{r['train_s_per_step']:.2f} | {r['eval_batch_size']} | "
              f"{r['eval_peak_mib']:,.0f} | {r['eval_s']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
