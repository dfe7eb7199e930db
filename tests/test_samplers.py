"""The published negative samplers of the registry (dhns_geo/sampling/):
NSCaching, SANS, RW-SANS, KBGAN, MANS, MMRNS, each against a computation by
hand or by brute force, filtering, resuming, and the commands on their runs."""

import csv
from collections import deque

import pytest
import torch

from conftest import resumed_equals_uninterrupted, run_cli

from dhns_geo.build import build_model, build_sampler
from dhns_geo.config import SAMPLERS, TrainConfig
from dhns_geo.data import FilterIndex, split_triples
from dhns_geo.datasets import load_dataset
from dhns_geo.nn import DistMult, KGCModel
from dhns_geo.runs import load_run
from dhns_geo.sampling.kbgan import KBGANSampler
from dhns_geo.sampling.mans import MANSSampler
from dhns_geo.sampling.nscaching import NSCachingSampler
from dhns_geo.sampling.registry import SAMPLERS as REGISTRY
from dhns_geo.sampling.sans import SANSSampler, k_hop, random_walks

PUBLISHED = ("nscaching", "sans", "rw-sans", "kbgan", "mans", "mmrns")
QUIET = {"log": lambda line: None, "progress": False}
TOY = dict(dim=16, num_negatives=8, shared_negatives=False, batch_size=512,
           eval_every=1, patience=10)


@pytest.fixture(scope="module")
def toy():
    return load_dataset("toy")


def test_registry_names_are_the_config_choices():
    assert tuple(REGISTRY) == SAMPLERS
    for name, entry in REGISTRY.items():
        assert entry.paper and entry.summary, name


def small_config(sampler, **extra):
    return TrainConfig(sampler=sampler, **{**TOY, **extra})


@pytest.mark.parametrize("name", [n for n in PUBLISHED if n != "mans"])
def test_filtered_samplers_return_no_known_true_triple_that_counts(toy, name):
    own = {"rw-sans": {"sans_walks": 50}, "mmrns": {"mmrns_pool": 300}}
    config = small_config(name, filter_negatives=True, **own.get(name, {}))
    model, sampler = build_model(config, toy), build_sampler(config, toy)
    train = split_triples(toy, "train")
    known = FilterIndex(train, 1000, 10)
    g = torch.Generator().manual_seed(0)
    for batch in train[:1024].split(512):          # two steps: caches refreshed
        groups = sampler.sample(batch, model, model.encode(), g)
    neg, = groups
    counts = neg.weight > 0 if neg.weight is not None else torch.ones_like(neg.head, dtype=torch.bool)
    rel = batch[:, 1:2].expand_as(neg.head)
    assert not known.contains(neg.head, rel, neg.tail)[counts].any()
    assert counts.float().mean() > 0.9
    corrupted = torch.where(neg.corrupted_head, neg.tail == batch[:, 2:],
                            neg.head == batch[:, :1])
    assert corrupted.all()                          # one side replaced, the other kept


def test_filter_redraws_known_true_ids_as_a_full_recheck_every_round_would(toy):
    from dhns_geo.sampling.base import filter_with_fallback, known_mask
    train = split_triples(toy, "train")
    index = FilterIndex(train, 1000, 10)
    g = torch.Generator().manual_seed(3)
    pos = train[:200]
    is_head = torch.rand(200, 16, generator=g) < 0.5
    answers = torch.where(is_head, pos[:, :1], pos[:, 2:]).expand(-1, 16)
    drawn = torch.where(torch.rand(200, 16, generator=g) < 0.4, answers,
                        torch.randint(0, 1000, (200, 16), generator=g))
    mine = filter_with_fallback(pos, drawn, is_head, index, 1000,
                                torch.Generator().manual_seed(9), rounds=1)
    ref, g = drawn, torch.Generator().manual_seed(9)   # every id looked up again
    false = known_mask(pos, ref, is_head, index)
    assert false.float().mean() > 0.3
    ref = torch.where(false, torch.randint(0, 1000, ref.shape, generator=g), ref)
    false = known_mask(pos, ref, is_head, index)
    assert torch.equal(mine[0], ref) and torch.equal(mine[1], (~false).float())


def brute_force_scores(model, pos, cand, is_head):
    table = model.encode()
    rows = []
    for b in range(pos.size(0)):
        h, r, t = pos[b].tolist()
        rows.append([float(model(torch.tensor(c if is_head[b] else h), torch.tensor(r),
                                  torch.tensor(t if is_head[b] else c), table))
                     for c in cand[b].tolist()])
    return torch.tensor(rows)


def test_nscaching_top_refresh_equals_brute_force():
    train = torch.tensor([[0, 0, 1], [2, 0, 1], [3, 1, 4], [5, 1, 6]])
    torch.manual_seed(0)
    model = KGCModel(12, 2, 8, DistMult())
    sampler = NSCachingSampler(12, train, 3, torch.full((2,), 0.5), cache_size=3,
                               candidates=4, update="top")
    before = {"head": sampler.head_cache.clone(), "tail": sampler.tail_cache.clone()}
    g = torch.Generator().manual_seed(1)
    batch = train[[0, 2]]
    sampler.refresh(batch, model, model.encode(), g)
    # The uniform candidates are the generator's next draw after the refresh's.
    g = torch.Generator().manual_seed(1)
    both = torch.cat([batch, batch])
    side = torch.tensor([True, True, False, False])
    row, found = sampler.rows(both, side)
    extra = torch.randint(0, 12, (4, 4), generator=g)
    cache = torch.cat([before["head"], before["tail"]])
    cand = torch.cat([cache[row], extra], 1)
    scores = brute_force_scores(model, both, cand, side)
    for i in range(4):
        best = {}                               # each distinct entity once
        for c, v in zip(cand[i].tolist(), scores[i].tolist()):
            best[c] = v
        expected = set(sorted(best, key=best.get, reverse=True)[:3])
        got = sampler.cache[row[i]]
        assert set(got.tolist()) == expected
    # Rows of other keys are untouched.
    untouched = sorted(set(range(sampler.cache.size(0))) - set(row.tolist()))
    assert torch.equal(sampler.cache[untouched], cache[untouched])


def test_nscaching_importance_keeps_distinct_cache_and_prefers_high_scores():
    train = torch.tensor([[0, 0, 1]])
    model = KGCModel(40, 1, 8, DistMult())
    with torch.no_grad():           # entity 7 is by far the best tail of (0, 0, ?)
        query = model.query(model.entities.structural.weight[0], torch.tensor(0), "tail")
        model.entities.structural.weight[7] = 50 * query / query.pow(2).sum()
    sampler = NSCachingSampler(40, train, 2, torch.full((1,), 0.5), cache_size=5,
                               candidates=35, temperature=0.1)
    hits = 0
    for seed in range(20):
        sampler.refresh(train, model, model.encode(), torch.Generator().manual_seed(seed))
        tail = sampler.tail_cache[0]
        assert tail.unique().numel() == 5                      # distinct entities
        hits += int(7 in tail.tolist())
    assert hits >= 19


def bfs_ball(train, n, k):
    adj = [set() for _ in range(n)]
    for h, _, t in train.tolist():
        adj[h].add(t)
        adj[t].add(h)
    balls = []
    for s in range(n):
        dist = {s: 0}
        queue = deque([s])
        while queue:
            v = queue.popleft()
            for w in adj[v]:
                if w not in dist:
                    dist[w] = dist[v] + 1
                    queue.append(w)
        ball = {v for v, d in dist.items() if d <= k}
        if not adj[s] and k > 1:
            ball.discard(s)         # an isolated entity reaches itself only at A^0
        balls.append(ball)
    return balls


@pytest.mark.parametrize("k", [1, 2, 3])
def test_sans_neighbourhoods_equal_breadth_first_search(k):
    g = torch.Generator().manual_seed(k)
    train = torch.stack([torch.randint(0, 30, (40,), generator=g), torch.zeros(40, dtype=torch.long),
                         torch.randint(0, 30, (40,), generator=g)], 1)
    hood = k_hop(train, 30, k)
    balls = bfs_ball(train, 30, k)
    rowptr, col = hood
    for e in range(30):
        got = set(col[rowptr[e]:rowptr[e + 1]].tolist())
        expected = balls[e] if k > 1 or balls[e] - {e} else {e}
        assert got == expected, e


def test_sans_neighbourhoods_are_computed_once_per_dataset(tmp_path, monkeypatch):
    from conftest import place_raw

    import dhns_geo.sampling.sans as sans

    root = place_raw("MKG-Y", tmp_path)
    config = TrainConfig(dataset="MKG-Y", root=str(root), sampler="sans", num_negatives=4)
    data = load_dataset("MKG-Y", root)
    first = build_sampler(config, data)
    cached = list((root / "MKG-Y" / "processed").glob("sans-*-k2-rw0.pt"))
    assert len(cached) == 1                     # beside the processed files
    monkeypatch.setattr(sans, "k_hop", lambda *a: pytest.fail("computed again"))
    again = build_sampler(config, load_dataset("MKG-Y", root))
    assert torch.equal(first.col, again.col) and torch.equal(first.rowptr, again.rowptr)


def test_random_walks_restart_from_their_entity():
    # A path 0-1-2-3-4: walks of 2 steps from 0 end at 0 or 2, never further.
    train = torch.tensor([[0, 0, 1], [1, 0, 2], [2, 0, 3], [3, 0, 4]])
    hood = random_walks(train, 6, 2, 200, torch.Generator().manual_seed(0))
    rowptr, col = hood
    ends = [set(col[rowptr[e]:rowptr[e + 1]].tolist()) for e in range(6)]
    assert ends[0] == {0, 2}
    assert ends[2] == {0, 2, 4}
    assert ends[4] == {2, 4}
    assert len(ends[5]) > 1                     # isolated: uniform entities


def test_sans_draws_from_the_kept_entitys_neighbourhood(toy):
    train = split_triples(toy, "train")
    sampler = SANSSampler(1000, k_hop(train, 1000, 1), 8, 10)     # unfiltered
    model = build_model(small_config("sans"), toy)
    batch = train[:256]
    neg, = sampler.sample(batch, model, model.encode(), torch.Generator().manual_seed(0))
    kept = torch.where(neg.corrupted_head, batch[:, 2:], batch[:, :1])
    drawn = torch.where(neg.corrupted_head, neg.head, neg.tail)
    for b in range(0, 256, 17):
        for j in range(8):
            hood = sampler.neighbours(int(kept[b, j])).tolist()
            assert int(drawn[b, j]) in hood
    # Built from a config it always filters: a neighbourhood holds the answers.
    built = build_sampler(small_config("sans", sans_hops=1), toy)
    assert built.filter_index is not None
    neg, = built.sample(batch, model, model.encode(), torch.Generator().manual_seed(0))
    known = FilterIndex(train, 1000, 10)
    rel = batch[:, 1:2].expand(256, 8)
    assert not known.contains(neg.head, rel, neg.tail)[neg.weight > 0].any()


def test_kbgan_reinforce_raises_the_probability_of_rewarded_picks():
    sampler = KBGANSampler(10, 1, 1, torch.full((1,), 0.5), candidates=4, lr=0.05)
    pos = torch.tensor([[0, 0, 1]])
    cand = torch.tensor([[2, 3, 4, 5]])
    flags = torch.zeros(1, 4, dtype=torch.bool)

    def prob_of(index):
        with torch.no_grad():
            logits = sampler.generator_model.logits(pos, cand, flags)
        return float(torch.softmax(logits, -1)[0, index])

    sampler.baseline.fill_(0.0)
    sampler.rewards_seen.fill_(1)
    before = prob_of(1)
    log_p = torch.log_softmax(sampler.generator_model.logits(pos, cand, flags), -1)[:, 1:2]
    sampler.reinforce(log_p, torch.tensor([[2.0]]), torch.ones(1, 1, dtype=torch.bool))
    assert prob_of(1) > before                           # reward above the baseline
    sampler.baseline.fill_(5.0)
    before = prob_of(1)
    log_p = torch.log_softmax(sampler.generator_model.logits(pos, cand, flags), -1)[:, 1:2]
    sampler.reinforce(log_p, torch.tensor([[2.0]]), torch.ones(1, 1, dtype=torch.bool))
    assert prob_of(1) < before                           # reward below the baseline


def test_kbgan_picks_are_among_candidates_and_follow_the_generator(toy):
    sampler = KBGANSampler(1000, 10, 64, torch.full((10,), 0.5), candidates=20,
                           temperature=0.01)
    with torch.no_grad():                       # scores far apart: a peaked softmax
        sampler.generator_model.entities.weight.mul_(30)
    pos = split_triples(toy, "train")[:32]
    picks, is_head, log_p, valid = sampler.draw(pos, torch.Generator().manual_seed(0))
    assert picks.shape == (32, 64) and valid.all()
    # At a low temperature the pick is (almost always) the generator's best.
    assert (log_p > -1e-3).float().mean() > 0.9


def test_mans_negatives_are_the_documented_mix(toy):
    config = small_config("mans", mans_variant="v")
    model, sampler = build_model(config, toy), build_sampler(config, toy)
    batch = split_triples(toy, "train")[:64]
    g = torch.Generator().manual_seed(3)
    table = model.encode()
    neg, = sampler.sample(batch, model, table, g)
    # Redraw the same ids: sides, then entities.
    g = torch.Generator().manual_seed(3)
    is_head = torch.rand((64, 8), generator=g) < 0.5
    drawn = torch.randint(0, 1000, (64, 8), generator=g)
    x, mask = table.modalities(drawn)
    replaced = torch.where(is_head, batch[:, :1], batch[:, 2:])
    x_own, _ = table.modalities(replaced)
    mixed = model.fusion(torch.cat([x_own[..., :1, :], x[..., 1:, :]], -2),
                         torch.cat([torch.ones_like(mask[..., :1]), mask[..., 1:]], -1))
    assert neg.head is neg.tail and torch.equal(neg.corrupted_head, is_head)
    assert torch.allclose(neg.head, mixed, atol=1e-5)
    # Scored as the positive's kept side against the mixed entity.
    h, r, t = batch.unbind(1)
    kept_h, kept_t = table.fused(h).unsqueeze(1), table.fused(t).unsqueeze(1)
    side = is_head.unsqueeze(-1)
    by_hand = model.scorer(torch.where(side, mixed, kept_h), model.relations(r).unsqueeze(1),
                           torch.where(side, kept_t, mixed))
    scores = neg.score(model.scorer, table.fused(h), model.relations(r), table.fused(t), table)
    assert torch.allclose(scores, by_hand, atol=1e-4)


def test_mans_variants_share_of_modality_negatives(toy):
    sampler = MANSSampler(1000, 10, 10, "h", beta=0.3)
    assert sampler.modality_columns() == 3
    two_stage = MANSSampler(1000, 10, 10, "t", beta=0.5, total_steps=4)
    shares = []
    for _ in range(4):
        shares.append(two_stage.modality_columns())
        two_stage.steps += 1
    assert shares == [10, 10, 0, 0]
    assert MANSSampler(1000, 10, 10, "a").modality_columns() is None


def test_mans_adaptive_share_is_the_fraction_scored_harder(toy):
    """MANS-A: the share of modality negatives is the fraction of the
    batch's negatives that score higher mixed than plain, times K."""
    config = small_config("mans", mans_variant="a", num_negatives=64)
    model, sampler = build_model(config, toy), build_sampler(config, toy)
    batch = split_triples(toy, "train")[:64]
    table = model.encode()
    g = torch.Generator().manual_seed(5)
    is_head = torch.rand((64, 64), generator=g) < 0.5
    drawn = torch.randint(0, 1000, (64, 64), generator=g)
    mixed = sampler.mixed(batch, drawn, is_head, model, table)
    h, r, t = batch.unbind(1)
    rel = model.relations(r).unsqueeze(1)
    kept_h, kept_t = table.fused(h).unsqueeze(1), table.fused(t).unsqueeze(1)
    side = is_head.unsqueeze(-1)
    plain_rows = table.entity(drawn)
    by_hand = [model.scorer(torch.where(side, x, kept_h), rel, torch.where(side, kept_t, x))
               for x in (plain_rows, mixed)]
    sampler.num_negatives = 10_000      # a fine resolution of the share
    expected = int(torch.round((by_hand[1] > by_hand[0]).float().mean() * 10_000))
    with torch.no_grad():
        share = sampler.adaptive_columns(model, table, batch, plain_rows, mixed, is_head)
    assert share == expected and 0 < share < 10_000
    assert share != 10_000 - share      # the comparison's direction matters here


def test_mans_needs_modality_features(toy):
    with pytest.raises(Exception, match="no modality features"):
        build_sampler(small_config("mans", features="none"), toy)


def test_mmrns_distribution_sums_to_one_and_masks_the_positives(toy):
    config = small_config("mmrns", mmrns_pool=200)
    model, sampler = build_model(config, toy), build_sampler(config, toy)
    batch = split_triples(toy, "train")[:16]
    pool = torch.arange(0, 1000, 5)
    side = torch.tensor([True, False] * 8)
    sims = sampler.similarities(batch, pool, side, model, model.encode())
    assert sims.shape == (16, 3, 200)
    true = torch.zeros(16, 200, dtype=torch.bool)
    true[:, ::7] = True
    probs = sampler.distribution(sims, true)
    assert torch.allclose(probs.sum(-1), torch.ones(16))
    assert (probs[true] == 0).all() and (probs[~true] > 0).all()
    # The drawn negatives are distinct pool entities and never a true answer.
    neg, = sampler.sample(batch, model, model.encode(), torch.Generator().manual_seed(0))
    drawn = torch.where(neg.corrupted_head, neg.head, neg.tail)
    assert all(row.unique().numel() == 8 for row in drawn)
    known = FilterIndex(split_triples(toy, "train"), 1000, 10)
    assert not known.contains(neg.head, batch[:, 1:2].expand(16, 8), neg.tail).any()


def test_mmrns_contrastive_step_trains_the_attention(toy):
    config = small_config("mmrns", mmrns_pool=300, mmrns_lr=0.01)
    model, sampler = build_model(config, toy), build_sampler(config, toy)
    before = sampler.attention.gate.weight.clone()
    g = torch.Generator().manual_seed(0)
    for batch in split_triples(toy, "train")[:2048].split(512):
        sampler.sample(batch, model, model.encode(), g)
    assert not torch.equal(before, sampler.attention.gate.weight)
    assert torch.isfinite(sampler.step_stats()["mmrns/contrastive_loss"])
    assert int(sampler.steps) == 4


@pytest.mark.parametrize("name", ["nscaching", "kbgan", "mmrns"])
def test_a_stateful_sampler_resumes_to_the_same_run(tmp_path, name):
    own = {"mmrns_pool": 200} if name == "mmrns" else {}
    resumed_equals_uninterrupted(dict(TOY, sampler=name, epochs=3, **own), tmp_path)


@pytest.mark.parametrize("name", PUBLISHED)
def test_train_and_sample_negatives_on_each_samplers_run(tmp_path, name, capsys):
    out = tmp_path / name
    own = {"rw-sans": ["--sans-walks", "20"], "mmrns": ["--mmrns-pool", "200"]}
    code, _, err = run_cli(["train", "--sampler", name, "--epochs", "2", "--dim", "16",
                            "-k", "8", "--no-shared-negatives", "--out", str(out),
                            "--no-progress", *own.get(name, [])], capsys)
    assert code == 0, err
    assert (out / "model.pt").is_file()
    tsv = tmp_path / "neg.tsv"
    code, _, err = run_cli(["sample-negatives", str(out), "--split", "train",
                            "--limit", "5", "--out", str(tsv), "--no-progress"], capsys)
    assert code == 0, err
    rows = list(csv.DictReader(tsv.open(), delimiter="\t"))
    assert len(rows) == 5 * 8 and {r["sampler"] for r in rows} == {name}
    # each row is the run's sampler's negative of a positive, scored by the
    # run's model: the score column is the model's score of that triple
    # (MANS: an embedding made from the listed entity, scored as such)
    config, data, model, _ = load_run(out)
    positives = split_triples(data, "train")[:5]
    for row in rows[::7]:
        h, r, t = (int(row[c]) for c in ("head", "relation", "tail"))
        assert [h, r, t] in positives.tolist()
        e = int(row["negative_id"])
        triple = [[e, r, t]] if row["side"] == "head" else [[h, r, e]]
        if row["embedding"] == "0":
            assert float(row["score"]) == pytest.approx(
                float(model(*torch.tensor(triple).T).detach()), abs=1e-4)
    code, _, err = run_cli(["sample-negatives", str(out), "--negatives", "dhns",
                            "--limit", "2", "--generator-epochs", "1", "--k", "3",
                            "--out", str(tsv), "--no-progress"], capsys)
    assert code == 0, err
    assert "level" in tsv.read_text().splitlines()[0].split("\t")


@pytest.mark.parametrize("name", ["nscaching", "kbgan", "mans", "mmrns", "dhns"])
def test_a_sampler_in_eval_mode_draws_without_changing_its_state(toy, name):
    own = {"mmrns": {"mmrns_pool": 300}, "mans": {"mans_variant": "t"}}
    config = small_config(name, **own.get(name, {}))
    model, sampler = build_model(config, toy), build_sampler(config, toy)
    batch = split_triples(toy, "train")[:512]
    g = torch.Generator().manual_seed(0)
    sampler.sample(batch, model, model.encode(), g)        # state to keep
    before = {k: v.clone() for k, v in sampler.state_dict().items()
              if isinstance(v, torch.Tensor)}
    sampler.eval()
    sampler.sample(batch, model, model.encode(), g)
    after = sampler.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    sampler.train()                                        # and in training it learns
    sampler.sample(split_triples(toy, "train")[512:1024], model, model.encode(), g)
    assert not all(torch.equal(before[k], sampler.state_dict()[k]) for k in before)


@pytest.mark.parametrize("kind", ["DistMult", "RotatE", "TransE"])
def test_model_agnostic_samplers_serve_a_pyg_model(kind):
    import copy

    import torch_geometric.nn.kge as pyg_kge

    from dhns_geo.adapters import KGEAdapter
    from dhns_geo.losses import KGELoss
    from dhns_geo.online import OnlineSampler

    g = torch.Generator().manual_seed(0)
    train = torch.stack([torch.randint(0, 40, (64,), generator=g),
                         torch.randint(0, 3, (64,), generator=g),
                         torch.randint(0, 40, (64,), generator=g)], 1)
    torch.manual_seed(0)
    model = getattr(pyg_kge, kind)(40, 3, 8)
    adapter = KGEAdapter.from_pyg(model)
    samplers = {"nscaching": NSCachingSampler(40, train, 5, torch.full((3,), 0.5), 4, 4),
                "sans": SANSSampler(40, k_hop(train, 40, 2), 5, 3),
                "kbgan": KBGANSampler(40, 3, 5, torch.full((3,), 0.5), candidates=3)}
    h, r, t = train.T
    for name, sampler in samplers.items():
        online = OnlineSampler(sampler, seed=1)
        before = copy.deepcopy(online.state_dict())
        negatives = online(adapter, h, r, t)
        group, = negatives.groups
        # the scores are the PyG model's own scores of the negative triples
        with torch.no_grad():
            own = model(group.head.reshape(-1), r.repeat_interleave(5), group.tail.reshape(-1))
        torch.testing.assert_close(negatives.scores().detach().view(-1), own, msg=name)
        # the loss is the model's own: the margin ranking loss of PyG's
        # TransE and DistMult, else the self-adversarial loss; it trains
        pos = model(h, r, t)
        loss_fn = (KGELoss("margin", model.margin) if kind in ("TransE", "DistMult")
                   else KGELoss("self-adversarial", margin=0.0))
        expected = loss_fn(pos, negatives.scores(), 1.0, group.weight)
        torch.testing.assert_close(negatives.loss(), expected)
        negatives.loss().backward()
        assert model.node_emb.weight.grad.abs().sum() > 0
        model.zero_grad()
        # a resumed sampler draws what the uninterrupted one drew
        resumed = OnlineSampler(copy.deepcopy(sampler), seed=1)
        resumed.load_state_dict(before)
        again, = resumed(adapter, h, r, t).groups
        assert torch.equal(again.head, group.head) and torch.equal(again.tail, group.tail), name


def test_dhns_samplers_lists_every_sampler_with_its_paper(capsys):
    code, out, _ = run_cli(["samplers"], capsys)
    assert code == 0
    for name, entry in REGISTRY.items():
        assert f"{name}: {entry.summary}" in out and entry.paper in out

