"""OnlineDHNS: hierarchical negatives for the user's own model (PyG's KGE
models here), their NTAT loss, the generator's own training, and mined ids."""

import copy
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.nn import ComplEx, DistMult, RotatE, TransE

from dhns_geo.adapters import KGEAdapter
from dhns_geo.data.filter import FilterIndex
from dhns_geo.errors import DHNSError
from dhns_geo.losses import KGELoss
from dhns_geo.online import OnlineDHNS

from conftest import place_raw

N, R, B = 40, 3, 16
PYG_MODELS = [(TransE, {}), (DistMult, {}), (ComplEx, {}), (RotatE, {"margin": 9.0})]


def batch(seed=0, n=B):
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, N, (n,), generator=g), torch.randint(0, R, (n,), generator=g),
            torch.randint(0, N, (n,), generator=g))


def setup(cls, kwargs, **options):
    torch.manual_seed(0)
    model = cls(N, R, 8, **kwargs)
    adapter = KGEAdapter.from_pyg(model)
    return model, adapter, OnlineDHNS.for_model(adapter, **options)


@pytest.mark.parametrize("cls, kwargs", PYG_MODELS)
def test_negatives_shapes_and_margins(cls, kwargs):
    model, adapter, dhns = setup(cls, kwargs)
    h, r, t = batch()
    negatives = dhns(adapter, h, r, t)
    levels = dhns.sampler.active_levels                  # 4 of the default 5
    k = 3 * len(levels)
    heads, tails = negatives.embeddings()
    d = adapter.dim
    assert heads.shape == tails.shape == (B, k, d) and negatives.scores().shape == (B, k)
    factors = torch.tensor([dhns.sampler.margin_factors[i] for i in levels])
    torch.testing.assert_close(negatives.margin_factor, factors.repeat_interleave(3))
    # (h~, r, t), (h, r, t~), (h~, r, t~): the real sides are the positive's own.
    own_h, own_t = adapter.entities(h), adapter.entities(t)
    torch.testing.assert_close(tails[:, 0], own_t)
    torch.testing.assert_close(heads[:, 1], own_h)
    assert not torch.allclose(heads[:, 0], own_h) and not torch.allclose(tails[:, 2], own_t)
    # Generated entities live where the model's do (TransE: normalised rows).
    if cls is TransE:
        torch.testing.assert_close(heads[:, 0].abs().sum(-1), torch.ones(B))
    # Scored by the model's own function.
    torch.testing.assert_close(negatives.scores()[:, 1:2],
                               adapter.score(own_h, adapter.relations(r), tails[:, 1])
                               .unsqueeze(1))


def test_ntat_loss_equals_a_hand_computation():
    model, adapter, dhns = setup(DistMult, {}, mu=2.0)
    h, r, t = batch(1)
    negatives = dhns(adapter, h, r, t)
    pos = model(h, r, t)
    scores = negatives.scores()
    levels = dhns.sampler.active_levels
    want = 0.0
    for j, i in enumerate(levels):
        factor = dhns.sampler.margin_factors[i]
        weight = 2.0 * dhns.sampler.level_weights[i] / len(levels)
        per = F.relu(1.0 * factor - pos.unsqueeze(1) + scores[:, 3 * j:3 * j + 3])
        want = want + weight * per.mean()
    torch.testing.assert_close(negatives.loss(), want)
    torch.testing.assert_close(negatives.loss(pos, scores), want)


@pytest.mark.parametrize("cls, kwargs", PYG_MODELS)
def test_a_step_of_the_users_loss_trains_the_users_model(cls, kwargs):
    # A margin wide enough that every negative's hinge is active (an
    # untrained generator's samples lie far from the entities).
    model, adapter, dhns = setup(cls, kwargs, loss=KGELoss("margin", margin=50.0))
    h, r, t = batch(2)
    negatives = dhns(adapter, h, r, t)
    # Fitting the generator put no gradient into the user's model.
    assert all(p.grad is None for p in model.parameters())
    own = [p.grad.clone() for p in dhns.sampler.diffheg.parameters()]
    negatives.loss().backward()
    assert model.node_emb.weight.grad.abs().sum() > 0
    assert model.rel_emb.weight.grad.abs().sum() > 0
    # ... and the user's loss puts none into the generator (samples are detached).
    assert all(torch.equal(g, p.grad) for g, p in zip(own, dhns.sampler.diffheg.parameters()))
    model.zero_grad()
    (model.loss(h, r, t) + dhns(adapter, h, r, t).loss()).backward()
    assert model.node_emb.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("cls, kwargs", PYG_MODELS)
def test_the_generator_trains_on_the_models_embeddings(cls, kwargs):
    model, adapter, dhns = setup(cls, kwargs)
    before = [p.detach().clone() for p in dhns.sampler.diffheg.parameters()]
    h, r, t = batch(3)
    dhns(adapter, h, r, t)
    grads = [p.grad for p in dhns.sampler.diffheg.parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    moved = [not torch.equal(b, p) for b, p in zip(before, dhns.sampler.diffheg.parameters())]
    assert all(moved)
    losses = []
    for _ in range(60):
        dhns(adapter, h, r, t)
        losses.append(float(dhns.generator_loss))
    assert sum(losses[-10:]) < sum(losses[:10])        # DiffHEG learns the batch


def test_negatives_follow_the_model():
    """Conditioned on the model's current embeddings: other embeddings,
    other negatives (same generator state and random stream)."""
    model, adapter, dhns = setup(DistMult, {})
    h, r, t = batch(4)
    state = copy.deepcopy(dhns.state_dict())
    first = dhns(adapter, h, r, t).embeddings()[1][:, 1]
    dhns.load_state_dict(state)
    dhns._generator = None
    with torch.no_grad():
        model.node_emb.weight.mul_(3.0)
    second = dhns(adapter, h, r, t).embeddings()[1][:, 1]
    assert not torch.allclose(first, second)


def test_share_generates_for_the_first_rows_only():
    model, adapter, dhns = setup(RotatE, {}, share=0.25)
    h, r, t = batch(5)
    negatives = dhns(adapter, h, r, t)
    assert negatives.scores().shape[0] == B // 4 and negatives.loss().dim() == 0


@pytest.mark.parametrize("cls, kwargs", PYG_MODELS)
def test_mined_ids_are_real_entities_never_true_answers(cls, kwargs):
    model, adapter, dhns = setup(cls, kwargs)
    h, r, t = batch(6)
    heads, tails = dhns.mine(adapter, h, r, t)
    assert heads.shape == tails.shape == (B, len(dhns.levels))
    assert heads.min() >= 0 and heads.max() < N
    assert not (heads == h.unsqueeze(1)).any() and not (tails == t.unsqueeze(1)).any()
    # With a filter, no known true answer is returned.
    known = torch.stack([h, r, t], 1)
    index = FilterIndex(torch.cat([known, torch.stack([h, r, (t + 1) % N], 1)]), N, R)
    _, tails = dhns.mine(adapter, h, r, t, filter_index=index)
    assert not (tails == t.unsqueeze(1)).any()
    assert not (tails == ((t + 1) % N).unsqueeze(1)).any()


def test_mined_ids_are_the_nearest_entities():
    model, adapter, dhns = setup(DistMult, {})
    h, r, t = batch(7)
    state = copy.deepcopy(dhns.state_dict())
    g = dhns.generator(h.device)
    replay = g.get_state()
    _, tails = dhns.mine(adapter, h, r, t, fit=False)
    dhns.load_state_dict(state)
    g.set_state(replay)
    positives = torch.stack([h, r, t], 1)
    generated = dhns.sampler.generate(positives, adapter, adapter, g)
    table = adapter.entities().detach()
    for j, (_, gen_t) in enumerate(generated.values()):
        dist = torch.cdist(gen_t, table)
        dist[torch.arange(B), t] = float("inf")
        torch.testing.assert_close(tails[:, j], dist.argmin(1))


PAGE = Path(__file__).resolve().parents[1] / "docs" / "how-to" / "pyg.md"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "pyg_kge_fb15k_237_dhns.py"


@pytest.mark.slow
@pytest.mark.parametrize("block", [0, 1], ids=["dhns", "nscaching"])
def test_pyg_page_loops_run_and_learn(capsys, block):
    code = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)[block]
    exec(compile(code, "docs/how-to/pyg.md", "exec"), {})
    out = capsys.readouterr().out
    mrr = float(re.search(r"filtered test MRR ([0-9.]+)", out).group(1))
    assert mrr > 0.5                        # random ranking: about 0.0075


def test_pyg_page_diff_is_the_examples():
    """The page's diff against PyG's script adds exactly the example's
    marked lines, and each of its added lines is in the example."""
    diff = re.findall(r"```diff\n(.*?)```", PAGE.read_text(), re.S)[0].splitlines()
    added = [line[1:] for line in diff[2:] if line.startswith("+")]
    example = EXAMPLE.read_text().splitlines()
    marked = [line for line in example if line.endswith("# DHNS")]
    assert added == marked
    body = example[example.index("import argparse"):]
    kept = [line[1:] for line in diff[2:] if line.startswith(" ")]
    assert all(line in body for line in kept)


@pytest.mark.slow
def test_pyg_example_runs_on_fb15k_237(tmp_path):
    """The redone PyG example, one epoch of TransE with DHNS on FB15k-237
    (PyG's class built offline from the published files)."""
    place_raw("FB15k-237", tmp_path / "src", ("train.txt", "valid.txt", "test.txt"))
    root = tmp_path / "FB15k"
    root.mkdir()
    (tmp_path / "src" / "FB15k-237" / "raw").rename(root / "raw")
    out = subprocess.run([sys.executable, str(EXAMPLE), "--model", "transe", "--dhns",
                          "--epochs", "1", "--root", str(root)],
                         capture_output=True, text=True, timeout=900, check=True).stdout
    mrr = float(re.search(r"Test MRR: (\S+),", out).group(1))
    assert mrr > 0.01                       # one epoch of TransE; random: about 0.0007


def test_modality_embeddings_are_generated_beside_the_structural_one():
    """A model with a projected feature table: DiffHEG generates both
    modalities and the model's fusion makes the negative entity."""
    torch.manual_seed(0)
    structural = torch.nn.Embedding(N, 8)
    features, project = torch.randn(N, 5), torch.nn.Linear(5, 8)
    rel = torch.nn.Embedding(R, 8)
    fused = []

    def modalities(ids):                        # [*, 2, d]
        ids = torch.arange(N) if ids is None else ids
        return torch.stack([structural(ids), project(features[ids])], -2)

    def fuse(x):                                # [*, 2, d] -> [*, d]
        fused.append(x.shape)
        return x[..., 0, :] + 0.5 * x[..., 1, :]
    adapter = KGEAdapter(lambda ids: fuse(modalities(ids)), rel, "distmult",
                         modalities=modalities, fuse=fuse)
    assert adapter.num_modalities == 2
    dhns = OnlineDHNS.for_model(adapter)
    h, r, t = batch(8)
    negatives = dhns(adapter, h, r, t)
    assert dhns.sampler.diffheg.denoiser.block[1].weight.shape[0] == 2   # one net per modality
    assert fused[-1][-2:] == (2, 8)
    heads, _ = negatives.embeddings()
    assert heads.shape == (B, 12, 8)
    negatives.loss_fn = KGELoss("margin", margin=50.0)
    negatives.loss().backward()
    assert project.weight.grad.abs().sum() > 0 and structural.weight.grad.abs().sum() > 0
    with pytest.raises(DHNSError, match="modalities and fuse go together"):
        KGEAdapter(structural, rel, "distmult", modalities=modalities)


def test_the_generator_never_trains_through_the_users_model():
    with pytest.raises(DHNSError, match="detached embeddings"):
        OnlineDHNS(8, generator_grad="model")


def test_a_resumed_sampler_draws_what_an_uninterrupted_one_would():
    model, adapter, dhns = setup(DistMult, {})
    h, r, t = batch(9)
    dhns(adapter, h, r, t)
    saved = copy.deepcopy(dhns.state_dict())
    uninterrupted = dhns(adapter, h, r, t).embeddings()[0]
    resumed = OnlineDHNS.for_model(adapter)
    resumed.load_state_dict(saved)
    torch.testing.assert_close(resumed(adapter, h, r, t).embeddings()[0], uninterrupted)


def test_tiny_embeddings_warn_once_unless_normalized():
    """PyG's ComplEx starts at a root mean square of about 0.01: without
    ``normalize`` DiffHEG's unit noise dwarfs it, and the first call says so."""
    model, adapter, dhns = setup(ComplEx, {})
    with torch.no_grad():
        model.node_emb.weight.mul_(0.01 / model.node_emb.weight.pow(2).mean().sqrt())
        model.node_emb_im.weight.mul_(0.01 / model.node_emb_im.weight.pow(2).mean().sqrt())
    with pytest.warns(UserWarning, match=r"root mean square of 0\.00[89]\d.*normalize=True"):
        dhns(adapter, *batch(1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dhns(adapter, *batch(2))                     # once only
        OnlineDHNS.for_model(adapter, normalize=True)(adapter, *batch(3))
        model, adapter, dhns = setup(RotatE, {"margin": 9.0})   # PyG's scale: no warning
        dhns(adapter, *batch(4))
