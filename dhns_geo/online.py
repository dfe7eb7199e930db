"""DHNS inside any training loop: hierarchical negatives that follow the
user's model as it learns.

Each call of :class:`OnlineDHNS` takes the user's model through a
:class:`~dhns_geo.adapters.KGEAdapter` and a batch of positives, trains
DiffHEG one step on the model's current (detached) embeddings, and returns
the generated negatives of every hardness level, either

* as embeddings (:class:`HardNegatives`): scored by the model's own score
  function, with the NTAT margin factor and loss weight of each level
  (:meth:`HardNegatives.loss`), gradients flowing into the user's model
  through the real sides of each negative; or
* as entity ids (:meth:`OnlineDHNS.mine`), the real entities nearest to the
  generated ones, for loops that take ids only.

In a PyG loop (``torch_geometric.nn.kge``)::

    adapter = KGEAdapter.from_pyg(model)     # reads the model's current weights
    dhns = OnlineDHNS.for_model(adapter)
    for head_index, rel_type, tail_index in loader:
        optimizer.zero_grad()
        negatives = dhns(adapter, head_index, rel_type, tail_index)
        loss = model.loss(head_index, rel_type, tail_index) + negatives.loss()
        loss.backward()
        optimizer.step()
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor, nn

from dhns_geo.adapters import KGEAdapter
from dhns_geo.data.filter import FilterIndex
from dhns_geo.diffusion.dhns import DHNSSampler, modality_rms
from dhns_geo.diffusion.mining import nearest_entities
from dhns_geo.errors import DHNSError
from dhns_geo.losses import KGELoss
from dhns_geo.negatives import Negatives
from dhns_geo.sampling.base import NegativeSampler

#: ``score_fn(head [B, K, d], relation [B, 1, d_r], tail [B, K, d]) -> [B, K]``.
ScoreFn = Callable[[Tensor, Tensor, Tensor], Tensor]


@dataclass
class HardNegatives:
    """The negatives of a batch of ``B`` positives, for the user's loss.

    Attributes:
        groups: The sampler's :class:`~dhns_geo.negatives.Negatives`. Of
            :class:`OnlineDHNS`: one per active level (hardest first),
            generated ``[B, 3, d]`` heads and tails of ``(h~, r, t)``,
            ``(h, r, t~)``, ``(h~, r, t~)``, with the level's margin factor
            and NTAT loss weight; of :class:`OnlineSampler`: the sampler's
            entity ids with their corrupted side.
        head: ``[B, d]`` the positives' head embeddings (the model's graph).
        relation: ``[B, d_r]`` their relation embeddings.
        tail: ``[B, d]`` their tail embeddings.
        adapter: The model the negatives were generated for.
        loss_fn: The loss of each level (its margin scaled per level).
    """

    groups: list[Negatives]
    head: Tensor
    relation: Tensor
    tail: Tensor
    adapter: KGEAdapter
    loss_fn: KGELoss

    @property
    def margin_factor(self) -> Tensor:
        """``[K]`` NTAT margin factor of each column of :meth:`scores`."""
        return torch.tensor([float(g.margin_factor) for g in self.groups
                             for _ in range(g.head.size(1))], device=self.head.device)

    def embeddings(self) -> tuple[Tensor, Tensor]:
        """``([B, K, d] heads, [B, K, d] tails)`` of all ``K = 3L``
        negatives, the real sides being the positives' own embeddings."""
        heads, tails = zip(*(g.sides(self.head, self.tail, self.adapter)
                             for g in self.groups))
        return torch.cat(heads, 1), torch.cat(tails, 1)

    def scores(self, score_fn: ScoreFn | None = None) -> Tensor:
        """``[B, K]`` scores of the negatives by the adapter's interaction
        (equal to the model's own score), or by ``score_fn`` (generated
        groups only: ``score_fn(heads, relation, tails)``)."""
        scorer, offset = ((self.adapter.scorer, self.adapter.offset) if score_fn is None
                          else (score_fn, 0.0))
        return torch.cat([g.score(scorer, self.head, self.relation, self.tail, self.adapter)
                          for g in self.groups], dim=1) + offset

    def loss(self, positive: Tensor | None = None,
             scores: Tensor | None = None) -> Tensor:
        """The NTAT loss: the sum over levels of ``loss_weight *
        loss_fn(positive, level scores, margin_factor)``.

        Args:
            positive: ``[B]`` scores of the positives (default: the
                adapter's score of :attr:`head`, :attr:`relation`,
                :attr:`tail`).
            scores: ``[B, K]`` from :meth:`scores` (default: computed).
        """
        if positive is None:
            positive = self.adapter.score(self.head, self.relation, self.tail)
        scores = self.scores() if scores is None else scores
        total = positive.new_zeros(())
        for g, part in zip(self.groups, scores.split([g.head.size(1) for g in self.groups], 1)):
            total = total + g.loss(self.loss_fn, positive, part)
        return total


class SeededSampler(nn.Module):
    """A sampler of a user's loop with its own random stream, seeded once;
    the stream is part of the state dict, so a resumed loop draws what an
    uninterrupted one would."""

    sampler: NegativeSampler

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.seed = seed
        self._generator: torch.Generator | None = None

    def get_extra_state(self) -> dict:
        g = self._generator
        return {"generator": None if g is None else g.get_state()}

    def set_extra_state(self, state: dict) -> None:
        if state.get("generator") is not None:
            tensors = [*self.sampler.parameters(), *self.sampler.buffers()]
            device = tensors[0].device if tensors else torch.device("cpu")
            self.generator(device).set_state(state["generator"])

    def generator(self, device: torch.device) -> torch.Generator:
        """The sampler's random generator on ``device`` (seeded once)."""
        if self._generator is None or self._generator.device.type != device.type:
            self._generator = torch.Generator(device=device).manual_seed(self.seed)
        return self._generator


#: Below this root mean square, an unnormalised model's embeddings are far
#: smaller than the unit Gaussian noise DiffHEG samples from (OnlineDHNS warns).
SMALL_RMS = 0.1


#: OnlineSampler's loss for a model without one of its own (logits).
LOGISTIC = KGELoss("self-adversarial", margin=0.0)


class OnlineSampler(SeededSampler):
    """Any model-agnostic sampler of :mod:`dhns_geo.sampling` in a user's
    loop (uniform, Bernoulli, NSCaching, SANS, KBGAN): each call draws the
    sampler's negatives of a batch for the model as it is now (a stateful
    sampler refreshes its cache or trains its generator, as in dhns-geo's
    loop) and returns them with the loss to add.

    In a PyG loop::

        adapter = KGEAdapter.from_pyg(model)
        online = OnlineSampler(NSCachingSampler(N, train, 64, torch.full((R,), 0.5)))
        for head_index, rel_type, tail_index in loader:
            negatives = online(adapter, head_index, rel_type, tail_index)
            loss = negatives.loss()          # positives and negatives, one loss
            ...

    Args:
        sampler: The sampler (its ``num_negatives`` per positive).
        loss: The loss of positives against the negatives. By default the
            adapter's own (``KGEAdapter.loss``: PyG's ``TransE`` and
            ``DistMult`` bring their margin ranking loss at their margin;
            with the logistic loss both train worse than PyG's random
            negatives alone), else the self-adversarial logistic loss,
            temperature 1, margin 0: on logits such as PyG's ComplEx scores
            (its own loss is logistic), or RotatE's, whose margin is in its
            score.
        seed: Seed of the sampler's random generator.
    """

    def __init__(self, sampler: NegativeSampler, loss: KGELoss | None = None,
                 seed: int = 0) -> None:
        super().__init__(seed)
        self.sampler = sampler
        self.loss_fn = loss

    def forward(self, adapter: KGEAdapter, head_index: Tensor, rel_type: Tensor,
                tail_index: Tensor) -> HardNegatives:
        """The sampler's negatives of the positives ``[B]`` ids."""
        positives = torch.stack([head_index, rel_type, tail_index], 1)
        groups = self.sampler.sample(positives, adapter, adapter,
                                     self.generator(positives.device))
        loss = next(fn for fn in (self.loss_fn, adapter.loss, LOGISTIC) if fn is not None)
        return HardNegatives(groups, adapter.entities(head_index),
                             adapter.relations(rel_type), adapter.entities(tail_index),
                             adapter, loss)


class OnlineDHNS(SeededSampler):
    """DHNS for any model: DiffHEG, trained on the model's detached
    embeddings as it learns, and its hierarchical negatives.

    Args:
        dim: The model's entity embedding size ``d`` (generated rows).
        num_modalities: ``M`` of the adapter (1: structure only).
        mu: Weight of the DHNS loss (NTAT: ``mu * level weight / #levels``
            per level).
        loss: The loss of each level's negatives; its margin is scaled by
            each level's factor (default: the margin ranking loss, margin 1).
        seed: Seed of the sampler's own random generator.
        options: The rest of :class:`~dhns_geo.diffusion.DHNSSampler`'s
            options (``num_steps``, ``levels``, ``level_weights``,
            ``margin_factors``, ``generator_steps``, ``lr``, ``strided``,
            ``normalize``, ``guard``, ``width``, ``authors_sampling``, and
            ``share``: the share of each batch the generator trains on and
            generates for). With ``normalize`` off (the authors' way), the
            first call warns when the model's entity embeddings have a root
            mean square below :data:`SMALL_RMS`: PyG's ``ComplEx`` and
            ``DistMult`` start at about 0.01, and PyG's ComplEx at its example
            settings does not learn beside such negatives; ``normalize=True``
            diffuses at the embeddings' own scale.
    """

    def __init__(self, dim: int, num_modalities: int = 1, mu: float = 1.0,
                 loss: KGELoss | None = None, seed: int = 0, **options: Any) -> None:
        super().__init__(seed)
        if options.get("generator_grad", "detached") != "detached":
            raise DHNSError("OnlineDHNS trains its generator on detached embeddings "
                            "(generator_grad='detached'); the authors' gradient into "
                            "the model needs dhns-geo's own loop")
        self.sampler = DHNSSampler(NegativeSampler(), num_modalities, dim, mu=mu,
                                   **options)
        self.loss_fn = loss if loss is not None else KGELoss("margin", margin=1.0)
        self.generator_loss: Tensor | None = None
        self._scale_checked = False

    def _check_scale(self, adapter: KGEAdapter, ids: Tensor) -> None:
        """Warns once if the unnormalised diffusion meets tiny embeddings
        (the smallest modality's, as DiffHEG diffuses them)."""
        if self._scale_checked or self.sampler.normalize:
            return
        self._scale_checked = True
        x, mask = adapter.modalities(ids)                       # [B, M, d], [B, M]
        rms = float(modality_rms(x.detach().transpose(0, 1), mask.t()).min())
        if rms < SMALL_RMS:
            warnings.warn(f"OnlineDHNS: the model's entity embeddings have a root mean square "
                          f"of {rms:.3g}, far below the unit noise DiffHEG samples from, so "
                          f"the generated negatives lie far from every real entity; pass "
                          f"normalize=True to diffuse at the embeddings' scale", stacklevel=2)

    @classmethod
    def for_model(cls, adapter: KGEAdapter, **options: Any) -> "OnlineDHNS":
        """A sampler sized for ``adapter``'s embeddings, on its device."""
        return cls(adapter.dim, adapter.num_modalities, **options).to(adapter.device)

    @property
    def levels(self) -> list[int]:
        """Diffusion steps of the active levels, hardest first."""
        return [self.sampler.levels[i] for i in self.sampler.active_levels]

    def forward(self, adapter: KGEAdapter, head_index: Tensor, rel_type: Tensor,
                tail_index: Tensor) -> HardNegatives:
        """Trains DiffHEG one step on the batch and returns its negatives.

        Args:
            adapter: The user's model, now.
            head_index: ``[B]`` head ids of the positives.
            rel_type: ``[B]`` relation ids.
            tail_index: ``[B]`` tail ids.

        Returns:
            The negatives of the first ``ceil(share * B)`` positives (all
            with the default ``share=1``; batches are shuffled).
        """
        positives = self.sampler.served(torch.stack([head_index, rel_type, tail_index], 1))
        self._check_scale(adapter, positives[:, 0])
        g = self.generator(positives.device)
        self.generator_loss = self.sampler.fit_generator(positives, adapter, adapter, g)
        groups = self.sampler.level_negatives(positives, adapter, adapter, g)
        h, r, t = positives.unbind(1)
        return HardNegatives(groups, adapter.entities(h), adapter.relations(r),
                             adapter.entities(t), adapter, self.loss_fn)

    @torch.no_grad()
    def mine(self, adapter: KGEAdapter, head_index: Tensor, rel_type: Tensor,
             tail_index: Tensor, filter_index: FilterIndex | None = None,
             fit: bool = True) -> tuple[Tensor, Tensor]:
        """Hard negatives as entity ids: for each level, the real entity
        nearest to the generated head and tail.

        Args:
            filter_index: Known true triples never returned (default: only
                each positive's own head / tail is excluded).
            fit: Train DiffHEG one step on the batch first.

        Returns:
            ``([B, L] head ids, [B, L] tail ids)`` for the active levels
            (:attr:`levels`, hardest first).
        """
        positives = torch.stack([head_index, rel_type, tail_index], 1)
        g = self.generator(positives.device)
        if fit:
            with torch.enable_grad():
                self.generator_loss = self.sampler.fit_generator(positives, adapter,
                                                                 adapter, g)
        table = adapter.entities()
        rows = torch.arange(positives.size(0), device=positives.device)
        heads, tails = [], []
        for gen_h, gen_t in self.sampler.generate(positives, adapter, adapter, g).values():
            for out, gen, known, own, side in ((heads, gen_h, tail_index, head_index, "head"),
                                               (tails, gen_t, head_index, tail_index, "tail")):
                row, col = (filter_index.true_answers(known, rel_type, side)
                            if filter_index is not None else (rows, own))
                out.append(nearest_entities(gen, table, row, col, 1)[1][:, 0])
        return torch.stack(heads, 1), torch.stack(tails, 1)

