import warnings

import pytest
import torch

from dhns_geo.data import (quality_report, read_kg, read_openke, read_tsv,
                           split_triples, to_hetero_data)
from dhns_geo.errors import DataFormatError, DataQualityWarning


def test_openke_reads_head_tail_relation_order(openke_folder):
    kg = read_openke(openke_folder)
    assert (kg.num_entities, kg.num_relations) == (5, 2)
    # train2id line "2 3 1" is head 2, tail 3, relation 1.
    assert kg.splits["train"][2].tolist() == [2, 1, 3]
    assert kg.entity_names[4] == "e4"
    assert kg.splits["valid"].tolist() == [[0, 1, 2]]


def test_hetero_data_layout(openke_folder):
    data = to_hetero_data(read_openke(openke_folder))
    assert data["entity"].num_nodes == 5
    ei = data["entity", "relation", "entity"].edge_index
    assert ei.tolist() == [[0, 1, 2, 3], [1, 2, 3, 4]]
    assert data["entity", "relation", "entity"].edge_type.tolist() == [0, 0, 1, 1]
    assert torch.equal(split_triples(data, "train")[:, 1], torch.tensor([0, 0, 1, 1]))
    assert split_triples(data, "test").tolist() == [[4, 0, 0]]


@pytest.mark.parametrize("file,content,line,problem", [
    ("train2id.txt", "5\n0 1 0\n", 1, "header says 5 rows but the file has 1"),
    ("train2id.txt", "1\n0 1\n", 2, "expected 3 columns"),
    ("train2id.txt", "1\n0 x 0\n", 2, "non-integer id"),
    ("train2id.txt", "1\n0 9 0\n", 2, "tail id 9 out of range [0, 5)"),
    ("train2id.txt", "1\n-1 0 0\n", 2, "head id -1 out of range"),
    ("train2id.txt", "1\n0 1 2\n", 2, "relation id 2 out of range [0, 2)"),
    ("valid2id.txt", "0\n", 1, "split is empty"),
    ("train2id.txt", "abc\n", 1, "first line must be the number of rows"),
    ("entity2id.txt", "2\ne0\t0\ne1\t0\n", 3, "id 0 appears twice"),
])
def test_openke_errors_name_file_line_problem(openke_folder, file, content,
                                              line, problem):
    (openke_folder / file).write_text(content)
    with pytest.raises(DataFormatError) as info:
        read_openke(openke_folder)
    err = info.value
    assert err.path.endswith(file) and err.line == line
    assert problem in str(err) and f"line {line}" in str(err)


def test_missing_file(openke_folder):
    (openke_folder / "test2id.txt").unlink()
    with pytest.raises(DataFormatError, match="test2id.txt: file not found"):
        read_openke(openke_folder)


def write_tsv(folder, train, valid, test):
    folder.mkdir()
    for name, rows in (("train", train), ("valid", valid), ("test", test)):
        (folder / f"{name}.tsv").write_text("".join("\t".join(r) + "\n" for r in rows))
    return folder


def test_tsv_with_names(tmp_path):
    folder = write_tsv(tmp_path / "kg", [("a", "likes", "b"), ("b", "likes", "c")],
                       [("a", "likes", "c")], [("c", "likes", "a")])
    kg = read_kg(folder)
    assert kg.entity_names == ["a", "b", "c"] and kg.relation_names == ["likes"]
    assert kg.splits["test"].tolist() == [[2, 0, 0]]


def test_tsv_vocabulary_spans_the_three_splits(tmp_path):
    """As FB15k-237 needs: valid/test entities and relations unseen in train
    get ids after train's, in order of first appearance."""
    folder = write_tsv(tmp_path / "kg", [("a", "likes", "b")],
                       [("a", "likes", "c")], [("d", "hates", "a")])
    kg = read_tsv(folder)
    assert kg.entity_names == ["a", "b", "c", "d"]
    assert kg.relation_names == ["likes", "hates"]
    assert kg.splits["test"].tolist() == [[3, 1, 0]]
    report = quality_report(to_hetero_data(kg))
    assert report["valid"]["unseen_entities"] == 1
    assert report["test"]["unseen_entities"] == 1


def test_tsv_unknown_name_with_declared_vocabulary(tmp_path):
    folder = write_tsv(tmp_path / "kg", [("a", "likes", "b")],
                       [("a", "likes", "b")], [("a", "hates", "b")])
    (folder / "entities.txt").write_text("a\nb\n")
    (folder / "relations.txt").write_text("likes\n")
    with pytest.raises(DataFormatError) as info:
        read_tsv(folder)
    assert info.value.line == 1
    assert "unknown relation 'hates' (not in relations.txt)" in str(info.value)
    assert info.value.path.endswith("test.tsv")


def test_tsv_wrong_columns_and_missing_split(tmp_path):
    folder = write_tsv(tmp_path / "kg", [("a", "likes")], [("a", "likes", "b")],
                       [("a", "likes", "b")])
    with pytest.raises(DataFormatError, match="train.tsv, line 1: expected 3"):
        read_tsv(folder)
    (folder / "valid.tsv").unlink()
    with pytest.raises(DataFormatError, match="missing valid split"):
        read_tsv(folder)


def test_duplicates_and_leakage_are_warned_and_kept(openke_folder):
    (openke_folder / "valid2id.txt").write_text("3\n0 2 1\n0 2 1\n0 1 0\n")
    kg = read_openke(openke_folder)
    with pytest.warns(DataQualityWarning) as record:
        data = to_hetero_data(kg)
    message = str(record[0].message)
    assert "valid: 1 duplicate rows (2 distinct of 3)" in message
    assert "valid: 1 distinct triples also occur in train" in message
    assert data.valid_triples.size(0) == 3  # kept, not dropped


def test_clean_data_gives_no_warning(openke_folder):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        to_hetero_data(read_openke(openke_folder))
