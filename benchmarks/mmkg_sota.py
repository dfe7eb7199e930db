"""What modalities, relation prediction and DHNS add to the strongest
recipe (ComplEx-N3, reciprocal, 1-vs-all) on the multimodal benchmarks.

    python benchmarks/mmkg_sota.py run --root DATA --datasets MKG-Y \\
        --ingredients base relation-prediction text dhns --seeds 0 1 --workers 2
    python benchmarks/mmkg_sota.py report --runs runs/mmkg-sota

Each ingredient is the dataset's ``complex-n3-*`` preset plus one change
(:data:`INGREDIENTS`); runs of the same seed are paired. ``run`` trains (or
resumes, or reuses) every run folder, one thread per worker, and rewrites
the report; ``report`` writes, into ``benchmarks/results/mmkg-sota/``:
``runs.csv`` (every run's command, its ``valid_mrr``, the selection metric:
DB15K's unseen valid triples, test metrics, provenance), ``paired.md`` (each
ingredient's seed-paired test MRR difference to ``base`` with a bootstrap
interval over test triples, :func:`paired.paired_difference`) and
``curves-DATASET.png`` (valid MRR per epoch).
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))    # benchmarks/
import paired  # noqa: E402
from reproduce import DATA_PLACEHOLDER, run_one, train_command  # noqa: E402

from dhns_geo.config import TrainConfig  # noqa: E402
from dhns_geo.presets import PRESETS  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "mmkg-sota"
PRESET = {"MKG-Y": "complex-n3-mkg-y", "MKG-W": "complex-n3-mkg-w",
          "DB15K": "complex-n3-db15k"}
#: Each ingredient: the preset plus these options. ``text`` needs the
#: dataset's textual features (``dhns features text DATASET``).
INGREDIENTS = {
    "base": {"features": "none"},
    "relation-prediction": {"features": "none", "relation_prediction": 0.5},
    "relation-prediction-0.1": {"features": "none", "relation_prediction": 0.1},
    "dura": {"features": "none", "regularizer": "dura"},
    "text": {"features": "auto", "fusion": "gate"},
    "dhns": {"features": "none", "sampler": "dhns", "dhns_share": 0.5},
}
FIELDS = ["dataset", "ingredient", "seed", "run", "best_epoch", "valid_mrr",
          "test_mrr", "test_hits@1", "test_hits@3", "test_hits@10", "epoch_s",
          "features", "dhns_geo", "commit", "torch", "device", "command"]


#: Budgets shorter than the preset's, where an epoch is long on this CPU
#: (DB15K: about 3 minutes on one thread); base and ingredients share it.
EPOCHS = {"DB15K": 6}


def config_of(dataset: str, ingredient: str, seed: int, root: str) -> TrainConfig:
    budget = {"epochs": EPOCHS[dataset]} if dataset in EPOCHS else {}
    return TrainConfig(**{**PRESETS[PRESET[dataset]], "root": root, "seed": seed,
                          **budget, **INGREDIENTS[ingredient]})


def run_name(dataset: str, ingredient: str, seed: int) -> str:
    return f"{dataset}-{ingredient}-seed{seed}"


def _one_thread_run(config: TrainConfig, run_dir: Path, tag: str) -> dict:
    import torch
    torch.set_num_threads(1)
    return run_one(config, run_dir, tag)


def row_of(run_dir: Path, dataset: str, ingredient: str, seed: int) -> dict:
    """The results row of a finished run folder."""
    from dhns_geo.provenance import run_provenance
    from dhns_geo.run_folder import read_run_config
    config, facts = read_run_config(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    history = list(csv.DictReader((run_dir / "history.csv").open()))
    test = metrics["test"]
    sources = facts.get("feature_sources") or {}
    return {"dataset": dataset, "ingredient": ingredient, "seed": seed,
            "run": run_dir.name, "best_epoch": metrics["best_epoch"],
            "valid_mrr": round(metrics.get("selection", {}).get(
                "best_mrr", metrics["valid"]["mrr"]), 4),
            **{f"test_{k}": round(test[k], 4) for k in ("mrr", "hits@1", "hits@3",
                                                        "hits@10")},
            "epoch_s": round(statistics.median(float(h["seconds"]) for h in history), 1),
            "features": "; ".join(f"{k}: {v}" for k, v in sources.items()) or "none",
            **run_provenance(run_dir),
            "command": train_command(config, run_dir, DATA_PLACEHOLDER)}


def report(runs: Path) -> None:
    """runs.csv, paired.md and curves from the finished run folders."""
    rows = []
    for dataset in PRESET:
        for ingredient in INGREDIENTS:
            for seed in range(10):
                run_dir = runs / run_name(dataset, ingredient, seed)
                if (run_dir / "metrics.json").is_file():
                    rows.append(row_of(run_dir, dataset, ingredient, seed))
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "runs.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    (RESULTS / "paired.md").write_text(paired_table(rows, runs))
    for dataset in {r["dataset"] for r in rows}:
        plot(rows, runs, dataset, RESULTS / f"curves-{dataset}.png")
    print((RESULTS / "paired.md").read_text())


def paired_table(rows: list[dict], runs: Path) -> str:
    lines = ["| dataset | ingredient | seeds | valid MRR (mean) | test MRR (mean) | "
             "test MRR − base [95 % interval] | per seed |", "| --- " * 7 + "|"]
    for dataset in PRESET:
        mine = [r for r in rows if r["dataset"] == dataset]
        base = {r["seed"]: r for r in mine if r["ingredient"] == "base"}
        for ingredient in INGREDIENTS:
            group = [r for r in mine if r["ingredient"] == ingredient]
            if not group:
                continue
            valid = statistics.fmean(r["valid_mrr"] for r in group)
            test = statistics.fmean(r["test_mrr"] for r in group)
            cell, seeds = "", ""
            pairs = [r for r in group if r["seed"] in base]
            if ingredient != "base" and pairs:
                d = paired.paired_difference([runs / r["run"] for r in pairs],
                                             [runs / base[r["seed"]]["run"] for r in pairs])
                cell = f"{d['diff']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]"
                seeds = " ".join(f"{x:+.4f}" for x in d["seed_diffs"])
            lines.append(f"| {dataset} | {ingredient} | {len(group)} | {valid:.4f} | "
                         f"{test:.4f} | {cell} | {seeds} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], runs: Path, dataset: str, path: Path) -> None:
    mine = [r for r in rows if r["dataset"] == dataset]
    paired.plot_curves([runs / r["run"] for r in mine],
                       [f"{r['ingredient']} s{r['seed']}" for r in mine], path,
                       f"{dataset}: ComplEx-N3 preset, one ingredient each; "
                       "dot: plateau")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--root", required=True)
    run.add_argument("--datasets", nargs="+", default=["MKG-Y"], choices=list(PRESET))
    run.add_argument("--ingredients", nargs="+", default=list(INGREDIENTS),
                     choices=list(INGREDIENTS))
    run.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    run.add_argument("--workers", type=int, default=2)
    run.add_argument("--runs", type=Path, default=Path("runs/mmkg-sota"))
    rep = sub.add_parser("report")
    rep.add_argument("--runs", type=Path, default=Path("runs/mmkg-sota"))
    args = parser.parse_args()
    if args.command == "report":
        report(args.runs)
        return
    # Seed-major order: each seed's ingredients finish together (pairs early).
    grid = [(config_of(d, i, s, args.root), args.runs / run_name(d, i, s))
            for s in args.seeds for d in args.datasets for i in args.ingredients]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.workers, mp_context=context) as pool:
        futures = [pool.submit(_one_thread_run, cfg, run_dir, run_dir.name)
                   for cfg, run_dir in grid]
        for future in as_completed(futures):
            row = future.result()
            print(f"done: valid {row['valid_mrr']:.4f} test {row['test_mrr']:.4f}",
                  flush=True)
            report(args.runs)


if __name__ == "__main__":
    main()
