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
import re
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))    # benchmarks/
import paired  # noqa: E402
from grid import (add_report_command, finished, folder_row,  # noqa: E402
                  one_thread_run, run_jobs, write_csv)

from dhns_geo.config import TrainConfig  # noqa: E402
from dhns_geo.presets import PRESETS  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "mmkg-sota"
PRESET = {"MKG-Y": "complex-n3-mkg-y", "MKG-W": "complex-n3-mkg-w",
          "DB15K": "complex-n3-db15k", "FB15k-237": "complex-n3-fb15k237"}
#: Each ingredient: the preset plus these options. ``text`` needs the
#: dataset's textual features (``dhns features text DATASET``).
INGREDIENTS = {
    "base": {"features": "none"},
    "relation-prediction": {"features": "none", "relation_prediction": 0.5},
    "relation-prediction-0.1": {"features": "none", "relation_prediction": 0.1},
    "dura": {"features": "none", "regularizer": "dura"},
    "dura-0.02": {"features": "none", "regularizer": "dura", "reg_weight": 0.02},
    "dura-0.1": {"features": "none", "regularizer": "dura", "reg_weight": 0.1},
    "text": {"features": "auto", "fusion": "gate"},
    "text-dura": {"features": "auto", "fusion": "gate", "regularizer": "dura"},
    "dhns": {"features": "none", "sampler": "dhns", "dhns_share": 0.5},
}
FIELDS = ["dataset", "ingredient", "dim", "seed", "run", "epochs", "best_epoch", "valid_mrr",
          "test_mrr", "test_hits@1", "test_hits@3", "test_hits@10", "epoch_s",
          "features", "dhns_geo", "commit", "torch", "device", "command"]


#: Budgets shorter than the preset's, where an epoch is long on this CPU
#: (DB15K: about 3 minutes on one thread); base and ingredients share it.
EPOCHS = {"DB15K": 6}


def config_of(dataset: str, ingredient: str, seed: int, root: str,
              **budget) -> TrainConfig:
    """The preset plus the ingredient; ``budget`` (a GPU's ``dim``,
    ``epochs``, ``time_limit``, ``device``) overrides the CPU budget."""
    cpu = {"epochs": EPOCHS[dataset]} if dataset in EPOCHS else {}
    return TrainConfig(**{**PRESETS[PRESET[dataset]].values, "root": root, "seed": seed,
                          **cpu, **budget, **INGREDIENTS[ingredient]})


def run_name(dataset: str, ingredient: str, seed: int, dim: int | None = None) -> str:
    """``DATASET-INGREDIENT[-dDIM]-seedS``: the dim only where it is not the
    preset's."""
    rank = f"-d{dim}" if dim and dim != PRESETS[PRESET[dataset]].values["dim"] else ""
    return f"{dataset}-{ingredient}{rank}-seed{seed}"


def parse_run_name(name: str) -> tuple[str, str, int | None, int] | None:
    """``(dataset, ingredient, dim or None, seed)`` of a :func:`run_name`."""
    names = "|".join(re.escape(k) for k in sorted(PRESET))
    ingredients = "|".join(re.escape(k) for k in sorted(INGREDIENTS, key=len, reverse=True))
    match = re.fullmatch(rf"({names})-({ingredients})(?:-d(\d+))?-seed(\d+)", name)
    if not match:
        return None
    return match[1], match[2], match[3] and int(match[3]), int(match[4])


def row_of(run_dir: Path) -> dict:
    """The results row of a finished run folder."""
    dataset, ingredient, _, seed = parse_run_name(run_dir.name)
    return {"dataset": dataset, "ingredient": ingredient, "seed": seed,
            "run": run_dir.name, **folder_row(run_dir)}


def finished_runs(runs: Path) -> list[Path]:
    """The finished run folders under ``runs`` in table order: dataset,
    dim, ingredient, seed."""
    order = {"dataset": list(PRESET), "ingredient": list(INGREDIENTS)}
    return [d for key, d in sorted(finished(runs, parse_run_name), key=lambda x: (
        order["dataset"].index(x[0][0]), x[0][2] or 0,
        order["ingredient"].index(x[0][1]), x[0][3]))]


def report(runs: Path) -> None:
    """runs.csv, paired.md and curves from the finished run folders."""
    rows = [row_of(run_dir) for run_dir in finished_runs(runs)]
    write_csv(RESULTS / "runs.csv", rows, FIELDS)
    (RESULTS / "paired.md").write_text(paired_table(rows, runs))
    (RESULTS / "grid.md").write_text(grid_table(rows))
    (RESULTS / "goals.md").write_text(goals_table(rows))
    for dataset, dim in {(r["dataset"], r["dim"]) for r in rows}:
        plot(rows, runs, dataset, dim, RESULTS / f"curves-{dataset}-d{dim}.png")
    print((RESULTS / "paired.md").read_text())


def paired_table(rows: list[dict], runs: Path) -> str:
    """Each ingredient against ``base`` of the same dataset, dim and seed."""
    lines = ["| dataset | rank | ingredient | seeds | valid MRR (mean) | test MRR (mean) | "
             "test MRR − base [95 % interval] | per seed | device |", "| --- " * 9 + "|"]
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["dim"], row["ingredient"]), []).append(row)
    for (dataset, dim, ingredient), group in groups.items():
        base = {r["seed"]: r for r in groups.get((dataset, dim, "base"), [])}
        valid = statistics.fmean(r["valid_mrr"] for r in group)
        test = statistics.fmean(r["test_mrr"] for r in group)
        cell, seeds = "", ""
        pairs = [r for r in group if r["seed"] in base]
        if ingredient != "base" and pairs:
            d = paired.paired_difference([runs / r["run"] for r in pairs],
                                         [runs / base[r["seed"]]["run"] for r in pairs])
            cell = f"{d['diff']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]"
            seeds = " ".join(f"{x:+.4f}" for x in d["seed_diffs"])
        lines.append(f"| {dataset} | {dim // 2} | {ingredient} | {len(group)} | {valid:.4f} | "
                     f"{test:.4f} | {cell} | {seeds} | {group[0]['device']} |")
    return "\n".join(lines) + "\n"


#: The goal per dataset: above every published test MRR we know (filtered).
GOALS = {"MKG-Y": (0.395, "M-Hyper 0.3946 (ACL 2026); SNAG 0.391"),
         "DB15K": (0.413, "M-Hyper 0.4125 (ACL 2026); MoMoK 0.3957"),
         "MKG-W": (0.387, "HFR-MKGC 0.3862 (AAAI 2026, Table 1); SNAG 0.373")}


def chosen(rows: list[dict], dataset: str) -> list[dict]:
    """The runs (all seeds) of the configuration with the highest seed-0
    valid MRR on ``dataset``."""
    seed0 = [r for r in rows if r["dataset"] == dataset and r["seed"] == 0]
    if not seed0:
        return []
    best = max(seed0, key=lambda r: r["valid_mrr"])
    return [r for r in rows if r["dataset"] == dataset and r["dim"] == best["dim"]
            and r["ingredient"] == best["ingredient"]]


def goals_table(rows: list[dict]) -> str:
    """The chosen recipe per dataset against its goal."""
    lines = ["| dataset | chosen on valid | seeds | valid MRR | test MRR | goal | short by | "
             "published (source) |", "| --- " * 8 + "|"]
    for dataset, (goal, source) in GOALS.items():
        runs = chosen(rows, dataset)
        if not runs:
            continue
        valid = statistics.fmean(r["valid_mrr"] for r in runs)
        test = statistics.fmean(r["test_mrr"] for r in runs)
        lines.append(f"| {dataset} | {runs[0]['ingredient']}, rank {runs[0]['dim'] // 2} | "
                     f"{len(runs)} | {valid:.4f} | {test:.4f} | {goal} | "
                     f"{max(goal - test, 0):.4f} | {source} |")
    return "\n".join(lines) + "\n"


def grid_table(rows: list[dict]) -> str:
    """Per dataset, every configuration tried (dim and ingredient) by its
    seed-0 valid MRR, the selection metric, the :func:`chosen` one marked.
    Test MRR is shown beside it, never used to choose."""
    lines = ["| dataset | rank | ingredient | seed-0 valid MRR | chosen | seeds | "
             "test MRR (mean over seeds) |", "| --- " * 7 + "|"]
    for dataset in PRESET:
        configs: dict[tuple, list[dict]] = {}
        for row in rows:
            if row["dataset"] == dataset:
                configs.setdefault((row["dim"], row["ingredient"]), []).append(row)
        tried = sorted(((next((r["valid_mrr"] for r in g if r["seed"] == 0), None), key, g)
                        for key, g in configs.items()), key=lambda x: -(x[0] or 0))
        pick = chosen(rows, dataset)
        choice = (pick[0]["dim"], pick[0]["ingredient"]) if pick else None
        for valid, (dim, ingredient), group in tried:
            test = statistics.fmean(r["test_mrr"] for r in group)
            mark = "yes" if (dim, ingredient) == choice else ""
            lines.append(f"| {dataset} | {dim // 2} | {ingredient} | "
                         f"{'' if valid is None else f'{valid:.4f}'} | {mark} | "
                         f"{len(group)} | {test:.4f} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], runs: Path, dataset: str, dim: int, path: Path) -> None:
    mine = [r for r in rows if r["dataset"] == dataset and r["dim"] == dim]
    paired.plot_curves([runs / r["run"] for r in mine],
                       [f"{r['ingredient']} s{r['seed']}" for r in mine], path,
                       f"{dataset}, dim {dim}: ComplEx-N3 preset, one ingredient "
                       "each; dot: plateau")


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
    run.add_argument("--only", nargs="+", metavar="DATASET:INGREDIENT:SEED",
                     help="these runs instead of datasets x ingredients x seeds")
    run.add_argument("--dim", type=int, help="in place of the preset's (a GPU's rank)")
    run.add_argument("--epochs", type=int)
    run.add_argument("--time-limit", type=float, help="seconds of training per run")
    run.add_argument("--device", default="auto")
    run.add_argument("--nondeterministic", action="store_true",
                     help="no deterministic algorithms (faster on a GPU)")
    run.add_argument("--no-report", action="store_true")
    add_report_command(sub, "runs/mmkg-sota")
    args = parser.parse_args()
    if args.command == "report":
        report(args.runs)
        return
    run_grid(args)


def run_grid(args: argparse.Namespace) -> None:
    """Trains the runs ``args`` name, ``args.workers`` at a time."""
    budget = {k: v for k, v in (("dim", args.dim), ("epochs", args.epochs),
                                ("time_limit", args.time_limit)) if v}
    if args.nondeterministic:
        budget["deterministic"] = False
    # Seed-major order: each seed's ingredients finish together (pairs early).
    specs = ([(d, i, int(s)) for d, i, s in (o.rsplit(":", 2) for o in args.only)]
             if args.only else [(d, i, s) for s in args.seeds for d in args.datasets
                                for i in args.ingredients])
    grid = [(config_of(d, i, s, args.root, device=args.device, **budget),
             args.runs / run_name(d, i, s, args.dim)) for d, i, s in specs]
    jobs = {run_dir.name: (one_thread_run, (cfg, run_dir, run_dir.name))
            for cfg, run_dir in grid}
    run_jobs(jobs, args.workers, None if args.no_report else lambda: report(args.runs))


if __name__ == "__main__":
    main()
