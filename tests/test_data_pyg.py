"""PyG knowledge-graph datasets (one Data per split, or edge masks) in the
library's HeteroData layout, and ``--dataset pyg:<class>``."""

import pytest
import torch
import torch_geometric.datasets
from torch_geometric.data import Data, InMemoryDataset

from dhns_geo.data import num_entities, num_relations, split_triples
from dhns_geo.data.pyg import from_pyg, load_pyg_dataset
from dhns_geo.datasets import ToyMMKG, load_dataset
from dhns_geo.errors import DHNSError

from conftest import place_raw, run_cli

SPLITS = ("train", "valid", "test")
FB_FILES = ("train.txt", "valid.txt", "test.txt")


def toy_as_pyg():
    """The toy MMKG as PyG gives a KG: one Data per split."""
    data = ToyMMKG()[0]
    parts = []
    for split in SPLITS:
        triples = split_triples(data, split)
        parts.append(Data(edge_index=triples[:, [0, 2]].t(), edge_type=triples[:, 1],
                          num_nodes=data["entity"].num_nodes))
    return data, parts


def test_split_data_convert_to_the_same_graph():
    data, parts = toy_as_pyg()
    converted = from_pyg(parts, num_relations=num_relations(data), warn=False,
                         features={"visual": data["entity"].visual})
    for split in SPLITS:
        assert torch.equal(split_triples(converted, split), split_triples(data, split))
    assert num_entities(converted) == num_entities(data)
    assert torch.equal(converted["entity"].visual, data["entity"].visual)


def test_one_data_with_edge_masks():
    data, parts = toy_as_pyg()
    sizes = [p.edge_type.numel() for p in parts]
    whole = Data(edge_index=torch.cat([p.edge_index for p in parts], 1),
                 edge_type=torch.cat([p.edge_type for p in parts]),
                 num_nodes=parts[0].num_nodes)
    for i, mask in enumerate(("train_mask", "val_mask", "test_mask")):
        m = torch.zeros(sum(sizes), dtype=torch.bool)
        m[sum(sizes[:i]):sum(sizes[:i + 1])] = True
        whole[mask] = m
    converted = from_pyg(whole, warn=False)
    for split in SPLITS:
        assert torch.equal(split_triples(converted, split), split_triples(data, split))


def test_bad_pyg_data_is_named():
    _, parts = toy_as_pyg()
    bad = parts[2].clone()
    bad.edge_index[1, 3] = 10_000
    with pytest.raises(DHNSError, match=r"test split's edge 3 has an entity id out of range"):
        from_pyg([parts[0], parts[1], bad])
    del parts[1].edge_type
    with pytest.raises(DHNSError, match="valid split has no edge_index or no edge_type"):
        from_pyg(parts)
    with pytest.raises(DHNSError, match="missing: train_mask"):
        from_pyg(Data(edge_index=torch.zeros(2, 1, dtype=torch.long),
                      edge_type=torch.zeros(1, dtype=torch.long), num_nodes=1))
    _, parts = toy_as_pyg()
    with pytest.raises(DHNSError, match="visual features have 3 rows"):
        from_pyg(parts, warn=False, features={"visual": torch.zeros(3, 4)})
    with pytest.raises(DHNSError, match="no dataset 'NoSuchKG'"):
        load_pyg_dataset("NoSuchKG", "/tmp")


@pytest.mark.slow
def test_pyg_fb15k_237_from_shared_raw_files(tmp_path):
    """torch_geometric.datasets.FB15k_237 built offline from the published
    files, converted: PyG's ids, the benchmark's counts."""
    place_raw("FB15k-237", tmp_path / "src", FB_FILES)
    raw = tmp_path / "data" / "FB15k_237" / "raw"
    raw.parent.mkdir(parents=True)
    (tmp_path / "src" / "FB15k-237" / "raw").rename(raw)
    data = load_dataset("pyg:FB15k_237", tmp_path / "data")
    assert (num_entities(data), num_relations(data)) == (14541, 237)
    assert [len(split_triples(data, s)) for s in SPLITS] == [272115, 17535, 20466]
    pyg = torch_geometric.datasets.FB15k_237(str(raw.parent), split="test")[0]
    assert torch.equal(split_triples(data, "test")[:, [0, 2]].t(), pyg.edge_index)


class TinyKG(InMemoryDataset):
    """A stand-in ``torch_geometric.datasets`` class with a ``split``
    argument (no files)."""

    def __init__(self, root, split="train"):
        super().__init__(root)
        _, parts = toy_as_pyg()
        self.data, self.slices = self.collate([parts[("train", "val", "test").index(split)]])

    @property
    def raw_file_names(self):
        return []

    @property
    def processed_file_names(self):
        return []

    def download(self):
        pass

    def process(self):
        pass


def test_dhns_train_takes_a_pyg_dataset(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch_geometric.datasets, "TinyKG", TinyKG, raising=False)
    code, out, err = run_cli(["train", "--dataset", "pyg:TinyKG", "--root", str(tmp_path),
                              "--epochs", "1", "--dim", "16", "--out",
                              str(tmp_path / "run")], capsys)
    assert code == 0, err
    assert "test" in out and (tmp_path / "run" / "model.pt").is_file()
