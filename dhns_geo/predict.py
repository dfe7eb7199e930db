"""Querying a trained model: the top entities for ``(h, r, ?)`` or
``(?, r, t)``, by name, with answers already known marked.

    from dhns_geo.predict import Predictor
    predictor = Predictor.from_run("runs/toy")
    predictor.predict_target(head="entity_3", relation="relation_1", top=5)

Queries are scored in batches (one ``[B, N]`` scoring pass per chunk of
queries); known answers are looked up in per-split :class:`FilterIndex`
tensors.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from dhns_geo.data import num_entities, num_relations, split_triples
from dhns_geo.data.filter import FilterIndex
from dhns_geo.errors import DHNSError
from dhns_geo.nn import KGCModel

KNOWN_SPLITS = ("train", "valid", "test")


class Vocabulary:
    """Names <-> ids of entities or relations, with close-match errors.

    Args:
        kind: ``"entity"`` or ``"relation"`` (for messages).
        names: The name of each id (``None``: ids only).
        count: The number of ids.
    """

    def __init__(self, kind: str, names: Sequence[str] | None, count: int) -> None:
        self.kind, self.count = kind, count
        self.names = list(names) if names else [str(i) for i in range(count)]
        self.index = {name: i for i, name in enumerate(self.names)}

    def id(self, text: str) -> int:
        """The id of a name, or of a number that is not itself a name."""
        text = text.strip()
        if text in self.index:
            return self.index[text]
        if text.isdigit() and int(text) < self.count:
            return int(text)
        close = difflib.get_close_matches(text, self.names, n=3, cutoff=0.6)
        hint = f"; close matches: {', '.join(close)}" if close else ""
        raise DHNSError(f"unknown {self.kind} {text!r}{hint}")

    def name(self, i: int) -> str:
        return self.names[i]


@dataclass
class Predictions:
    """The answers of ``Q`` queries.

    Attributes:
        known: ``[Q]`` ids of the given entity.
        relation: ``[Q]`` relation ids.
        side: The side predicted (``"head"`` or ``"tail"``), per query.
        ids: ``[Q, k]`` predicted entity ids, best first.
        scores: ``[Q, k]`` their scores (higher is more plausible).
        known_in: ``[Q][k]`` the first split (train, valid, test) that holds
            the predicted triple, or ``""``.
    """

    known: Tensor
    relation: Tensor
    side: list[str]
    ids: Tensor
    scores: Tensor
    known_in: list[list[str]]


class Predictor:
    """Answers link-prediction queries with a trained model.

    Args:
        model: The trained :class:`KGCModel` (in eval mode).
        data: Its MMKG (names and the splits that mark known answers).
        batch_size: Queries scored at once (memory: ``batch_size x N``).
    """

    def __init__(self, model: KGCModel, data: HeteroData, batch_size: int = 256) -> None:
        self.model, self.data, self.batch_size = model.eval(), data, batch_size
        n, r = num_entities(data), num_relations(data)
        self.entities = Vocabulary("entity", data.entity_names, n)
        self.relations = Vocabulary("relation", data.relation_names, r)
        device = model.device
        self.splits = {s: FilterIndex(split_triples(data, s), n, r).to(device)
                       for s in KNOWN_SPLITS}
        self._score = model.score_all_fn()

    @classmethod
    def from_run(cls, run_dir: str | Path, device: str | None = None,
                 batch_size: int | None = None) -> "Predictor":
        """A predictor for the best model of a run folder."""
        from dhns_geo.runs import load_run
        config, data, model, _ = load_run(Path(run_dir), device)
        return cls(model, data, batch_size or config.eval_batch_size)

    @torch.no_grad()
    def predict(self, known: Tensor, relation: Tensor, side: Sequence[str],
                top: int = 10) -> Predictions:
        """Top ``top`` entities for each query.

        Args:
            known: ``[Q]`` ids of the given entity.
            relation: ``[Q]`` relation ids.
            side: The missing side of each query, ``"head"`` or ``"tail"``.
        """
        device = self.model.device
        known, relation = known.to(device), relation.to(device)
        is_head = torch.tensor([s == "head" for s in side], device=device)
        top = min(top, self.entities.count)
        ids = torch.empty(known.numel(), top, dtype=torch.long, device=device)
        scores = torch.empty(known.numel(), top, device=device)
        for name, flag in (("head", is_head), ("tail", ~is_head)):
            rows = flag.nonzero().view(-1)
            for chunk in rows.split(self.batch_size):
                s = self._score(known[chunk], relation[chunk], name)
                s = s.nan_to_num(nan=float("-inf"))
                scores[chunk], ids[chunk] = s.topk(top, dim=1)
        rel = relation.unsqueeze(1).expand_as(ids)
        given = known.unsqueeze(1).expand_as(ids)
        flag = is_head.unsqueeze(1)
        head, tail = torch.where(flag, ids, given), torch.where(flag, given, ids)
        known_in = [[""] * top for _ in range(known.numel())]
        for split in reversed(KNOWN_SPLITS):        # the first split wins
            hit = self.splits[split].contains(head, rel, tail).cpu()
            for q, k in hit.nonzero().tolist():
                known_in[q][k] = split
        return Predictions(known.cpu(), relation.cpu(), list(side), ids.cpu(),
                           scores.cpu(), known_in)

    def parse_query(self, head: str | None, relation: str,
                    tail: str | None) -> tuple[int, int, str]:
        """``(known id, relation id, missing side)`` of a query given by
        names or ids; exactly one of ``head`` and ``tail`` is given."""
        if (head is None) == (tail is None):
            raise DHNSError("give exactly one of head and tail (the other is "
                            "predicted)")
        side = "tail" if tail is None else "head"
        return (self.entities.id(head if side == "tail" else tail),
                self.relations.id(relation), side)

    def predict_target(self, relation: str, head: str | None = None,
                       tail: str | None = None, top: int = 10) -> list[dict]:
        """The top entities for ``(head, relation, ?)`` or ``(?, relation,
        tail)`` by name: ``[{"rank", "id", "name", "score", "known_in"}]``."""
        known, rel, side = self.parse_query(head, relation, tail)
        p = self.predict(torch.tensor([known]), torch.tensor([rel]), [side], top)
        return self.rows(p)[0]

    def rows(self, p: Predictions) -> list[list[dict]]:
        """Predictions as plain records, one list per query."""
        return [[{"rank": k + 1, "id": int(e), "name": self.entities.name(int(e)),
                  "score": float(s), "known_in": p.known_in[q][k]}
                 for k, (e, s) in enumerate(zip(p.ids[q], p.scores[q]))]
                for q in range(p.ids.size(0))]
