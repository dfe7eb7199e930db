import pytest
import torch

from conftest import place_raw
from dhns_geo.data import quality_report, split_triples
from dhns_geo.datasets import DB15K, MKGY, ToyMMKG, load_dataset


def test_toy_is_deterministic_and_has_signal():
    a, b, c = ToyMMKG(seed=1)[0], ToyMMKG(seed=1)[0], ToyMMKG(seed=2)[0]
    assert torch.equal(a.test_triples, b.test_triples)
    assert not torch.equal(a.test_triples, c.test_triples)
    store = a["entity"]
    assert store.visual.shape == (1000, 64) and store.textual.shape == (1000, 32)
    # Missing modalities are all-zero rows with a False mask.
    assert 0 < (~store.visual_mask).sum() < 300
    assert store.visual[~store.visual_mask].abs().sum() == 0
    # Visual features carry the cluster: same-cluster rows are closer.
    x = store.visual[store.visual_mask]
    ids = store.visual_mask.nonzero().view(-1)
    same = (ids[:, None] % 10) == (ids[None, :] % 10)
    dist = torch.cdist(x, x)
    assert dist[same].mean() < 0.5 * dist[~same].mean()
    report = quality_report(a)
    assert report["valid"]["in_train"] == 0 and report["train"]["duplicates"] == 0


def test_benchmark_offline_from_raw_files(tmp_path, monkeypatch):
    place_raw("MKG-Y", tmp_path)
    monkeypatch.setattr("dhns_geo.datasets.benchmarks.download_url",
                        lambda *a, **k: pytest.fail("must not download"))
    data = MKGY(tmp_path)[0]
    assert data["entity"].num_nodes == 15000 and data.num_relations == 28
    assert split_triples(data, "train").shape == (21310, 3)
    assert data.valid_triples.shape == (2665, 3)
    assert data.test_triples.shape == (2663, 3)
    assert len(data.entity_names) == 15000


def test_db15k_duplicates_and_leakage(tmp_path, monkeypatch):
    place_raw("DB15K", tmp_path)
    with pytest.warns(UserWarning, match="valid: 2423 duplicate rows"):
        DB15K(tmp_path)
    report = quality_report(DB15K(tmp_path)[0])
    assert report["valid"] == {"rows": 9904, "distinct": 7481,
                               "duplicates": 2423, "in_train": 6584,
                               "unseen_entities": 3}


def test_default_root_from_environment(tmp_path, monkeypatch):
    place_raw("MKG-Y", tmp_path)
    monkeypatch.setenv("DHNS_DATA", str(tmp_path))
    assert load_dataset("mkg_y")["entity"].num_nodes == 15000
