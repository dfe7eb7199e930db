"""Pilot: real hard negatives added to the shared pool.

Two samplers wrap the 0.2 defaults (RotatE, a pool of ``K`` negatives shared
by the batch, self-adversarial loss) and append ``L`` hard *real* entities to
each positive's pool, on the side it corrupts, in the same softmax:

* ``snap``: DHNS generates the corrupted side at each active level and each
  generated embedding is replaced by its nearest real entity (Euclidean, fused
  space) that is not a known train answer of the query; the level's NTAT margin
  factor goes with it. Unlike generated embeddings, the snapped negatives are
  entities, so their own embeddings get a gradient too.
* ``mine``: the same without diffusion: the ``L`` non-answers the model
  scores highest (plain hard-negative mining, the control).

    python benchmarks/studies/hard_negatives_pilot.py --root DATA --mode snap --epochs 15 \
        --out runs/pilot/MKG-Y-snap

One thread; valid MRR every epoch; the curve goes to ``OUT/history.csv``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import Tensor

from dhns_geo.config import TrainConfig
from dhns_geo.data.filter import FilterIndex
from dhns_geo.data.mmkg import num_entities, num_relations, split_triples
from dhns_geo.nn.model import EntityTable, KGCModel
from dhns_geo.sampling.base import NegativeSampler, Negatives
from dhns_geo.training import Trainer
from dhns_geo.runs import check_inputs, load_dataset_for


class PoolWithHardNegatives(NegativeSampler):
    """The shared pool of ``inner`` (a uniform sampler, or the base of a DHNS
    sampler in ``snap`` mode) plus ``L`` hard real negatives per positive."""

    def __init__(self, inner: NegativeSampler, index: FilterIndex, mode: str,
                 num_hard: int) -> None:
        super().__init__()
        self.inner, self.index, self.mode, self.num_hard = inner, index, mode, num_hard

    def _distances(self, positives: Tensor, side: Tensor, model: KGCModel,
                   table: EntityTable, entities: Tensor,
                   generator: torch.Generator) -> tuple[Tensor, list[float]]:
        """``[L', B, N]`` distances to hard points, and a margin factor each."""
        h, r, t = positives.unbind(1)
        if self.mode == "snap":
            generated = self.inner.generate(positives, model, table, generator)
            dist = torch.stack([torch.cdist(torch.where(side[:, None], gen_h, gen_t), entities)
                                for gen_h, gen_t in generated.values()])
            return dist, [self.inner.margin_factors[i] for i in generated]
        rel = model.relations(r)
        query = torch.where(side[:, None], model.scorer.compose(entities[t], rel, "head"),
                            model.scorer.compose(entities[h], rel, "tail"))
        return -model.scorer.match_all(query, entities).unsqueeze(0), [1.0] * self.num_hard

    def sample(self, positives: Tensor, model: KGCModel, table: EntityTable,
               generator: torch.Generator) -> list[Negatives]:
        base = self.inner.base if self.mode == "snap" else self.inner
        [pool] = base.sample(positives, model, table, generator)
        if self.mode == "snap":
            self.inner._generator_loss = self.inner.fit_generator(
                positives, model, table, generator)
        h, r, t = positives.unbind(1)
        side = pool.corrupted_head[:, 0]                        # [B] head corrupted
        b, k = pool.head.shape
        with torch.no_grad():
            entities = model.fusion(*table.modalities())
            dist, factors = self._distances(positives, side, model, table, entities,
                                            generator)
            for position, known in (("head", t), ("tail", h)):
                row, col = self.index.true_answers(known, r, position)
                mine = side[row] == (position == "head")
                dist[:, row[mine], col[mine]] = float("inf")   # no known answers
            hard = (dist.argmin(-1).t() if self.mode == "snap"
                    else dist[0].topk(self.num_hard, largest=False).indices)  # [B, L]
        drawn = torch.cat([torch.where(side[:, None], pool.head, pool.tail), hard], 1)
        corrupted = side[:, None].expand_as(drawn)
        heads = torch.where(corrupted, drawn, h[:, None].expand_as(drawn))
        tails = torch.where(corrupted, t[:, None].expand_as(drawn), drawn)
        weight = (hard.new_ones(b, k, dtype=torch.float) if pool.weight is None
                  else pool.weight.expand(b, k))
        return [Negatives(heads, tails,
                          margin_factor=torch.tensor([1.0] * k + factors,
                                                     device=hard.device).unsqueeze(0),
                          weight=torch.cat([weight, torch.ones_like(hard, dtype=torch.float)], 1),
                          corrupted_head=corrupted)]

    def step_stats(self) -> dict[str, Tensor | float]:
        return self.inner.step_stats()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True)
    parser.add_argument("--dataset", default="MKG-Y")
    parser.add_argument("--mode", choices=("snap", "mine"), required=True)
    parser.add_argument("--num-hard", type=int, default=4,
                        help="L of mine (snap: one per active DHNS level)")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = TrainConfig(dataset=args.dataset, root=args.root, features="auto",
                         sampler="dhns" if args.mode == "snap" else "uniform",
                         epochs=args.epochs, eval_every=1, patience=100, seed=args.seed,
                         lr_plateau_factor=1.0,
                         select_on="valid-unseen" if args.dataset == "DB15K" else "valid")
    data = load_dataset_for(config)
    trainer = Trainer.from_config(config, data, check_inputs(config), progress=False,
                                  log=print)
    index = FilterIndex(split_triples(data, "train"), num_entities(data),
                        num_relations(data))
    trainer.objective.sampler = PoolWithHardNegatives(trainer.objective.sampler, index, args.mode,
                                            args.num_hard)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    metrics = trainer.fit(Path(args.out))
    print(f"best epoch {metrics['best_epoch']}: valid MRR {metrics['valid']['mrr']:.4f}, "
          f"test MRR {metrics['test']['mrr']:.4f}")


if __name__ == "__main__":
    main()
