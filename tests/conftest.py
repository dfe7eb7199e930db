import os
import shutil
from pathlib import Path

import pytest

from dhns_geo.data.io import OPENKE_FILES

SHARED = Path(os.environ.get("DHNS_SHARED",
                             Path(__file__).resolve().parents[2] / "shared"))


def shared_dataset(name: str, files=OPENKE_FILES) -> Path:
    path = SHARED / "datasets" / name
    if not all((path / f).is_file() for f in files):
        pytest.skip(f"benchmark files of {name} not found in {path} "
                    "(../shared/datasets is absent)")
    return path


def place_raw(name: str, root: Path, files=OPENKE_FILES) -> Path:
    """Copies the shared raw ``files`` of ``name`` to ``root/<name>/raw``."""
    source = shared_dataset(name, files)
    raw = root / name / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy(source / f, raw / f)
    return root


@pytest.fixture
def openke_folder(tmp_path: Path) -> Path:
    """A tiny valid OpenKE folder: 5 entities, 2 relations."""
    folder = tmp_path / "kg"
    folder.mkdir()
    (folder / "entity2id.txt").write_text(
        "5\n" + "".join(f"e{i}\t{i}\n" for i in range(5)))
    (folder / "relation2id.txt").write_text("2\nr0\t0\nr1\t1\n")
    (folder / "train2id.txt").write_text("4\n0 1 0\n1 2 0\n2 3 1\n3 4 1\n")
    (folder / "valid2id.txt").write_text("1\n0 2 1\n")
    (folder / "test2id.txt").write_text("1\n4 0 0\n")
    return folder


def chain_folder(tmp_path, n=10):
    """e0 -next-> e1 -next-> ... -next-> e{n-1}, as a TSV folder."""
    folder = tmp_path / "chain"
    folder.mkdir()
    rows = [f"e{i}\tnext\te{i + 1}\n" for i in range(n - 1)]
    (folder / "train.tsv").write_text("".join(rows))
    (folder / "valid.tsv").write_text(rows[3])
    (folder / "test.tsv").write_text(rows[5])
    return folder


def losses(run_dir: Path) -> list[float]:
    """The epochs' mean training losses of a run folder (history.csv)."""
    import csv
    return [float(row["loss"]) for row in csv.DictReader((run_dir / "history.csv").open())]


def random_mrr(num_entities: int) -> float:
    """The expected MRR of a ranking drawn at random: H_N / N."""
    return sum(1 / k for k in range(1, num_entities + 1)) / num_entities


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """Runs ``dhns argv`` in-process; returns (exit code, stdout, stderr)."""
    from dhns_geo.cli.main import main

    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    return info.value.code, out, err


def record_lrs(trainer) -> list[float]:
    """A list that receives the learning rate of each optimizer step of
    ``trainer`` from now on."""
    seen = []
    step = trainer.optimizer.step

    def spy(*args, **kwargs):
        seen.append(trainer.optimizer.param_groups[0]["lr"])
        return step(*args, **kwargs)
    trainer.optimizer.step = spy
    return seen


def summation_order_atol(config, num_triples: int) -> float:
    """The absolute tolerance between the weights of two runs of ``config``
    whose float32 gradients are summed in different orders (ranks against
    one process, a sharded against a replicated table, sparse against dense
    rows).

    The gradients differ by O(eps) relative; an Adam or Adagrad step
    ``lr * g / sqrt(v)`` amplifies that to at most O(sqrt(eps)) of its step
    size where ``g`` and ``sqrt(v)`` nearly cancel, so over ``T`` steps a
    weight may drift by ``T * lr * sqrt(eps)`` (eps: float32's, 1.19e-7).
    Derived from the run (steps and learning rate), not fitted to one CPU;
    e.g. 52 steps at lr 0.02 give 3.6e-4, where one CPU measured 1.7e-4 on
    1 weight of 16,000.
    """
    import torch
    steps = config.epochs * -(-num_triples // config.batch_size)
    return steps * config.lr * torch.finfo(torch.float32).eps ** 0.5


#: Training triples of the toy graph (``load_dataset("toy")``).
TOY_TRAIN = 6436


def resumed_equals_uninterrupted(config_values: dict, tmp_path: Path, stop_after: int = 2) -> dict:
    """Trains ``config_values`` once straight through and once stopped after
    epoch ``stop_after`` and resumed; asserts the two end with the same
    metrics and the same objective state (a sampler's caches, generator,
    optimizer); returns the resumed run's checkpointed objective state."""
    import torch

    from dhns_geo.config import TrainConfig
    from dhns_geo.runs import run_training

    quiet = {"log": lambda line: None, "progress": False}
    full = run_training(TrainConfig(**config_values), tmp_path / "full", **quiet)

    def stop(trainer, record):
        if record["epoch"] == stop_after:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_training(TrainConfig(**config_values), tmp_path / "cut", callbacks=[stop], **quiet)
    assert run_training(TrainConfig(), tmp_path / "cut", resume=True, **quiet) == full
    a, b = (torch.load(tmp_path / run / "last.pt", weights_only=True)["objective"]
            for run in ("full", "cut"))
    assert a.keys() == b.keys() and a
    for key, value in a.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, b[key]), key
    return b
