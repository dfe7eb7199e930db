"""TensorBoard logging (dhns_geo/tracking.py)."""

import csv

import pytest

from conftest import run_cli


def test_tensorboard_event_file(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    code, _, err = run_cli(["train", "--sampler", "dhns", "--dim", "16", "--epochs", "2",
                            "--eval-every", "1", "--dhns-steps", "10",
                            "--out", str(tmp_path / "run"),
                            "--tensorboard", str(tmp_path / "tb")], capsys)
    assert code == 0, err
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/triples_per_s", "valid/mrr",
            "dhns/generator_loss"} <= tags
    assert {"dhns/score_level_t1", "dhns/score_level_t5"} & tags
    history = list(csv.DictReader((tmp_path / "run" / "history.csv").open()))
    logged = [e.value for e in events.Scalars("train/loss")]
    assert logged == pytest.approx([float(h["loss"]) for h in history])
