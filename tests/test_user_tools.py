"""dhns predict, dhns tune and TensorBoard logging."""

import csv
import json

import pytest
import torch

from conftest import run_cli
from dhns_geo.config import TrainConfig
from dhns_geo.data import split_triples
from dhns_geo.predict import Predictor
from dhns_geo.runs import run_training

QUIET = {"log": lambda line: None, "progress": False}


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("predict") / "run"
    run_training(TrainConfig(dim=32, epochs=6, eval_every=3, lr=0.02), run_dir, **QUIET)
    return run_dir


def test_predict_marks_known_answers_and_resolves_names(toy_run, capsys):
    predictor = Predictor.from_run(toy_run)
    data_train = split_triples(predictor.data, "train")
    h, r, t = data_train[0].tolist()
    code, out, err = run_cli(["predict", str(toy_run), "--head", f"entity_{h}",
                              "--relation", f"relation_{r}", "--top", "1000",
                              "--json"], capsys)
    assert code == 0, err
    records = json.loads(out)
    assert [x["rank"] for x in records] == list(range(1, 1001))
    scores = [x["score"] for x in records]
    assert scores == sorted(scores, reverse=True)
    by_id = {x["id"]: x for x in records}
    assert by_id[t]["known_in"] == "train" and by_id[t]["name"] == f"entity_{t}"
    # Every marked answer is a known triple of that split, and vice versa.
    known = {split: {tuple(x) for x in split_triples(predictor.data,
                                                     split).tolist()}
             for split in ("train", "valid", "test")}
    for x in records:
        hits = [s for s in ("train", "valid", "test") if (h, r, x["id"]) in known[s]]
        assert x["known_in"] == (hits[0] if hits else "")
    # The top score is the model's best score for the query.
    with torch.no_grad():
        best = predictor.model.score_all_fn()(torch.tensor([h]), torch.tensor([r]), "tail")
    assert records[0]["score"] == pytest.approx(float(best.max()), rel=1e-5)

    code, out, _ = run_cli(["predict", str(toy_run), "--tail", f"entity_{t}",
                            "--relation", f"relation_{r}", "--top", "3"], capsys)
    assert code == 0 and f"(?, relation_{r}, entity_{t})" in out
    assert len(out.strip().splitlines()) == 1 + 2 + 3


@pytest.mark.parametrize("argv,message,code", [
    (["--head", "entity_3x", "--relation", "relation_1"],
     "unknown entity 'entity_3x'; close matches: entity_3", 1),
    (["--head", "entity_3", "--relation", "relaton_1"],
     "unknown relation 'relaton_1'; close matches: relation_1", 1),
    (["--head", "entity_3", "--tail", "entity_4", "--relation", "relation_1"],
     "--relation must be given with exactly one of --head and --tail", 2),
    (["--head", "entity_3", "--relation", "relation_1", "--top", "0"], "--top", 2),
])
def test_predict_refuses_bad_queries(toy_run, capsys, argv, message, code):
    got, _, err = run_cli(["predict", str(toy_run), *argv], capsys)
    assert got == code and message in err and err.count("\n") == 1, err


def test_predict_queries_file(toy_run, tmp_path, capsys):
    queries = tmp_path / "q.tsv"
    queries.write_text("# head relation tail\nentity_3\trelation_1\t?\n"
                       "?\trelation_2\t9\n")
    code, _, err = run_cli(["predict", str(toy_run), "--queries", str(queries),
                            "--top", "4", "--out", str(tmp_path / "p.tsv")], capsys)
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "p.tsv").open(), delimiter="\t"))
    assert len(rows) == 8 and rows[0]["head"] == "entity_3" and rows[0]["tail"] == "?"
    assert rows[4]["head"] == "?" and rows[4]["tail"] == "entity_9"
    queries.write_text("entity_3\trelation_1\n")
    code, _, err = run_cli(["predict", str(toy_run), "--queries", str(queries)], capsys)
    assert code == 1 and f"{queries}, line 1: expected" in err


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
