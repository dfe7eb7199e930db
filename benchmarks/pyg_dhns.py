"""PyG's own KGE models on FB15k-237 with PyG's random negatives (one per
positive, ``model.loss``) alone, or plus DHNS negatives' loss
(:class:`dhns_geo.online.OnlineDHNS`) or that of ``--k`` negatives per
positive from a registry sampler (:class:`dhns_geo.online.OnlineSampler`:
``uniform`` tells more negatives from harder ones, ``nscaching``, ``sans``),
at PyG's example settings (``examples/kge_fb15k_237.py``).

    python benchmarks/pyg_dhns.py run --root DATA --models rotate transe \\
        --negatives random dhns --seeds 0 1 --epochs 60 --eval-every 5 --workers 2
    python benchmarks/pyg_dhns.py report --runs runs/pyg-dhns runs/pyg-dhns-200
    python benchmarks/pyg_dhns.py time --root DATA --negatives dhns uniform   # alone on the machine

``DATA/FB15k_237/raw`` holds PyG's ``train.txt``, ``valid.txt``, ``test.txt``.
A run trains PyG's loop (``model.loss`` plus the extra negatives' loss),
evaluates filtered valid MRR (:func:`dhns_geo.adapters.evaluate_model`)
every ``--eval-every`` epochs (``--patience``: evaluations without gain
before it stops) and tests the best. Its folder holds ``history.csv``,
``ranks.pt`` (test ranks, for ``benchmarks/paired.py``), ``result.json`` and
``last.pt`` (an interrupted run resumes; a finished one trains on when
``--epochs`` grows). ``report`` writes ``runs.csv`` (commands), ``paired.md``
(each negatives - random, seed-paired, bootstrap interval, epoch-time ratio
side by side) and ``curves.png`` to ``--results``; ``time`` writes
``epoch-time.md``, each model's and negatives' epoch alone (one thread).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))    # benchmarks/
import paired  # noqa: E402
from grid import write_csv  # noqa: E402
from workers import run_parallel  # noqa: E402

from dhns_geo.run_folder import atomic_save, load_checkpoint  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "pyg-dhns"
#: PyG's example settings per model: optimiser and model arguments.
SETTINGS = {
    "transe": ("Adam", {"lr": 0.01}, {}),
    "distmult": ("Adam", {"lr": 0.0001, "weight_decay": 1e-6}, {}),
    "complex": ("Adagrad", {"lr": 0.001, "weight_decay": 1e-6}, {}),
    "rotate": ("Adam", {"lr": 1e-3}, {"margin": 9.0}),
}
FIELDS = ["model", "negatives", "seed", "epochs", "run", "best_epoch", "valid_mrr", "test_mrr",
          "test_hits@1", "test_hits@3", "test_hits@10", "epoch_s", "commit", "torch",
          "device", "command"]


def splits(root: Path):
    from torch_geometric.datasets import FB15k_237
    return [FB15k_237(str(root / "FB15k_237"), split=s)[0] for s in ("train", "val", "test")]


def triples_of(data) -> torch.Tensor:
    return torch.stack([data.edge_index[0], data.edge_type, data.edge_index[1]], 1)


def command(args: argparse.Namespace, model: str, negatives: str, seed: int) -> str:
    return (f"python benchmarks/pyg_dhns.py run --root DATA --models {model} "
            f"--negatives {negatives} --seeds {seed} --epochs {args.epochs} "
            f"--eval-every {args.eval_every} --mu {args.mu} --share {args.share}"
            + (f" --patience {args.patience}" if args.patience else "")
            + (f" --k {args.k}" if negatives in SAMPLERS else "")
            + (" --normalize" if negatives == "dhns" and args.normalize else ""))


#: The registry's samplers a run adds to PyG's loss, each with ``--k``
#: negatives per positive (SANS filtered, as it always is); ``X-margin``: with
#: the margin ranking loss at the model's margin (PyG's TransE loss).
SAMPLERS = tuple(s + loss for loss in ("", "-margin") for s in ("uniform", "nscaching", "sans"))


def extra_negatives(kind: str, adapter, train, args: argparse.Namespace, seed: int,
                    margin: float):
    """What a run adds to PyG's ``model.loss``: ``None`` (``random``),
    ``OnlineDHNS`` or an ``OnlineSampler``."""
    from dhns_geo.data.filter import FilterIndex
    from dhns_geo.losses import KGELoss
    from dhns_geo.online import LOGISTIC, OnlineDHNS, OnlineSampler
    from dhns_geo.sampling import NSCachingSampler, SANSSampler, UniformSampler
    from dhns_geo.sampling.sans import k_hop
    if kind == "dhns":
        return OnlineDHNS.for_model(adapter, mu=args.mu, seed=seed, share=args.share,
                                    normalize=args.normalize)
    if kind == "random":
        return None
    n, r, triples = train.num_nodes, train.num_edge_types, triples_of(train)
    base = kind.removesuffix("-margin")
    sampler = (UniformSampler(n, r, args.k) if base == "uniform" else
               NSCachingSampler(n, triples, args.k, torch.full((r,), 0.5))
               if base == "nscaching" else
               SANSSampler(n, k_hop(triples, n, 2), args.k, r, FilterIndex(triples, n, r)))
    loss = KGELoss("margin", margin) if kind != base else LOGISTIC
    return OnlineSampler(sampler, loss, seed=seed)


class Run:
    """One (model, negatives, seed) run: PyG's loop, resumable."""

    def __init__(self, args: argparse.Namespace, model: str, negatives: str, seed: int):
        import torch_geometric.nn as pyg_nn
        from dhns_geo.adapters import KGEAdapter

        self.args, self.name = args, f"{model}-{negatives}-seed{seed}"
        self.dir = args.runs / self.name
        self.train, self.valid, self.test = splits(args.root)
        from dhns_geo.data.filter import FilterIndex
        self.known = FilterIndex(torch.cat([triples_of(d) for d in (self.train, self.valid,
                                                                    self.test)]),
                                 self.train.num_nodes, self.train.num_edge_types)
        torch.manual_seed(seed)
        opt, opt_args, model_args = SETTINGS[model]
        cls = {"transe": pyg_nn.TransE, "distmult": pyg_nn.DistMult,
               "complex": pyg_nn.ComplEx, "rotate": pyg_nn.RotatE}[model]
        self.model = cls(self.train.num_nodes, self.train.num_edge_types, 50, **model_args)
        self.optimizer = getattr(torch.optim, opt)(self.model.parameters(), **opt_args)
        self.adapter = KGEAdapter.from_pyg(self.model)
        self.extra = extra_negatives(negatives, self.adapter, self.train, args, seed,
                                     getattr(self.model, "margin", 1.0))
        self.epoch, self.history, self.best = 0, [], (-1.0, 0, None)
        self.loader = self.model.loader(head_index=self.train.edge_index[0],
                                        rel_type=self.train.edge_type,
                                        tail_index=self.train.edge_index[1],
                                        batch_size=1000, shuffle=True)

    def state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "dhns": self.extra.state_dict() if self.extra else None, "epoch": self.epoch,
                "history": self.history, "best": self.best, "rng": torch.get_rng_state()}

    def resume(self) -> None:
        state = load_checkpoint(self.dir / "last.pt")     # data only, nothing in it runs
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.extra:          # runs saved before the sampler kept its random stream
            self.extra.load_state_dict(state["dhns"], strict="_extra_state" in state["dhns"])
        self.epoch, self.history, self.best = state["epoch"], state["history"], state["best"]
        torch.set_rng_state(state["rng"])

    def step(self, head_index, rel_type, tail_index) -> torch.Tensor:
        """One step of PyG's loop: ``model.loss`` (plus the extra negatives' loss)."""
        self.optimizer.zero_grad()
        loss = self.model.loss(head_index, rel_type, tail_index)
        if self.extra is not None:
            loss = loss + self.extra(self.adapter, head_index, rel_type, tail_index).loss()
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def train_epoch(self) -> float:
        self.model.train()
        total = 0.0
        for head_index, rel_type, tail_index in self.loader:
            total += float(self.step(head_index, rel_type, tail_index)) * head_index.numel()
        return total / self.train.edge_type.numel()

    def evaluate(self, data, ranks: bool = False) -> dict:
        from dhns_geo.adapters import evaluate_model
        return evaluate_model(self.model, triples_of(data), self.known,
                              self.train.num_nodes, self.train.num_edge_types,
                              batch_size=512, return_ranks=ranks)

    def fit(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if (self.dir / "last.pt").is_file():
            self.resume()
        while self.epoch < self.args.epochs and not self.stalled():
            start = time.perf_counter()
            loss = self.train_epoch()
            self.epoch += 1
            row = {"epoch": self.epoch, "seconds": time.perf_counter() - start,
                   "loss": loss, "valid_mrr": ""}
            self.history.append(row)        # before the checkpoint that keeps it
            if self.epoch % self.args.eval_every == 0 or self.epoch == self.args.epochs:
                row["valid_mrr"] = self.evaluate(self.valid)["mrr"]
                if row["valid_mrr"] > self.best[0]:
                    self.best = (row["valid_mrr"], self.epoch,
                                 {k: v.clone() for k, v in self.model.state_dict().items()})
                atomic_save(self.state(), self.dir / "last.pt")
                print(f"[{self.name}] epoch {self.epoch} loss {loss:.4f} "
                      f"valid_mrr {row['valid_mrr']:.4f}", flush=True)

    def stalled(self) -> bool:
        """``--patience`` evaluations in a row without a better valid MRR."""
        patience = self.args.patience * self.args.eval_every
        return bool(patience) and self.epoch - self.best[1] >= patience

    def finish(self, command_line: str) -> None:
        from dhns_geo.provenance import provenance
        self.model.load_state_dict(self.best[2])
        metrics = self.evaluate(self.test, ranks=True)
        write_csv(self.dir / "history.csv", self.history, ["epoch", "seconds", "loss", "valid_mrr"])
        atomic_save({"test": metrics.pop("ranks")}, self.dir / "ranks.pt")
        result = {"epochs": self.args.epochs, "trained_epochs": self.epoch,
                  "best_epoch": self.best[1], "valid_mrr": self.best[0], "test": metrics,
                  "epoch_s": statistics.median(r["seconds"] for r in self.history),
                  "command": command_line, **provenance("cpu")}
        (self.dir / "result.json").write_text(json.dumps(result, indent=1))


def run_one(args: argparse.Namespace, model: str, negatives: str, seed: int) -> str:
    torch.set_num_threads(1)
    run = Run(args, model, negatives, seed)
    result = run.dir / "result.json"
    if not result.is_file() or json.loads(result.read_text()).get("epochs", 0) < args.epochs:
        run.fit()                           # a longer budget continues last.pt
        run.finish(command(args, model, negatives, seed))
    return run.name


def report(roots: list[Path], out: Path = RESULTS) -> None:
    """runs.csv, paired.md and curves.png, in ``out``, of the finished runs
    under ``roots`` (e.g. one folder per budget)."""
    rows = [row_of(path) for root in roots for path in sorted(root.glob("*/result.json"))]
    write_csv(out / "runs.csv", rows, FIELDS)
    (out / "paired.md").write_text(paired_table(rows))
    plot(rows, out / "curves.png")
    print((out / "paired.md").read_text())


def row_of(path: Path) -> dict:
    result = json.loads(path.read_text())
    model, rest = path.parent.name.split("-", 1)
    negatives, seed = rest.rsplit("-", 1)
    return {"model": model, "negatives": negatives, "seed": int(seed[4:]),
            "epochs": result.get("epochs", 100), "run": path.parent.name,
            "best_epoch": result["best_epoch"], "valid_mrr": round(result["valid_mrr"], 4),
            **{f"test_{k}": round(result["test"][k], 4)
               for k in ("mrr", "hits@1", "hits@3", "hits@10")},
            "epoch_s": round(result["epoch_s"], 3),
            "commit": result.get("git_commit", ""),
            **{k: result.get(k, "") for k in ("torch", "device")},
            "command": result["command"], "dir": path.parent}


def paired_table(rows: list[dict]) -> str:
    lines = ["| PyG model | epochs | negatives | seeds | test MRR, random | test MRR | − random "
             "[95 % interval] | per seed | epoch time / random |",
             "| --- " * 9 + "|"]
    for model in SETTINGS:
        for epochs in sorted({r["epochs"] for r in rows}):
            same = [r for r in rows if r["model"] == model and r["epochs"] == epochs]
            base = {r["seed"]: r for r in same if r["negatives"] == "random"}
            for negatives in ("dhns", *SAMPLERS):
                mine = [r for r in same if r["negatives"] == negatives and r["seed"] in base]
                if mine:
                    lines.append(paired_row(f"{model} | {epochs} | {negatives}", mine,
                                            [base[r["seed"]] for r in mine]))
    return "\n".join(lines) + "\n"


def paired_row(key: str, mine: list[dict], base: list[dict]) -> str:
    d = paired.paired_difference([r["dir"] for r in mine], [r["dir"] for r in base])
    ratio = (f"{statistics.fmean(m['epoch_s'] / b['epoch_s'] for m, b in zip(mine, base)):.2f}x"
             if all(b["epoch_s"] for b in base) else "—")   # toy epochs can round to 0 s
    return (f"| {key} | {len(mine)} | "
            f"{statistics.fmean(r['test_mrr'] for r in base):.4f} | "
            f"{statistics.fmean(r['test_mrr'] for r in mine):.4f} | "
            f"{d['diff']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}] | "
            + " ".join(f"{x:+.4f}" for x in d["seed_diffs"]) + f" | {ratio} |")


def plot(rows: list[dict], path: Path) -> None:
    longest = {}                  # a run continued to a longer budget: its longest curve
    for r in rows:
        key = (r["model"], r["negatives"], r["seed"])
        if key not in longest or r["epochs"] > longest[key]["epochs"]:
            longest[key] = r
    shown = list(longest.values())
    paired.plot_curves([r["dir"] for r in shown],
                       [f"{r['model']} {r['negatives']} s{r['seed']}" for r in shown], path,
                       "FB15k-237, PyG's example settings; dot: plateau",
                       ["--" if r["negatives"] == "random" else "-" for r in shown])


def time_steps(args: argparse.Namespace) -> None:
    """Seconds per epoch of each model with each of ``--negatives`` (from
    the median of ``--steps`` training steps), one thread, alone on the
    machine: ``epoch-time.md``."""
    torch.set_num_threads(1)
    lines = ["| PyG model | negatives | s / epoch | × random |", "| --- | --- | --- | --- |"]
    for model in args.models:
        seconds = {}
        for negatives in ("random", *[n for n in args.negatives if n != "random"]):
            run = Run(args, model, negatives, 0)
            batches, steps = (b for _ in iter(int, 1) for b in run.loader), []  # endless
            for step in range(args.warmup + args.steps):
                start = time.perf_counter()
                run.step(*next(batches))
                steps.append(time.perf_counter() - start)
            seconds[negatives] = statistics.median(steps[args.warmup:]) * len(run.loader)
            lines.append(f"| {model} | {negatives} | {seconds[negatives]:.1f} | "
                         f"{seconds[negatives] / seconds['random']:.2f}x |")
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "epoch-time.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    results = argparse.ArgumentParser(add_help=False)     # every command's
    results.add_argument("--results", type=Path, default=RESULTS, help="where tables go")
    training = argparse.ArgumentParser(add_help=False)    # run's and time's
    training.add_argument("--root", type=Path, required=True)
    training.add_argument("--models", nargs="+", default=["rotate", "transe"],
                          choices=list(SETTINGS))
    training.add_argument("--negatives", nargs="+", default=["random", "dhns"],
                          choices=["random", "dhns", *SAMPLERS])
    training.add_argument("--k", type=int, default=64, help="negatives per positive of a sampler")
    training.add_argument("--mu", type=float, default=1.0)
    training.add_argument("--share", type=float, default=0.25,
                          help="share of each batch that DHNS generates for")
    training.add_argument("--normalize", action="store_true",
                          help="DHNS diffuses embeddings scaled to unit RMS (needed where "
                               "they are far smaller than the noise, e.g. PyG's ComplEx)")
    run = sub.add_parser("run", parents=[training, results])
    run.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    run.add_argument("--epochs", type=int, default=60)
    run.add_argument("--eval-every", type=int, default=5)
    run.add_argument("--patience", type=int, default=0,
                     help="evaluations without gain before a run stops (0: never)")
    run.add_argument("--workers", type=int, default=2)
    run.add_argument("--runs", type=Path, default=Path("runs/pyg-dhns"))
    timing = sub.add_parser("time", parents=[training, results])
    timing.add_argument("--steps", type=int, default=60)
    timing.add_argument("--warmup", type=int, default=5)
    timing.add_argument("--runs", type=Path, default=Path("runs/pyg-dhns-time"))
    rep = sub.add_parser("report", parents=[results])
    rep.add_argument("--runs", type=Path, nargs="+", default=[Path("runs/pyg-dhns")])
    args = parser.parse_args()
    if args.command == "report":
        return report(args.runs, args.results)
    if args.command == "time":
        return time_steps(args)
    splits(args.root)                       # PyG processes the raw files once
    # The slowest runs first (DHNS, then the larger models), so that two
    # workers finish together.
    jobs = [(args, m, n, s) for s in args.seeds for n in sorted(args.negatives)
            for m in args.models]
    for _, future in run_parallel({job[1:]: (run_one, job) for job in jobs}, args.workers):
        print(f"done {future.result()}", flush=True)
    report([args.runs], args.results)


if __name__ == "__main__":
    main()
