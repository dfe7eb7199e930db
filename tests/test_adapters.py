"""KGEAdapter: PyG's KGE models as DHNS and the evaluator see them, and
filtered evaluation of any model."""

import pytest
import torch
from torch_geometric.nn import ComplEx, DistMult, RGCNConv, RotatE, TransE

from dhns_geo.adapters import KGEAdapter, evaluate_model
from dhns_geo.data.filter import FilterIndex
from dhns_geo.errors import DHNSError
from dhns_geo.evaluation import evaluate_link_prediction
from dhns_geo.nn.model import KGCModel
from dhns_geo.nn.scorers import make_scorer

N, R = 30, 3
PYG_MODELS = [(TransE, {}), (TransE, {"p_norm": 2.0}), (DistMult, {}),
              (ComplEx, {}), (RotatE, {"margin": 9.0})]


def pyg_model(cls, kwargs, seed=0):
    torch.manual_seed(seed)
    return cls(N, R, 8, **kwargs)


def triples(n=40, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randint(0, N, (n,), generator=g),
                        torch.randint(0, R, (n,), generator=g),
                        torch.randint(0, N, (n,), generator=g)], 1)


@pytest.mark.parametrize("cls, kwargs", PYG_MODELS)
def test_adapter_scores_equal_the_pyg_model(cls, kwargs):
    model = pyg_model(cls, kwargs)
    adapter = KGEAdapter.from_pyg(model)
    h, r, t = triples().unbind(1)
    ours = adapter.score(adapter.entities(h), adapter.relations(r), adapter.entities(t))
    torch.testing.assert_close(ours, model(h, r, t), atol=1e-5, rtol=1e-5)
    # Ranking all entities at once scores what the model scores one by one.
    every = torch.arange(N)
    for side in ("tail", "head"):
        known, rel = h[:3], r[:3]
        got = adapter.score_all(known, rel, side)
        want = torch.stack([model(known[i].expand(N), rel[i].expand(N), every)
                            if side == "tail" else
                            model(every, rel[i].expand(N), known[i].expand(N))
                            for i in range(3)])
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def brute_force_ranks(model, test, known):
    """Realistic filtered ranks by scoring every candidate with the model's
    own forward and filtering with Python sets."""
    true = {tuple(x) for x in known.tolist()}
    ranks = {"head": [], "tail": []}
    every = torch.arange(N)
    for h, r, t in test.tolist():
        for side, target in (("tail", t), ("head", h)):
            cand = (model(torch.full((N,), h), torch.full((N,), r), every) if side == "tail"
                    else model(every, torch.full((N,), r), torch.full((N,), t)))
            keep = [e for e in range(N) if e != target and
                    ((h, r, e) if side == "tail" else (e, r, t)) not in true]
            s = cand[target]
            greater = sum(float(cand[e]) > float(s) for e in keep)
            ties = sum(float(cand[e]) == float(s) for e in keep)
            ranks[side].append(1 + greater + 0.5 * ties)
    return ranks


@pytest.mark.parametrize("cls, kwargs", PYG_MODELS)
def test_evaluate_model_ranks_like_brute_force(cls, kwargs):
    model = pyg_model(cls, kwargs)
    known, test = triples(60, seed=2), triples(12, seed=3)
    known = torch.cat([known, test])
    with torch.no_grad():
        want = brute_force_ranks(model, test, known)
    got = evaluate_model(model, test, known, N, R, batch_size=5, return_ranks=True)
    for side in ("head", "tail"):
        torch.testing.assert_close(got["ranks"][side], torch.tensor(want[side]))
    mrr = (1 / torch.tensor(want["head"] + want["tail"])).mean()
    assert got["mrr"] == pytest.approx(float(mrr), abs=1e-6)


@pytest.mark.parametrize("cls, scorer", [(DistMult, "distmult"), (ComplEx, "complex"),
                                         (RotatE, "rotate")])
def test_evaluate_model_equals_the_library_evaluator(cls, scorer):
    """The same embeddings in a dhns-geo KGCModel rank the same."""
    model = pyg_model(cls, {})
    adapter = KGEAdapter.from_pyg(model)
    kgc = KGCModel(N, R, adapter.dim, make_scorer(scorer, rotate_p=2.0))
    with torch.no_grad():
        kgc.entities.structural.weight.copy_(adapter.entities())
        kgc.relations.weight.copy_(adapter.relations())
    known, test = triples(60, seed=4), triples(20, seed=5)
    ours = evaluate_model(model, test, known, N, R, return_ranks=True)
    library = evaluate_link_prediction(kgc.score_all_fn(), test, FilterIndex(known, N, R),
                                       return_ranks=True)
    for side in ("head", "tail"):
        torch.testing.assert_close(ours["ranks"][side], library["ranks"][side])


def test_evaluate_model_takes_a_score_function_and_restores_train_mode():
    model = pyg_model(DistMult, {})
    model.train()
    known, test = triples(60, seed=6), triples(10, seed=7)
    adapter = KGEAdapter.from_pyg(model)
    by_fn = evaluate_model(adapter.score_all, test, known, N, R)
    by_model = evaluate_model(model, test, known, N, R)
    assert by_fn["mrr"] == by_model["mrr"] and model.training
    from dhns_geo.data.filter import FilterIndex         # built once by a loop
    by_index = evaluate_model(model, test, FilterIndex(known, N, R), N, R)
    assert by_index == by_model


def test_encoder_decoder_adapter_has_gradients_in_the_encoder():
    """An R-GCN + DistMult model passes its encoded table each step."""
    torch.manual_seed(0)
    emb = torch.nn.Parameter(torch.randn(N, 8))
    conv = RGCNConv(8, 8, R)
    rel = torch.nn.Parameter(torch.randn(R, 8))
    graph = triples(50, seed=8)
    z = conv(emb, graph[:, [0, 2]].t(), graph[:, 1])
    adapter = KGEAdapter(z, rel, "distmult")
    h, r, t = graph[:4].unbind(1)
    adapter.score(adapter.entities(h), adapter.relations(r), adapter.entities(t)).sum().backward()
    assert conv.weight.grad.abs().sum() > 0 and rel.grad.abs().sum() > 0


def test_unknown_models_and_lookups_are_refused():
    with pytest.raises(DHNSError, match="no adapter for Linear"):
        KGEAdapter.from_pyg(torch.nn.Linear(2, 2))
    with pytest.raises(DHNSError, match="embeddings must be"):
        KGEAdapter([1, 2], torch.zeros(2, 2), "distmult")
    with pytest.raises(DHNSError, match="cannot rank"):
        evaluate_model(object(), triples(2), triples(2), N, R)
