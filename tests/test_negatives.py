"""Groups of negatives (dhns_geo/negatives.py): each layout scores like the
others, the guard, the entities a step fuses."""

import pytest
import torch



def test_guard_drops_negatives_scored_above_their_positive(tmp_path):
    from dhns_geo.config import TrainConfig
    from dhns_geo.build import build_model, build_objective
    from dhns_geo.data import build_filter_index, split_triples
    from dhns_geo.datasets import ToyMMKG
    from dhns_geo.sampling import Negatives
    from dhns_geo.training import Trainer

    data = ToyMMKG(num_entities=100, num_relations=2)[0]
    cfg = TrainConfig(dim=8, num_negatives=2, loss="softplus")
    index = build_filter_index(data)
    trainer = Trainer(build_model(cfg, data), build_objective(cfg, data), data, cfg,
                      torch.device("cpu"), index, log=lambda line: None, progress=False)
    batch = split_triples(data, "train")[:4]
    h, r, t = batch.unbind(1)
    table = trainer.model.encode()
    head, tail = table.fused(h), table.fused(t)
    copies = Negatives(head=head.unsqueeze(1).detach(), tail=tail.unsqueeze(1).detach(),
                       guard=True)                   # the positives themselves
    trainer.objective.sampler.sample = lambda *args: [copies]
    before = {n: p.clone() for n, p in trainer.model.named_parameters()}
    pos = trainer.model.scorer(head, trainer.model.relations(r), tail).detach()
    # Every copy scores exactly as its positive: all dropped, positives only.
    expected = float(torch.nn.functional.softplus(-(cfg.margin + pos)).mean() / 2)
    loss_guarded = trainer.train_step(batch)
    assert loss_guarded == pytest.approx(expected, rel=1e-5)
    assert any(not torch.equal(before[n], p) for n, p in trainer.model.named_parameters())


@pytest.mark.parametrize("scorer", ["transe", "distmult", "complex", "rotate"])
def test_shared_negatives_score_like_per_positive_ids(scorer):
    from dhns_geo.config import TrainConfig
    from dhns_geo.build import build_model, build_sampler
    from dhns_geo.data import FilterIndex, split_triples
    from dhns_geo.datasets import ToyMMKG
    from dhns_geo.sampling import Negatives

    data = ToyMMKG(num_entities=200, num_relations=4)[0]
    cfg = TrainConfig(dim=8, scorer=scorer, num_negatives=6, shared_negatives=True,
                      filter_negatives=True)
    model = build_model(cfg, data)
    sampler = build_sampler(cfg, data)
    batch = split_triples(data, "train")[:32]
    (neg,) = sampler.sample(batch, model, model.encode(), torch.Generator().manual_seed(0))
    assert neg.shared.shape == (6,)
    drawn = torch.where(neg.corrupted_head, neg.head, neg.tail)
    assert bool((drawn == neg.shared).all())            # one set of K for the batch
    side = neg.corrupted_head
    assert bool((side == side[:, :1]).all())             # one side per positive
    assert 0 < int(side[:, 0].sum()) < 32                # heads and tails both occur
    index = FilterIndex(split_triples(data, "train"), 200, 4)    # train only
    assert torch.equal(neg.weight, (~index.contains(neg.head, batch[:, 1:2].expand(-1, 6),
                                                    neg.tail)).float())
    h, r, t = batch.unbind(1)
    lazy, full = model.encode(lazy=True), model.encode()
    per_positive = Negatives(neg.head, neg.tail, corrupted_head=neg.corrupted_head)
    rel = model.relations(r)
    a = neg.score(model.scorer, lazy.fused(h), rel, lazy.fused(t), lazy)
    b = per_positive.score(model.scorer, full.fused(h), rel, full.fused(t), full)
    assert torch.allclose(a, b, atol=1e-4)
    ga = torch.autograd.grad(a.sum(), model.entities.projections["textual"].weight)[0]
    gb = torch.autograd.grad(b.sum(), model.entities.projections["textual"].weight)[0]
    assert torch.allclose(ga, gb, atol=1e-4)


def test_shared_negatives_fuse_only_the_touched_entities(tmp_path, monkeypatch):
    from dhns_geo.config import TrainConfig
    from dhns_geo.nn.fusion import ModalityFusion
    from dhns_geo.runs import run_training

    rows = []
    forward = ModalityFusion.forward

    def spy(self, x, mask=None):
        rows.append(x.shape[0])
        return forward(self, x, mask)
    monkeypatch.setattr(ModalityFusion, "forward", spy)
    cfg = TrainConfig(dim=32, epochs=6, eval_every=3, lr=0.05, num_negatives=32,
                      batch_size=256, shared_negatives=True)
    m = run_training(cfg, tmp_path / "r", log=lambda line: None, progress=False)
    train_rows = [n for n in rows if n != 1000]          # evaluation fuses all
    # One fusion per step, of its distinct heads, tails and K candidates.
    assert train_rows and max(train_rows) <= 2 * 256 + 32
    assert min(train_rows) < 2 * 256 + 32                # repeats fused once
    assert m["test"]["mrr"] > 0.2           # and it learns (random ranking: ~0.007)


def test_restricted_table_gives_the_lazy_values_and_gradients():
    from dhns_geo.config import TrainConfig
    from dhns_geo.build import build_model
    from dhns_geo.datasets import ToyMMKG

    data = ToyMMKG(num_entities=200, num_relations=4)[0]
    model = build_model(TrainConfig(dim=8), data)
    ids = torch.tensor([5, 3, 5, 199, 0, 3])
    lazy, restricted = model.encode(lazy=True), model.encode(lazy=True)
    restricted.restrict(torch.cat([ids, torch.tensor([7, 7])]))
    a, b = lazy.fused(ids), restricted.fused(ids)
    torch.testing.assert_close(b, a)
    torch.testing.assert_close(restricted.fused(torch.tensor([7])), lazy.fused(torch.tensor([7])))
    weights = [model.entities.structural.weight, model.entities.projections["textual"].weight]
    w = torch.randn(6, 8)
    for ga, gb in zip(torch.autograd.grad((a * w).sum(), weights),
                      torch.autograd.grad((b * w).sum(), weights)):
        torch.testing.assert_close(gb, ga)


def test_negatives_loss_sums_each_groups_weighted_loss_by_hand():
    from dhns_geo.losses import KGELoss
    from dhns_geo.negatives import Negatives, negatives_loss
    from dhns_geo.nn import DistMult, KGCModel

    torch.manual_seed(0)
    model = KGCModel(6, 2, 4, DistMult())
    batch = torch.tensor([[0, 0, 1], [2, 1, 3]])
    ids = Negatives(head=torch.tensor([[4, 0], [2, 2]]), tail=torch.tensor([[1, 5], [5, 0]]),
                    corrupted_head=torch.tensor([[True, False], [False, False]]),
                    margin_factor=0.5, loss_weight=0.3, name="ids")
    generated = Negatives(head=torch.randn(2, 1, 4), tail=torch.randn(2, 1, 4),
                          own=torch.tensor([[False, True]]), weight=torch.tensor([[1.0], [0.0]]))
    loss_fn, seen = KGELoss("softplus", margin=2.0), {}
    table = model.encode()
    loss, factors = negatives_loss(model, table, batch, [ids, generated], loss_fn,
                                   track=lambda name, value: seen.update({name: value}))
    e, rel = model.entities.structural.weight, model.relations.weight
    h, r, t = batch.unbind(1)

    def score(hd, tl):
        return (hd * rel[r].unsqueeze(1) * tl).sum(-1)
    pos = (e[h] * rel[r] * e[t]).sum(-1)
    first = score(e[ids.head], e[ids.tail])
    second = score(generated.head, e[t].unsqueeze(1))       # the tail is its own
    expected = (0.3 * loss_fn(pos, first, 0.5)
                + loss_fn(pos, second, 1.0, generated.weight))
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    assert float(seen["ids"]) == pytest.approx(float(first.mean()), rel=1e-5)
    assert [f.shape for f in factors] == [(2, 4), (2, 4), (2, 4)]
