"""The sharded entity table: row order, shard files, and 2 gloo ranks with
a sharded table training the same model as one process."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import TOY_TRAIN, run_cli, summation_order_atol
from dhns_geo.config import TrainConfig
from dhns_geo.errors import DHNSError, OptionError
from dhns_geo.evaluation import filtered_counts, filtered_ranks, realistic_ranks
from dhns_geo.sharding import RowPermutation, full_table, gather_rows
from dhns_geo.runs import load_run, run_training

pytestmark = pytest.mark.slow      # trains models

needs_torchrec = pytest.mark.skipif(
    importlib.util.find_spec("torchrec") is None,
    reason="TorchRec is not installed (pip install '.[distributed]' && "
           "pip install --no-deps torchrec==1.8.0; make install does both)")

OPTIONS = {"dim": 16, "epochs": 2, "num_negatives": 4, "batch_size": 250,
           "eval_every": 1, "seed": 3, "device": "cpu", "optimizer": "adagrad",
           "lr": 0.1}


@pytest.mark.parametrize("n", [1, 2, 10, 12, 1001])
def test_row_order_is_a_bijection_that_spreads_consecutive_ids(n):
    perm = RowPermutation(n)
    rows = perm.rows(torch.arange(n))
    assert sorted(rows.tolist()) == list(range(n))
    assert torch.equal(perm.entities(rows), torch.arange(n))
    if n >= 1001:       # the first tenth of the ids lands on both halves evenly
        first = rows[:n // 10]
        assert abs(int((first < n // 2).sum()) - n // 20) <= 2


def test_shards_of_any_job_size_give_any_rows_and_the_table():
    n, d = 11, 3
    perm = RowPermutation(n)
    table = torch.randn(n, d)                         # in entity order
    by_row = table[perm.entities(torch.arange(n))]     # in row order

    def shards(world):
        per = -(-n // world)
        return [{"num_entities": n, "offset": o, "rows": by_row[o:o + per],
                 "permutation": [perm.a, perm.b]} for o in range(0, n, per)]

    assert torch.equal(gather_rows(shards(3), "rows", 2, 9), by_row[2:9])
    assert torch.equal(full_table(shards(2)), table)
    assert torch.equal(full_table(shards(1)), table)
    with pytest.raises(DHNSError, match="do not cover rows"):
        gather_rows(shards(3)[:2], "rows", 0, n)


def test_shard_files_of_another_epoch_are_refused(tmp_path):
    from dhns_geo.run_folder import CheckpointError, atomic_save, shard_path
    from dhns_geo.sharding import load_epoch_shards

    n = 6
    perm = RowPermutation(n)

    def write(name, epoch, rank=None):
        for r in (0, 1) if rank is None else (rank,):
            shard = {"num_entities": n, "dim": 2, "offset": 3 * r,
                     "rows": torch.full((3, 2), float(epoch or 0)),
                     "permutation": [perm.a, perm.b]}
            if epoch is not None:
                shard["epoch"] = epoch
            (tmp_path / "shards").mkdir(exist_ok=True)
            atomic_save(shard, shard_path(tmp_path, name, r, 2))

    write("model", 4)
    assert [s["epoch"] for s in load_epoch_shards(tmp_path, "model", 4)] == [4, 4]
    write("model", 5, rank=1)        # a crash between the ranks' writes
    with pytest.raises(CheckpointError, match=r"no model shard files of epoch 4.*\[4, 5\]"):
        load_epoch_shards(tmp_path, "model", 4)
    write("model", None)             # written before shards carried an epoch
    assert len(load_epoch_shards(tmp_path, "model", 4)) == 2
    write("last", 7)
    write("last.prev", 6)
    assert load_epoch_shards(tmp_path, "last", 6)[0]["epoch"] == 6   # the previous
    with pytest.raises(CheckpointError, match="epoch 5"):
        load_epoch_shards(tmp_path, "last", 5)


def test_counts_summed_over_column_blocks_give_the_ranks():
    torch.manual_seed(0)
    scores = torch.randn(4, 9).round(decimals=1)        # with ties
    scores[1, 5] = float("nan")
    target = torch.tensor([0, 3, 8, 5])
    row, col = torch.tensor([0, 0, 2]), torch.tensor([1, 0, 4])
    expected = filtered_ranks(scores, target, row, col)
    true = scores[torch.arange(4), target]
    greater, ties = torch.zeros(4, dtype=torch.long), torch.zeros(4, dtype=torch.long)
    rows_all, cols_all = torch.cat([row, torch.arange(4)]), torch.cat([col, target])
    for lo, hi in ((0, 4), (4, 9)):                      # two "shards"
        mine = (cols_all >= lo) & (cols_all < hi)
        g, t, _ = filtered_counts(scores[:, lo:hi], true, rows_all[mine],
                                  cols_all[mine] - lo)
        greater, ties = greater + g, ties + t
    torch.testing.assert_close(realistic_ranks(greater, ties, None, true), expected)


def test_options_that_need_every_row_are_refused():
    for name, value in (("encoder", "rgcn"), ("training", "1vsall")):
        with pytest.raises(OptionError, match="with shard_entities"):
            TrainConfig(shard_entities=True, **{name: value})


@needs_torchrec
def test_outside_torchrun_and_adam_on_cpu_are_refused(tmp_path):
    with pytest.raises(DHNSError, match="torchrun job"):
        run_training(TrainConfig(shard_entities=True, **OPTIONS), tmp_path / "a",
                     progress=False)
    from dhns_geo.distributed import DistContext
    from dhns_geo.sharding import ShardedEntities
    with pytest.raises(DHNSError, match="--optimizer adagrad"):
        ShardedEntities(10, 4, "adam", 0.1, DistContext(), torch.device("cpu"))


def test_a_missing_engine_names_the_install(monkeypatch):
    from dhns_geo.sharding import _import_engine
    for name in [m for m in sys.modules if m.split(".")[0] == "torchrec"] + ["torchrec"]:
        monkeypatch.setitem(sys.modules, name, None)       # as if not installed
    with pytest.raises(DHNSError, match=r"needs TorchRec .*--no-deps torchrec==1\.8\.0"):
        _import_engine()


def _torchrun(tmp_path, out, *args, ranks=2):
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [str(torchrun), "--standalone", f"--nproc-per-node={ranks}", "-m", "dhns_geo.cli",
         "train", *args, "--no-progress"] + (["--out", str(out)] if out else []),
        capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _assert_same_model(run_a, run_b):
    config_a, _, model_a, _ = load_run(run_a)
    a, b = model_a.state_dict(), load_run(run_b)[2].state_dict()
    assert set(a) == set(b)
    atol = summation_order_atol(config_a, TOY_TRAIN)
    for name in a:
        torch.testing.assert_close(b[name], a[name], atol=atol, rtol=0,
                                   msg=lambda m: f"{name}: {m}")


@needs_torchrec
@pytest.mark.parametrize("extra", [
    {"sampler": "uniform", "loss": "softplus"},
    {"sampler": "uniform"},                              # self-adversarial
    {"sampler": "dhns"},
], ids=["uniform", "self-adversarial", "dhns"])
def test_two_gloo_ranks_with_a_sharded_table_equal_one_process(tmp_path, extra, capsys):
    options = {**OPTIONS, **extra}
    single = run_training(TrainConfig(**options), tmp_path / "single", progress=False)

    flags = [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
    out = tmp_path / "sharded"
    stdout = _torchrun(tmp_path, out, "--shard-entities", *flags)
    assert "entity table sharded over 2 ranks" in stdout
    assert stdout.count("test metrics") == 1
    assert sorted(p.name for p in (out / "shards").iterdir()) == [
        f"{name}-{r}-of-2.pt" for name in ("last", "last.prev", "model") for r in (0, 1)]
    shard = torch.load(out / "shards" / "last-1-of-2.pt", weights_only=True)
    assert shard["rows"].shape == (shard["num_entities"] // 2, 16)   # N/W rows
    assert set(shard["optimizer"]) == {"momentum1"}                  # Adagrad's sum

    sharded = json.loads((out / "metrics.json").read_text())
    assert sharded["best_epoch"] == single["best_epoch"]
    for split in ("valid", "test"):
        assert sharded[split]["num_triples"] == single[split]["num_triples"]
        assert sharded[split]["mrr"] == pytest.approx(single[split]["mrr"], abs=2e-3)
    _assert_same_model(tmp_path / "single", out)       # the table assembled from shards

    if extra.get("loss") != "softplus":
        return
    # One machine evaluates the sharded run.
    code, printed, err = run_cli(["eval", str(out), "--json"], capsys)
    assert code == 0, err
    assert json.loads(printed)["mrr"] == pytest.approx(sharded["test"]["mrr"], abs=1e-6)
    # ... and predicts what the one-process run predicts.
    top = {}
    for run in (tmp_path / "single", out):
        code, printed, err = run_cli(["predict", str(run), "--head", "0", "--relation",
                                      "0", "--top", "5", "--json"], capsys)
        assert code == 0, err
        top[run] = json.loads(printed)
    assert [r["id"] for r in top[out]] == [r["id"] for r in top[tmp_path / "single"]]
    for a, b in zip(top[out], top[tmp_path / "single"]):
        assert a["score"] == pytest.approx(b["score"], abs=1e-3)
    # ... and mines negatives from it (its generator trained on one machine),
    code, printed, err = run_cli(["sample-negatives", str(out), "--negatives", "dhns",
                                  "--limit", "2", "--k", "1", "--levels", "5",
                                  "--generator-epochs", "1", "--no-progress"], capsys)
    assert code == 0, err
    assert len(printed.strip().splitlines()) == 1 + 2 * 2          # header + rows
    # ... or shows its own sampler's draws.
    code, printed, err = run_cli(["sample-negatives", str(out), "--limit", "2"], capsys)
    assert code == 0, err
    assert printed.splitlines()[0].split("\t")[3] == "sampler" and len(printed.splitlines()) > 2
    # Rewound to epoch 1 (as if stopped there), --resume trains epoch 2 again
    # from the shards' rows and optimizer state, to the same model: on the
    # same 2 ranks, and on 1 (which reads its rows from both shards).
    for ranks in (2, 1):
        shutil.copy(out / "last.prev.pt", out / "last.pt")
        for r in (0, 1):                      # the files of the 2-rank jobs
            shutil.copy(out / "shards" / f"last.prev-{r}-of-2.pt",
                        out / "shards" / f"last-{r}-of-2.pt")
        stdout = _torchrun(tmp_path, None, "--resume", str(out), ranks=ranks)
        assert "resumed after epoch 1" in stdout
        _assert_same_model(tmp_path / "single", out)
    names = {p.name for p in (out / "shards").iterdir()}
    assert {n for n in names if n.startswith("last-")} == {"last-0-of-1.pt"}
