"""1-vs-all training (dhns_geo/onevsall.py): the loss by hand, every scorer
learns, reciprocal relations in both directions, from the command line."""

import math

import pytest
import torch

from conftest import chain_folder, run_cli
from dhns_geo.config import TrainConfig
from dhns_geo.datasets import load_dataset
from dhns_geo.nn import DistMult, KGCModel
from dhns_geo.onevsall import one_vs_all_loss
from dhns_geo.runs import load_run, run_training
from dhns_geo.training import Trainer

pytestmark = pytest.mark.slow      # trains models


QUIET = {"log": lambda line: None, "progress": False}


def test_reciprocal_1vsall_learns_a_chain_in_both_directions(tmp_path):
    config = TrainConfig(dataset=str(chain_folder(tmp_path)), scorer="complex",
                         dim=16, training="1vsall", reciprocal=True,
                         optimizer="adagrad", lr=0.5, batch_size=18, epochs=60,
                         eval_every=60, lr_plateau_factor=1.0)
    metrics = run_training(config, tmp_path / "run", **QUIET)
    assert metrics["test"]["head"]["mrr"] == 1.0
    assert metrics["test"]["tail"]["mrr"] == 1.0
    _, data, model, _ = load_run(tmp_path / "run")
    score = model.score_all_fn()
    ids = torch.arange(1, 10)            # (?, next, e_i) is e_{i-1}
    assert score(ids, torch.zeros_like(ids), "head").argmax(1).tolist() == list(range(9))


def test_one_vs_all_loss_is_the_cross_entropy_by_hand():
    model = KGCModel(3, 1, 2, DistMult())
    with torch.no_grad():
        model.entities.structural.weight.copy_(torch.tensor([[1., 0.], [0., 1.], [1., 1.]]))
        model.relations.weight.copy_(torch.tensor([[2., 1.]]))
    batch = torch.tensor([[0, 0, 2]])
    # (e0, r, ?): query [2, 0], scores [2, 0, 2], answer e2;
    # (?, r, e2): query [2, 1], scores [2, 1, 3], answer e0.
    tail = -math.log(math.exp(2) / (math.exp(2) + 1 + math.exp(2)))
    head = -math.log(math.exp(2) / (math.exp(2) + math.exp(1) + math.exp(3)))
    loss, factors = one_vs_all_loss(model, model.encode(), batch)
    assert loss.item() == pytest.approx((tail + head) / 2)
    assert [f.tolist() for f in factors] == [[[1., 0.]], [[2., 1.]], [[1., 1.]]]
    tail_only, _ = one_vs_all_loss(model, model.encode(), batch, both_sides=False)
    assert tail_only.item() == pytest.approx(tail)
    # Label smoothing eps: (1 - eps) CE + eps * mean_j(-log p_j).
    eps = 0.1
    log_p = torch.log_softmax(torch.tensor([2., 0., 2.]), 0)
    smooth, _ = one_vs_all_loss(model, model.encode(), batch, both_sides=False,
                                label_smoothing=eps)
    assert smooth.item() == pytest.approx(
        ((1 - eps) * -log_p[2] + eps * -log_p.mean()).item())


@pytest.mark.parametrize("scorer,extra", [("transe", {}), ("distmult", {}),
                                          ("complex", {"regularizer": "n3", "reg_weight": 0.01}),
                                          ("rotate", {"rotate_p": 1.0})])
def test_1vsall_lowers_the_loss_for_every_scorer(tmp_path, scorer, extra):
    config = TrainConfig(dataset=str(chain_folder(tmp_path)), scorer=scorer,
                         dim=8, training="1vsall", batch_size=9, lr=0.05,
                         **extra)
    trainer = Trainer.from_config(config, load_dataset(config.dataset),
                                  torch.device("cpu"), **QUIET)
    batch = trainer.train_triples
    losses = [trainer.train_step(batch) for _ in range(30)]
    assert losses[-1] < 0.8 * losses[0]


def test_cli_trains_1vsall_with_reciprocals(tmp_path, capsys):
    code, out, err = run_cli(
        ["train", "--dataset", str(chain_folder(tmp_path)), "--scorer", "complex",
         "--training", "1vsall", "--reciprocal", "--regularizer", "n3",
         "--reg-weight", "0.01", "--optimizer", "adagrad", "--lr", "0.5",
         "--dim", "16", "--epochs", "2", "--out", str(tmp_path / "run")], capsys)
    assert code in (0, None), err
    assert "test metrics" in out
