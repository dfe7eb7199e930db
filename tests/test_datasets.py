import pytest
import torch

from conftest import place_raw
from dhns_geo.data.io import OPENKE_FILES
from dhns_geo.data import add_reciprocals, quality_report, split_triples
from dhns_geo.datasets import DB15K, MKGY, FB15k237, ToyMMKG, load_dataset


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


def offline(cls, name, tmp_path, monkeypatch):
    """``cls`` built from the raw files of ``name`` in ../shared, never
    downloading; returns (root, data)."""
    root = place_raw(name, tmp_path, getattr(cls, "raw_files", None) or OPENKE_FILES)
    monkeypatch.setattr("dhns_geo.datasets.benchmarks.download_url",
                        lambda *a, **k: pytest.fail("must not download"))
    return root, cls(root)[0]


@pytest.mark.parametrize("cls,name,counts", [
    (MKGY, "MKG-Y", (15000, 28, 21310, 2665, 2663)),
    (FB15k237, "FB15k-237", (14541, 237, 272115, 17535, 20466))])
def test_benchmark_offline_from_raw_files(cls, name, counts, tmp_path, monkeypatch):
    _, data = offline(cls, name, tmp_path, monkeypatch)
    assert (data["entity"].num_nodes, data.num_relations,
            split_triples(data, "train").size(0), data.valid_triples.size(0),
            data.test_triples.size(0)) == counts
    assert len(data.entity_names) == counts[0]


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


def test_add_reciprocals():
    triples = torch.tensor([[0, 1, 2], [3, 0, 4]])
    assert add_reciprocals(triples, 2).tolist() == [
        [0, 1, 2], [3, 0, 4], [2, 3, 0], [4, 2, 3]]
    assert triples.tolist() == [[0, 1, 2], [3, 0, 4]]       # not modified


def test_fb15k237_unseen_entities_and_checked_files(tmp_path, monkeypatch):
    root, data = offline(FB15k237, "FB15k-237", tmp_path, monkeypatch)
    report = quality_report(data)
    assert (report["valid"]["unseen_entities"], report["test"]["unseen_entities"]) == (8, 29)
    assert load_dataset("fb15k237", root)["entity"].num_nodes == 14541
    # A changed file is refused, naming it.
    with open(root / "FB15k-237" / "raw" / "valid.txt", "a") as f:
        f.write("/m/a\t/r\t/m/b\n")
    with pytest.raises(Exception, match="valid.txt: sha256 differs"):
        FB15k237(root, force_reload=True)


def test_a_benchmark_folder_is_processed_by_one_process_at_a_time(openke_folder, tmp_path):
    """Runs started together wait for the one processing the folder instead
    of reading its half-written files."""
    import shutil
    import threading

    from dhns_geo.datasets import MKGY
    from dhns_geo.run_folder import RunLock

    shutil.copytree(openke_folder, tmp_path / "root" / "MKG-Y" / "raw")
    loaded = []
    with RunLock(tmp_path / "root" / "MKG-Y"):          # another process at work
        loader = threading.Thread(target=lambda: loaded.append(MKGY(tmp_path / "root")))
        loader.start()
        loader.join(timeout=1.0)
        assert loader.is_alive() and not loaded
        assert not (tmp_path / "root" / "MKG-Y" / "processed").exists()
    loader.join()
    assert loaded[0][0]["entity"].num_nodes == 5
