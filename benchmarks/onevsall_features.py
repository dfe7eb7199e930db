"""Epoch time of 1-vs-all training with modality features against the same
run structure only, at a preset's rank and batch.

    python benchmarks/onevsall_features.py --root DATA --preset complex-n3-mkg-y

Four configurations of the preset (ComplEx-N3, reciprocal, 1-vs-all):
structure only (``--features none``); the dataset's features with the
default fusion (``auto``, the gate in 1-vs-all); fused by attention (``--fusion attention``, which fuses all ``N`` entities each
step); and fused by per-modality gates (``--fusion gate``, whose scores
factor through the raw features). Each runs ``--warmup`` steps, then
``--steps`` timed steps of ``Trainer.train_step`` on the epoch's first
batches; the epoch time is the mean step time times the epoch's steps.
Textual features come from ``dhns features text DATASET`` (entity names).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from dhns_geo.config import TrainConfig, command_line
from dhns_geo.presets import PRESETS
from dhns_geo.runs import load_dataset_for
from dhns_geo.training import Trainer

CONFIGS = {"structure only": {"features": "none"},
           "textual, the default fusion (auto: gate in 1vsall)": {"features": "auto"},
           "textual, attention fusion": {"features": "auto", "fusion": "attention"},
           "textual, gate fusion (factored)": {"features": "auto", "fusion": "gate"}}
RESULTS = Path(__file__).parent / "results" / "mmkg-sota" / "epoch-time.md"


def epoch_seconds(config: TrainConfig, steps: int, warmup: int) -> tuple[float, int]:
    """``(seconds of an epoch, steps of an epoch)`` from timed steps."""
    data = load_dataset_for(config)
    trainer = Trainer.from_config(config, data, torch.device("cpu"),
                                  log=lambda line: None, progress=False)
    triples = trainer.train_triples
    perm = torch.randperm(triples.size(0), generator=torch.Generator().manual_seed(0))
    batches = triples[perm].split(config.batch_size)
    for batch in batches[:warmup]:
        trainer.train_step(batch)
    start = time.perf_counter()
    for batch in batches[warmup:warmup + steps]:
        trainer.train_step(batch)
    per_step = (time.perf_counter() - start) / steps
    return per_step * len(batches), len(batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True)
    parser.add_argument("--preset", default="complex-n3-mkg-y")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    preset = PRESETS[args.preset].values
    lines = [f"`python benchmarks/onevsall_features.py --root DATA --preset {args.preset}` "
             f"({os.cpu_count()} CPU cores, torch {torch.__version__}, {torch.get_num_threads()} "
             f"threads; epoch = mean of {args.steps} steps after {args.warmup} x steps per "
             "epoch).", "",
             "| configuration | dim | batch | s / epoch | x structure only | command |",
             "| --- | --- | --- | --- | --- | --- |"]
    base = None
    for name, extra in CONFIGS.items():
        config = TrainConfig(**{**preset, "root": args.root, **extra})
        seconds, _ = epoch_seconds(config, args.steps, args.warmup)
        base = base or seconds
        lines.append(f"| {name} | {config.dim} | {config.batch_size} | {seconds:.1f} | "
                     f"{seconds / base:.2f} | `{command_line(config, {'root': 'DATA'})}` |")
        print(lines[-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
