"""What dhns-geo does, in about a minute on a laptop CPU (``make demo``).

1. Trains RotatE on the toy multimodal KG (structure + visual + textual
   features) with uniform, self-adversarial and DHNS negatives, and prints
   their filtered test metrics side by side.
2. Asks the DHNS model a question by name, as ``dhns predict`` does.

    python examples/demo.py --out runs/demo
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from dhns_geo.cli.output import format_table
from dhns_geo.config import TrainConfig, command_line
from dhns_geo.data import split_triples
from dhns_geo.predict import Predictor
from dhns_geo.runs import run_training

#: The toy graph's relations are rotations, which RotatE learns exactly.
BASE = {"dataset": "toy", "scorer": "rotate", "dim": 64, "lr": 0.05,
        "num_negatives": 32, "batch_size": 512, "shared_negatives": False,
        "epochs": 15, "eval_every": 5, "lr_plateau_factor": 1.0}
METHODS = {
    "uniform": {"sampler": "uniform", "loss": "softplus"},
    "self-adversarial": {"sampler": "uniform", "loss": "self-adversarial"},
    "DHNS": {"sampler": "dhns", "loss": "self-adversarial"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/demo"))
    args = parser.parse_args()

    print("Training RotatE on the toy MMKG (1000 entities, 10 relations, visual "
          "and textual features)\nwith three kinds of negatives ...\n")
    rows, runs = [], {}
    for method, values in METHODS.items():
        run_dir = args.out / method.lower()
        start = time.perf_counter()
        metrics = run_training(TrainConfig(**BASE, **values), run_dir,
                               log=lambda line: None, progress=False)
        seconds = time.perf_counter() - start
        test = metrics["test"]
        rows.append([method, test["mrr"], test["hits@1"], test["hits@10"],
                     f"{seconds:.0f}"])
        runs[method] = run_dir
        print(f"  {method}: test MRR {test['mrr']:.3f} ({seconds:.0f} s)", flush=True)
    print("\nFiltered link prediction on the test split:\n")
    print(format_table(["negatives", "MRR", "Hits@1", "Hits@10", "seconds"], rows))

    predictor = Predictor.from_run(runs["DHNS"])
    h, r, t = split_triples(predictor.data, "test")[0].tolist()
    head, relation = predictor.entities.name(h), predictor.relations.name(r)
    answers = predictor.predict_target(relation, head=head, top=5)
    print(f"\nAsk the DHNS model ({head}, {relation}, ?); the held-out test "
          f"answer is {predictor.entities.name(t)}:\n")
    print(format_table(["rank", "entity", "score", "known in"],
                       [[a["rank"], a["name"], a["score"], a["known_in"] or "-"]
                        for a in answers]))
    print("\nThe same from the command line:\n"
          f"  {command_line({**BASE, **METHODS['DHNS']})} --out {runs['DHNS']}\n"
          f"  dhns predict {runs['DHNS']} --head {head} --relation {relation} --top 5")


if __name__ == "__main__":
    main()
