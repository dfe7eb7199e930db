import csv
import dataclasses
import importlib
import importlib.util
import json
import re
import shlex
import subprocess
import sys

import pytest
from pathlib import Path

from conftest import run_cli

pytestmark = pytest.mark.slow      # trains models

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "samplers.py"


def load_script(name):
    """A script of benchmarks/ as a module."""
    spec = importlib.util.spec_from_file_location(name, BENCH.parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def test_samplers_grid_names_its_runs_and_prints_commands_that_rebuild_them(
        tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH.parent))
    grid = load_script("samplers")
    seen = []
    monkeypatch.setattr("dhns_geo.cli.train_commands.run_training",
                        lambda cfg, run_dir, **kw: seen.append((cfg, run_dir)) or {
                            "best_epoch": 0, "test": {}})
    monkeypatch.setattr("dhns_geo.cli.train_commands.metrics_table", lambda m: "")
    for method in grid.METHODS:
        for dataset in ("MKG-Y", "DB15K"):
            name = grid.run_name(dataset, method, 2)
            assert grid.parse_run_name(name) == (dataset, method, 2)
            config = grid.config_of(dataset, method, 2, "/data")
            assert config.select_on == ("valid-unseen" if dataset == "DB15K" else "valid")
            command = load_script("grid").train_command(config, tmp_path / name)
            code, _, err = run_cli(shlex.split(command)[1:], capsys)
            assert code == 0, err
            assert seen[-1] == (config, tmp_path / name)     # the same run, rebuilt
    assert grid.parse_run_name("MKG-Y-unknown-seed0") is None
    assert grid.parse_run_name("MKG-Y-rw-sans-seed1") == ("MKG-Y", "rw-sans", 1)


def test_the_sampler_preset_is_the_measured_configuration(monkeypatch):
    from dhns_geo.config import TrainConfig
    from dhns_geo.presets import PRESETS

    monkeypatch.syspath_prepend(str(BENCH.parent))
    measured = load_script("samplers").config_of("MKG-W", "nscaching-filtered", 0, "DATA")
    preset = TrainConfig(**PRESETS["rotate-nscaching-mkg-w"].values, root="DATA", seed=0)
    assert preset == dataclasses.replace(measured, features="none")   # MKG-W has none offline
    measured = load_script("samplers").config_of("DB15K", "nscaching-filtered", 0, "DATA")
    preset = TrainConfig(**PRESETS["rotate-nscaching-text-db15k"].values, root="DATA", seed=0)
    # "auto" took the textual features that dhns features text computed.
    assert preset == dataclasses.replace(measured, features="textual")
    measured = load_script("samplers").config_of("DB15K", "kbgan", 0, "DATA")
    preset = TrainConfig(**PRESETS["rotate-kbgan-text-db15k"].values, root="DATA", seed=0)
    assert preset == dataclasses.replace(measured, features="textual")
    for variant in "ah":
        measured = load_script("samplers").config_of("MKG-Y", f"mans-{variant}", 0, "DATA")
        preset = TrainConfig(**PRESETS[f"rotate-mans-{variant}-text-mkg-y"].values,
                             root="DATA", seed=0)
        assert preset == dataclasses.replace(measured, features="textual")


def test_the_registry_states_the_measured_costs(monkeypatch):
    """Each cost that ``dhns samplers`` and the cost notice state is the
    one measured for that configuration in
    benchmarks/results/samplers/cost-MKG-Y.md (each method's sampler and
    variant), to within the rounding of 1.0 for samplers as cheap as
    uniform."""
    from dhns_geo.sampling.registry import SAMPLERS

    monkeypatch.syspath_prepend(str(BENCH.parent))
    grid = load_script("samplers")
    table = (BENCH.parent / "results" / "samplers" / "cost-MKG-Y.md").read_text().splitlines()
    measured = {cells[1].strip(): float(cells[3]) for cells in
                (line.split("|") for line in table if line.startswith("| ")
                 and not line.startswith(("| method", "| ---")))}
    assert {"mans-v", "mans-a", "nscaching", "kbgan", "mmrns", "dhns"} <= set(measured)
    for method, cost in measured.items():
        config = grid.config_of("MKG-Y", method, 0, "DATA")
        if method != grid.BASELINE:
            stated = SAMPLERS[config.sampler].cost_for(config)
            assert round(abs(stated - cost), 2) <= 0.05, (method, stated, cost)
    variants = (BENCH.parent / "results" / "samplers" / "cost-MKG-Y-mans.md").read_text()
    apart = {m: float(s) for m, s in re.findall(r"^\| (mans-\w) \| ([\d.]+) \|", variants, re.M)}
    cost = {v: SAMPLERS["mans"].cost_for(grid.config_of("MKG-Y", f"mans-{v}", 0, "DATA"))
            for v in "vaht"}
    assert abs(cost["h"] - cost["a"] * apart["mans-h"] / apart["mans-a"]) <= 0.05
    beta = grid.config_of("MKG-Y", "mans-t", 0, "DATA").mans_beta    # t's switch point
    assert abs(cost["t"] - (beta * cost["v"] + 1 - beta)) <= 0.01


def test_samplers_grid_trains_in_parallel_and_reports_paired_rows(tmp_path, monkeypatch):
    """Two workers give the rows one worker gives (seeded, deterministic),
    and the report pairs each method with self-adv."""
    monkeypatch.syspath_prepend(str(BENCH.parent))     # workers import it by name
    grid = importlib.import_module("samplers")
    monkeypatch.setattr(grid, "PROTOCOL", {**grid.PROTOCOL, "dim": 8, "epochs": 1,
                                           "num_negatives": 4, "batch_size": 512})
    monkeypatch.setattr(grid, "RESULTS", tmp_path / "results")
    rows = {}
    for workers in (1, 2):
        runs = tmp_path / f"w{workers}"
        jobs = {grid.run_name("toy", m, 0): (grid.one_thread_run, (
                    grid.config_of("toy", m, 0, str(tmp_path)), runs / grid.run_name("toy", m, 0),
                    m)) for m in ("self-adv", "nscaching")}
        from workers import run_parallel
        rows[workers] = {k: (f.result()["valid_mrr"], f.result()["test_mrr"])
                         for k, f in run_parallel(jobs, workers)}
    assert rows[1] == rows[2]
    grid.report(tmp_path / "w2")
    table = (tmp_path / "results" / "paired.md").read_text()
    assert "| toy | nscaching | 1 |" in table and "| toy | self-adv | 1 |" in table
    written = list(csv.DictReader((tmp_path / "results" / "runs.csv").open()))
    assert {r["method"] for r in written} == {"self-adv", "nscaching"}
    assert all(r["command"].startswith("dhns train ") and "--root DATA" in r["command"]
               for r in written)


def test_a_paused_sampler_run_is_not_reported_and_resumes_to_the_uninterrupted_run(
        tmp_path, monkeypatch, capsys):
    """``--pause-after`` stops a run at an epoch's end without testing it or
    touching its config; the same call then finishes it as if never paused."""
    monkeypatch.syspath_prepend(str(BENCH.parent))
    grid = importlib.import_module("samplers")
    monkeypatch.setattr(grid, "PROTOCOL", {**grid.PROTOCOL, "dim": 8, "epochs": 3,
                                           "num_negatives": 4, "batch_size": 512})
    config = grid.config_of("toy", "nscaching", 0, str(tmp_path))
    whole = grid.one_thread_run(config, tmp_path / "whole", "whole")
    runs = tmp_path / "runs"
    paused = runs / grid.run_name("toy", "nscaching", 0)
    assert grid.one_thread_run(config, paused, "p", 1e-9) is None
    assert "[p] paused after epoch 1: the same command resumes it" in capsys.readouterr().out
    assert grid.finished(runs, grid.parse_run_name) == []          # not a result
    resumed = grid.one_thread_run(config, paused, "p")
    assert resumed["epochs"] == 3 and "--time-limit" not in resumed["command"]
    assert {k: resumed[k] for k in ("valid_mrr", "test_mrr", "best_epoch")} == {
        k: whole[k] for k in ("valid_mrr", "test_mrr", "best_epoch")}


def test_every_results_row_says_what_produced_it():
    """Each runs.csv row names the commit that made it and no machine's data
    folder."""
    results = BENCH.parent / "results"
    paths = sorted(results.rglob("runs.csv"))
    assert len(paths) >= 10
    missing = {}
    for path in paths:
        for row in csv.DictReader(path.open()):
            command = row.get("command", "")
            if not row.get("commit") or "--root /" in command or "--out /" in command:
                missing.setdefault(str(path.relative_to(results)), []).append(row.get("run"))
    assert missing == {}


def test_pyg_harness_resumes_to_the_uninterrupted_run(tmp_path, monkeypatch):
    """benchmarks/pyg_dhns.py: a run stopped after 2 epochs and extended to
    4 has the uninterrupted run's history (every evaluation row kept) and
    result; --patience stops a run that does not improve."""
    import argparse

    import torch
    from torch_geometric.data import Data

    monkeypatch.syspath_prepend(str(BENCH.parent))
    pyg = load_script("pyg_dhns")
    g = torch.Generator().manual_seed(0)

    def split(n):
        return Data(edge_index=torch.randint(0, 60, (2, n), generator=g),
                    edge_type=torch.randint(0, 4, (n,), generator=g), num_nodes=60)
    data = [split(600), split(40), split(40)]
    monkeypatch.setattr(pyg, "splits", lambda root: data)

    def run(runs, epochs, patience=0):
        args = argparse.Namespace(root=tmp_path, runs=tmp_path / runs, epochs=epochs,
                                  eval_every=1, patience=patience, mu=1.0, share=0.25, k=4)
        pyg.run_one(args, "transe", "random", 0)
        folder = args.runs / "transe-random-seed0"
        return ((folder / "history.csv").read_text().splitlines(),
                json.loads((folder / "result.json").read_text()))

    whole = run("whole", 4)
    run("parts", 2)
    parts = run("parts", 4)
    assert len(whole[0]) == 5 and all(line.split(",")[3] for line in whole[0][1:])
    strip = [",".join(f for i, f in enumerate(line.split(",")) if i != 1)   # not seconds
             for line in whole[0]]
    assert strip == [",".join(f for i, f in enumerate(line.split(",")) if i != 1)
                     for line in parts[0]]
    assert whole[1]["valid_mrr"] == parts[1]["valid_mrr"]
    # Patience 1: stops at the first evaluation without gain.
    history, result = run("patient", 50, patience=1)
    assert result["trained_epochs"] == result["best_epoch"] + 1 < 50
    assert result["epochs"] == 50
    # "X-margin": sampler X with the model's own margin ranking loss (TransE:
    # margin 1); plain X keeps OnlineSampler's self-adversarial loss. A run's
    # name parses back to its negatives.
    args = argparse.Namespace(root=tmp_path, runs=tmp_path / "m", epochs=1, eval_every=1,
                              patience=0, mu=1.0, share=0.25, k=4)
    pyg.run_one(args, "transe", "nscaching-margin", 0)
    row = pyg.row_of(args.runs / "transe-nscaching-margin-seed0" / "result.json")
    assert (row["model"], row["negatives"], row["seed"]) == ("transe", "nscaching-margin", 0)
    assert "--k 4" in row["command"]
    run_ = pyg.Run(args, "transe", "nscaching-margin", 0)
    assert (run_.extra.loss_fn.kind, run_.extra.loss_fn.margin) == ("margin", 1.0)
    assert type(run_.extra.sampler).__name__ == "NSCachingSampler"
    assert pyg.Run(args, "transe", "nscaching", 0).extra.loss_fn.kind == "self-adversarial"
    # The epoch-time table: one row per negatives, random first.
    pyg.time_steps(argparse.Namespace(root=tmp_path, runs=tmp_path / "t", models=["transe"],
                                      negatives=["uniform"], k=4, mu=1.0, share=0.25,
                                      steps=3, warmup=1, results=tmp_path / "r"))
    rows = (tmp_path / "r" / "epoch-time.md").read_text().splitlines()[2:]
    assert [r.split(" | ")[1] for r in rows] == ["random", "uniform"]
    assert rows[0].endswith("| 1.00x |")
