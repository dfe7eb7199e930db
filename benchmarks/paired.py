"""The convergence protocol's analysis: plateau rule, seed-paired
differences to a baseline, and a paired bootstrap interval over test triples.

    # the epoch at which a run's valid MRR has stopped moving
    python benchmarks/paired.py plateau runs/conv-lr0.02/MKG-Y-rotate-self-adv-seed0

    # the run of a learning-rate sweep the protocol keeps (printed first)
    python benchmarks/paired.py choose runs/conv-lr*/MKG-Y-rotate-self-adv-seed0

    # valid MRR curves of runs, with the plateau epoch marked
    python benchmarks/paired.py curves RUN... --labels lr0.01,lr0.02 --out sweep.png

    # runs against baseline runs, paired seed by seed
    python benchmarks/paired.py diff --method RUN_S0 RUN_S1 --baseline BASE_S0 BASE_S1

Plateau rule: a run of ``E`` epochs has converged when its valid MRR gained
less than 1 % (relative) over the last quarter of the epochs, i.e.
``mrr(E) < 1.01 * mrr(E - ceil(E / 4))``; ``plateau`` prints the first
``E`` from which the rule holds at every later epoch of a (longer) run's
curve, so that a noisy pause is not taken for convergence.

``diff`` (and the grids' reports: ``samplers.py``, ``mmkg_sota.py``) read each run's ``ranks.pt`` (the best epoch's filtered ranks
per test triple). For a method ``m`` and the baseline ``b`` trained with the
same seeds, the per-triple reciprocal rank ``(1/rank_head + 1/rank_tail) / 2``
is differenced seed by seed and averaged over seeds; the test MRR difference
is its mean, and the 95 % interval is the 2.5-97.5 percentiles of that mean
over 2000 bootstrap resamples of the test triples (the same resample for all
seeds; where the test set differs per seed, as the toy graph's does, each
seed's own triples are resampled). The seed-level differences (mean and spread) are reported beside it:
the interval covers the test set's sampling noise, the spread the seeds'.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
from pathlib import Path

import torch

from dhns_geo.run_folder import load_checkpoint

RULE = 0.01
RESAMPLES = 2000


def valid_curve(run_dir: Path) -> list[float]:
    """Valid MRR per epoch (epochs with an evaluation) of a run folder."""
    return [mrr for _, mrr in valid_points(run_dir)]


def converged(curve: list[float], epochs: int, rule: float = RULE) -> bool:
    """Whether the first ``epochs`` of ``curve`` meet the plateau rule."""
    start = epochs - math.ceil(epochs / 4)
    return start >= 1 and curve[epochs - 1] < (1 + rule) * curve[start - 1]


def plateau_epoch(curve: list[float], rule: float = RULE) -> int | None:
    """The first ``E`` from which every ``E' >= E`` of ``curve`` meets the
    rule (``None`` if the last epoch does not)."""
    epoch = None
    for e in range(len(curve), 3, -1):
        if not converged(curve, e, rule):
            break
        epoch = e
    return epoch


def choose(runs: list[Path], rule: float = RULE,
           floor: float = 0.9) -> tuple[Path, str]:
    """The run of a learning-rate sweep the protocol keeps, and why: among
    the runs whose valid curve meets the plateau rule and whose best valid
    MRR is at least ``floor`` times the sweep's best (a collapsed run is
    flat too), the best valid MRR; if none qualifies, the best valid MRR of
    all (said in the reason)."""
    curves = {run: valid_curve(run) for run in runs}
    top = max(max(curve) for curve in curves.values())
    flat = [run for run, curve in curves.items()
            if plateau_epoch(curve, rule) and max(curve) >= floor * top]
    pool = flat or list(runs)
    best = max(pool, key=lambda run: max(curves[run]))
    why = (f"best valid MRR {max(curves[best]):.4f} among the runs that meet the "
           f"plateau rule within {floor:.0%} of the sweep's best" if flat else
           f"no run meets the plateau rule within {floor:.0%} of the sweep's best; "
           f"best valid MRR {max(curves[best]):.4f}")
    return best, why


def reciprocal_ranks(run_dir: Path) -> torch.Tensor:
    """``[n]`` mean of head and tail reciprocal ranks per test triple."""
    ranks = load_checkpoint(Path(run_dir) / "ranks.pt", required="test")["test"]
    return (1 / ranks["head"] + 1 / ranks["tail"]) / 2


def paired_difference(method: list[Path], baseline: list[Path],
                      resamples: int = RESAMPLES, seed: int = 0) -> dict:
    """Seed-paired test MRR difference ``method - baseline`` with a
    bootstrap interval over test triples (runs listed in the same seed
    order)."""
    diffs = [reciprocal_ranks(m) - reciprocal_ranks(b) for m, b in zip(method, baseline)]
    g = torch.Generator().manual_seed(seed)
    if len({d.numel() for d in diffs}) == 1:      # the same test triples
        per_triple = torch.stack(diffs).mean(0)
        n = per_triple.numel()
        boot = per_triple[torch.randint(0, n, (resamples, n), generator=g)].mean(1)
    else:                                         # e.g. the toy graph is per seed
        boot = torch.stack([d[torch.randint(0, d.numel(), (resamples, d.numel()),
                                            generator=g)].mean(1)
                            for d in diffs]).mean(0)
    seeds = [float(d.mean()) for d in diffs]
    return {"seeds": len(seeds), "diff": statistics.fmean(seeds),
            "ci_low": float(boot.quantile(0.025)), "ci_high": float(boot.quantile(0.975)),
            "seed_diffs": seeds,
            "seed_std": statistics.pstdev(seeds) if len(seeds) > 1 else 0.0}


def valid_points(run_dir: Path) -> list[tuple[int, float]]:
    """``(epoch, valid MRR)`` of the evaluated epochs of a run folder."""
    rows = csv.DictReader((Path(run_dir) / "history.csv").open())
    return [(int(r["epoch"]), float(r["valid_mrr"])) for r in rows if r["valid_mrr"]]


def plot_curves(runs: list[Path], labels: list[str], path: Path,
                title: str = "dot: plateau rule met from here on",
                styles: list[str] | None = None) -> None:
    """Valid MRR of ``runs`` at their evaluated epochs; a dot marks each
    plateau (the rule applied to the evaluations)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for run, label, style in zip(runs, labels, styles or ["-"] * len(runs)):
        epochs, curve = zip(*valid_points(run))
        at = plateau_epoch(list(curve))
        line, = ax.plot(epochs, curve, style, marker=".", label=label)
        if at:
            ax.plot([epochs[at - 1]], [curve[at - 1]], "o", color=line.get_color())
    ax.set_xlabel("epoch")
    ax.set_ylabel("valid MRR (filtered)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plateau", help="first epoch meeting the plateau rule")
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--rule", type=float, default=RULE)
    h = sub.add_parser("choose", help="the run of an lr sweep the protocol keeps")
    h.add_argument("runs", nargs="+", type=Path)
    h.add_argument("--rule", type=float, default=RULE)
    v = sub.add_parser("curves", help="plot valid MRR curves")
    v.add_argument("runs", nargs="+", type=Path)
    v.add_argument("--labels", required=True, help="comma-separated, one per run")
    v.add_argument("--out", type=Path, required=True)
    d = sub.add_parser("diff", help="paired difference of runs to baseline runs")
    d.add_argument("--method", nargs="+", type=Path, required=True)
    d.add_argument("--baseline", nargs="+", type=Path, required=True,
                   help="one per method run, in the same seed order")
    args = parser.parse_args()
    if args.command == "plateau":
        for run in args.runs:
            curve = valid_curve(run)
            epoch = plateau_epoch(curve, args.rule)
            best = max(range(len(curve)), key=curve.__getitem__)
            print(f"{run}: {len(curve)} epochs, best valid MRR {curve[best]:.4f} "
                  f"(epoch {best + 1}); plateau rule met at epoch "
                  f"{epoch if epoch else 'never'}")
    elif args.command == "choose":
        run, why = choose(args.runs, args.rule)
        print(f"{run}\t{why}")
    elif args.command == "curves":
        plot_curves(args.runs, args.labels.split(","), args.out)
    elif args.command == "diff":
        if len(args.method) != len(args.baseline):
            parser.error("--method and --baseline need one run each per seed")
        r = paired_difference(args.method, args.baseline)
        print(f"test MRR difference {r['diff']:+.4f} [{r['ci_low']:+.4f}, "
              f"{r['ci_high']:+.4f}] over {r['seeds']} seed(s); per seed "
              + ", ".join(f"{x:+.4f}" for x in r["seed_diffs"]))


if __name__ == "__main__":
    main()
