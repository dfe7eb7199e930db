"""Reciprocal relations, 1-vs-all training, N3, RotatE's published norm and
the FB15k-237 loader."""

import math

import pytest
import torch
import torch.nn.functional as F

from conftest import place_raw, record_lrs, run_cli
from dhns_geo.config import TrainConfig
from dhns_geo.build import build_sampler
from dhns_geo.data import add_reciprocals, quality_report, split_triples
from dhns_geo.datasets import FB15k237, load_dataset
from dhns_geo.errors import OptionError
from dhns_geo.losses import regularization
from dhns_geo.nn import ComplEx, DistMult, KGCModel, RotatE
from dhns_geo.onevsall import one_vs_all_loss
from dhns_geo.training import Trainer
from dhns_geo.runs import load_run, run_training

QUIET = {"log": lambda line: None, "progress": False}
# The chain's valid and test triples are train triples on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::dhns_geo.errors.DataQualityWarning")


def chain_folder(tmp_path, n=10):
    """e0 -next-> e1 -next-> ... -next-> e{n-1}, as a TSV folder."""
    folder = tmp_path / "chain"
    folder.mkdir()
    rows = [f"e{i}\tnext\te{i + 1}\n" for i in range(n - 1)]
    (folder / "train.tsv").write_text("".join(rows))
    (folder / "valid.tsv").write_text(rows[3])
    (folder / "test.tsv").write_text(rows[5])
    return folder


def test_add_reciprocals():
    triples = torch.tensor([[0, 1, 2], [3, 0, 4]])
    assert add_reciprocals(triples, 2).tolist() == [
        [0, 1, 2], [3, 0, 4], [2, 3, 0], [4, 2, 3]]
    assert triples.tolist() == [[0, 1, 2], [3, 0, 4]]       # not modified


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


def test_n3_is_the_sum_of_cubed_moduli():
    # Two complex entries per factor, [re, re, im, im].
    h = torch.tensor([[3., 0., 4., 0.], [0., 0., 0., 0.]])    # |3+4i| = 5
    r = torch.tensor([[1., 1., 0., 0.], [0., 0., 0., 0.]])
    t = torch.tensor([[0., 2., 0., 0.], [0., 0., 0., 0.]])
    assert regularization("n3", [h, r, t], complex=True).item() == pytest.approx(
        (125 + 2 + 8) / 2)
    # Lacroix et al.'s code: sum of sqrt(re^2 + im^2) ** 3 over the batch / B.
    lacroix = sum(torch.sqrt(f[:, :2] ** 2 + f[:, 2:] ** 2).pow(3).sum() for f in (h, r, t)) / 2
    assert regularization("n3", [h, r, t], complex=True).item() == pytest.approx(lacroix.item())
    # Real factors: N3 is the cube of each entry; l3 ignores complex pairs.
    assert regularization("n3", [h], complex=False).item() == pytest.approx((27 + 64) / 2)
    assert regularization("l3", [h], complex=True).item() == pytest.approx((27 + 64) / 2)
    assert regularization("l2", [h], complex=True).item() == pytest.approx(25 / 2)
    # Smooth at 0: no NaN gradient from the zero rows.
    x = h.clone().requires_grad_()
    regularization("n3", [x], complex=True).backward()
    assert torch.isfinite(x.grad).all() and x.grad[1].abs().sum() == 0


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


@pytest.mark.parametrize("values,name", [
    ({"training": "1vsall", "sampler": "dhns"}, "sampler"),
    ({"training": "1vsall", "num_negatives": 64}, "num_negatives"),
    ({"reciprocal": True, "sampler": "bernoulli"}, "sampler"),
    ({"regularizer": "n3", "scorer": "rotate"}, "regularizer"),
    ({"label_smoothing": 0.1}, "label_smoothing"),
    ({"rotate_p": 1.0, "scorer": "complex"}, "rotate_p"),
    ({"training": "kvsall"}, "training"),
    ({"optimizer": "sgd"}, "optimizer"),
])
def test_regime_options_are_checked(values, name):
    with pytest.raises(OptionError) as info:
        TrainConfig(**values)
    assert info.value.name == name


def test_cli_trains_1vsall_with_reciprocals(tmp_path, capsys):
    code, out, err = run_cli(
        ["train", "--dataset", str(chain_folder(tmp_path)), "--scorer", "complex",
         "--training", "1vsall", "--reciprocal", "--regularizer", "n3",
         "--reg-weight", "0.01", "--optimizer", "adagrad", "--lr", "0.5",
         "--dim", "16", "--epochs", "2", "--out", str(tmp_path / "run")], capsys)
    assert code in (0, None), err
    assert "test metrics" in out


def test_fb15k237_counts_offline(tmp_path, monkeypatch):
    root = place_raw("FB15k-237", tmp_path, FB15k237.raw_files)
    monkeypatch.setattr("dhns_geo.datasets.benchmarks.download_url",
                        lambda *a, **k: pytest.fail("must not download"))
    data = FB15k237(root)[0]
    assert data["entity"].num_nodes == 14541 and data.num_relations == 237
    assert split_triples(data, "train").shape == (272115, 3)
    assert data.valid_triples.shape == (17535, 3)
    assert data.test_triples.shape == (20466, 3)
    report = quality_report(data)
    assert (report["valid"]["unseen_entities"], report["test"]["unseen_entities"]) == (8, 29)
    assert load_dataset("fb15k237", root)["entity"].num_nodes == 14541
    # A changed file is refused, naming it.
    with open(root / "FB15k-237" / "raw" / "valid.txt", "a") as f:
        f.write("/m/a\t/r\t/m/b\n")
    with pytest.raises(Exception, match="valid.txt: sha256 differs"):
        FB15k237(root, force_reload=True)


def test_lr_drop_at_divides_the_rate_by_ten_from_that_step(tmp_path):
    config = TrainConfig(dataset=str(chain_folder(tmp_path)), dim=8, lr=0.04,
                         lr_drop_at=3, batch_size=2, num_negatives=4,
                         optimizer="adagrad", lr_plateau_factor=1.0)
    trainer = Trainer.from_config(config, load_dataset(config.dataset),
                                  torch.device("cpu"), **QUIET)
    assert isinstance(trainer.optimizer, torch.optim.Adagrad)
    seen = record_lrs(trainer)
    trainer.train_epoch()                          # 9 triples, batch 2: 5 steps
    assert seen == pytest.approx([0.04, 0.04, 0.04, 0.004, 0.004])
