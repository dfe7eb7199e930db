"""Readers for knowledge graphs on disk.

Two formats are supported:

* **OpenKE** (the format of DB15K, MKG-W and MKG-Y): ``entity2id.txt`` and
  ``relation2id.txt`` (first line: count, then ``<name>\\t<id>``) and
  ``train2id.txt``, ``valid2id.txt``, ``test2id.txt`` (first line: count, then
  ``head tail relation`` as integer ids; note the order).
* **TSV with names**: ``train.tsv``, ``valid.tsv``, ``test.tsv`` (``.txt`` is
  accepted too), one ``head<TAB>relation<TAB>tail`` triple per line. The
  vocabulary comes from optional ``entities.txt`` / ``relations.txt`` files
  (one name per line, the line order gives the id; a name outside them is an
  error) or else from the three splits, in order of first appearance in
  train, valid, test (as PyG, PyKEEN and the RotatE code build it: FB15k-237
  has valid and test entities that never occur in train).

Every problem is reported as a :class:`~dhns_geo.errors.DataFormatError` that
names the file, the line and what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from dhns_geo.errors import DataFormatError

SPLITS = ("train", "valid", "test")
OPENKE_FILES = ("entity2id.txt", "relation2id.txt", "train2id.txt",
                "valid2id.txt", "test2id.txt")


@dataclass
class KnowledgeGraph:
    """A knowledge graph as read from disk, before it becomes ``HeteroData``.

    Attributes:
        num_entities: Number of entities ``N``.
        num_relations: Number of relations ``R``.
        splits: ``{"train", "valid", "test"}`` to ``[n, 3]`` long tensors of
            ``(head, relation, tail)`` rows.
        entity_names: Names in id order, or ``None``.
        relation_names: Names in id order, or ``None``.
    """

    num_entities: int
    num_relations: int
    splits: dict[str, Tensor]
    entity_names: list[str] | None = None
    relation_names: list[str] | None = None
    source: str = ""
    extra: dict = field(default_factory=dict)


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataFormatError(path, f"not UTF-8 text ({err.reason})") from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _parse_count(path: Path, lines: list[str]) -> int:
    if not lines:
        raise DataFormatError(path, "file is empty (expected a count on the "
                              "first line)", line=1)
    head = lines[0].strip()
    if not head.isdigit():
        raise DataFormatError(
            path, f"first line must be the number of rows, got {head!r}", 1)
    count = int(head)
    if count != len(lines) - 1:
        raise DataFormatError(
            path, f"header says {count} rows but the file has "
            f"{len(lines) - 1}", 1)
    return count


def _read_id_map(path: Path) -> list[str]:
    """Reads ``entity2id.txt`` / ``relation2id.txt`` into names in id order."""
    lines = _read_lines(path)
    count = _parse_count(path, lines)
    names: list[str | None] = [None] * count
    for lineno, line in enumerate(lines[1:], start=2):
        parts = line.rsplit(None, 1)
        if len(parts) != 2:
            raise DataFormatError(
                path, f"expected '<name> <id>', got {line!r}", lineno)
        name, raw_id = parts
        try:
            idx = int(raw_id)
        except ValueError:
            raise DataFormatError(path, f"id {raw_id!r} is not an integer",
                                  lineno) from None
        if not 0 <= idx < count:
            raise DataFormatError(
                path, f"id {idx} out of range [0, {count})", lineno)
        if names[idx] is not None:
            raise DataFormatError(path, f"id {idx} appears twice", lineno)
        names[idx] = name.strip()
    return names  # type: ignore[return-value]


def _read_openke_triples(path: Path, num_entities: int,
                         num_relations: int) -> Tensor:
    """Reads a ``*2id.txt`` split (``head tail relation``) into ``[n, 3]``
    ``(head, relation, tail)`` rows."""
    lines = _read_lines(path)
    count = _parse_count(path, lines)
    if count == 0:
        raise DataFormatError(path, "split is empty", 1)
    rows = []
    for lineno, line in enumerate(lines[1:], start=2):
        parts = line.split()
        if len(parts) != 3:
            raise DataFormatError(
                path, f"expected 3 columns 'head tail relation', got "
                f"{len(parts)}: {line!r}", lineno)
        try:
            h, t, r = (int(p) for p in parts)
        except ValueError:
            raise DataFormatError(path, f"non-integer id in {line!r}",
                                  lineno) from None
        for what, value, bound in (("head", h, num_entities),
                                   ("tail", t, num_entities),
                                   ("relation", r, num_relations)):
            if not 0 <= value < bound:
                raise DataFormatError(
                    path, f"{what} id {value} out of range [0, {bound})",
                    lineno)
        rows.append((h, r, t))
    return torch.tensor(rows, dtype=torch.long)


def read_openke(folder: str | Path) -> KnowledgeGraph:
    """Reads a knowledge graph in OpenKE format from ``folder``."""
    folder = Path(folder)
    entities = _read_id_map(folder / "entity2id.txt")
    relations = _read_id_map(folder / "relation2id.txt")
    splits = {
        split: _read_openke_triples(folder / f"{split}2id.txt",
                                    len(entities), len(relations))
        for split in SPLITS
    }
    return KnowledgeGraph(len(entities), len(relations), splits, entities,
                          relations, source=str(folder))


def _find_split(folder: Path, split: str) -> Path:
    for suffix in (".tsv", ".txt"):
        path = folder / f"{split}{suffix}"
        if path.is_file():
            return path
    raise DataFormatError(folder / f"{split}.tsv",
                          f"missing {split} split (looked for {split}.tsv "
                          f"and {split}.txt)")


def _read_vocab(path: Path) -> dict[str, int]:
    vocab: dict[str, int] = {}
    for lineno, line in enumerate(_read_lines(path), start=1):
        name = line.strip()
        if not name:
            raise DataFormatError(path, "empty name", lineno)
        if name in vocab:
            raise DataFormatError(path, f"name {name!r} appears twice", lineno)
        vocab[name] = len(vocab)
    return vocab


def _read_named_triples(path: Path) -> list[tuple[int, str, str, str]]:
    out = []
    for lineno, line in enumerate(_read_lines(path), start=1):
        parts = line.split("\t")
        if len(parts) != 3:
            raise DataFormatError(
                path, f"expected 3 tab-separated columns "
                f"'head<TAB>relation<TAB>tail', got {len(parts)}", lineno)
        out.append((lineno, *(p.strip() for p in parts)))
    if not out:
        raise DataFormatError(path, "split is empty")
    return out


def read_tsv(folder: str | Path) -> KnowledgeGraph:
    """Reads a knowledge graph of named ``head<TAB>relation<TAB>tail`` triples
    from ``folder``."""
    folder = Path(folder)
    paths = {split: _find_split(folder, split) for split in SPLITS}
    raw = {split: _read_named_triples(paths[split]) for split in SPLITS}

    ent_file, rel_file = folder / "entities.txt", folder / "relations.txt"
    ent_vocab = _read_vocab(ent_file) if ent_file.is_file() else None
    rel_vocab = _read_vocab(rel_file) if rel_file.is_file() else None
    if ent_vocab is None or rel_vocab is None:
        ents: dict[str, int] = {}
        rels: dict[str, int] = {}
        for split in SPLITS:
            for _, h, r, t in raw[split]:
                ents.setdefault(h, len(ents))
                rels.setdefault(r, len(rels))
                ents.setdefault(t, len(ents))
        ent_vocab = ent_vocab if ent_vocab is not None else ents
        rel_vocab = rel_vocab if rel_vocab is not None else rels

    splits = {}
    for split, rows in raw.items():
        ids = []
        for lineno, h, r, t in rows:
            for name, vocab, what in ((h, ent_vocab, "entity"),
                                      (r, rel_vocab, "relation"),
                                      (t, ent_vocab, "entity")):
                if name not in vocab:
                    vocab_file = ent_file if what == "entity" else rel_file
                    raise DataFormatError(
                        paths[split], f"unknown {what} {name!r} (not in "
                        f"{vocab_file.name})", lineno)
            ids.append((ent_vocab[h], rel_vocab[r], ent_vocab[t]))
        splits[split] = torch.tensor(ids, dtype=torch.long)
    return KnowledgeGraph(len(ent_vocab), len(rel_vocab), splits,
                          list(ent_vocab), list(rel_vocab), source=str(folder))


def read_kg(folder: str | Path) -> KnowledgeGraph:
    """Reads ``folder`` in OpenKE format when it has ``train2id.txt``, else as
    named TSV triples."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFormatError(folder, "not a folder")
    if (folder / "train2id.txt").is_file():
        return read_openke(folder)
    return read_tsv(folder)
