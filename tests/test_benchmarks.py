import csv
import importlib
import importlib.util
import shlex
import subprocess
import sys

import pytest
from pathlib import Path

from conftest import run_cli
from dhns_geo.config import TrainConfig

pytestmark = pytest.mark.slow      # trains models

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "reproduce.py"


def load_script(name):
    """A script of benchmarks/ (or of its studies/) as a module."""
    path = BENCH.parent / f"{name}.py"
    if not path.is_file():
        path = BENCH.parent / "studies" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_reproduce():
    return load_script("reproduce")


def test_printed_command_rebuilds_the_grid_config(tmp_path, capsys, monkeypatch):
    """Every row of the results grid carries a `dhns train` command; run as
    printed it must train exactly the configuration of that row."""
    reproduce = load_reproduce()
    seen = []
    monkeypatch.setattr("dhns_geo.cli.train_commands.run_training",
                        lambda cfg, run_dir, **kw: seen.append((cfg, run_dir)) or
                        {"best_epoch": 0, "test": {}})
    monkeypatch.setattr("dhns_geo.cli.train_commands.metrics_table", lambda m: "")
    for budget in reproduce.BUDGETS.values():
        for method in reproduce.VARIANTS:
            cfg = reproduce.grid_config(budget, method, dataset="MKG-Y",
                                        root="/data", scorer="distmult", seed=2)
            argv = shlex.split(reproduce.train_command(cfg, tmp_path / "r"))
            assert argv[:2] == ["dhns", "train"]
            code, _, err = run_cli(argv[1:], capsys)
            assert code == 0, err
            assert seen[-1] == (cfg, tmp_path / "r")


def test_summary_mean_and_spread():
    reproduce = load_reproduce()
    rows = [{"dataset": "D", "scorer": "rotate", "method": "dhns", "valid_mrr": v,
             **{f"test_{k}": v for k in reproduce.METRICS}, "epoch_s": 1.0}
            for v in (0.1, 0.2, 0.3)]
    (s,) = reproduce.summarize(rows)
    assert s["seeds"] == 3
    assert abs(s["test_mrr"] - 0.2) < 1e-12
    assert abs(s["test_mrr_std"] - (0.02 / 3) ** 0.5) < 1e-12


def test_results_merge_earlier_rows_whose_run_folders_are_gone(tmp_path):
    """A grid resumed elsewhere merges runs.csv rows without run folders:
    they stay in the tables and are left out of the plot."""
    reproduce = load_reproduce()

    def row(run, dataset, mrr):
        return {"dataset": dataset, "scorer": "rotate", "method": "dhns",
                "seed": 0, "run": run, "valid_mrr": mrr, "epoch_s": 1.0,
                **{f"test_{k}": mrr for k in reproduce.METRICS}}
    results, runs = tmp_path / "results", tmp_path / "runs"
    (runs / "new").mkdir(parents=True)
    (runs / "new" / "history.csv").write_text("epoch,valid_mrr\n1,0.1\n2,0.2\n")
    results.mkdir()
    reproduce.write_results(results, [row("old", "DB15K", 0.3)], runs)
    text = reproduce.write_results(results, [row("new", "MKG-Y", 0.2)], runs)
    assert "| DB15K | rotate | dhns | 1 | 0.3000" in text
    assert "| MKG-Y | rotate | dhns | 1 | 0.2000" in text
    assert (results / "curves.png").stat().st_size > 0


def test_gradient_mass_is_the_loss_derivative():
    """The hardness script's gradient mass of a group equals autograd's
    derivative of the self-adversarial loss by the negative scores."""
    import torch
    from dhns_geo.losses import KGELoss
    hardness = load_script("dhns_hardness")
    loss = KGELoss("self-adversarial", margin=6.0, temperature=0.5)
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(5, generator=g)
    neg = (3 * torch.randn(5, 4, generator=g)).requires_grad_()
    factor = torch.tensor([0.1, 0.5, 0.9, 1.0])
    loss(pos, neg, factor).backward()
    # KGELoss is the mean over B positives of (pos + neg) / 2.
    expected = neg.grad.sum(-1) * 2 * 5
    torch.testing.assert_close(hardness.gradient_mass(loss, neg.detach(), factor),
                               expected)


def test_hardness_rows_of_a_dhns_run(tmp_path):
    from dhns_geo.runs import run_training
    cfg = TrainConfig(dim=16, epochs=2, sampler="dhns", num_negatives=4,
                      eval_every=2, dhns_mu=0.2)
    run_training(cfg, tmp_path / "run", log=lambda line: None, progress=False)
    rows = load_script("dhns_hardness").hardness(tmp_path / "run", "valid", 50, 0)
    assert [r["step"] for r in rows] == [5, 6, 12, 25]
    assert [r["loss_weight"] for r in rows] == [0.2 * w / 4 for w in (0.5, 1, 1, 0.5)]
    for r in rows:
        for key in ("above_pos", "entity_pct", "true_pct", "grad_share"):
            assert 0 <= r[key] <= 1, (key, r)
        assert r["norm_ratio"] > 0


def test_plateau_rule():
    paired = load_script("paired")
    curve = [0.10, 0.20, 0.25, 0.28, 0.30, 0.301, 0.302, 0.303, 0.3031]
    # E=7: the last quarter starts after epoch 5 (0.30): 0.302 < 1.01 * 0.30;
    # E=6: after epoch 4 (0.28): 0.301 >= 1.01 * 0.28.
    assert not paired.converged(curve, 6) and paired.converged(curve, 7)
    assert paired.plateau_epoch(curve) == 7
    assert paired.plateau_epoch([0.1, 0.2, 0.3, 0.4, 0.5]) is None
    # A pause that the curve climbs out of again is not a plateau.
    assert paired.plateau_epoch(curve[:7] + [0.40, 0.41, 0.412, 0.413, 0.414]) == 12


def test_paired_difference_and_interval(tmp_path):
    import torch
    paired = load_script("paired")
    runs = {}
    for name, shift in (("base", 0), ("better", 1)):
        for seed in (0, 1):
            folder = tmp_path / f"{name}{seed}"
            folder.mkdir()
            head = torch.arange(1.0, 101.0)
            better = torch.where(torch.arange(100) < 50 * shift, torch.ones(100), head)
            torch.save({"test": {"head": better, "tail": head}}, folder / "ranks.pt")
            runs.setdefault(name, []).append(folder)
    same = paired.paired_difference(runs["base"], runs["base"])
    assert same["diff"] == 0 and same["ci_low"] == 0 == same["ci_high"]
    result = paired.paired_difference(runs["better"], runs["base"])
    head = torch.arange(1.0, 101.0)
    want = float(((1 - 1 / head[:50]) / 2).sum() / 100)   # heads 1..50 now rank 1
    assert result["diff"] == pytest.approx(want)
    assert result["ci_low"] < result["diff"] < result["ci_high"]
    assert result["ci_low"] > 0 and result["seed_std"] == 0
    # The same from the command line, seed by seed.
    out = subprocess.run([sys.executable, str(BENCH.parent / "paired.py"), "diff",
                          "--method", *map(str, runs["better"]),
                          "--baseline", *map(str, runs["base"])],
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith(f"test MRR difference {want:+.4f} [") and "2 seed(s)" in out


def test_time_to_reach(tmp_path):
    paired = load_script("paired")
    (tmp_path / "history.csv").write_text(
        "epoch,loss,triples_per_s,seconds,valid_mrr\n1,1,1,2.5,0.1\n2,1,1,2.0,\n"
        "3,1,1,3.0,0.31\n4,1,1,3.0,0.35\n")
    assert paired.time_to_reach(tmp_path, 0.3) == (3, 7.5)
    assert paired.time_to_reach(tmp_path, 0.5) is None


def test_choose_keeps_the_best_flat_run_and_skips_collapsed_ones(tmp_path):
    """The sweep's choice (as for RotatE on MKG-Y: a flat run 0.0007 below a
    still-climbing one wins) and a collapsed, flat run (TransE at a too
    high lr) never wins."""
    paired = load_script("paired")

    def run(name, curve):
        folder = tmp_path / name
        folder.mkdir()
        rows = "".join(f"{e},1,1,1,{m}\n" for e, m in enumerate(curve, 1))
        (folder / "history.csv").write_text(
            "epoch,loss,triples_per_s,seconds,valid_mrr\n" + rows)
        return folder
    climbing = run("lr0.02", [0.1, 0.2, 0.25, 0.28, 0.30, 0.31, 0.32, 0.3329])
    flat = run("lr0.05", [0.3, 0.33, 0.332, 0.3322, 0.3321, 0.332, 0.3321, 0.3322])
    collapsed = run("lr0.5", [0.01] * 8)
    assert paired.choose([climbing, flat, collapsed])[0] == flat
    best, why = paired.choose([climbing, collapsed])
    assert best == climbing and why.startswith("no run meets the plateau rule")


def test_parallel_grid_gives_the_sequential_rows(tmp_path, monkeypatch):
    """--workers trains each run in its own process: the same rows as one
    worker (runs are seeded and deterministic on the CPU)."""
    monkeypatch.syspath_prepend(str(BENCH.parent))   # workers import it by name
    reproduce = importlib.import_module("reproduce")
    budget = {"dim": 8, "num_negatives": 4, "batch_size": 256, "epochs": 1,
              "lr": 0.05, "eval_every": 1}
    grid = [({"run": f"toy-{m}"}, reproduce.grid_config(budget, m, dataset="toy",
                                                         scorer="distmult", seed=0))
            for m in ("uniform", "self-adv")]
    rows = {}
    for workers in (1, 2):
        done = reproduce.run_grid(grid, tmp_path / f"w{workers}", workers)
        rows[workers] = {key["run"]: (row["valid_mrr"], row["test_mrr"])
                         for key, row in done}
    assert rows[1] == rows[2] and len(rows[1]) == 2


def test_time_to_quality_report_reads_thresholds_off_the_curves(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH.parent))          # it imports compare_pykeen
    ttq = load_script("time_to_quality")
    path = tmp_path / "ttq.csv"
    path.write_text("framework,lr,epochs,train_s,best_mrr,reached_epoch,reached_s,curve\n"
                    'ours,0.05,6,30.0,0.31,6,30.0,"[[2, 10.0, 0.1], [4, 20.5, 0.26], [6, 30.0, 0.31]]"\n'
                    'theirs,0.05,4,80.0,0.2,,,"[[2, 40.0, 0.05], [4, 80.0, 0.2]]"\n')
    table = ttq.report(str(path), [0.25, 0.3]).splitlines()
    assert table[2] == "| ours | 0.05 | 0.3100 (6, 30.0 s) | 20 s (ep. 4) | 30 s (ep. 6) |"
    assert table[3] == "| theirs | 0.05 | 0.2000 (4, 80.0 s) | – | – |"


def test_defaults_study_commands_train_their_settings(tmp_path, capsys, monkeypatch):
    """Each config's printed flags, run through `dhns train`, give exactly the
    study's settings, whatever the defaults of the day are."""
    monkeypatch.syspath_prepend(str(BENCH.parent))          # it imports paired
    study = load_script("defaults_study")
    seen = []
    monkeypatch.setattr("dhns_geo.cli.train_commands.run_training",
                        lambda cfg, run_dir, **kw: seen.append(cfg) or
                        {"best_epoch": 0, "test": {}})
    monkeypatch.setattr("dhns_geo.cli.train_commands.metrics_table", lambda m: "")
    for name, (_, settings) in study.CONFIGS.items():
        argv = ["train", *shlex.split(study.flags(settings)), "--out", str(tmp_path / name)]
        code, _, err = run_cli(argv, capsys)
        assert code == 0, err
        assert {k: getattr(seen[-1], k) for k in settings} == settings
    assert "--no-shared-negatives" in study.flags(study.CONFIGS["A"][1])


def test_defaults_study_merge_replaces_rows_of_the_same_run(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH.parent))
    study = load_script("defaults_study")
    path = tmp_path / "runs.csv"
    old = [{f: "" for f in study.FIELDS} | {"dataset": "D", "config": c, "version": v,
                                            "seed": "0", "test_mrr": "0.1"}
           for c, v in (("A", "0.1"), ("D", "0.1"))]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, study.FIELDS)
        w.writeheader()
        w.writerows(old)
    new = [{**old[1], "test_mrr": "0.2"}, {**old[1], "version": "0.2", "test_mrr": "0.3"}]
    merged = study.merge(path, new)
    assert [(r["config"], r["version"], r["test_mrr"]) for r in merged] == [
        ("A", "0.1", "0.1"), ("D", "0.1", "0.2"), ("D", "0.2", "0.3")]


@pytest.mark.parametrize("mode", ["mine", "snap"])
def test_hard_negatives_pilot_appends_hard_non_answers(mode):
    import torch
    from dhns_geo.build import build_model, build_sampler
    from dhns_geo.data import split_triples
    from dhns_geo.data.filter import FilterIndex
    from dhns_geo.datasets import ToyMMKG

    pilot = load_script("hard_negatives_pilot")
    data = ToyMMKG(num_entities=200, num_relations=4)[0]
    cfg = TrainConfig(dim=16, num_negatives=8, **(
        {"sampler": "dhns", "dhns_steps": 10} if mode == "snap" else {}))
    model = build_model(cfg, data)
    train = split_triples(data, "train")
    index = FilterIndex(train, 200, 4)
    sampler = pilot.PoolWithHardNegatives(build_sampler(cfg, data), index, mode, 3)
    batch = train[:64]
    (neg,) = sampler.sample(batch, model, model.encode(lazy=True),
                            torch.Generator().manual_seed(0))
    hard = 4 if mode == "snap" else 3                  # snap: one per active level
    assert neg.head.shape == neg.tail.shape == (64, 8 + hard)
    side = neg.corrupted_head
    assert bool((side == side[:, :1]).all())           # the pool's side, for all
    h, r, t = batch.unbind(1)
    tail_rows = ~side[:, 0]
    assert bool((neg.head[tail_rows] == h[tail_rows, None]).all())
    mined = neg.head[:, 8:].where(side[:, 8:], neg.tail[:, 8:])
    heads = torch.where(side[:, 8:], mined, h[:, None])
    tails = torch.where(side[:, 8:], t[:, None], mined)
    assert not bool(index.contains(heads, r[:, None].expand_as(heads), tails).any())
    if mode == "mine":      # the model's top-scored non-answers, hardest first
        with torch.no_grad():
            scores = model(heads, r[:, None].expand_as(heads), tails)
        assert bool((scores[:, :-1] >= scores[:, 1:] - 1e-5).all())
    else:                   # each level carries its NTAT margin factor
        assert neg.margin_factor[0, 8:].tolist() == pytest.approx([0.3, 0.5, 0.7, 0.9])


def test_every_results_row_says_what_produced_it():
    """Each runs.csv row names its commit and no machine's data folder."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "runs_provenance", Path(__file__).resolve().parents[1] / "benchmarks" / "runs_provenance.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    paths = sorted(module.RESULTS.rglob("runs.csv"))
    assert len(paths) >= 16
    assert {str(p.relative_to(module.RESULTS)): module.missing(p) for p in paths
            if module.missing(p)} == {}


def test_parallel_workers_end_with_their_parent(tmp_path):
    """A killed benchmark takes its worker processes with it (they would
    otherwise go on training queued runs), and a job's error reaches the
    caller through its future."""
    import os
    import signal
    import time

    script = tmp_path / "parent.py"
    script.write_text(f"""
import os, sys, time
sys.path.insert(0, {str(BENCH.parent)!r})
from workers import run_parallel

def job(path):
    open(path, "w").write(str(os.getpid()))
    time.sleep(120)

def fail():
    raise ValueError("bad run")

if __name__ == "__main__":
    jobs = {{"sleeper": (job, ({str(tmp_path / 'pid')!r},)), "failing": (fail, ())}}
    for key, future in run_parallel(jobs, 2):
        print(key, repr(future.exception()), flush=True)
""")
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert parent.stdout.readline().strip() == "failing ValueError('bad run')"
    deadline = time.time() + 60
    while not (tmp_path / "pid").is_file() or not (tmp_path / "pid").read_text():
        assert time.time() < deadline
        time.sleep(0.1)
    worker = int((tmp_path / "pid").read_text())
    parent.send_signal(signal.SIGKILL)                 # no cleanup code runs
    parent.wait()
    deadline = time.time() + 20

    def alive(pid):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        status = Path(f"/proc/{pid}/stat")
        return not (status.is_file() and status.read_text().split()[2] == "Z")

    while alive(worker):
        assert time.time() < deadline, "the worker outlived its killed parent"
        time.sleep(0.1)


def test_mmkg_sota_names_runs_and_chooses_on_seed_0_valid(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH.parent))
    sota = load_script("mmkg_sota")
    assert sota.run_name("MKG-Y", "dura", 1) == "MKG-Y-dura-seed1"       # the preset's dim
    assert sota.run_name("MKG-Y", "text-dura", 0, 2000) == "MKG-Y-text-dura-d2000-seed0"
    for name in ("MKG-Y-dura-0.1-seed2", "FB15k-237-base-seed0", "DB15K-text-dura-d2000-seed1"):
        dataset, ingredient, dim, seed = sota.parse_run_name(name)
        assert sota.run_name(dataset, ingredient, seed, dim) == name
    assert sota.parse_run_name("MKG-Y-unknown-seed0") is None

    def row(ingredient, seed, valid, test, dim=500):
        return {"dataset": "MKG-Y", "dim": dim, "ingredient": ingredient, "seed": seed,
                "valid_mrr": valid, "test_mrr": test}

    table = sota.grid_table([row("base", 0, 0.30, 0.40), row("dura", 0, 0.32, 0.35),
                             row("dura", 1, 0.20, 0.33), row("base", 0, 0.31, 0.50, 1000)])
    lines = [line for line in table.splitlines() if line.startswith("| MKG-Y")]
    # Chosen on seed-0 valid (dura at 250), never on test (base at 500 tests best).
    assert lines[0] == "| MKG-Y | 250 | dura | 0.3200 | yes | 2 | 0.3400 |"
    assert [line.split(" | ")[1:3] for line in lines[1:]] == [["500", "base"], ["250", "base"]]
    goals = sota.goals_table([row("base", 0, 0.30, 0.40), row("dura", 0, 0.32, 0.35),
                              row("dura", 1, 0.20, 0.33)])
    assert "| MKG-Y | dura, rank 250 | 2 | 0.2600 | 0.3400 | 0.395 | 0.0550 |" in goals
