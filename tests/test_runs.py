"""Every command on every kind of run folder (dhns_geo/runs.py and the
commands that read a run: eval, predict, sample-negatives)."""

import csv
import io
import json

import pytest
import torch

from conftest import run_cli
from dhns_geo.config import TrainConfig
from dhns_geo.presets import PRESETS
from dhns_geo.runs import load_run, run_training

pytestmark = pytest.mark.slow      # trains models

SMALL = {"dataset": "toy", "dim": 16, "epochs": 2, "eval_every": 1,
         "batch_size": 256}
#: Run kinds: each regime and sampler a run folder can hold. The 1-vs-all
#: kind is the ComplEx-N3 presets' recipe on the toy graph.
KINDS = {
    "uniform": {"num_negatives": 8, "loss": "softplus"},
    "self-adversarial": {"num_negatives": 8},
    "dhns": {"num_negatives": 8, "sampler": "dhns", "dhns_steps": 10},
    "reciprocal": {"num_negatives": 8, "reciprocal": True},
    "1vsall": {**{k: v for k, v in PRESETS["complex-n3-mkg-y"].values.items()
                  if k not in ("dataset", "epochs", "dim", "batch_size",
                               "eval_every")}},
    "1vsall-dhns": {**{k: v for k, v in PRESETS["complex-n3-mkg-y"].values.items()
                       if k not in ("dataset", "epochs", "dim", "batch_size",
                                    "eval_every", "features")},
                    "fusion": "gate", "sampler": "dhns", "dhns_steps": 10},
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    for kind, extra in KINDS.items():
        run_training(TrainConfig(**SMALL, **extra), folder / kind,
                     log=lambda line: None, progress=False)
    return folder


@pytest.mark.parametrize("kind", list(KINDS))
def test_eval_gives_the_metrics_of_training(runs, kind, capsys):
    code, out, err = run_cli(["eval", str(runs / kind), "--json"], capsys)
    assert code == 0, err
    recorded = json.loads((runs / kind / "metrics.json").read_text())["test"]
    assert json.loads(out)["mrr"] == pytest.approx(recorded["mrr"], abs=1e-6)


@pytest.mark.parametrize("kind", list(KINDS))
def test_predict_ranks_the_answers_by_the_models_score(runs, kind, capsys):
    code, out, err = run_cli(["predict", str(runs / kind), "--head", "0",
                              "--relation", "0", "--top", "5", "--json"], capsys)
    assert code == 0, err
    answers = json.loads(out)
    config, data, model, _ = load_run(runs / kind)
    with torch.no_grad():
        scores = model(torch.zeros(1000, dtype=torch.long),
                       torch.zeros(1000, dtype=torch.long),
                       torch.arange(1000))
    for answer in answers:
        assert answer["score"] == pytest.approx(float(scores[answer["id"]]), abs=1e-4)
    assert [a["score"] for a in answers] == sorted((a["score"] for a in answers),
                                                   reverse=True)


@pytest.mark.parametrize("kind", list(KINDS))
def test_dhns_mines_filtered_negatives_of_every_run(runs, kind, capsys):
    code, out, err = run_cli(["sample-negatives", str(runs / kind), "--negatives", "dhns",
                              "--limit", "3",
                              "--k", "2", "--generator-epochs", "1",
                              "--no-progress"], capsys)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out), delimiter="\t"))
    # 3 positives x 5 levels x (head, tail) x 2 neighbours, each side once.
    assert len(rows) == 3 * 5 * 2 * 2
    assert {(r["side"], r["position"]) for r in rows} == {("head", "head"),
                                                          ("tail", "tail")}
    trained_generator = KINDS[kind].get("sampler") == "dhns"
    assert ("training the DHNS generator" in err) != trained_generator


def test_a_one_vs_all_run_has_no_sampler_to_draw_from(runs, capsys):
    code, _, err = run_cli(["sample-negatives", str(runs / "1vsall"), "--negatives",
                            "run"], capsys)
    assert code != 0 and "--negatives" in err and "1-vs-all" in err
