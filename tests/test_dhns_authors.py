"""The authors' training as options: the diffusion gradient into the model,
their paired reverse chain, and the one-flag preset."""

import json

import pytest
import torch

from conftest import run_cli
from dhns_geo.config import TrainConfig
from dhns_geo.build import build_loss, build_model, build_objective, build_sampler
from dhns_geo.data import build_filter_index, split_triples
from dhns_geo.datasets import ToyMMKG
from dhns_geo.diffusion import DiffHEG
from dhns_geo.presets import PRESETS
from dhns_geo.training import Trainer

pytestmark = pytest.mark.slow      # trains models


def trainer(grad: str, data, index) -> Trainer:
    cfg = TrainConfig(sampler="dhns", dim=16, num_negatives=4, batch_size=64,
                      dhns_steps=10, dhns_generator_grad=grad, encoder="rgcn",
                      rgcn_layers=1)
    t = Trainer(build_model(cfg, data), build_objective(cfg, data), data, cfg,
                torch.device("cpu"), index, log=lambda line: None, progress=False)
    t.optimizer.step = lambda: None              # keep the gradients to compare
    return t


def test_model_gradient_is_kgc_plus_diffusion_gradient():
    data = ToyMMKG(num_entities=200, num_relations=4)[0]
    index = build_filter_index(data)
    batch = split_triples(data, "train")[:64]
    detached, model = trainer("detached", data, index), trainer("model", data, index)
    model.model.load_state_dict(detached.model.state_dict())
    model.objective.sampler.load_state_dict(detached.objective.sampler.state_dict())

    # Detached: sampling leaves no gradient on the model.
    table = detached.model.encode()
    detached.objective.sampler.sample(batch, detached.model, table,
                            torch.Generator().manual_seed(5))
    assert all(p.grad is None for p in detached.model.parameters())
    detached.objective.sampler.load_state_dict(model.objective.sampler.state_dict())

    # The diffusion gradient by autograd, from the same draws: the base
    # sampler's, then the generator's steps and noise.
    ref = trainer("model", data, index)
    ref.model.load_state_dict(model.model.state_dict())
    ref.objective.sampler.load_state_dict(model.objective.sampler.state_dict())
    g = torch.Generator().manual_seed(0)
    table = ref.model.encode()
    ref.objective.sampler.base.sample(batch, ref.model, table, g)
    target, cond, mask, _ = ref.objective.sampler._inputs(batch, ref.model, table)
    errors = ref.objective.sampler.diffheg.errors(target, cond, g)
    tails = torch.arange(2 * batch.size(0)) < batch.size(0)
    summed = sum(errors[i][mask[i] & side].mean()        # one mean per modality
                 for i in range(target.size(0))          # and side, added up
                 for side in (tails, ~tails))
    assert float(ref.objective.sampler.diffheg.reduce(errors, mask, 2).detach()) == pytest.approx(
        float(summed.detach()), rel=1e-5)
    params = [p for p in ref.model.parameters() if p.requires_grad]
    want = torch.autograd.grad(summed, params, allow_unused=True)

    for t in (detached, model):
        t.generator.manual_seed(0)
        t.train_step(batch)
    # The generator took the same step in both modes (same negatives) ...
    for a, b in zip(detached.objective.sampler.parameters(), model.objective.sampler.parameters()):
        assert torch.allclose(a, b)
    # ... and the model's gradient gained exactly the diffusion gradient.
    grads = zip(detached.model.parameters(), model.model.parameters(), want)
    moved = 0
    for a, b, w in grads:
        extra = torch.zeros_like(a) if w is None else w
        assert torch.allclose(b.grad, a.grad + extra, atol=1e-6, rtol=1e-4)
        moved += int(w is not None and bool(w.abs().sum() > 0))
    assert moved >= 3        # structural table, relations, feature projections


def test_paired_chain_steps_heads_from_the_tail_chain():
    torch.manual_seed(0)
    heg = DiffHEG(2, 8, 10)
    cond = torch.randn(2, 6, 8)                      # rows: 3 tails, 3 heads
    keep = [1, 3, 5]
    out = heg.sample(cond, keep, torch.Generator().manual_seed(1), strided=False,
                     paired=True)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(cond.shape, generator=g)[:, :3]
    ddpm, ref = heg.schedule.ddpm_step, {}
    with torch.no_grad():
        for t in range(10, 1, -1):
            steps = torch.full((3,), t)
            x = ddpm(x, t, heg.denoiser(x, steps, cond[:, :3]),
                     torch.randn(x.shape, generator=g))
            if t - 1 in keep:
                head = ddpm(x, t, heg.denoiser(x, steps, cond[:, 3:]),
                            torch.randn(x.shape, generator=g))
                ref[t - 1] = torch.cat([x, head], dim=1)
    assert sorted(out) == keep
    for t in keep:
        assert torch.allclose(out[t], ref[t], atol=1e-5)


def test_authors_preset_from_the_command_line(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code, out, err = run_cli(["train", "--preset", "authors-distmult", "--dim", "16",
                              "--epochs", "1", "-k", "4", "--batch-size", "1024",
                              "--dhns-steps", "10", "--eval-every", "1",
                              "--out", str(run_dir), "--no-progress"], capsys)
    assert code == 0, err
    saved = json.loads((run_dir / "config.json").read_text())["config"]
    for name, value in PRESETS["authors-distmult"].values.items():
        if name not in ("dim", "epochs", "num_negatives", "batch_size",
                        "dhns_steps", "eval_every"):
            assert saved[name] == value, name
    assert (saved["dim"], saved["dhns_generator_grad"], saved["scorer"]) == (
        16, "model", "distmult")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["best_epoch"] == 1 and metrics["test"]["num_triples"] == 804


def test_share_generates_for_the_first_rows_only():
    data = ToyMMKG(num_entities=200, num_relations=4)[0]
    cfg = TrainConfig(sampler="dhns", dim=16, num_negatives=4, dhns_steps=10,
                      dhns_share=0.25)
    model, sampler = build_model(cfg, data), build_sampler(cfg, data)
    batch = split_triples(data, "train")[:64]
    groups = sampler.sample(batch, model, model.encode(), torch.Generator().manual_seed(0))
    generated = [g for g in groups if g.name]
    assert len(generated) == 4                     # the active levels
    head, rel, tail = (model.encode().fused(batch[:, 0]), model.relations(batch[:, 1]),
                       model.encode().fused(batch[:, 2]))
    for g in generated:                            # generated for 16 rows only
        assert g.head.shape == (16, 3, 16) and g.weight.shape == (64, 3)
        assert bool((g.weight[:16] == 1).all()) and bool((g.weight[16:] == 0).all())
        scores = g.score(model.scorer, head, rel, tail, model.encode())
        assert scores.shape == (64, 3) and bool((scores[16:] == 0).all())
        assert torch.allclose(scores[:16], g.score(model.scorer, head[:16], rel[:16], tail[:16], model.encode()))
        # A data-parallel rank's rows 8..39 hold generated negatives for 8..15.
        part = g.rows(slice(8, 40))
        assert part.head.shape == (8, 3, 16) and part.weight.shape == (32, 3)
        assert torch.allclose(part.score(model.scorer, head[8:40], rel[8:40], tail[8:40], model.encode()), scores[8:40])
    # Rows without generated negatives carry the positive term only.
    pos, neg = torch.randn(64), torch.randn(64, 3)
    loss = build_loss(cfg)(pos, neg, 0.5, generated[0].weight)
    soft = torch.nn.functional.softplus
    w = torch.softmax(neg, dim=1)                   # self-adversarial, temperature 1
    per_row = soft(-(6.0 + pos)) + (w * soft(3.0 + neg)).sum(1) * (torch.arange(64) < 16)
    assert float(loss) == pytest.approx(float(per_row.mean() / 2), rel=1e-5)


def test_width_sets_the_denoiser_hidden_width():
    data = ToyMMKG(num_entities=200, num_relations=4)[0]
    widths = {}
    for width in (4.0, 1.0, 0.5):
        cfg = TrainConfig(sampler="dhns", dim=16, num_negatives=4, dhns_steps=10,
                          dhns_width=width)
        sampler = build_sampler(cfg, data)
        widths[width] = sampler.diffheg.denoiser.block[1].weight.shape[-1]
        model = build_model(cfg, data)
        groups = sampler.sample(split_triples(data, "train")[:32], model,
                                model.encode(), torch.Generator().manual_seed(0))
        assert all(g.head.shape == (32, 3, 16) for g in groups if g.name)
    assert widths == {4.0: 64, 1.0: 16, 0.5: 8}
