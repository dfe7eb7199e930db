import pytest
import torch

from dhns_geo.data import FilterIndex
from dhns_geo.evaluation import evaluate_link_prediction, filtered_ranks

# 5 entities, 1 relation. Test triples (0, 0, 1) and (3, 0, 4); train has
# (0, 0, 2) and (2, 0, 4), which must be filtered out of the rankings.
TEST = torch.tensor([[0, 0, 1], [3, 0, 4]])
TRAIN = torch.tensor([[0, 0, 2], [2, 0, 4]])
SCORES = {
    # (side, known): scores of entities 0..4
    ("tail", 0): [0.1, 0.5, 0.9, 0.5, 0.2],  # true 1; 2 filtered; tie with 3
    ("head", 1): [0.3, 0.8, 0.3, 0.1, 0.6],  # true 0; 1 and 4 above, tie 2
    ("tail", 3): [0.0, 0.0, 0.0, 0.0, 1.0],  # true 4 is best
    ("head", 4): [0.2, 0.1, 0.9, 0.4, 0.0],  # true 3; 2 filtered; 2 ahead? no
}
# Hand-computed realistic filtered ranks:
#   tail of (0,0,1): 1 + 0 greater + 0.5 * 1 tie           = 1.5
#   head of (0,0,1): 1 + 2 greater + 0.5 * 1 tie            = 3.5
#   tail of (3,0,4): 1                                      = 1.0
#   head of (3,0,4): entity 2 (0.9) filtered, none above 0.4 = 1.0
TAIL_RANKS, HEAD_RANKS = [1.5, 1.0], [3.5, 1.0]


def score_fn(known, relation, side):
    return torch.tensor([SCORES[(side, k)] for k in known.tolist()])


@pytest.mark.parametrize("batch_size", [1, 2, 64])
def test_metrics_against_hand_computed_ranks(batch_size):
    index = FilterIndex(torch.cat([TRAIN, TEST]), 5, 1)
    m = evaluate_link_prediction(score_fn, TEST, index, batch_size=batch_size)
    ranks = TAIL_RANKS + HEAD_RANKS
    assert m["mrr"] == pytest.approx(sum(1 / r for r in ranks) / 4)
    assert m["mr"] == pytest.approx(sum(ranks) / 4)
    assert m["hits@1"] == pytest.approx(2 / 4)
    assert m["hits@3"] == pytest.approx(3 / 4)
    assert m["hits@10"] == pytest.approx(1.0)
    assert m["tail"]["mrr"] == pytest.approx((1 / 1.5 + 1) / 2)
    assert m["head"]["mr"] == pytest.approx((3.5 + 1) / 2)
    assert m["head"]["hits@3"] == pytest.approx(0.5)
    assert m["num_triples"] == 2


def test_unfiltered_ranking_differs():
    # Without the train triples in the index, entity 2 outranks the tail.
    index = FilterIndex(TEST, 5, 1)
    m = evaluate_link_prediction(score_fn, TEST, index)
    assert m["tail"]["mr"] == pytest.approx((2.5 + 1) / 2)


def test_filtered_ranks_ties_all_equal():
    scores = torch.zeros(1, 5)
    ranks = filtered_ranks(scores, torch.tensor([2]), torch.tensor([0]),
                           torch.tensor([2]))
    # 4 other entities tie with the target: (1 + 5) / 2 = 3.
    assert ranks.tolist() == [3.0]


def test_score_matrices_are_bounded_by_the_batch_size():
    """Evaluation memory: never more than ``batch_size x N`` scores at once,
    on a model over 200k entities."""
    from dhns_geo.nn import KGCModel, RotatE

    n, batch = 200_000, 16
    model = KGCModel(n, 3, 8, RotatE()).eval()
    triples = torch.randint(0, n, (50, 3))
    triples[:, 1] %= 3
    shapes = []
    inner = model.score_all_fn()

    def recording(known, relation, side):
        scores = inner(known, relation, side)
        shapes.append(tuple(scores.shape))
        return scores
    evaluate_link_prediction(recording, triples, FilterIndex(triples, n, 3), batch)
    assert max(s[0] for s in shapes) == batch and {s[1] for s in shapes} == {n}
    assert sum(s[0] for s in shapes) == 2 * 50
