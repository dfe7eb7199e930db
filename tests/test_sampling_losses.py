import pytest
import torch

from dhns_geo.data import FilterIndex
from dhns_geo.losses import KGELoss
from dhns_geo.nn import KGCModel, DistMult
from dhns_geo.sampling import (BernoulliSampler, UniformSampler,
                               bernoulli_head_prob)

N, R = 50, 3


def positives(b=64):
    g = torch.Generator().manual_seed(0)
    return torch.stack([torch.randint(0, N, (b,), generator=g),
                        torch.randint(0, R, (b,), generator=g),
                        torch.randint(0, N, (b,), generator=g)], dim=1)


def sample(sampler, pos, seed=0):
    model = KGCModel(N, R, 4, DistMult())
    g = torch.Generator().manual_seed(seed)
    neg, = sampler.sample(pos, model, model.encode(), g)
    return neg


def test_uniform_corrupts_exactly_one_side():
    pos = positives()
    neg = sample(UniformSampler(N, R, 100), pos)
    assert neg.head.shape == neg.tail.shape == (64, 100)
    same_head = neg.head == pos[:, :1]
    same_tail = neg.tail == pos[:, 2:]
    assert (same_head | same_tail).all()
    head_corrupted = (~same_head).float().mean()
    assert 0.4 < head_corrupted < 0.6
    # Deterministic for a given generator seed.
    assert torch.equal(neg.head, sample(UniformSampler(N, R, 100), pos).head)
    assert not torch.equal(neg.head, sample(UniformSampler(N, R, 100), pos, 1).head)


def test_bernoulli_probabilities_by_hand():
    # Relation 0: one head with 4 tails (1-to-N): tph 4, hpt 1 -> p_head 0.8.
    # Relation 1: 4 heads into one tail (N-to-1): tph 1, hpt 4 -> 0.2.
    # Relation 2: no triples -> 0.5.
    triples = torch.tensor([[0, 0, 1], [0, 0, 2], [0, 0, 3], [0, 0, 4],
                            [1, 1, 9], [2, 1, 9], [3, 1, 9], [4, 1, 9]])
    prob = bernoulli_head_prob(triples, 3)
    assert torch.allclose(prob, torch.tensor([0.8, 0.2, 0.5]))
    sampler = BernoulliSampler(N, triples, 3, 2000)
    pos = torch.tensor([[0, 0, 1]])
    neg = sample(sampler, pos)
    assert 0.75 < (neg.head != 0).float().mean() < 0.85


def test_filtering_removes_known_true_triples():
    # Relation 0 links head 0 to every tail but 7: a corrupted tail is almost
    # always a known triple.
    truth = torch.tensor([[0, 0, t] for t in range(N) if t != 7])
    index = FilterIndex(truth, N, R)
    sampler = UniformSampler(N, R, 50, filter_index=index)
    sampler.head_prob.fill_(0.0)  # always corrupt the tail
    neg = sample(sampler, torch.tensor([[0, 0, 1]]))
    kept = neg.weight.bool()
    assert kept.any() and (neg.tail[kept] == 7).all()
    assert not index.contains(neg.head[kept], torch.zeros_like(neg.head[kept]),
                              neg.tail[kept]).any()


def test_margin_loss_by_hand():
    loss = KGELoss("margin", margin=1.0)
    pos, neg = torch.tensor([1.0]), torch.tensor([[0.5, 2.0]])
    assert loss(pos, neg).item() == pytest.approx((0.5 + 2.0) / 2)
    assert loss(pos, neg, weight=torch.tensor([[1.0, 0.0]])).item() == pytest.approx(0.5)
    factors = torch.tensor([[0.5, 1.0]])
    assert loss(pos, neg, margin_factor=factors).item() == pytest.approx((0.0 + 2.0) / 2)


def test_softplus_and_self_adversarial_by_hand():
    sp = torch.nn.functional.softplus
    pos, neg = torch.tensor([-1.0]), torch.tensor([[-3.0, -1.0]])
    gamma = 2.0
    plain = KGELoss("softplus", margin=gamma)(pos, neg)
    expected = (sp(torch.tensor(-(gamma - 1.0))) +
                (sp(torch.tensor(gamma - 3.0)) + sp(torch.tensor(gamma - 1.0))) / 2) / 2
    assert plain.item() == pytest.approx(expected.item())
    adv = KGELoss("self-adversarial", margin=gamma, temperature=1.0)(pos, neg)
    w = torch.softmax(torch.tensor([-3.0, -1.0]), 0)
    expected = (sp(torch.tensor(-(gamma - 1.0))) +
                w[0] * sp(torch.tensor(gamma - 3.0)) + w[1] * sp(torch.tensor(gamma - 1.0))) / 2
    assert adv.item() == pytest.approx(expected.item())
    # Adversarial weights are not differentiated through.
    neg = neg.clone().requires_grad_()
    KGELoss("self-adversarial", margin=gamma)(pos, neg).backward()
    assert torch.allclose(neg.grad, (w * torch.sigmoid(gamma + neg.detach()) / 2))

    # The positives' term scales with positive_weight; the negatives' not.
    heavy = KGELoss("self-adversarial", margin=gamma, positive_weight=1.75)
    expected = (1.75 * sp(torch.tensor(-(gamma - 1.0))) +
                w[0] * sp(torch.tensor(gamma - 3.0)) + w[1] * sp(torch.tensor(gamma - 1.0))) / 2
    assert heavy(pos, neg).item() == pytest.approx(expected.item())


def test_dhns_groups_reweight_positives_like_positive_weight():
    """A base group plus DHNS groups of loss weight summing to 0.75 whose
    negatives are inert is the base loss with positive_weight 1.75."""
    g = torch.Generator().manual_seed(0)
    pos, neg = torch.randn(6, generator=g), torch.randn(6, 8, generator=g)
    inert = torch.full((6, 3), -1e4)
    loss = KGELoss("self-adversarial")
    groups = loss(pos, neg) + sum(w * loss(pos, inert, 0.5) for w in (0.25, 0.5))
    heavy = KGELoss("self-adversarial", positive_weight=1.75)(pos, neg)
    assert groups.item() == pytest.approx(heavy.item(), rel=1e-6)


def test_unknown_loss():
    from dhns_geo.errors import DHNSError
    with pytest.raises(DHNSError, match="unknown loss"):
        KGELoss("hinge")


def test_positive_weight_is_checked():
    from dhns_geo.errors import DHNSError
    with pytest.raises(DHNSError, match="must be positive"):
        KGELoss("softplus", positive_weight=0.0)
    with pytest.raises(DHNSError, match="not to margin"):
        KGELoss("margin", positive_weight=2.0)


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
    a = model.score_negatives(lazy.fused(h), rel, lazy.fused(t), neg, lazy)
    b = model.score_negatives(full.fused(h), rel, full.fused(t), per_positive, full)
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


def test_filtered_negatives_know_only_train_triples():
    """--filter-negatives redraws corruptions that are train triples; valid
    and test triples are not known to training (filtering them would leak
    them), and the index follows the sampler to its device."""
    from dhns_geo.config import TrainConfig
    from dhns_geo.build import build_sampler
    from dhns_geo.data import split_triples
    from dhns_geo.datasets import ToyMMKG

    data = ToyMMKG(num_entities=200, num_relations=4)[0]
    sampler = build_sampler(TrainConfig(filter_negatives=True), data).to("cpu")
    train = split_triples(data, "train")
    assert bool(sampler.filter_index.contains(*train.t()).all())
    held_out = torch.cat([split_triples(data, "valid"), split_triples(data, "test")])
    unseen = held_out[~sampler.filter_index.contains(*held_out.t())]
    assert unseen.size(0) > 0.9 * held_out.size(0)      # held-out triples stay unknown
    dhns = build_sampler(TrainConfig(filter_negatives=True, sampler="dhns"), data)
    index = dhns.to("cpu").base.filter_index          # moved through the parent
    assert index.device.type == "cpu" and not bool(index.contains(*unseen.t()).any())
