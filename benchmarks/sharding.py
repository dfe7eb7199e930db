"""Memory per rank and throughput: a sharded entity table against a
replicated one, on one machine.

Each configuration is a job of its own (``torchrun --nproc-per-node W``, or
one plain process) training the library's :class:`~dhns_geo.training.Trainer`
on a generated graph (``2 N`` random training triples over 50 relations;
RotatE, structure only, Adagrad, batch 1024 with 1024 shared negatives):
some warm-up steps, then timed steps on the same batches on every rank. Per
rank it reports the bytes of the entity table's parameters, gradient and
optimizer state that the rank holds, and its peak resident memory
(``ru_maxrss``, which also counts the data, the filter index and PyTorch).

    python benchmarks/sharding.py                   # 1M x 256: one process (dense, row-sparse), 2 replicated, sharded W=1,2,4
    python benchmarks/sharding.py --entities 100000 --modes sharded:2,replicated:2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results" / "sharding" / "memory.md"


def synthetic_data(entities: int, seed: int = 0):
    """A random MMKG of ``2 N`` train and 1000 valid / test triples."""
    from dhns_geo.data.io import KnowledgeGraph
    from dhns_geo.data.mmkg import to_hetero_data

    g = torch.Generator().manual_seed(seed)
    relations = 50

    def triples(n: int) -> torch.Tensor:
        return torch.stack([torch.randint(entities, (n,), generator=g),
                            torch.randint(relations, (n,), generator=g),
                            torch.randint(entities, (n,), generator=g)], dim=1)
    kg = KnowledgeGraph(entities, relations, {"train": triples(2 * entities),
                                              "valid": triples(1000),
                                              "test": triples(1000)})
    return to_hetero_data(kg, warn=False)


def table_bytes(trainer) -> int:
    """Bytes of the entity table's parameters, gradient and optimizer state
    that this rank holds."""
    table = getattr(trainer.store, "sharded", None)
    if table is not None:
        return (table.local_weight().numel()
                + sum(v.numel() for v in table.optimizer_states().values())) * 4
    weight = trainer.model.entities.structural.weight
    optimizer = getattr(trainer.store, "optimizer", trainer.optimizer)
    grad = weight.grad
    held = weight.numel() + (0 if grad is None else grad._nnz() * grad.size(1)
                             if grad.is_sparse else grad.numel())
    held += sum(v.numel() for v in optimizer.state[weight].values()
                if torch.is_tensor(v) and v.dim() > 0)
    return held * 4


def worker(args: argparse.Namespace) -> None:
    """One rank of a job: trains; rank 0 prints the ranks' figures as a
    JSON line."""
    from dhns_geo.config import TrainConfig
    from dhns_geo.distributed import init_distributed
    from dhns_geo.training import Trainer

    sharded = args.mode == "sharded"
    dist, device = init_distributed(torch.device("cpu"), alone=sharded)
    data = synthetic_data(args.entities)
    config = TrainConfig(dataset="synthetic", features="none", scorer="rotate",
                         dim=args.dim, optimizer="adagrad", lr=0.1,
                         batch_size=args.batch_size, num_negatives=args.negatives,
                         shard_entities=sharded, device="cpu",
                         sparse_entities=args.mode == "sparse")
    trainer = Trainer.from_config(config, data, device, dist=dist, progress=False)
    g = torch.Generator().manual_seed(1)                  # the same batches everywhere
    batches = [trainer.train_triples[torch.randint(
        trainer.train_triples.size(0), (args.batch_size,), generator=g)]
        for _ in range(args.warmup + args.steps)]
    for batch in batches[:args.warmup]:
        trainer.train_step(batch)
    dist.barrier()
    start = time.perf_counter()
    for batch in batches[args.warmup:]:
        trainer.train_step(batch)
    dist.barrier()
    seconds = (time.perf_counter() - start) / args.steps
    mine = {"rank": dist.rank, "world_size": dist.world_size,
            "table_mib": table_bytes(trainer) / 2**20,
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "s_per_step": seconds}
    ranks = [mine]
    if torch.distributed.is_initialized():           # rank 0 prints the job's
        ranks = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(ranks, mine)
    if dist.is_main:
        print(json.dumps(ranks), flush=True)


def run_job(mode: str, world: int, args: argparse.Namespace) -> list[dict]:
    """Starts one job and returns its ranks' figures."""
    script = [__file__, "--worker", "--mode", mode, "--entities", str(args.entities),
              "--dim", str(args.dim), "--batch-size", str(args.batch_size),
              "--negatives", str(args.negatives), "--steps", str(args.steps),
              "--warmup", str(args.warmup)]
    if mode in ("one", "sparse"):
        cmd = [sys.executable, *script]
    else:
        torchrun = Path(sys.executable).with_name("torchrun")
        cmd = [str(torchrun), "--standalone", f"--nproc-per-node={world}", *script]
    threads = max(1, (os.cpu_count() or 1) // world)
    done = subprocess.run(cmd, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    if done.returncode != 0:
        raise SystemExit(f"{mode} W={world} failed:\n{done.stderr[-3000:]}")
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("[{")]
    return json.loads(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--negatives", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--modes", default="one:1,sparse:1,replicated:2,sharded:1,"
                        "sharded:2,sharded:4",
                        help="MODE:W jobs; MODE one, sparse (one process, "
                        "--sparse-entities), replicated or sharded")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    lines = [f"Entities {args.entities:,} x dim {args.dim}, batch {args.batch_size}, "
             f"{args.negatives} shared negatives, Adagrad, {os.cpu_count()} CPU cores; "
             f"`python benchmarks/sharding.py` (s/step: mean of {args.steps} steps "
             f"after {args.warmup}).", "",
             "| table | ranks W | table + gradient + optimizer state per rank (MiB) "
             "| peak RSS per rank, max (MiB) | s / step | triples / s |",
             "| --- | --- | --- | --- | --- | --- |"]
    names = {"one": "one process", "sparse": "one process, row-sparse (--sparse-entities)",
             "replicated": "replicated (data parallel)",
             "sharded": "sharded (TorchRec, row-wise)"}
    for job in args.modes.split(","):
        mode, world = job.split(":")
        ranks = run_job(mode, int(world), args)
        step = max(r["s_per_step"] for r in ranks)
        lines.append(f"| {names[mode]} | {world} | "
                     f"{max(r['table_mib'] for r in ranks):,.0f} | "
                     f"{max(r['peak_mib'] for r in ranks):,.0f} | {step:.3f} | "
                     f"{args.batch_size / step:,.0f} |")
        print(lines[-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
