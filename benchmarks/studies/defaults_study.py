"""The defaults study: candidate training settings against each
other on MKG-Y, MKG-W and DB15K, RotatE, self-adversarial loss, 30 epochs,
valid MRR every epoch (DB15K on its valid triples not in train).

    python benchmarks/studies/defaults_study.py --root DATA --configs D,F --seeds 0,1,2 \\
        --datasets MKG-Y,MKG-W
    python benchmarks/studies/defaults_study.py --root DATA --configs D,F --datasets DB15K

Trains the runs whose folder has no ``metrics.json`` yet (one after
another; ``--runs`` holds them), then merges one row per run into
``RESULTS/runs.csv`` (rows of other versions are kept: they carry the
``version`` of dhns-geo that trained them), and writes ``results.md`` (each
run; mean and spread per dataset, config and version) and one valid-MRR
curve plot per dataset. Every row has the ``dhns train`` command that
trains it, with every studied setting written out.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

import dhns_geo
from dhns_geo.config import TrainConfig, option_args
from dhns_geo.runs import run_training

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # benchmarks/
import paired  # noqa: E402


def setting(k: int, lr: float, dim: int = 256, batch: int = 1024,
            shared: bool = True, name: str = "", half_life: int = 0,
            plateau: float = 1.0) -> tuple[str, dict]:
    """A config's description and its settings, written out in full
    (``half_life``: ``--lr-half-life``, only where it is on; ``plateau``:
    ``--lr-plateau-factor``, always)."""
    text = (f"dim {dim}, K {k}, batch {batch}, lr {lr}, "
            f"{'shared' if shared else 'per-positive'}"
            + (f", lr half-life {half_life} steps" if half_life else "")
            + (f", lr x{plateau} per evaluation without gain" if plateau != 1 else ""))
    settings = {"dim": dim, "num_negatives": k, "batch_size": batch, "lr": lr,
                "shared_negatives": shared}
    if half_life:
        settings["lr_half_life"] = half_life
    settings["lr_plateau_factor"] = plateau     # written out: 0.5 is the default since 0.3
    return (f"{name} ({text})" if name else text, settings)


CONFIGS: dict[str, tuple[str, dict]] = {
    "A": setting(32, 0.005, dim=128, batch=512, shared=False, name="0.1 defaults"),
    "B": setting(64, 0.02), "C": setting(64, 0.05),
    "D": setting(1024, 0.02), "E": setting(1024, 0.05), "F": setting(1024, 0.03),
    "G": setting(1024, 0.02, half_life=500), "H": setting(1024, 0.02, half_life=1000),
    "P": setting(1024, 0.02, plateau=0.5),
}
#: The valid MRR whose first epoch and training time each row reports.
THRESHOLDS = {"MKG-Y": 0.30, "MKG-W": 0.28, "DB15K": 0.30}
EPOCHS = 30
FIELDS = ["dataset", "config", "version", "seed", "settings", "best_epoch",
          "selection_mrr", "test_mrr", "epoch_s", "threshold", "reached", "command"]


def flags(settings: dict) -> str:
    """``settings`` as ``dhns train`` arguments, every one written out."""
    return " ".join(arg for name, value in settings.items()
                    for arg in option_args(name, value))


def run_dir(runs: Path, dataset: str, config: str, seed: int) -> Path:
    return runs / (f"{dataset}-{config}" + (f"-seed{seed}" if seed else ""))


def train(dataset: str, config: str, seed: int, root: str, runs: Path) -> dict:
    """Trains (or reuses) one run; returns its row."""
    description, settings = CONFIGS[config]
    select = "valid-unseen" if dataset == "DB15K" else "valid"
    folder = run_dir(runs, dataset, config, seed)
    if not (folder / "metrics.json").is_file():
        cfg = TrainConfig(dataset=dataset, root=root, seed=seed, epochs=EPOCHS,
                          eval_every=1, patience=100, select_on=select, **settings)
        run_training(cfg, folder, resume=(folder / "config.json").is_file(),
                     progress=False, log=lambda line: print(
                         f"[{dataset} {config} {seed}] {line}", flush=True))
    metrics = json.loads((folder / "metrics.json").read_text())
    history = list(csv.DictReader((folder / "history.csv").open()))
    reach = paired.time_to_reach(folder, THRESHOLDS[dataset])
    command = " ".join(filter(None, [
        f"dhns train --dataset {dataset} --root DATA", flags(settings),
        "--select-on valid-unseen" if select != "valid" else "",
        f"--seed {seed}" if seed else "",
        f"--epochs {EPOCHS} --eval-every 1 --patience 100 --out {folder}"]))
    return {"dataset": dataset, "config": config, "version": dhns_geo.__version__,
            "seed": seed, "settings": description,
            "best_epoch": metrics["best_epoch"],
            "selection_mrr": round(metrics.get("selection", {}).get(
                "best_mrr", metrics["valid"]["mrr"]), 4),
            "test_mrr": round(metrics["test"]["mrr"], 4),
            "epoch_s": round(statistics.median(float(h["seconds"]) for h in history), 2),
            "threshold": THRESHOLDS[dataset],
            "reached": f"epoch {reach[0]}, {reach[1]:.0f} s" if reach else "no",
            "command": command}


def merge(path: Path, rows: list[dict]) -> list[dict]:
    """``rows`` replace the rows of ``path`` with the same key; order kept."""
    def key(row: dict) -> tuple:
        return (row["dataset"], row["config"], row["version"], str(row["seed"]))
    old = list(csv.DictReader(path.open())) if path.is_file() else []
    new = {key(r): r for r in rows}
    merged = [new.pop(key(r), r) for r in old]
    return merged + list(new.values())


def markdown(rows: list[dict]) -> str:
    lines = ["| dataset | config | version | seed | selection MRR (best epoch) | "
             "test MRR | epoch (s) | valid >= threshold |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['dataset']} | {r['config']}: {r['settings']} | "
                     f"{r['version']} | {r['seed']} | {float(r['selection_mrr']):.4f} "
                     f"({r['best_epoch']}) | {float(r['test_mrr']):.4f} | "
                     f"{r['epoch_s']} | {r['threshold']}: {r['reached']} |")
    lines += ["", "| dataset | config | version | seeds | selection MRR | test MRR |",
              "| --- | --- | --- | --- | --- | --- |"]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["config"], r["version"]), []).append(r)
    for (dataset, config, version), group in groups.items():
        sel = [float(r["selection_mrr"]) for r in group]
        test = [float(r["test_mrr"]) for r in group]
        lines.append(f"| {dataset} | {config} | {version} | {len(group)} | "
                     f"{statistics.fmean(sel):.4f} ± {statistics.pstdev(sel):.4f} | "
                     f"{statistics.fmean(test):.4f} ± {statistics.pstdev(test):.4f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="dataset root")
    parser.add_argument("--datasets", default="MKG-Y,MKG-W,DB15K")
    parser.add_argument("--configs", default="A,D")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--runs", type=Path, default=Path("runs/defaults"))
    parser.add_argument("--results", type=Path,
                        default=Path("benchmarks/results/defaults"))
    args = parser.parse_args()
    unknown = set(args.configs.split(",")) - set(CONFIGS)
    if unknown:
        parser.error(f"unknown config(s) {', '.join(sorted(unknown))}")
    rows = [train(dataset, config, int(seed), args.root, args.runs)
            for dataset in args.datasets.split(",")
            for config in args.configs.split(",")
            for seed in args.seeds.split(",")]
    args.results.mkdir(parents=True, exist_ok=True)
    merged = merge(args.results / "runs.csv", rows)
    with (args.results / "runs.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        writer.writerows(merged)
    for dataset in args.datasets.split(","):
        seed0 = [r for r in rows if r["dataset"] == dataset and r["seed"] == 0]
        paired.plot_curves([run_dir(args.runs, dataset, r["config"], 0) for r in seed0],
                           [f"{r['config']} ({r['version']})" for r in seed0],
                           args.results / f"{dataset}-{dhns_geo.__version__}.png")
    text = markdown(merged)
    (args.results / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
