"""1-vs-all training (dhns_geo/onevsall.py): the loss by hand, every scorer
learns, reciprocal relations in both directions, from the command line."""

import math

import pytest
import torch

from conftest import chain_folder, losses, random_mrr, run_cli
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


def test_relation_prediction_is_the_cross_entropy_over_relations_by_hand():
    from dhns_geo.nn import TransE, make_scorer
    from dhns_geo.onevsall import relation_prediction_loss

    torch.manual_seed(0)
    for name in ("transe", "distmult", "complex", "rotate"):
        model = KGCModel(7, 3, 8, make_scorer(name), reciprocal=True)   # 6 relations
        e, rel = model.entities.structural.weight, model.relations.weight
        h, t, r = torch.tensor([0, 4, 6]), torch.tensor([1, 2, 3]), torch.tensor([5, 0, 2])
        by_hand = torch.stack([model.scorer(e[h], rel[k].expand(3, -1), e[t])
                               for k in range(6)], dim=1)                 # [3, 6]
        fast = model.scorer.score_relations(e[h], rel, e[t])
        assert torch.allclose(fast, by_hand, atol=1e-5), name
        expected = -torch.log_softmax(by_hand, 1)[torch.arange(3), r].mean()
        assert float(relation_prediction_loss(model, e[h], r, e[t])) == pytest.approx(
            float(expected), rel=1e-5)
    # Chunks of relations give the same scores as one block.
    scorer, e = TransE(), torch.randn(4, 8)
    rel = torch.randn(50, 8)
    assert torch.allclose(scorer.score_relations(e, rel, e.flip(0), chunk_elements=64),
                          scorer.score_relations(e, rel, e.flip(0)), atol=1e-5)


def test_generated_columns_join_the_softmax_with_their_ntat_margins():
    from types import SimpleNamespace

    from dhns_geo.nn import ComplEx
    from dhns_geo.onevsall import GeneratedColumns

    torch.manual_seed(0)
    model = KGCModel(6, 2, 4, ComplEx())
    batch = torch.tensor([[0, 0, 1], [2, 1, 3], [4, 0, 5]])
    levels = SimpleNamespace(margin_factors=[0.2, 0.8], level_weights=[1.0, 0.5],
                             guard=False)
    columns = GeneratedColumns(levels, margin=2.0)
    gen = {0: (torch.randn(2, 4), torch.randn(2, 4)),      # 2 of 3 rows served
           1: (torch.randn(2, 4), torch.randn(2, 4))}
    index = torch.arange(3)

    def extra(head, rel, tail, true):
        return columns.logits(gen, model, index, head, rel, tail, true, True)
    loss, _ = one_vs_all_loss(model, model.encode(), batch, both_sides=True, extra=extra)

    e, rel = model.entities.structural.weight, model.relations.weight
    h, r, t = batch.unbind(1)
    s = ComplEx()
    logits, targets = [], []
    for row in range(3):
        for side in ("tail", "head"):
            real = torch.stack([s(e[h[row]], rel[r[row]], e[c]) if side == "tail"
                                else s(e[c], rel[r[row]], e[t[row]]) for c in range(6)])
            extra_cols = []
            for level in (0, 1):
                gh, gt = gen[level]
                if row >= 2:
                    extra_cols.append(torch.tensor(float("-inf")))
                    continue
                score = (s(e[h[row]], rel[r[row]], gt[row]) if side == "tail"
                         else s(gh[row], rel[r[row]], e[t[row]]))
                extra_cols.append(score + 2.0 * levels.margin_factors[level]
                                  + math.log(levels.level_weights[level]))
            logits.append(torch.cat([real, torch.stack(extra_cols)]))
            targets.append(int(t[row] if side == "tail" else h[row]))
    expected = torch.stack([-torch.log_softmax(lg, 0)[y] for lg, y in zip(logits, targets)])
    assert float(loss) == pytest.approx(float(expected.mean()), rel=1e-5)


def test_1vsall_with_dhns_columns_trains_its_generator(tmp_path):
    cfg = TrainConfig(dim=16, epochs=2, eval_every=1, batch_size=256, scorer="complex",
                      training="1vsall", reciprocal=True, sampler="dhns",
                      dhns_steps=10, dhns_margin=0.5, optimizer="adagrad", lr=0.1)
    run_training(cfg, tmp_path / "r", **QUIET)
    trained = losses(tmp_path / "r")
    assert trained[1] < trained[0]
    state = torch.load(tmp_path / "r" / "last.pt", weights_only=True)
    assert any(k.startswith("diffheg.") for k in state["objective"])
    first = TrainConfig(**{**cfg.to_dict(), "epochs": 1})
    run_training(first, tmp_path / "one", **QUIET)
    a = torch.load(tmp_path / "one" / "last.pt", weights_only=True)["objective"]
    b = state["objective"]
    assert any(not torch.equal(a[k], b[k]) for k in a if k.startswith("diffheg."))


def test_1vsall_with_features_learns_the_toy_graph(tmp_path):
    for fusion in ("gate", "attention"):
        cfg = TrainConfig(dim=32, epochs=6, eval_every=2, batch_size=256,
                          scorer="complex", training="1vsall", reciprocal=True,
                          optimizer="adagrad", lr=0.1, fusion=fusion)
        m = run_training(cfg, tmp_path / fusion, **QUIET)
        assert m["test"]["mrr"] > 20 * random_mrr(1000), fusion     # ~0.15 and up


@pytest.mark.parametrize("scorer", ["distmult", "complex"])
def test_factored_scores_equal_the_scores_of_the_fused_table(scorer):
    from dhns_geo.datasets import ToyMMKG
    from dhns_geo.build import build_model

    data = ToyMMKG(num_entities=300)[0]
    model = build_model(TrainConfig(dim=16, scorer=scorer, fusion="gate"), data)
    with torch.no_grad():
        model.fusion.logits.copy_(torch.tensor([0.3, -0.5, 0.9]))
    # Two orders of the same sums: compared in float64, where the orders
    # agree to ~1e-15 instead of float32's ~1e-6 relative.
    model.double()
    query = torch.randn(7, 16, dtype=torch.float64)
    table = model.encode()
    factored = table.match_all(query)                  # no fused table built
    assert table._fused is None
    fused = model.scorer.match_all(query, model.encode().fused())
    assert torch.allclose(factored, fused, rtol=1e-10, atol=1e-12)
    # The gradient reaches the projections and the gate through the factors.
    factored.sum().backward()
    assert model.fusion.logits.grad.abs().sum() > 0
    assert model.entities.projections["textual"].weight.grad.abs().sum() > 0
