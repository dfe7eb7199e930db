"""The results grid: DHNS against baseline negative sampling.

Trains every (dataset, scorer, method, seed) of the grid with the same dim,
epochs, batch and negatives, resumes a partially finished grid, and writes
``runs.csv`` (one row per run, with the ``dhns train`` command that
reproduces it), ``summary.csv`` and ``results.md`` (mean and spread over
seeds) and ``curves.png`` (valid MRR per epoch, a panel per dataset and
scorer).

Methods (all with uniform or Bernoulli corruption of one side):

* ``uniform``   uniform negatives, log-sigmoid loss with equal weights
* ``bernoulli`` Bernoulli negatives, same loss
* ``self-adv``  uniform negatives, self-adversarial loss (RotatE)
* ``dhns``      ``self-adv`` plus DHNS hierarchical negatives with NTAT

and the variants of :data:`ABLATIONS` (one knob changed each), for the
README's investigation of DHNS.

Usage (CPU default budget: RotatE with 3 seeds and DistMult, TransE with one
seed on MKG-Y take about 45 minutes on 2 cores)::

    python benchmarks/reproduce.py --root DATA_ROOT --datasets MKG-Y
    python benchmarks/reproduce.py --root DATA_ROOT --full   # the paper's budget, for a GPU

The best epoch is chosen on valid MRR; test metrics are those of that epoch.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))    # benchmarks/
from workers import run_parallel  # noqa: E402

from dhns_geo.config import TrainConfig, command_line  # noqa: E402
from dhns_geo.provenance import run_provenance as row_provenance  # noqa: E402
from dhns_geo.run_folder import read_run_config  # noqa: E402
from dhns_geo.runs import run_training  # noqa: E402

METHODS = {
    "uniform": {"sampler": "uniform", "loss": "softplus"},
    "bernoulli": {"sampler": "bernoulli", "loss": "softplus"},
    "self-adv": {"sampler": "uniform", "loss": "self-adversarial"},
    "dhns": {"sampler": "dhns", "loss": "self-adversarial"},
}
#: DHNS variants of the investigation (README, "Why DHNS ties with RotatE"),
#: one knob at a time: the loss weight mu, generator steps per batch,
#: diffusion on unit-RMS embeddings, which levels count, NTAT's margins.
ABLATIONS = {
    "dhns-mu0.1": {**METHODS["dhns"], "dhns_mu": 0.1},
    "dhns-mu1": {**METHODS["dhns"], "dhns_mu": 1.0},
    "dhns-gen3": {**METHODS["dhns"], "dhns_generator_steps": 3},
    "dhns-norm": {**METHODS["dhns"], "dhns_normalize": True},
    # Control: each DHNS group's loss also holds the positive's term, so mu
    # re-weights the positives too; margin factors of -100 make the
    # generated negatives' terms exactly zero and leave only that.
    "dhns-mu1-posonly": {**METHODS["dhns"], "dhns_mu": 1.0,
                         "dhns_margin_factors": [-100.0] * 5},
    # The same re-weighting without DHNS: 1 + mu * sum(level weights) / 4.
    "self-adv-pos1.75": {**METHODS["self-adv"], "positive_weight": 1.75},
    "dhns-norm-mu1": {**METHODS["dhns"], "dhns_normalize": True, "dhns_mu": 1.0},
    # Which levels count, and flat margins instead of NTAT's (run with
    # DistMult, where the generated negatives carry real weight).
    "dhns-hard": {**METHODS["dhns"], "dhns_level_weights": [0.0, 1.0, 1.0, 0.0, 0.0]},
    "dhns-easy": {**METHODS["dhns"], "dhns_level_weights": [0.0, 0.0, 0.0, 1.0, 1.0]},
    "dhns-flat": {**METHODS["dhns"], "dhns_margin_factors": [1.0] * 5},
    # The authors' gradient flow (the diffusion loss trains the
    # model too), and their whole sampler.
    "dhns-model-grad": {**METHODS["dhns"], "dhns_generator_grad": "model"},
    "dhns-authors": {**METHODS["dhns"], "dhns_generator_grad": "model",
                     "dhns_authors_sampling": True, "dhns_sampling": "full"},
    # Beyond the paper: scale-matched diffusion with real weight, and the
    # false-negative guard (generated negatives scored >= the positive
    # are dropped).
    "dhns-norm-guard-mu1": {**METHODS["dhns"], "dhns_normalize": True,
                            "dhns_guard": True, "dhns_mu": 1.0},
}
VARIANTS = {**METHODS, **ABLATIONS}
#: Default budget for a 2-core CPU, and the papers' budget (``--full``).
BUDGETS = {
    "cpu": {"dim": 256, "num_negatives": 64, "batch_size": 1024, "epochs": 12,
            "lr": 0.005, "shared_negatives": False, "eval_every": 1,
            "patience": 100, "lr_plateau_factor": 1.0},
    # The convergence protocol: the cpu budget with the learning
    # rate chosen on valid for self-adv and epochs where self-adv's valid
    # MRR has stopped moving (benchmarks/paired.py plateau); set both with
    # --lr and --epochs per dataset.
    # The toy MMKG at the demo's settings (seconds per run).
    "toy": {"dim": 64, "num_negatives": 32, "batch_size": 512, "epochs": 15,
            "lr": 0.05, "shared_negatives": False, "eval_every": 5,
            "patience": 100, "lr_plateau_factor": 1.0},
    "converge": {"dim": 256, "num_negatives": 64, "batch_size": 1024,
                 "epochs": 40, "lr": 0.02, "shared_negatives": False,
                 "eval_every": 1, "patience": 100, "lr_plateau_factor": 1.0},
    # The authors' train_dhns.py (github.com/ngl567/DHNS): dim 1024, batch
    # 2000, 64 negatives, 400 epochs, Adam lr 0.002 (the generator's too),
    # adversarial temperature 0.5, L3 regularisation 5e-6, mu 0.01 (our
    # default); its generator loop returns after one step per batch.
    "full": {"dim": 1024, "num_negatives": 64, "batch_size": 2000,
             "epochs": 400, "lr": 0.002, "adversarial_temperature": 0.5,
             "regularizer": "l3", "reg_weight": 5e-6, "eval_every": 20,
             "patience": 5, "dhns_lr": 0.002, "shared_negatives": False,
             "lr_plateau_factor": 1.0},
}
METRICS = ("mrr", "mr", "hits@1", "hits@3", "hits@10")
#: A row's command names the data folder by this, never one machine's path.
DATA_PLACEHOLDER = {"root": "DATA"}


def grid_config(budget: dict, method: str, **fields) -> TrainConfig:
    """The config of one grid run: ``budget`` with ``method``'s variant; the
    budget's DHNS options apply to DHNS methods only."""
    variant = VARIANTS[method]
    if variant["sampler"] != "dhns":
        budget = {k: v for k, v in budget.items() if not k.startswith("dhns_")}
    return TrainConfig(**fields, **budget, **variant)


def train_command(cfg: TrainConfig, run_dir: Path,
                  placeholders: dict[str, str] | None = None) -> str:
    """The ``dhns train`` command line that trains ``cfg`` into ``run_dir``
    (:func:`dhns_geo.config.command_line`; ``placeholders`` replace values,
    e.g. ``{"root": "DATA"}``)."""
    return f"{command_line(cfg, placeholders)} --out {shlex.quote(str(run_dir))}"


def run_one(cfg: TrainConfig, run_dir: Path, tag: str) -> dict:
    """Trains (or resumes, or reuses) one run; returns its row."""
    done = (run_dir / "metrics.json").is_file()
    start = time.perf_counter()
    if not done:
        resume = (run_dir / "config.json").is_file()
        run_training(cfg, run_dir, resume=resume, progress=False,
                     log=lambda line: print(f"[{tag}] {line}", flush=True))
        wall = time.perf_counter() - start
        (run_dir / "wall.json").write_text(json.dumps({"seconds": wall,
                                                       "resumed": resume}))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    history = list(csv.DictReader((run_dir / "history.csv").open()))
    wall_file = run_dir / "wall.json"
    wall = json.loads(wall_file.read_text())["seconds"] if wall_file.is_file() else ""
    facts = read_run_config(run_dir)[1]
    features = "; ".join(f"{m}: {s}" for m, s in facts["feature_sources"].items())
    row = {"best_epoch": metrics["best_epoch"],
           "valid_mrr": metrics["valid"]["mrr"],
           **{f"test_{k}": metrics["test"][k] for k in METRICS},
           "epoch_s": statistics.median(float(h["seconds"]) for h in history),
           "wall_s": wall, "features": features or "none",
           **row_provenance(run_dir),
           "command": train_command(cfg, run_dir, DATA_PLACEHOLDER)}
    return row


def merge_runs(path: Path, rows: list[dict]) -> list[dict]:
    """Rows of an earlier ``runs.csv`` (other datasets or scorers) followed
    by ``rows``, which replace earlier rows of the same run."""
    new = {r["run"] for r in rows}
    old = list(csv.DictReader(path.open())) if path.is_file() else []
    return [r for r in old if r["run"] not in new] + rows


def summarize(rows: list[dict]) -> list[dict]:
    """Mean and (population) standard deviation over seeds."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["scorer"], row["method"]),
                          []).append(row)
    out = []
    for (dataset, scorer, method), runs in groups.items():
        entry = {"dataset": dataset, "scorer": scorer, "method": method,
                 "seeds": len(runs)}
        for key in ("valid_mrr", *(f"test_{k}" for k in METRICS), "epoch_s"):
            values = [float(r[key]) for r in runs]
            entry[key] = statistics.fmean(values)
            entry[f"{key}_std"] = statistics.pstdev(values)
        out.append(entry)
    return out


def markdown(summary: list[dict]) -> str:
    lines = ["| dataset | scorer | method | seeds | valid MRR | test MRR | "
             "Hits@1 | Hits@3 | Hits@10 | epoch (s) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for s in summary:
        def cell(key: str) -> str:
            return f"{s[key]:.4f} ± {s[key + '_std']:.4f}"
        lines.append(
            f"| {s['dataset']} | {s['scorer']} | {s['method']} | {s['seeds']} | "
            f"{cell('valid_mrr')} | {cell('test_mrr')} | {cell('test_hits@1')} | "
            f"{cell('test_hits@3')} | {cell('test_hits@10')} | "
            f"{s['epoch_s']:.2f} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], run_root: Path, path: Path) -> None:
    """Valid MRR per epoch (mean over seeds) per method, a panel per
    dataset and scorer."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted({(r["dataset"], r["scorer"]) for r in rows})
    cols = min(len(panels), 3)
    lines = -(-len(panels) // cols)
    fig, axes = plt.subplots(lines, cols, squeeze=False,
                             figsize=(5 * cols, 3.6 * lines))
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, panel in zip(axes.flat, panels):
        for method in [m for m in VARIANTS if any(r["method"] == m for r in rows)]:
            curves = []
            for r in rows:
                if ((r["dataset"], r["scorer"]), r["method"]) != (panel, method):
                    continue
                history = run_root / r["run"] / "history.csv"
                if not history.is_file():       # a row merged from elsewhere
                    continue
                curves.append({int(h["epoch"]): float(h["valid_mrr"])
                               for h in csv.DictReader(history.open())
                               if h["valid_mrr"]})
            if not curves:
                continue
            epochs = sorted(set.intersection(*(set(c) for c in curves)))
            ax.plot(epochs, [statistics.fmean(c[e] for c in curves) for e in epochs],
                    label=method, marker=".")
        ax.set_title("{} ({})".format(*panel))
        ax.set_xlabel("epoch")
        ax.set_ylabel("valid MRR (filtered)")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
        else:
            ax.text(0.5, 0.5, "no run folders here", ha="center",
                    transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="dataset root")
    parser.add_argument("--datasets", default="MKG-Y")
    parser.add_argument("--scorers", default="rotate,distmult,transe")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--full", action="store_true",
                        help="the authors' budget (dim 1024, 400 epochs): for a GPU")
    parser.add_argument("--budget", choices=sorted(BUDGETS), default=None,
                        help="a named budget (default cpu; --full is 'full')")
    parser.add_argument("--epochs", type=int, default=None,
                        help="override the budget's epochs")
    parser.add_argument("--lr", type=float, default=None,
                        help="override the budget's learning rate")
    parser.add_argument("--select-on", default=None,
                        help="valid or valid-unseen (the trainer's --select-on)")
    parser.add_argument("--device", default=None, help="the trainer's --device")
    parser.add_argument("--workers", type=int, default=1,
                        help="runs trained at once, each in its own process")
    parser.add_argument("--out", default="runs/reproduce", help="run folders")
    parser.add_argument("--results", default="benchmarks/results")
    args = parser.parse_args()

    unknown = set(args.methods.split(",")) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown method(s) {', '.join(sorted(unknown))}; "
                     f"choose from {', '.join(VARIANTS)}")
    budget = dict(BUDGETS[args.budget or ("full" if args.full else "cpu")])
    for key in ("epochs", "lr", "select_on"):
        if getattr(args, key) is not None:
            budget[key] = getattr(args, key)
    if args.device is not None:
        budget["device"] = args.device
    run_root, results = Path(args.out), Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    grid = []
    for dataset in args.datasets.split(","):
        for scorer in args.scorers.split(","):
            for method in args.methods.split(","):
                for seed in map(int, args.seeds.split(",")):
                    name = f"{dataset}-{scorer}-{method}-seed{seed}"
                    cfg = grid_config(budget, method, dataset=dataset,
                                      root=args.root, scorer=scorer, seed=seed)
                    grid.append(({"dataset": dataset, "scorer": scorer,
                                  "method": method, "seed": seed, "run": name},
                                 cfg))
    rows, table = [], ""
    for key, row in run_grid(grid, run_root, args.workers):
        rows.append({**key, **row})
        print(f"{key['run']}: valid {row['valid_mrr']:.4f} test "
              f"{row['test_mrr']:.4f}", flush=True)
        table = write_results(results, rows, run_root)
    print(table)


def run_grid(grid: list[tuple[dict, TrainConfig]], run_root: Path,
             workers: int) -> Iterator[tuple[dict, dict]]:
    """``(key, row)`` of every run of ``grid``, in grid order with one
    worker, else as runs finish in ``workers`` processes (e.g. several
    runs sharing one GPU, whose steps are launch-bound)."""
    if workers <= 1:
        for key, cfg in grid:
            yield key, run_one(cfg, run_root / key["run"], key["run"])
        return
    keys = {key["run"]: key for key, _ in grid}
    jobs = {key["run"]: (run_one, (cfg, run_root / key["run"], key["run"]))
            for key, cfg in grid}
    for name, future in run_parallel(jobs, workers):
        yield keys[name], future.result()


def write_results(results: Path, rows: list[dict], run_root: Path) -> str:
    """Writes runs.csv (merged with earlier runs), summary.csv, results.md
    and curves.png; returns the markdown table."""
    rows = merge_runs(results / "runs.csv", rows)
    for name, table in (("runs.csv", rows), ("summary.csv", summarize(rows))):
        with open(results / name, "w", newline="") as f:
            writer = csv.DictWriter(f, list(table[0]))
            writer.writeheader()
            writer.writerows(table)
    text = markdown(summarize(rows))
    (results / "results.md").write_text(text)
    plot(rows, run_root, results / "curves.png")
    return text


if __name__ == "__main__":
    main()
