"""What the grid harnesses share: one run (trained, resumed or reused) and
its results row, one thread per worker, the finished run folders of a grid.

``samplers.py`` and ``mmkg_sota.py`` name their runs ``<DATASET>-<METHOD>...-seedS``
and report from the finished folders.
"""

from __future__ import annotations

import csv
import json
import shlex
import statistics
import time
from pathlib import Path
from typing import Callable, TypeVar

import torch

from workers import run_parallel

from dhns_geo.config import TrainConfig, command_line
from dhns_geo.provenance import run_provenance
from dhns_geo.run_folder import read_run_config
from dhns_geo.runs import load_dataset_for, run_training
from dhns_geo.training import Trainer

METRICS = ("mrr", "mr", "hits@1", "hits@3", "hits@10")
#: A row's command names the data folder by this, never one machine's path.
DATA_PLACEHOLDER = {"root": "DATA"}
Key = TypeVar("Key")


def train_command(cfg: TrainConfig, run_dir: Path,
                  placeholders: dict[str, str] | None = None) -> str:
    """The ``dhns train`` command line that trains ``cfg`` into ``run_dir``."""
    return f"{command_line(cfg, placeholders)} --out {shlex.quote(str(run_dir))}"


class Paused(Exception):
    """A run stopped at an epoch's end by :func:`run_one`'s ``pause_after``."""


def run_one(cfg: TrainConfig, run_dir: Path, tag: str, pause_after: float = 0.0) -> dict | None:
    """Trains (or resumes, extends to ``cfg.epochs``, or reuses) one run and
    returns its :func:`folder_row`; ``None`` when paused at the first epoch end
    ``pause_after`` s into the call (0: never): untested, its config untouched."""
    if not (run_dir / "metrics.json").is_file() or read_run_config(run_dir)[0].epochs < cfg.epochs:
        resume = (run_dir / "config.json").is_file()
        start = time.perf_counter()

        def pause(trainer: Trainer, record: dict) -> None:
            if 0 < pause_after <= time.perf_counter() - start:
                raise Paused(f"[{tag}] paused after epoch {record['epoch']}")
        try:
            run_training(cfg, run_dir, resume=resume, progress=False,
                         epochs=cfg.epochs if resume else None, callbacks=[pause],
                         log=lambda line: print(f"[{tag}] {line}", flush=True))
        except Paused as paused:
            print(f"{paused}: the same command resumes it", flush=True)
            return None
        (run_dir / "wall.json").write_text(json.dumps(
            {"seconds": time.perf_counter() - start, "resumed": resume}))
    return folder_row(run_dir)


def folder_row(run_dir: Path) -> dict:
    """The results row of a finished run folder: dim, epochs run, the best
    epoch, the selection's valid MRR, test metrics, the median epoch's
    seconds, features, provenance and the command (data folder ``DATA``)."""
    config, facts = read_run_config(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    history = list(csv.DictReader((run_dir / "history.csv").open()))
    features = "; ".join(f"{m}: {s}" for m, s in facts["feature_sources"].items())
    return {"dim": config.dim, "epochs": len(history), "best_epoch": metrics["best_epoch"],
            "valid_mrr": round(metrics.get("selection", {}).get(
                "best_mrr", metrics["valid"]["mrr"]), 4),
            **{f"test_{k}": round(metrics["test"][k], 4) for k in METRICS},
            "epoch_s": round(statistics.median(float(h["seconds"]) for h in history), 3),
            "features": features or "none", **run_provenance(run_dir),
            "command": train_command(config, run_dir, DATA_PLACEHOLDER)}


def one_thread_run(cfg: TrainConfig, run_dir: Path, tag: str,
                   pause_after: float = 0.0) -> dict | None:
    """:func:`run_one` on one thread (two runs side by side on two cores)."""
    torch.set_num_threads(1)
    return run_one(cfg, run_dir, tag, pause_after)


def finished(runs: Path, parse: Callable[[str], Key | None]) -> list[tuple[Key, Path]]:
    """``(parsed name, folder)`` of the finished run folders under ``runs``
    whose names ``parse`` reads."""
    if not runs.is_dir():
        return []
    return [(key, d) for d in sorted(runs.iterdir())
            if (d / "metrics.json").is_file() and (key := parse(d.name)) is not None]


def write_csv(path: Path, rows: list[dict], fields: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fields, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def run_jobs(jobs: dict, workers: int, report: Callable[[], None] | None = None) -> None:
    """Runs ``{name: (function, args)}`` ``workers`` at a time, printing each
    run's valid and test MRR as it ends (a failed run is reported and the
    others go on), and ``report()`` after each."""
    for name, future in run_parallel(jobs, workers):
        try:
            row = future.result()
        except Exception as error:               # the other runs go on
            print(f"failed: {name}: {error!r}", flush=True)
            continue
        if row is None:                          # paused: nothing new to report
            continue
        print(f"done: {name} valid {row['valid_mrr']:.4f} test {row['test_mrr']:.4f}",
              flush=True)
        if report is not None:
            report()


def epoch_seconds(configs: list[TrainConfig], steps: int, warmup: int) -> list[float]:
    """Seconds of an epoch of each config, from ``steps`` timed steps each
    after ``warmup``: the configs take their steps in turn (round robin),
    so that whatever else runs on the machine slows them alike, and the
    median step counts. One thread, as each run of a grid."""
    torch.set_num_threads(1)
    trainers, batches = [], []
    for config in configs:
        data = load_dataset_for(config)
        trainer = Trainer.from_config(config, data, torch.device("cpu"),
                                      log=lambda line: None, progress=False)
        triples = trainer.train_triples
        perm = torch.randperm(triples.size(0), generator=torch.Generator().manual_seed(0))
        trainers.append(trainer)
        batches.append(triples[perm].split(config.batch_size))
    times: list[list[float]] = [[] for _ in configs]
    for step in range(warmup + steps):
        for trainer, mine, seen in zip(trainers, batches, times):
            start = time.perf_counter()
            trainer.train_step(mine[step % len(mine)])
            if step >= warmup:
                seen.append(time.perf_counter() - start)
    return [statistics.median(seen) * len(mine) for seen, mine in zip(times, batches)]


def add_report_command(sub, runs: str) -> None:
    """The ``report --runs RUNS`` subcommand of a grid harness."""
    sub.add_parser("report").add_argument("--runs", type=Path, default=Path(runs))
