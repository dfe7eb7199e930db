"""dhns-geo beside the published tables: FB15k-237 (RotatE, ComplEx-N3) and
the multimodal benchmarks' state of the art.

    python benchmarks/published.py RUN_DIR [RUN_DIR ...] \
        --out benchmarks/results/published

For each finished run folder (``dhns train`` output) it writes a row of
``runs.csv`` (the exact ``dhns train`` command, valid and test metrics, epoch
time, features), ``curves.csv`` (valid MRR per evaluated epoch) and
``curves.png``, and ``table.md``: for each dataset and model (scorer and
training regime) the best run on valid, beside the published rows with their
sources.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from pathlib import Path

from dhns_geo.provenance import FIELDS as PROVENANCE, run_provenance
from dhns_geo.run_folder import read_run_config
from reproduce import DATA_PLACEHOLDER, train_command

#: (dataset, model, MRR, Hits@1, Hits@10, source) of published filtered
#: test results.
PUBLISHED = [
    ("FB15k-237", "RotatE", 0.338, 0.241, 0.533,
     "Sun et al., ICLR 2019, Table 5 (dim 1000 complex, 100k steps)"),
    ("FB15k-237", "ComplEx-N3", 0.37, None, 0.56,
     "Lacroix et al., ICML 2018, Table 2 (rank 1000, reciprocal, 1-vs-all)"),
    ("MKG-Y", "M-Hyper", 0.3946, None, None, "the MMKGC papers' main tables"),
    ("MKG-Y", "MyGO", 0.3844, None, None, "the MMKGC papers' main tables"),
    ("DB15K", "M-Hyper", 0.4125, None, None, "the MMKGC papers' main tables"),
    ("DB15K", "MoMoK", 0.3957, None, None, "the MMKGC papers' main tables"),
    ("MKG-W", "M-Hyper", 0.3702, None, None, "the MMKGC papers' main tables"),
    ("MKG-W", "MyGO", 0.3610, None, None, "the MMKGC papers' main tables"),
]

FIELDS = ["dataset", "run", "scorer", "training", "dim", "epochs_run",
          "best_epoch", "valid_mrr", "test_mrr", "test_hits@1", "test_hits@3",
          "test_hits@10", "epoch_s", "features", *PROVENANCE, "command"]


def run_row(run_dir: Path) -> dict:
    config, facts = read_run_config(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    history = list(csv.DictReader((run_dir / "history.csv").open()))
    test = metrics["test"]
    sources = facts.get("feature_sources") or {}
    return {"dataset": Path(config.dataset).name, "run": run_dir.name,
            "scorer": config.scorer, "training": config.training,
            "dim": config.dim, "epochs_run": len(history),
            "best_epoch": metrics["best_epoch"],
            # The MRR the run was selected on (DB15K: its unseen valid triples).
            "valid_mrr": round(metrics.get("selection", {}).get(
                "best_mrr", metrics["valid"]["mrr"]), 4),
            "test_mrr": round(test["mrr"], 4),
            "test_hits@1": round(test["hits@1"], 4),
            "test_hits@3": round(test["hits@3"], 4),
            "test_hits@10": round(test["hits@10"], 4),
            "epoch_s": round(statistics.median(float(h["seconds"]) for h in history), 1),
            "features": "; ".join(f"{k}: {v}" for k, v in sources.items()) or "none",
            **run_provenance(run_dir),
            "command": train_command(config, run_dir, DATA_PLACEHOLDER)}


def curves(run_dirs: list[Path]) -> list[dict]:
    rows = []
    for run_dir in run_dirs:
        for h in csv.DictReader((run_dir / "history.csv").open()):
            if h["valid_mrr"]:
                rows.append({"run": run_dir.name, "epoch": int(h["epoch"]),
                             "valid_mrr": round(float(h["valid_mrr"]), 4)})
    return rows


def table(rows: list[dict]) -> str:
    def fmt(x):
        return "-" if x is None else f"{x:.3f}"
    lines = ["| dataset | model | MRR | Hits@1 | Hits@10 | source / setting |",
             "| --- | --- | --- | --- | --- | --- |"]
    for dataset in dict.fromkeys(p[0] for p in PUBLISHED):
        for _, model, mrr, h1, h10, source in (p for p in PUBLISHED if p[0] == dataset):
            lines.append(f"| {dataset} | {model} (published) | {fmt(mrr)} | {fmt(h1)} "
                         f"| {fmt(h10)} | {source} |")
        models = dict.fromkeys((r["scorer"], r["training"]) for r in rows
                               if r["dataset"] == dataset)
        for model in models:                  # the best run of each on valid
            best = max((r for r in rows if r["dataset"] == dataset
                        and (r["scorer"], r["training"]) == model),
                       key=lambda r: r["valid_mrr"])
            lines.append(
                f"| {dataset} | **dhns-geo** {best['scorer']}, {best['training']}, dim "
                f"{best['dim']} | **{best['test_mrr']:.3f}** | {best['test_hits@1']:.3f} "
                f"| {best['test_hits@10']:.3f} | `{best['run']}` (runs.csv), "
                f"{best['epochs_run']} epochs, features: {best['features'][:40]} |")
    return "\n".join(lines) + "\n"


def plot(curve_rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for run in dict.fromkeys(r["run"] for r in curve_rows):
        points = [(r["epoch"], r["valid_mrr"]) for r in curve_rows if r["run"] == run]
        ax.plot(*zip(*points), marker="o", label=run)
    ax.set_xlabel("epoch")
    ax.set_ylabel("valid MRR (filtered)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def write_csv(path: Path, rows: list[dict], fields: list[str]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fields)
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished run folders")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/published"))
    args = parser.parse_args()
    run_dirs = [r for r in args.runs if (r / "metrics.json").is_file()]
    rows = [run_row(r) for r in run_dirs]
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "runs.csv", rows, FIELDS)
    curve_rows = curves(run_dirs)
    write_csv(args.out / "curves.csv", curve_rows, ["run", "epoch", "valid_mrr"])
    plot(curve_rows, args.out / "curves.png")
    (args.out / "table.md").write_text(table(rows))
    print(table(rows))


if __name__ == "__main__":
    main()
