import torch

from dhns_geo.data import FilterIndex


def brute_answers(triples, known, rel, side):
    out = set()
    for i, (k, r) in enumerate(zip(known.tolist(), rel.tolist())):
        for h, rr, t in triples.tolist():
            if side == "tail" and h == k and rr == r:
                out.add((i, t))
            if side == "head" and t == k and rr == r:
                out.add((i, h))
    return out


def test_true_answers_and_contains_match_brute_force():
    g = torch.Generator().manual_seed(0)
    n, r = 30, 4
    triples = torch.stack([torch.randint(0, n, (200,), generator=g),
                           torch.randint(0, r, (200,), generator=g),
                           torch.randint(0, n, (200,), generator=g)], dim=1)
    index = FilterIndex(triples, n, r)
    known = torch.randint(0, n, (50,), generator=g)
    rel = torch.randint(0, r, (50,), generator=g)
    for side in ("tail", "head"):
        row, ent = index.true_answers(known, rel, side)
        got = set(zip(row.tolist(), ent.tolist()))
        assert got == brute_answers(triples, known, rel, side)

    truth = {tuple(x) for x in triples.tolist()}
    cand = torch.stack([torch.randint(0, n, (500,), generator=g),
                        torch.randint(0, r, (500,), generator=g),
                        torch.randint(0, n, (500,), generator=g)], dim=1)
    cand = torch.cat([cand, triples[:20]])
    got = index.contains(cand[:, 0], cand[:, 1], cand[:, 2])
    expected = torch.tensor([tuple(x) in truth for x in cand.tolist()])
    assert torch.equal(got, expected)
    assert expected.sum() >= 20


def test_unknown_query_has_no_answers():
    index = FilterIndex(torch.tensor([[0, 0, 1]]), 3, 2)
    row, ent = index.true_answers(torch.tensor([2, 0]), torch.tensor([1, 0]), "tail")
    assert row.tolist() == [1] and ent.tolist() == [1]
