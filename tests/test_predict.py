"""Predictions of a run (dhns_geo/predict.py, dhns predict)."""

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
