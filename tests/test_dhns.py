import csv

import pytest
import torch

from conftest import losses, resumed_equals_uninterrupted
from dhns_geo.cli.main import main
from dhns_geo.config import TrainConfig
from dhns_geo.build import build_sampler
from dhns_geo.data import build_filter_index, split_triples
from dhns_geo.diffusion import (DHNSSampler, DiffHEG, DiffusionSchedule,
                                default_levels, train_generator)
from dhns_geo.nn import KGCModel, RotatE
from dhns_geo.sampling import UniformSampler
from dhns_geo.runs import load_run, run_training

pytestmark = pytest.mark.slow      # trains models

QUIET = {"log": lambda line: None, "progress": False}


def test_schedule_matches_closed_form():
    s = DiffusionSchedule(50, 1e-4, 0.02)
    betas = torch.linspace(1e-4, 0.02, 50, dtype=torch.float64)
    assert s.betas[0] == 0 and torch.allclose(s.betas[1:].double(), betas)
    assert torch.allclose(s.alpha_bar[1:].double(), torch.cumprod(1 - betas, 0),
                          atol=1e-6)
    assert s.alpha_bar[0] == 1
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(4, 8, generator=g)
    noise = torch.randn(4, 8, generator=g)
    t = torch.tensor([1, 10, 25, 50])
    ab = torch.cumprod(1 - betas, 0)[t - 1].float().unsqueeze(-1)
    assert torch.allclose(s.q_sample(x0, t, noise),
                          ab.sqrt() * x0 + (1 - ab).sqrt() * noise, atol=1e-6)
    # DDIM with the true noise recovers x_{t'} of the same noise exactly.
    x_t = s.q_sample(x0, torch.full((4,), 25), noise)
    x_5 = s.ddim_step(x_t, 25, 5, noise)
    assert torch.allclose(x_5, s.q_sample(x0, torch.full((4,), 5), noise), atol=1e-5)
    assert default_levels(50) == [1, 5, 6, 12, 25]


def test_denoiser_reduces_its_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = DiffHEG(num_modalities=2, dim=16, num_steps=50)
    x0 = torch.randn(2, 64, 16)
    cond = x0 + 0.1 * torch.randn(2, 64, 16)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def loss():
        return model.loss(x0, cond, torch.Generator().manual_seed(1))

    first = loss().item()
    for _ in range(150):
        opt.zero_grad()
        value = loss()
        value.backward()
        opt.step()
    assert loss().item() < 0.5 * first


@pytest.mark.parametrize("hidden", [None, 24, 10])
def test_cached_condition_denoises_like_forward(hidden):
    """The reverse chain's precomputed condition gives the plain forward's
    noise prediction (trained-looking weights, non-centred inputs), at the
    published hidden width 4d and narrower ones."""
    torch.manual_seed(0)
    model = DiffHEG(num_modalities=3, dim=24, hidden=hidden).denoiser
    assert model.block[1].weight.shape == (3, 72, hidden or 96)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    x, cond = torch.randn(3, 40, 24), 2 * torch.randn(3, 40, 24) + 0.3
    with torch.no_grad():
        expected = model(x, torch.full((40,), 7), cond)
        got = model.denoise(x, 7, model.condition(cond))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def trained_toy(tmp_path, sampler="dhns", **kw):
    cfg = TrainConfig(dim=32, epochs=6, eval_every=3, sampler=sampler,
                      num_negatives=8, shared_negatives=False, batch_size=512,
                      lr=0.005, patience=10, **kw)
    run_training(cfg, tmp_path / "run", **QUIET)
    return tmp_path / "run"


@pytest.mark.parametrize("strided", [True, False])
def test_levels_are_ordered_by_hardness(tmp_path, strided):
    _, data, model, _ = load_run(trained_toy(tmp_path, sampler="uniform"))
    cfg = TrainConfig(dim=32, sampler="dhns", dhns_level_weights=[1.0] * 5,
                      dhns_sampling="strided" if strided else "full")
    dev = model.device                          # CUDA where the run used it
    sampler = build_sampler(cfg, data).to(dev)
    g = torch.Generator(device=dev).manual_seed(0)
    train = split_triples(data, "train").to(dev)
    for p in model.parameters():
        p.requires_grad_(False)
    train_generator(sampler, model, train, epochs=8, batch_size=256,
                    generator=g, progress=False)
    pos = train[:300]
    table = model.encode()
    h, r, t = pos.unbind(1)
    generated = sampler.generate(pos, model, table, g)
    # Mean score of (h, r, generated t) per level, hardest (t=1) first.
    scores = [model(h, r, generated[i][1], table).mean().item()
              for i in range(5)]
    assert scores == sorted(scores, reverse=True), scores
    # The spread of levels is a real fraction of the gap between positives
    # and random negatives, and the hardest level lies near the positives.
    positive = model(h, r, t, table).mean().item()
    random = model(h, r, torch.randint(0, 1000, t.shape, generator=g, device=dev),
                   table).mean().item()
    assert scores[0] - scores[-1] > 0.2 * (positive - random)
    assert scores[0] > (positive + random) / 2


def test_ntat_groups_margins_weights_and_gradients():
    torch.manual_seed(0)
    n, r, d, b = 30, 3, 8, 5
    model = KGCModel(n, r, d, RotatE())
    sampler = DHNSSampler(UniformSampler(n, r, 4), 1, d, mu=0.2)
    pos = torch.tensor([[0, 0, 1], [2, 1, 3], [4, 2, 5], [6, 0, 7], [8, 1, 9]])
    table = model.encode()
    groups = sampler.sample(pos, model, table, torch.Generator().manual_seed(0))
    assert len(groups) == 1 + 4  # base + levels with non-zero weight
    base, levels = groups[0], groups[1:]
    assert base.loss_weight == 1.0 and base.head.shape == (b, 4)
    assert [g.margin_factor for g in levels] == [0.3, 0.5, 0.7, 0.9]
    # mu * w_i / (number of non-zero weights).
    assert [g.loss_weight for g in levels] == pytest.approx(
        [0.2 * w / 4 for w in (0.5, 1.0, 1.0, 0.5)])
    g = levels[0]
    assert g.head.shape == g.tail.shape == (b, 3, d)
    # (h~, r, t), (h, r, t~), (h~, r, t~): the real sides are the positive's.
    assert g.own.tolist() == [[False, True], [True, False], [False, False]]
    real_h, rel, real_t = (table.fused(pos[:, 0]), model.relations(pos[:, 1]),
                           table.fused(pos[:, 2]))
    gen_h, gen_t = g.head[:, 0], g.tail[:, 1]
    assert torch.equal(g.head[:, 2], gen_h) and torch.equal(g.tail[:, 2], gen_t)
    scores = g.score(model.scorer, real_h, rel, real_t, table)
    expected = torch.stack([model.scorer(gen_h, rel, real_t),
                            model.scorer(real_h, rel, gen_t),
                            model.scorer(gen_h, rel, gen_t)], dim=1)
    assert torch.allclose(scores, expected, atol=1e-6)
    # Gradients reach only the real entities of the negatives.
    before = [p.grad.clone() for p in sampler.diffheg.parameters()]
    scores.sum().backward()
    grad = model.entities.structural.weight.grad
    touched = set(grad.abs().sum(1).nonzero().view(-1).tolist())
    assert touched == set(pos[:, [0, 2]].reshape(-1).tolist())
    # The generator's own gradients are untouched by the KGC loss.
    assert all(torch.equal(a, p.grad) for a, p in
               zip(before, sampler.diffheg.parameters()))


def test_generator_steps_is_a_real_parameter():
    torch.manual_seed(0)
    model = KGCModel(30, 3, 8, RotatE())
    pos = torch.tensor([[0, 0, 1], [2, 1, 3]])
    for steps in (1, 3):
        sampler = DHNSSampler(UniformSampler(30, 3, 4), 1, 8, generator_steps=steps)
        sampler.sample(pos, model, model.encode(), torch.Generator().manual_seed(0))
        state = sampler.optimizer.state_dict()["state"]
        assert all(int(s["step"]) == steps for s in state.values())


def test_dhns_checkpoint_resume_restores_generator(tmp_path):
    cfg = dict(dim=16, epochs=4, eval_every=2, batch_size=1024,
               num_negatives=4, patience=10, sampler="dhns")
    state = resumed_equals_uninterrupted(cfg, tmp_path)
    assert any(k.startswith("diffheg.") for k in state)
    assert "_extra_state" in state and state["_extra_state"]["optimizer"]["state"]


@pytest.mark.parametrize("scorer,encoder", [("transe", "rgcn"), ("distmult", "none"),
                                            ("complex", "rgcn")])
def test_dhns_trains_with_every_scorer(tmp_path, scorer, encoder):
    cfg = TrainConfig(dim=16, epochs=2, eval_every=1, sampler="dhns",
                      scorer=scorer, encoder=encoder, num_negatives=4)
    run_training(cfg, tmp_path / "r", **QUIET)
    trained = losses(tmp_path / "r")
    assert len(trained) == 2 and trained[1] < trained[0]


def test_sample_negatives_cli(tmp_path, capsys):
    run = trained_toy(tmp_path)
    out = tmp_path / "neg.tsv"
    with pytest.raises(SystemExit) as info:
        main(["sample-negatives", str(run), "--limit", "4", "--k", "3",
              "--levels", "5,25", "--out", str(out), "--no-progress"])
    assert info.value.code == 0
    rows = list(csv.DictReader(out.open(), delimiter="\t"))
    # 4 positives x 2 levels x 2 sides x 3 neighbours; no side repeats another.
    assert len(rows) == 4 * 2 * 2 * 3
    assert {(r["side"], r["position"]) for r in rows} == {("head", "head"),
                                                          ("tail", "tail")}
    assert {r["step"] for r in rows} == {"5", "25"}
    assert {r["margin_factor"] for r in rows} == {"0.3", "0.9"}
    _, data, _, _ = load_run(run)
    index = build_filter_index(data)
    for r in rows:
        h, rel, t, e = int(r["head"]), int(r["relation"]), int(r["tail"]), int(r["negative_id"])
        neg = (e, rel, t) if r["position"] == "head" else (h, rel, e)
        assert not index.contains(*(torch.tensor(x) for x in neg))
        assert r["negative_name"] == f"entity_{e}"
    with pytest.raises(SystemExit) as info:
        main(["sample-negatives", str(run), "--levels", "7"])
    assert info.value.code == 2    # a bad option value


def test_normalized_diffusion_follows_the_embedding_scale():
    """With ``normalize`` the generated entities scale with the model's
    embeddings (the chain runs on unit-RMS inputs); without it they do not."""
    torch.manual_seed(0)
    model = KGCModel(30, 3, 8, RotatE())
    pos = torch.tensor([[0, 0, 1], [2, 1, 3], [4, 2, 5]])
    for normalize, follows in ((True, True), (False, False)):
        sampler = DHNSSampler(UniformSampler(30, 3, 4), 1, 8, normalize=normalize)
        out = []
        for c in (1.0, 0.01):
            with torch.no_grad():
                model.entities.structural.weight.mul_(c)
            out.append(sampler.generate(pos, model, model.encode(),
                                        torch.Generator().manual_seed(0)))
            with torch.no_grad():
                model.entities.structural.weight.div_(c)
        for i in out[0]:
            same = torch.allclose(out[1][i][1], 0.01 * out[0][i][1], atol=1e-6)
            assert same == follows, (normalize, i)
