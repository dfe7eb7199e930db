"""DHNS as a hard-negative miner: generated embeddings -> nearest real
entities that are not known true answers."""

from __future__ import annotations

import torch
from torch import Tensor
from tqdm.auto import tqdm

from dhns_geo.data.filter import FilterIndex
from dhns_geo.diffusion.dhns import DHNSSampler
from dhns_geo.errors import DHNSError
from dhns_geo.nn.model import KGCModel

#: Sides of a mined negative and the positions they replace. The both-side
#: negatives ``(h~, r, t~)`` of training pair the same generated head and
#: tail, so their nearest real entities are the head and tail rows' own:
#: mining lists each side once.
SIDES = (("head", "head"), ("tail", "tail"))


def train_generator(sampler: DHNSSampler, model: KGCModel, triples: Tensor,
                    epochs: int, batch_size: int, generator: torch.Generator,
                    progress: bool = True) -> float:
    """Trains DiffHEG on a frozen model over ``triples`` ``[n, 3]``; returns
    the last generator loss."""
    if generator.device.type != model.device.type:
        raise DHNSError(f"the random generator is on {generator.device} and "
                        f"the model on {model.device}: make it with "
                        "torch.Generator(device=model.device)")
    triples = triples.to(model.device)
    model.eval()
    with torch.no_grad():
        table = model.encode()
        table.fused()
    loss = float("nan")
    bar = tqdm(total=epochs * triples.size(0), unit="triple", unit_scale=True,
               desc="train generator", disable=not progress)
    for _ in range(epochs):
        perm = torch.randperm(triples.size(0), generator=generator,
                              device=triples.device)
        for start in range(0, triples.size(0), batch_size):
            batch = triples[perm[start:start + batch_size]]
            loss = float(sampler.fit_generator(batch, model, table, generator))
            bar.update(batch.size(0))
            bar.set_postfix(loss=f"{loss:.4f}")
    bar.close()
    return loss


@torch.no_grad()
def mine_hard_negatives(sampler: DHNSSampler, model: KGCModel,
                        positives: Tensor, filter_index: FilterIndex,
                        generator: torch.Generator, k: int = 5,
                        levels: list[int] | None = None,
                        batch_size: int = 256) -> dict[str, Tensor]:
    """Maps generated heads/tails of each level to their ``k`` nearest real
    entities (Euclidean, in the fused entity space), excluding known true
    answers of ``(?, r, t)`` / ``(h, r, ?)``.

    Args:
        positives: ``[n, 3]`` triples.
        levels: Level indices into ``sampler.levels`` (default: all).

    Returns:
        Columns of equal length ``P``: ``positive`` (row in ``positives``),
        ``side`` (index into :data:`SIDES`), ``level``, ``rank`` (0-based),
        ``entity`` and ``distance``.
    """
    model.eval()
    table = model.encode()
    entities = table.fused()
    levels = list(range(len(sampler.levels))) if levels is None else levels
    k = min(k, entities.size(0))
    cols: dict[str, list[Tensor]] = {c: [] for c in COLUMNS}
    for start in range(0, positives.size(0), batch_size):
        batch = positives[start:start + batch_size]
        h, r, t = batch.unbind(dim=1)
        generated = sampler.generate(batch, model, table, generator, levels)
        for i, (gen_h, gen_t) in generated.items():
            for side_id, gen, known in ((0, gen_h, t), (1, gen_t, h)):
                row, col = filter_index.true_answers(known, r, SIDES[side_id][1])
                values, ids = nearest_entities(gen, entities, row, col, k)
                for name, column in _rows(start, side_id, i, values, ids).items():
                    cols[name].append(column)
    return {c: torch.cat(v) for c, v in cols.items()}


def nearest_entities(generated: Tensor, entities: Tensor, row: Tensor,
                     col: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """``([B, k] distances, [B, k] ids)`` of the ``k`` entities ``[N, d]``
    nearest (Euclidean) to each generated ``[B, d]`` row, never the
    excluded entries ``(row, col)`` (known true answers)."""
    dist = torch.cdist(generated, entities)
    dist[row, col] = float("inf")
    return torch.topk(dist, k, largest=False)


#: The columns of :func:`mine_hard_negatives`.
COLUMNS = ("positive", "side", "level", "rank", "entity", "distance")


def _rows(start: int, side: int, level: int, values: Tensor,
          ids: Tensor) -> dict[str, Tensor]:
    """The columns of the ``[n, k]`` nearest ``ids`` (at distances
    ``values``) of positives ``start ...`` on one side and level."""
    n, k = ids.shape
    device = ids.device
    return {"positive": (torch.arange(n, device=device) + start).repeat_interleave(k),
            "side": torch.full((n * k,), side, device=device),
            "level": torch.full((n * k,), level, device=device),
            "rank": torch.arange(k, device=device).repeat(n),
            "entity": ids.reshape(-1), "distance": values.reshape(-1)}
