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
from pathlib import Path

from dhns_geo.provenance import FIELDS as PROVENANCE
from dhns_geo.run_folder import read_run_config
import paired
from grid import folder_row, write_csv

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
    config = read_run_config(run_dir)[0]
    row = folder_row(run_dir)          # valid_mrr: what the run selected on
    return {"dataset": Path(config.dataset).name, "run": run_dir.name,
            "scorer": config.scorer, "training": config.training,
            "epochs_run": row.pop("epochs"), **row}


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
    paired.plot_curves(run_dirs, [r.name for r in run_dirs], args.out / "curves.png",
                       "valid MRR per evaluated epoch; dot: plateau")
    (args.out / "table.md").write_text(table(rows))
    print(table(rows))


if __name__ == "__main__":
    main()
