"""Hyper-parameter search (dhns_geo/tune.py, dhns tune)."""

import csv
import json

import pytest

from conftest import run_cli
from dhns_geo.config import TrainConfig

pytestmark = pytest.mark.slow      # trains models


def test_tune_study_resumes_and_never_reads_test(tmp_path, capsys):
    pytest.importorskip("optuna")
    from dhns_geo.tune import tune

    base = TrainConfig(dim=16, epochs=2, eval_every=1, num_negatives=4, batch_size=2048)
    space = {"lr": {"type": "float", "low": 0.005, "high": 0.05, "log": True},
             "margin": {"type": "float", "low": 3.0, "high": 9.0}}
    tune(base, space, tmp_path / "study", trials=1, log=lambda line: None)
    lines = []                          # a later call goes on with the same study
    result = tune(base, space, tmp_path / "study", trials=3, log=lines.append)
    assert lines[0].startswith("resuming the study") and "1 of 3 trials done" in lines[0]
    assert sum(line.startswith("trial ") for line in lines) == 2
    rows = list(csv.DictReader((tmp_path / "study" / "trials.csv").open()))
    assert len(rows) == 3 and {r["state"] for r in rows} <= {"COMPLETE", "PRUNED"}
    for r in rows:
        if r["state"] == "PRUNED":
            continue
        metrics = json.loads((tmp_path / "study" / f"trial-{r['number']}" /
                              "metrics.json").read_text())
        assert "test" not in metrics and float(r["valid_mrr"]) == pytest.approx(
            metrics["valid"]["mrr"])
    assert result["best_value"] == max(float(r["valid_mrr"]) for r in rows
                                       if r["state"] == "COMPLETE")
    # best.yaml is a config dhns train accepts.
    code, _, err = run_cli(["train", "--config", str(tmp_path / "study" / "best.yaml"),
                            "--epochs", "1", "--out", str(tmp_path / "best")], capsys)
    assert code == 0, err
    saved = json.loads((tmp_path / "best" / "config.json").read_text())["config"]
    assert saved["lr"] == pytest.approx(result["best_params"]["lr"])


def test_tune_refuses_a_bad_space(tmp_path, capsys):
    pytest.importorskip("optuna")
    (tmp_path / "s.yaml").write_text("lrr: {type: float, low: 0.1, high: 1}\n")
    code, _, err = run_cli(["tune", "--space", str(tmp_path / "s.yaml"),
                            "--out", str(tmp_path / "t")], capsys)
    assert code == 1 and "lrr: not a dhns train option" in err
    (tmp_path / "s.yaml").write_text("dhns_mu: {type: float, low: 0.1, high: 1}\n")
    code, _, err = run_cli(["tune", "--space", str(tmp_path / "s.yaml"),
                            "--out", str(tmp_path / "t")], capsys)
    assert code == 1 and "dhns_mu must be used only with sampler dhns" in err


def test_default_space_sizes_the_negatives_to_the_sampling():
    from dhns_geo.tune import default_space
    shared = default_space(TrainConfig())["num_negatives"]["choices"]
    own = default_space(TrainConfig(shared_negatives=False))["num_negatives"]["choices"]
    assert TrainConfig().num_negatives in shared and min(shared) > max(own)


def test_default_space_of_1vsall_holds_only_options_it_uses():
    from dhns_geo.tune import default_space
    base = TrainConfig(training="1vsall", scorer="complex", regularizer="n3",
                       reg_weight=0.05)
    space = default_space(base)
    assert set(space) == {"lr", "dim", "label_smoothing", "reg_weight"}
    for name, spec in space.items():       # every corner is a valid config
        for value in spec.get("choices", [spec.get("low"), spec.get("high")]):
            TrainConfig(**{**base.to_dict(), name: value})
    assert "reg_weight" not in default_space(TrainConfig(training="1vsall"))
