"""Training throughput on a GPU: the library's eager step against
the same step captured once as a CUDA graph and replayed for every batch.

The eager step launches a few hundred small kernels from Python; at
RotatE B 1024, K 64, d 256 on MKG-Y the arithmetic takes far less time than
the launches, so the step is launch-bound. A CUDA graph replays the whole
step (negative draws, forward, backward, Adam) with one launch. Both sides
train the same model from the same seed in this one process, and a short
quality check compares valid MRR after the same number of epochs.

Capture needs static shapes: the graph trains on full batches only (the
last partial batch of an epoch is dropped), with Adam in capturable mode.
The CPU draws a new permutation per epoch and copies each batch into the
graph's input buffer. Where capture fails (an operation that reads a value
back to the host, say), the error is printed and that row is eager only.

    python benchmarks/gpu_step.py --root DATA --dataset MKG-Y --out gpu-step.json

It also times two epochs of the authors' preset (``--preset
authors-distmult``) to estimate the 400-epoch budget's training time.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from typing import Callable

import torch

from dhns_geo.config import TrainConfig
from dhns_geo.presets import PRESETS
from dhns_geo.training import Trainer
from dhns_geo.runs import load_dataset_for

BASE = {"scorer": "rotate", "dim": 256, "num_negatives": 64, "batch_size": 1024,
        "lr": 0.05, "shared_negatives": False, "deterministic": False}
CONFIGS = {
    "uniform": {"sampler": "uniform", "loss": "softplus"},
    "self-adv": {"sampler": "uniform", "loss": "self-adversarial"},
    "uniform-shared": {"sampler": "uniform", "loss": "softplus",
                       "shared_negatives": True},
    "dhns": {"sampler": "dhns", "loss": "self-adversarial"},
    "dhns-share0.25": {"sampler": "dhns", "loss": "self-adversarial",
                       "dhns_share": 0.25},
}


def make_trainer(cfg: TrainConfig, device: torch.device) -> Trainer:
    torch.use_deterministic_algorithms(cfg.deterministic, warn_only=True)
    return Trainer.from_config(cfg, load_dataset_for(cfg), device,
                               log=lambda _: None, progress=False)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def epoch_seconds(run_epoch: Callable[[], object], epochs: int,
                  device: torch.device) -> float:
    """Seconds per epoch of ``epochs`` calls of ``run_epoch`` after one
    warm-up call."""
    run_epoch()
    sync(device)
    start = time.perf_counter()
    for _ in range(epochs):
        run_epoch()
    sync(device)
    return (time.perf_counter() - start) / epochs


def eager_rate(trainer: Trainer, epochs: int) -> float:
    """Triples per second of ``epochs`` eager epochs after one warm-up."""
    return trainer.train_triples.size(0) / epoch_seconds(
        trainer.train_epoch, epochs, trainer.device)


class GraphedSteps:
    """One training step of ``trainer`` captured as a CUDA graph."""

    def __init__(self, trainer: Trainer, warmup: int = 3) -> None:
        self.trainer = t = trainer
        self._capturable(t, "optimizer")
        if hasattr(t.sampler, "optimizer"):              # DHNS's generator
            self._capturable(t.sampler, "optimizer")
        self.static = t.train_triples[:t.config.batch_size].clone()
        self.graph = torch.cuda.CUDAGraph()
        if hasattr(self.graph, "register_generator_state"):
            self.graph.register_generator_state(t.generator)
        else:                        # older torch: only the default generator
            t.generator = torch.cuda.default_generators[t.device.index or 0]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                t.step(self.static)
        torch.cuda.current_stream().wait_stream(side)
        t.optimizer.zero_grad(set_to_none=True)
        with torch.cuda.graph(self.graph):
            self.loss = t.step(self.static)

    @staticmethod
    def _capturable(owner: object, name: str) -> None:
        old = getattr(owner, name)
        group = old.param_groups[0]
        setattr(owner, name, torch.optim.Adam(
            group["params"], lr=group["lr"], fused=True, capturable=True))

    def epoch(self) -> float:
        """Replays the step over the full batches of a shuffled epoch;
        returns the mean loss."""
        t = self.trainer
        bs, num = t.config.batch_size, t.train_triples.size(0)
        perm = torch.randperm(num, generator=t.generator, device=t.device)
        full = num // bs
        batches = t.train_triples[perm[:full * bs]].view(full, bs, 3)
        total = torch.zeros((), device=t.device)
        for i in range(full):
            self.static.copy_(batches[i])
            self.graph.replay()
            total += self.loss
        t.epoch += 1
        return float(total) / full

    def rate(self, epochs: int) -> float:
        """Triples per second of ``epochs`` replayed epochs (full batches)
        after one warm-up epoch."""
        bs = self.trainer.config.batch_size
        full = self.trainer.train_triples.size(0) // bs
        return full * bs / epoch_seconds(self.epoch, epochs, self.trainer.device)


def quality(cfg: TrainConfig, device: torch.device, epochs: int) -> dict:
    """Valid MRR after ``epochs`` eager and graphed epochs from one seed."""
    eager = make_trainer(cfg, device)
    for _ in range(epochs):
        eager.train_epoch()
    graphed = make_trainer(cfg, device)
    steps = GraphedSteps(graphed)
    for _ in range(epochs):
        steps.epoch()
    return {"epochs": epochs, "eager_valid_mrr": eager.evaluate("valid")["mrr"],
            "graph_valid_mrr": graphed.evaluate("valid")["mrr"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True)
    parser.add_argument("--dataset", default="MKG-Y")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--quality-epochs", type=int, default=20)
    parser.add_argument("--authors-epochs", type=int, default=2,
                        help="timed epochs of the authors' preset (0: skip)")
    parser.add_argument("--out", default=None, help="write the results as JSON")
    args = parser.parse_args()
    device = torch.device(args.device)
    base = TrainConfig(dataset=args.dataset, root=args.root, device=args.device,
                       **BASE)
    # Eager rows first: a capture that fails must not cost the other numbers.
    rows = []
    for name in args.configs.split(","):
        cfg = replace(base, **CONFIGS[name])
        rows.append({"config": name,
                     "eager": eager_rate(make_trainer(cfg, device), args.epochs),
                     "eager_deterministic": eager_rate(
                         make_trainer(replace(cfg, deterministic=True), device),
                         args.epochs)})
        print(json.dumps(rows[-1]), flush=True)
    result = {"device": torch.cuda.get_device_name(device) if device.type == "cuda"
              else "cpu", "torch": torch.__version__, "dataset": args.dataset,
              "base": BASE, "rows": rows}
    if args.authors_epochs:
        result["authors_epoch_s"] = authors_epoch(args, device)
    if device.type == "cuda":
        for row in rows:
            cfg = replace(base, **CONFIGS[row["config"]])
            try:
                row["graph"] = GraphedSteps(make_trainer(cfg, device)).rate(args.epochs)
            except Exception as exc:                  # reported, not hidden
                row["graph_error"] = f"{type(exc).__name__}: {exc}"[:300]
            print(json.dumps(row), flush=True)
        if args.quality_epochs:
            try:
                result["quality"] = quality(replace(base, **CONFIGS["self-adv"]),
                                            device, args.quality_epochs)
            except Exception as exc:
                result["quality"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
            print(json.dumps(result["quality"]), flush=True)
    print(f"{'config':16} {'eager':>12} {'eager det.':>12} {'graph':>12}")
    for row in rows:
        graph = (f"{row['graph']:12,.0f}" if "graph" in row else
                 f"{'failed' if 'graph_error' in row else '-':>12}")
        print(f"{row['config']:16} {row['eager']:12,.0f} "
              f"{row['eager_deterministic']:12,.0f} {graph}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)


def authors_epoch(args: argparse.Namespace, device: torch.device) -> float:
    """Seconds per training epoch of the authors' preset."""
    authors = TrainConfig(dataset=args.dataset, root=args.root, device=args.device,
                          **PRESETS["authors-distmult"].values)
    trainer = make_trainer(authors, device)
    seconds = trainer.train_triples.size(0) / eager_rate(trainer, args.authors_epochs)
    print(f"authors' preset: {seconds:.3f} s/epoch, {400 * seconds:.0f} s for "
          "400 epochs of training", flush=True)
    return seconds


if __name__ == "__main__":
    main()
