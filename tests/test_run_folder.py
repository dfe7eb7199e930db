"""Run folders are safe to share and to crash: data-only checkpoints,
atomic writes, resume after SIGKILL, one writer, non-finite numbers caught."""

import csv
import json
import pathlib
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import run_cli
from dhns_geo.config import TrainConfig
from dhns_geo.errors import DHNSError
from dhns_geo.evaluation import filtered_ranks
from dhns_geo.run_folder import RunLock, load_checkpoint
from dhns_geo.training import TrainingDiverged
from dhns_geo.runs import run_training

pytestmark = pytest.mark.slow      # trains models

QUIET = {"log": lambda line: None, "progress": False}
OPTIONS = {"dim": 16, "epochs": 4, "eval_every": 1, "batch_size": 1024,
           "num_negatives": 8, "patience": 10}
HELPER = Path(__file__).parent / "helpers" / "crash_train.py"


def cli_args(run_dir: Path) -> list[str]:
    args = ["train", "--out", str(run_dir), "--no-progress"]
    for name, value in OPTIONS.items():
        args += ["--" + name.replace("_", "-"), str(value)]
    return args


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of OPTIONS: (metrics, best model state)."""
    run_dir = tmp_path_factory.mktemp("ref") / "run"
    metrics = run_training(TrainConfig(**OPTIONS), run_dir, **QUIET)
    return metrics, load_checkpoint(run_dir / "model.pt")["model"]


class Marker:
    """Unpickling it would create a file: proof that a load ran code."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.path),))


def plant(checkpoint: Path, marker: Path) -> None:
    state = torch.load(checkpoint, weights_only=True)
    state["note"] = Marker(marker)
    torch.save(state, checkpoint)


def assert_files_whole(run_dir: Path) -> None:
    """Every (non-temporary) file of the run folder parses completely."""
    for path in run_dir.iterdir():
        if path.name.startswith("."):
            continue
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".pt":
            load_checkpoint(path, required="test" if path.name == "ranks.pt" else "model")
        elif path.suffix == ".csv":
            rows = list(csv.DictReader(path.open()))
            assert all(len(row) == 5 and None not in row.values() for row in rows)


def test_planted_object_is_refused_and_never_run(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_training(TrainConfig(**{**OPTIONS, "epochs": 1}), run_dir, **QUIET)
    marker = tmp_path / "code-was-run"
    plant(run_dir / "model.pt", marker)
    plant(run_dir / "last.pt", marker)
    for argv, name in ((["eval", str(run_dir)], "model.pt"),
                       (["sample-negatives", str(run_dir), "--limit", "2"], "model.pt"),
                       (["train", "--resume", str(run_dir)], "last.pt")):
        code, _, err = run_cli(argv, capsys)
        assert code == 1 and err.count("\n") == 1, err
        assert f"{run_dir / name}: refused" in err
        assert not marker.exists()


def test_resume_after_sigkill_matches_uninterrupted(tmp_path, reference):
    """SIGKILL during an epoch, an evaluation, a checkpoint write, and at
    random moments; every time the folder holds only whole files and
    --resume ends with the uninterrupted run's metrics and weights."""
    metrics, weights = reference
    moments = [("step", 3), ("step", 12), ("eval", 2), ("write", 2), ("write", 5)]
    rng = random.Random(0)
    moments += [("random", rng.uniform(0.5, 2.5)) for _ in range(2)]
    for i, (moment, when) in enumerate(moments):
        run_dir = tmp_path / f"run{i}"
        if moment == "random":
            proc = subprocess.Popen([sys.executable, "-m", "dhns_geo.cli",
                                     *cli_args(run_dir)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while not (run_dir / "config.json").exists() and proc.poll() is None:
                time.sleep(0.02)
            time.sleep(when)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        else:
            proc = subprocess.run([sys.executable, str(HELPER), moment, str(when),
                                   *cli_args(run_dir)], capture_output=True)
            assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
        assert_files_whole(run_dir)
        resumed = run_training(TrainConfig(), run_dir, resume=True, **QUIET)
        assert resumed == metrics, (moment, when)
        final = load_checkpoint(run_dir / "model.pt")["model"]
        assert all(torch.equal(final[k], v) for k, v in weights.items())
        assert not list(run_dir.glob(".*.tmp")) and not list(run_dir.glob(".*.new"))


def test_damaged_last_checkpoint(tmp_path, reference):
    run_dir = tmp_path / "run"

    def stop(trainer, record):
        if record["epoch"] == 3:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        run_training(TrainConfig(**OPTIONS), run_dir, callbacks=[stop], **QUIET)
    data = (run_dir / "last.pt").read_bytes()
    (run_dir / "last.pt").write_bytes(data[: len(data) // 3])
    with pytest.raises(DHNSError, match=f"{run_dir / 'last.pt'}: damaged checkpoint"):
        load_checkpoint(run_dir / "last.pt")
    lines = []
    resumed = run_training(TrainConfig(), run_dir, resume=True,
                           log=lines.append, progress=False)
    assert resumed == reference[0]
    assert any("resuming from last.prev.pt (epoch 2)" in line for line in lines)

    (run_dir / "last.pt").write_bytes(b"")
    (run_dir / "last.prev.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DHNSError, match="last.prev.pt: damaged checkpoint"):
        run_training(TrainConfig(), run_dir, resume=True, **QUIET)


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"

    def disk_full(obj, handle):
        raise OSError(28, "No space left on device")

    def fill_disk(trainer, record):
        if record["epoch"] == 1:
            monkeypatch.setattr("dhns_geo.run_folder.torch.save", disk_full)
    with pytest.raises(DHNSError, match="No space left on device.*previous "
                                        "version is intact"):
        run_training(TrainConfig(**OPTIONS), run_dir, callbacks=[fill_disk], **QUIET)
    monkeypatch.undo()
    assert load_checkpoint(run_dir / "last.pt")["loop"]["epoch"] == 1
    assert not [p for p in run_dir.iterdir() if p.name.endswith((".tmp", ".new"))]


def test_one_writer_per_run_folder(tmp_path):
    run_dir = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from dhns_geo.run_folder import "
         "RunLock; lock = RunLock(sys.argv[1]).acquire(); print('held', flush=True); "
         "time.sleep(60)", str(run_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(DHNSError, match=f"being written by another dhns "
                                            f"process \\(pid {holder.pid}\\)"):
            run_training(TrainConfig(**OPTIONS), run_dir, **QUIET)
        with pytest.raises(DHNSError, match="being written by another"):
            RunLock(run_dir).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # A dead holder does not keep the folder.
    m = run_training(TrainConfig(**{**OPTIONS, "epochs": 1}), run_dir, **QUIET)
    assert m["best_epoch"] == 1


def test_nonfinite_scores_rank_last():
    scores = torch.tensor([[0.5, float("nan"), 0.1, 0.9, 0.2],
                           [float("nan"), 0.3, float("inf"), 0.1, 0.2],
                           [0.1, 0.2, 0.3, float("-inf"), 0.4]])
    target = torch.tensor([0, 0, 3])
    # row 0: 0.9 beats 0.5, the NaN candidate ranks below it -> 2;
    # row 1: NaN true answer, entity 2 filtered -> last of 3 candidates -> 4;
    # row 2: -inf true answer -> last of 4 candidates -> 5.
    ranks = filtered_ranks(scores, target, torch.tensor([1]), torch.tensor([2]))
    assert ranks.tolist() == [2.0, 4.0, 5.0]


def test_training_stops_on_nonfinite_loss(tmp_path):
    run_dir = tmp_path / "run"

    def poison(trainer, record):
        if record["epoch"] == 2:
            with torch.no_grad():
                trainer.model.relations.weight[0, 0] = float("nan")
    with pytest.raises(TrainingDiverged, match="loss became nan at epoch 3, step 1;"
                                               ".*checkpoint of epoch 2"):
        run_training(TrainConfig(**OPTIONS), run_dir, callbacks=[poison], **QUIET)
    last = load_checkpoint(run_dir / "last.pt")
    assert last["loop"]["epoch"] == 2
    assert all(torch.isfinite(v).all() for v in last["model"].values())


def test_a_finished_run_extended_to_more_epochs_equals_the_longer_run(tmp_path, reference,
                                                                      capsys):
    run_dir = tmp_path / "run"
    run_training(TrainConfig(**{**OPTIONS, "epochs": 2}), run_dir, **QUIET)
    code, _, err = run_cli(["train", "--resume", str(run_dir), "--epochs", "4",
                            "--no-progress"], capsys)
    assert code == 0, err
    assert json.loads((run_dir / "metrics.json").read_text()) | {"provenance": None} == \
        reference[0] | {"provenance": None}
    payload = json.loads((run_dir / "config.json").read_text())
    assert payload["config"]["epochs"] == 4 and payload["extended_from"] == [2]
    code, _, err = run_cli(["train", "--resume", str(run_dir), "--epochs", "3"], capsys)
    assert code != 0 and "would shorten it" in err
    code, _, err = run_cli(["train", "--resume", str(run_dir), "--lr", "0.1"], capsys)
    assert code != 0 and "--epochs and --time-limit extend it" in err
    code, _, err = run_cli(["train", "--resume", str(run_dir), "--time-limit", "60"], capsys)
    assert code != 0 and "has no time limit; --time-limit 60 would shorten it" in err


def test_a_run_stopped_by_its_time_limit_trains_on_when_the_limit_is_raised(
        tmp_path, reference, capsys):
    run_dir = tmp_path / "run"
    run_training(TrainConfig(**{**OPTIONS, "time_limit": 1e-9}), run_dir, **QUIET)
    assert load_checkpoint(run_dir / "last.pt")["loop"]["epoch"] == 1   # stopped, tested
    code, _, err = run_cli(["train", "--resume", str(run_dir), "--time-limit", "1e-10"], capsys)
    assert code != 0 and "would shorten it" in err
    code, _, err = run_cli(["train", "--resume", str(run_dir), "--time-limit", "0",
                            "--no-progress"], capsys)                 # 0: no limit
    assert code == 0, err
    assert json.loads((run_dir / "metrics.json").read_text()) | {"provenance": None} == \
        reference[0] | {"provenance": None}
    payload = json.loads((run_dir / "config.json").read_text())
    assert payload["config"]["time_limit"] == 0 and payload["time_limit_from"] == [1e-9]
