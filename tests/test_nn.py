import pytest
import torch
from torch_geometric.nn import kge

from dhns_geo.nn import (ComplEx, DistMult, KGCModel, ModalityFusion,
                         MultimodalEntityEmbedding, RGCNEncoder, RotatE,
                         TransE, make_scorer)
from dhns_geo.nn.gathered import (gathered_dots, gathered_dots_dense,
                                  gathered_dots_sparse, pick_queries)

N, R, D, B = 20, 4, 8, 6


def triples():
    g = torch.Generator().manual_seed(0)
    return (torch.randint(0, N, (B,), generator=g),
            torch.randint(0, R, (B,), generator=g),
            torch.randint(0, N, (B,), generator=g))


def pyg_and_ours(name):
    torch.manual_seed(0)
    h, r, t = triples()
    if name == "transe":
        m = kge.TransE(N, R, D, p_norm=1.0)
        ent = torch.nn.functional.normalize(m.node_emb.weight, p=1.0, dim=-1)
        return m(h, r, t), TransE(1.0)(ent[h], m.rel_emb.weight[r], ent[t])
    if name == "distmult":
        m = kge.DistMult(N, R, D)
        e, rel = m.node_emb.weight, m.rel_emb.weight
        return m(h, r, t), DistMult()(e[h], rel[r], e[t])
    if name == "complex":
        m = kge.ComplEx(N, R, D)
        e = torch.cat([m.node_emb.weight, m.node_emb_im.weight], dim=-1)
        rel = torch.cat([m.rel_emb.weight, m.rel_emb_im.weight], dim=-1)
        return m(h, r, t), ComplEx()(e[h], rel[r], e[t])
    m = kge.RotatE(N, R, D, margin=3.0)
    e = torch.cat([m.node_emb.weight, m.node_emb_im.weight], dim=-1)
    return m(h, r, t) - 3.0, RotatE()(e[h], m.rel_emb.weight[r], e[t])


@pytest.mark.parametrize("name", ["transe", "distmult", "complex", "rotate"])
def test_scorers_match_pyg_kge(name):
    expected, ours = pyg_and_ours(name)
    assert torch.allclose(ours, expected, atol=1e-5)


@pytest.mark.parametrize("name", ["transe", "distmult", "complex", "rotate"])
def test_head_and_tail_queries_and_match_all_agree(name):
    scorer = make_scorer(name, p=2.0)
    torch.manual_seed(1)
    ent = torch.randn(N, D)
    rel = torch.randn(R, scorer.relation_dim(D))
    h, r, t = triples()
    direct = scorer(ent[h], rel[r], ent[t])
    via_head = scorer.match(scorer.compose(ent[t], rel[r], "head"), ent[h])
    assert torch.allclose(direct, via_head, atol=1e-5)
    # Broadcasting [B, 1, d] against [1, N, d] equals match_all.
    for side, known, target in (("tail", h, t), ("head", t, h)):
        query = scorer.compose(ent[known], rel[r], side)
        full = scorer.match_all(query, ent)
        assert full.shape == (B, N)
        assert torch.allclose(full, scorer.match(query[:, None], ent[None]), atol=1e-4)
        assert torch.allclose(full[torch.arange(B), target], direct, atol=1e-4)


def test_fusion_masks_missing_modalities():
    torch.manual_seed(0)
    fusion = ModalityFusion(D)
    x = torch.randn(5, 3, D)
    mask = torch.tensor([[True, True, True], [True, False, True],
                         [True, False, False], [True, True, False],
                         [True, True, True]])
    out = fusion(x, mask)
    assert out.shape == (5, D)
    # Row 1 equals fusing only its structural and textual embeddings.
    assert torch.allclose(out[1], fusion(x[1:2, [0, 2]])[0], atol=1e-6)
    # Row 2 has only the structural modality: its residual plus itself.
    assert torch.allclose(out[2], 2 * x[2, 0], atol=1e-6)
    # A masked-out modality does not influence the result.
    x2 = x.clone()
    x2[1, 1] += 100
    assert torch.allclose(fusion(x2, mask)[1], out[1])
    assert not torch.allclose(fusion(x2, torch.ones_like(mask))[1], out[1])


def test_entity_embedding_with_features_and_without():
    x = torch.randn(N, 5)
    mask = torch.arange(N) % 3 != 0
    emb = MultimodalEntityEmbedding(N, D, {"visual": (x, mask)})
    out, m = emb(torch.tensor([[0, 1], [2, 3]]))
    assert out.shape == (2, 2, 2, D) and m.shape == (2, 2, 2)
    assert m[0, 0].tolist() == [True, False] and m[0, 1].tolist() == [True, True]
    assert "visual_x" not in emb.state_dict()  # features are not checkpointed
    plain, m = MultimodalEntityEmbedding(N, D)(None)
    assert plain.shape == (N, 1, D) and m.all()


def test_rgcn_encoder_uses_the_graph():
    torch.manual_seed(0)
    enc = RGCNEncoder(D, R, num_layers=2, num_bases=2)
    x = torch.randn(N, D, requires_grad=True)
    ei = torch.tensor([[0, 1, 2], [1, 2, 3]])
    et = torch.tensor([0, 1, 2])
    from dhns_geo.nn import add_inverse_edges
    ei2, et2 = add_inverse_edges(ei, et, R)
    assert ei2.tolist() == [[0, 1, 2, 1, 2, 3], [1, 2, 3, 0, 1, 2]]
    assert et2.tolist() == [0, 1, 2, 4, 5, 6]
    out = enc(x, ei2, et2)
    assert out.shape == (N, D)
    out.sum().backward()
    assert x.grad is not None and enc.convs[0].weight.grad is not None
    # Entity 10 has no edges: only the root weight acts on it; changing an
    # edge changes the encoding of its endpoints.
    other = enc(x, ei2[:, :2], et2[:2])
    assert not torch.allclose(out[3], other[3])
    assert torch.allclose(out[10], other[10])


def test_model_with_encoder_scores_ids_and_embeddings():
    model = KGCModel(N, R, D, RotatE(), encoder=RGCNEncoder(D, R),
                     edge_index=torch.tensor([[0, 1], [1, 2]]),
                     edge_type=torch.tensor([0, 1]))
    table = model.encode()
    h, r, t = triples()
    by_id = model(h, r, t, table)
    by_emb = model(table.fused(h), r, table.fused(t), table)
    assert torch.allclose(by_id, by_emb)
    negatives = model(h[:, None], r[:, None], torch.randint(0, N, (B, 7)), table)
    assert negatives.shape == (B, 7)
    with pytest.raises(ValueError, match="even dim"):
        KGCModel(N, R, 7, ComplEx())


@pytest.mark.parametrize("impl", [gathered_dots, gathered_dots_dense,
                                  gathered_dots_sparse])
def test_gathered_dots_equal_gather_then_dot_in_values_and_gradients(impl):
    torch.manual_seed(2)
    table = torch.randn(N, D, requires_grad=True)
    query = torch.randn(B, 3, D, requires_grad=True)
    index = torch.randint(0, N, (B, 5))
    which = torch.randint(0, 3, (B, 5))
    index[:, 1], which[:, 1] = index[:, 0], which[:, 0]     # duplicate entries
    grad = torch.randn(B, 5)

    out = impl(table, query, index, which)
    out.backward(grad)
    ours = out.detach(), table.grad.clone(), query.grad.clone()
    table.grad = query.grad = None
    picked = query[torch.arange(B).unsqueeze(1), which]          # [B, 5, D]
    ref = (table[index] * picked).sum(-1)
    ref.backward(grad)
    for a, b in zip(ours, (ref.detach(), table.grad, query.grad)):
        assert torch.allclose(a, b, atol=1e-5)
    assert ours[0].shape == (B, 5)


def test_pick_queries_equals_advanced_indexing_in_values_and_gradients():
    torch.manual_seed(3)
    query = torch.randn(B, 3, D, requires_grad=True)
    which = torch.randint(0, 3, (B, 5))
    grad = torch.randn(B, 5, D)
    pick_queries(query, which).backward(grad)
    ours = query.grad.clone()
    query.grad = None
    ref = query[torch.arange(B).unsqueeze(1), which]
    ref.backward(grad)
    assert torch.equal(pick_queries(query, which), ref)
    assert torch.allclose(ours, query.grad, atol=1e-6) and ours.abs().sum() > 0


def test_gathered_dots_rejects_ids_out_of_range():
    with pytest.raises(IndexError, match=r"\[0, 20\)"):
        gathered_dots_sparse(torch.randn(N, D), torch.randn(1, 2, D),
                      torch.tensor([[3, N]]), torch.tensor([[0, 1]]))


@pytest.mark.parametrize("name,p", [("transe", 1.0), ("transe", 2.0),
                                    ("distmult", 1.0), ("complex", 1.0),
                                    ("rotate", 1.0)])
def test_match_rows_equals_match_on_gathered_candidates(name, p):
    scorer = make_scorer(name, p=p)
    torch.manual_seed(3)
    ent, rel = torch.randn(N, D), torch.randn(B, scorer.relation_dim(D))
    h, _, t = triples()
    queries = torch.stack([scorer.compose(ent[h], rel, "tail"),
                           scorer.compose(ent[t], rel, "head")], 1)
    index = torch.randint(0, N, (B, 7))
    head_side = torch.rand(B, 7) < 0.5
    rows = scorer.match_rows(queries, ent, index, head_side.long())
    # A corrupted head scores (index, r, t); a corrupted tail (h, r, index).
    cand = ent[index]
    expected = torch.where(
        head_side, scorer(cand, rel.unsqueeze(1), ent[t].unsqueeze(1)),
        scorer(ent[h].unsqueeze(1), rel.unsqueeze(1), cand))
    assert torch.allclose(rows, expected, atol=1e-4)


def test_reciprocal_model_answers_head_queries_through_the_inverse_relation():
    torch.manual_seed(0)
    model = KGCModel(5, 2, 4, ComplEx(), reciprocal=True)
    assert model.relations.num_embeddings == 4
    entities, rel = model.entities.structural.weight, model.relations.weight
    score = model.score_all_fn()
    t, r = torch.tensor([3, 1]), torch.tensor([1, 0])
    via_inverse = ComplEx().match_all(
        ComplEx().compose(entities[t], rel[r + 2], "tail"), entities)
    assert torch.allclose(score(t, r, "head"), via_inverse)
    plain_head = ComplEx().match_all(
        ComplEx().compose(entities[t], rel[r], "head"), entities)
    assert not torch.allclose(score(t, r, "head"), plain_head)
    # Tail queries use r itself.
    tails = ComplEx().match_all(ComplEx().compose(entities[t], rel[r], "tail"),
                                entities)
    assert torch.allclose(score(t, r, "tail"), tails)


def test_rotate_p1_is_the_rotate_authors_score():
    torch.manual_seed(0)
    h, t = torch.randn(5, 8), torch.randn(5, 8)
    phase = torch.rand(5, 4) * 6.28 - 3.14
    # Their model.py: gamma - sum_i |h_i * r_i - t_i| (re/im stacked, norm(dim=0)).
    re_h, im_h = h.chunk(2, -1)
    re_t, im_t = t.chunk(2, -1)
    re = re_h * torch.cos(phase) - im_h * torch.sin(phase) - re_t
    im = re_h * torch.sin(phase) + im_h * torch.cos(phase) - im_t
    theirs = -torch.stack([re, im], 0).norm(dim=0).sum(-1)
    scorer = RotatE(p=1.0)
    assert torch.allclose(scorer(h, phase, t), theirs, atol=1e-5)
    # match_all (in chunks) and match_rows give the same scores.
    query = scorer.compose(h, phase, "tail")
    every = scorer.match_all(query, t, chunk_elements=16)
    assert torch.allclose(every, scorer.match(query.unsqueeze(1), t.unsqueeze(0)), atol=1e-5)
    assert torch.allclose(every.diagonal(), theirs, atol=1e-5)
    index = torch.tensor([[0, 3], [4, 4], [1, 2], [0, 0], [2, 1]])
    which = torch.zeros_like(index)
    rows = scorer.match_rows(query.unsqueeze(1), t, index, which)
    assert torch.allclose(rows, every.gather(1, index), atol=1e-5)
    # p = 2 is the Euclidean distance of the real vectors.
    assert torch.allclose(RotatE()(h, phase, t),
                          -torch.cat([re, im], -1).norm(dim=-1), atol=1e-5)
