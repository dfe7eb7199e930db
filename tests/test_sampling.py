"""Negative samplers (dhns_geo/sampling/): uniform and Bernoulli corruption,
filtering by the train triples, reciprocal tails."""

import math

import torch

from conftest import chain_folder
from dhns_geo.build import build_sampler
from dhns_geo.config import TrainConfig
from dhns_geo.data import FilterIndex, add_reciprocals, split_triples
from dhns_geo.datasets import load_dataset
from dhns_geo.nn import DistMult, KGCModel
from dhns_geo.sampling import BernoulliSampler, UniformSampler, bernoulli_head_prob
from dhns_geo.training import Trainer


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


QUIET = {"log": lambda line: None, "progress": False}


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


def test_reciprocal_sampled_negatives_corrupt_tails_of_both_directions(tmp_path):
    config = TrainConfig(dataset=str(chain_folder(tmp_path)), reciprocal=True,
                         num_negatives=4, dim=8, filter_negatives=True)
    data = load_dataset(config.dataset)
    trainer = Trainer.from_config(config, data, torch.device("cpu"), **QUIET)
    assert torch.equal(trainer.train_triples,
                       add_reciprocals(split_triples(data, "train"), 1))
    sampler = build_sampler(config, data)
    assert sampler.head_prob.tolist() == [0.0, 0.0]
    # The reciprocal (e5, next^-1, ?) has the known answer e4: filtered.
    assert sampler.filter_index.contains(torch.tensor([5]), torch.tensor([1]),
                                         torch.tensor([4])).item()
    groups = sampler.sample(trainer.train_triples, trainer.model,
                            trainer.model.encode(), torch.Generator().manual_seed(0))
    assert not groups[0].corrupted_head.any()
    loss = trainer.train_step(trainer.train_triples)
    assert math.isfinite(loss)
