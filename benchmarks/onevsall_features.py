"""Epoch time of 1-vs-all training with modality features against the same
run structure only, at a preset's rank and batch.

    python benchmarks/onevsall_features.py --root DATA --preset complex-n3-mkg-y

Four configurations of the preset (ComplEx-N3, reciprocal, 1-vs-all):
structure only (``--features none``); the dataset's features with the
default fusion (``auto``, the gate in 1-vs-all); fused by attention (``--fusion attention``, which fuses all ``N`` entities each
step); and fused by per-modality gates (``--fusion gate``, whose scores
factor through the raw features). The configurations take their steps in
turn (``--warmup``, then ``--steps`` timed steps of ``Trainer.train_step``
each), so that other load slows them alike; the epoch time is the median
step time times the epoch's steps.
Textual features come from ``dhns features text DATASET`` (entity names).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))    # benchmarks/
from grid import epoch_seconds  # noqa: E402

from dhns_geo.config import TrainConfig, command_line  # noqa: E402
from dhns_geo.presets import PRESETS  # noqa: E402

CONFIGS = {"structure only": {"features": "none"},
           "textual, the default fusion (auto: gate in 1vsall)": {"features": "auto"},
           "textual, attention fusion": {"features": "auto", "fusion": "attention"},
           "textual, gate fusion (factored)": {"features": "auto", "fusion": "gate"}}
RESULTS = Path(__file__).parent / "results" / "mmkg-sota" / "epoch-time.md"


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
             f"threads; epoch = the median of {args.steps} steps after {args.warmup}, the "
             "configurations stepping in turn, x steps per epoch).", "",
             "| configuration | dim | batch | s / epoch | x structure only | command |",
             "| --- | --- | --- | --- | --- | --- |"]
    configs = [TrainConfig(**{**preset, "root": args.root, **extra}) for extra in CONFIGS.values()]
    seconds = epoch_seconds(configs, args.steps, args.warmup)
    for name, config, secs in zip(CONFIGS, configs, seconds):
        lines.append(f"| {name} | {config.dim} | {config.batch_size} | {secs:.1f} | "
                     f"{secs / seconds[0]:.2f} | `{command_line(config, {'root': 'DATA'})}` |")
        print(lines[-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
