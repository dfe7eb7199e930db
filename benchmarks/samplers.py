"""Which negatives? Every sampler of the registry in one loop, at convergence.

    python benchmarks/samplers.py run --root DATA --datasets MKG-Y --seeds 0 1 2
    python benchmarks/samplers.py report --runs runs/samplers

The protocol of the "Does DHNS help?" page (:data:`PROTOCOL`; DB15K selects
on its unseen valid triples; textual features where ``dhns features text``
computed them); each method (:data:`METHODS`) changes the sampler (and, in
``*-paper`` rows, its published negatives and loss). ``run`` trains, resumes
or reuses every run folder, one thread per worker; ``report`` writes
``runs.csv``, ``paired.md`` (seed-paired test-MRR differences to self-adv with
a bootstrap interval over test triples, epoch-time ratios) and
``curves-DATASET.png`` into ``benchmarks/results/samplers/``; ``cost`` times
an epoch of each method, the methods stepping in turn (``cost-DATASET.md``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))    # benchmarks/
import paired  # noqa: E402
from grid import (add_report_command, epoch_seconds, finished, folder_row, one_thread_run,  # noqa: E402
                  run_jobs, write_csv)

from dhns_geo.config import TrainConfig  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "samplers"
PROTOCOL = {"scorer": "rotate", "dim": 256, "num_negatives": 64, "batch_size": 1024,
            "lr": 0.05, "epochs": 30, "shared_negatives": False, "eval_every": 1,
            "patience": 100, "lr_plateau_factor": 1.0}
#: Each method: the protocol plus these options. Every sampler is run with
#: the protocol's self-adversarial loss; ``*-paper`` rows add its published
#: negatives per positive and loss.
METHODS = {
    "self-adv": {},
    "uniform": {"loss": "softplus"},
    "nscaching": {"sampler": "nscaching"},
    "nscaching-filtered": {"sampler": "nscaching", "filter_negatives": True},
    "sans": {"sampler": "sans"},
    "rw-sans": {"sampler": "rw-sans"},
    "kbgan": {"sampler": "kbgan"},
    "mans-v": {"sampler": "mans", "mans_variant": "v"},
    "mans-a": {"sampler": "mans", "mans_variant": "a"},
    "mans-t": {"sampler": "mans", "mans_variant": "t"},
    "mans-h": {"sampler": "mans", "mans_variant": "h"},
    "mmrns": {"sampler": "mmrns"},
    "dhns": {"sampler": "dhns"},
    "nscaching-paper": {"sampler": "nscaching", "num_negatives": 1, "loss": "softplus"},
    "kbgan-paper": {"sampler": "kbgan", "num_negatives": 1, "loss": "margin",
                    "margin": 3.0},
}
BASELINE = "self-adv"
SELECT_ON = {"DB15K": "valid-unseen"}
#: Epochs where 30 is not a plateau: on MKG-W self-adv's valid MRR still
#: rose at epoch 30 (the plateau rule of paired.py holds from epoch 48 of 60).
EPOCHS = {"MKG-W": 60}
#: Rates chosen for self-adv on valid in the "Does DHNS help?" sweep (DB15K's
#: unseen valid MRR at 0.01 / 0.02 / 0.05: 0.367 / 0.347 / 0.269).
LR = {"DB15K": 0.01}
FIELDS = ["dataset", "method", "seed", "run", "best_epoch", "valid_mrr", "test_mrr",
          "test_hits@1", "test_hits@10", "epoch_s", "features", "dhns_geo", "commit",
          "torch", "device", "command"]


def config_of(dataset: str, method: str, seed: int, root: str, **budget) -> TrainConfig:
    """The protocol with ``method``; ``budget`` (a GPU's ``device``) adds to it."""
    return TrainConfig(**{**PROTOCOL, "dataset": dataset, "root": root, "seed": seed,
                          "select_on": SELECT_ON.get(dataset, "valid"),
                          "epochs": EPOCHS.get(dataset, PROTOCOL["epochs"]),
                          "lr": LR.get(dataset, PROTOCOL["lr"]),
                          **METHODS[method], **budget})


def run_name(dataset: str, method: str, seed: int) -> str:
    return f"{dataset}-{method}-seed{seed}"


def parse_run_name(name: str) -> tuple[str, str, int] | None:
    """``(dataset, method, seed)`` of a :func:`run_name`."""
    head, _, seed = name.rpartition("-seed")
    if not seed.isdigit():
        return None
    for method in sorted(METHODS, key=len, reverse=True):
        if head.endswith("-" + method):
            return head[:-len(method) - 1], method, int(seed)
    return None


def report(runs: Path) -> None:
    rows = []
    order = list(METHODS)
    done = sorted(finished(runs, parse_run_name),
                  key=lambda x: (x[0][0], order.index(x[0][1]), x[0][2]))
    for (dataset, method, seed), run_dir in done:
        rows.append({"dataset": dataset, "method": method, "seed": seed,
                     "run": run_dir.name, **folder_row(run_dir)})
    write_csv(RESULTS / "runs.csv", rows, FIELDS)
    (RESULTS / "paired.md").write_text(paired_table(rows, runs))
    for dataset in sorted({r["dataset"] for r in rows}):
        mine = [r for r in rows if r["dataset"] == dataset and r["seed"] == 0]
        paired.plot_curves([runs / r["run"] for r in mine], [r["method"] for r in mine],
                           RESULTS / f"curves-{dataset}.png",
                           f"{dataset}, RotatE, seed 0: valid MRR per epoch; dot: plateau")


def paired_table(rows: list[dict], runs: Path) -> str:
    """Each method against self-adv over their common seeds."""
    lines = ["| dataset | method | seeds | valid MRR | test MRR | test MRR − self-adv "
             "| 95 % CI | per seed | epoch (s) | × self-adv |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    by = {(r["dataset"], r["method"], r["seed"]): r for r in rows}
    for dataset in sorted({r["dataset"] for r in rows}):
        for method in METHODS:
            seeds = sorted(s for d, m, s in by if d == dataset and m == method)
            if not seeds:
                continue
            mine = [by[dataset, method, s] for s in seeds]
            base = [by[dataset, BASELINE, s] for s in seeds if (dataset, BASELINE, s) in by]
            mean = {k: statistics.fmean(float(r[k]) for r in mine)
                    for k in ("valid_mrr", "test_mrr", "epoch_s")}
            diff = ci = per_seed = ratio = "—"
            if method != BASELINE and len(base) == len(mine):
                result = paired.paired_difference([runs / r["run"] for r in mine],
                                                  [runs / r["run"] for r in base])
                diff = f"{result['diff']:+.4f}"
                ci = f"[{result['ci_low']:+.4f}, {result['ci_high']:+.4f}]"
                per_seed = " ".join(f"{d:+.4f}" for d in result["seed_diffs"])
                base_s = statistics.fmean(float(r["epoch_s"]) for r in base)
                ratio = f"{mean['epoch_s'] / base_s:.2f}" if base_s else "—"   # toy epochs: ~0 s
            lines.append(f"| {dataset} | {method} | {len(seeds)} | {mean['valid_mrr']:.4f} | "
                         f"{mean['test_mrr']:.4f} | {diff} | {ci} | {per_seed} | "
                         f"{mean['epoch_s']:.1f} | {ratio} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--root", required=True)
    run.add_argument("--datasets", nargs="+", default=["MKG-Y"])
    run.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    run.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    run.add_argument("--workers", type=int, default=2)
    run.add_argument("--runs", type=Path, default=Path("runs/samplers"))
    run.add_argument("--device", default="auto")
    run.add_argument("--pause-after", type=float, default=0.0, help="seconds into the "
                     "call; each run pauses at the next epoch end, the same command resumes")
    cost = sub.add_parser("cost", help="epoch time of each method, stepping in turn")
    cost.add_argument("--root", required=True)
    cost.add_argument("--dataset", default="MKG-Y")
    cost.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    cost.add_argument("--steps", type=int, default=10)
    add_report_command(sub, "runs/samplers")
    args = parser.parse_args()
    if args.command == "report":
        report(args.runs)
        return
    if args.command == "cost":
        configs = [config_of(args.dataset, m, 0, args.root) for m in args.methods]
        seconds = epoch_seconds(configs, args.steps, 2)
        chosen = "" if args.methods == list(METHODS) else " --methods " + " ".join(args.methods)
        lines = [f"`python benchmarks/samplers.py cost --root DATA --dataset {args.dataset}"
                 f"{chosen} --steps {args.steps}`: training seconds of an epoch (the median of "
                 f"{args.steps} steps, the methods stepping in turn, one thread).", "",
                 "| method | s / epoch | x self-adv |", "| --- | --- | --- |"]
        base = seconds[args.methods.index(BASELINE)] if BASELINE in args.methods else seconds[0]
        lines += [f"| {m} | {s:.1f} | {s / base:.2f} |" for m, s in zip(args.methods, seconds)]
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"cost-{args.dataset}.md").write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
        return
    # dataset, then method, then seed: a method's seeds run side by side, so
    # its paired rows against self-adv (listed first) come early
    specs = [(d, m, s) for d in args.datasets for m in args.methods for s in args.seeds]
    jobs = {(name := run_name(*spec)): (one_thread_run, (
        config_of(*spec, args.root, device=args.device), args.runs / name, name,
        args.pause_after)) for spec in specs}
    run_jobs(jobs, args.workers, lambda: report(args.runs))


if __name__ == "__main__":
    main()
