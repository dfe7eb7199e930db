import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import TOY_TRAIN, summation_order_atol
from dhns_geo.config import TrainConfig
from dhns_geo.distributed import DistContext
from dhns_geo.runs import run_training

pytestmark = pytest.mark.slow      # trains models

OPTIONS = {"dim": 16, "epochs": 2, "num_negatives": 4, "batch_size": 250,
           "eval_every": 1, "seed": 3, "device": "cpu"}   # gloo, GPU or not
RUN_FILES = {"config.json", "model.pt", "last.pt", "last.prev.pt", "metrics.json",
             "history.csv", "ranks.pt", ".lock"}


def test_shares_cover_the_batch_once():
    for n in (0, 1, 7, 250):
        rows = [list(range(n))[DistContext(rank, 3).share(n)] for rank in range(3)]
        assert sum(rows, []) == list(range(n))


@pytest.mark.parametrize("sampler", ["uniform", "dhns"])
def test_two_gloo_ranks_equal_one_process(tmp_path, sampler):
    single = run_training(TrainConfig(sampler=sampler, **OPTIONS),
                          tmp_path / "single", progress=False)

    flags = [f"--{k.replace('_', '-')}={v}" for k, v in OPTIONS.items()]
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [str(torchrun), "--standalone", "--nproc-per-node=2", "-m", "dhns_geo.cli",
         "train", f"--sampler={sampler}", *flags, "--no-progress",
         "--out", str(tmp_path / "ddp")],
        capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "data parallel: 2 ranks (cpu)" in done.stdout
    assert done.stdout.count("test metrics") == 1          # rank 0 reports
    assert {p.name for p in (tmp_path / "ddp").iterdir()} == RUN_FILES

    ddp = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert ddp["best_epoch"] == single["best_epoch"]
    for split in ("valid", "test"):
        assert ddp[split]["num_triples"] == single[split]["num_triples"]
        assert ddp[split]["mrr"] == pytest.approx(single[split]["mrr"], abs=2e-3)
    a = torch.load(tmp_path / "single" / "model.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "ddp" / "model.pt", weights_only=True)["model"]
    atol = summation_order_atol(TrainConfig(**OPTIONS), TOY_TRAIN)
    for name in a:
        torch.testing.assert_close(b[name], a[name], atol=atol, rtol=0,
                                   msg=lambda m: f"{name}: {m}")
