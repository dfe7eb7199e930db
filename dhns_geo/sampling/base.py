"""The negative sampler interface shared by every sampler, and the helpers
samplers share: which side a negative corrupts, candidate scores in one
batched product, filtering with a uniform fallback."""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import Tensor, nn

from dhns_geo.data.filter import FilterIndex
from dhns_geo.negatives import Negatives

__all__ = ["NegativeSampler", "Negatives", "ModelView", "SelfTrainingSampler", "TableView",
           "candidate_scores", "corrupted_sides", "filter_with_fallback",
           "gumbel_noise", "scoring_inputs", "with_sides"]


class ModelView(Protocol):
    """What a sampler reads from a model: a
    :class:`~dhns_geo.nn.model.KGCModel` or a
    :class:`~dhns_geo.adapters.KGEAdapter`."""

    scorer: Any

    def relations(self, ids: Tensor) -> Tensor: ...


class TableView(Protocol):
    """What a sampler reads from a step's entity table: a
    :class:`~dhns_geo.nn.model.EntityTable` or a
    :class:`~dhns_geo.adapters.KGEAdapter`."""

    def entity(self, x: Tensor) -> Tensor: ...

    def gatherable(self, index: Tensor) -> tuple[Tensor, Tensor]: ...

    def modalities(self, index: Tensor) -> tuple[Tensor, Tensor]: ...


def scoring_inputs(model: ModelView, table: TableView, positives: Tensor) -> tuple:
    """The arguments of :meth:`Negatives.score` for negatives of
    ``positives`` ``[B, 3]``: ``(scorer, head, relation, tail, table)``,
    looked up once for every group of the batch."""
    h, r, t = positives.unbind(1)
    return model.scorer, table.entity(h), model.relations(r), table.entity(t), table


class NegativeSampler(nn.Module):
    """Base class: ``sample`` returns groups of :class:`Negatives`.

    Samplers are modules so that learned state (a generator and its
    optimizer, a cache) is saved and restored with checkpoints: buffers and
    parameters travel in ``state_dict``, an optimizer in the extra state.

    In eval mode (``sampler.eval()``) a sampler draws as it does in training
    but changes no state of its own (no generator step, no cache refresh, no
    step count): what ``dhns sample-negatives`` shows of a run's sampler.
    """

    def sample(self, positives: Tensor, model: ModelView, table: TableView,
               generator: torch.Generator) -> list[Negatives]:
        """Negatives of ``positives``.

        Args:
            positives: ``[B, 3]`` ``(head, relation, tail)`` ids.
            model: The model being trained (or a ``KGEAdapter``).
            table: Its entity table of the current step (an adapter is its
                own table).
            generator: The random generator to draw from (for determinism).
        """
        raise NotImplementedError

    def step_stats(self) -> dict[str, Tensor | float]:
        """Numbers about the last :meth:`sample` call to track (e.g. a
        generator's loss), by name (a sampler keeps them in ``_stats``);
        tensors stay on the device until the epoch's means are taken."""
        return self.__dict__.get("_stats", {})

    def _apply(self, fn, recurse: bool = True):
        # A filter index is no tensor of the module: move it with it.
        super()._apply(fn, recurse)
        index = getattr(self, "filter_index", None)
        if index is not None:
            self.filter_index = index.to(fn(torch.zeros(())).device)
        return self


class SelfTrainingSampler(NegativeSampler):
    """A sampler that trains a module of its own (a generator, an attention)
    with its own ``optimizer``, which travels in its state dict."""

    optimizer: torch.optim.Optimizer

    def get_extra_state(self) -> dict:
        return {"optimizer": self.optimizer.state_dict()}

    def set_extra_state(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])


def corrupted_sides(positives: Tensor, head_prob: Tensor, num: int,
                    generator: torch.Generator, per_row: bool = False) -> Tensor:
    """``[B, num]`` bool, ``True`` where a negative replaces the head:
    drawn with the relation's probability ``head_prob`` ``[R]``, per
    negative or (``per_row``) once per positive."""
    b = positives.size(0)
    shape = (b, 1) if per_row else (b, num)
    prob = head_prob[positives[:, 1]].unsqueeze(1)
    return (torch.rand(shape, generator=generator, device=positives.device)
            < prob).expand(b, num)


def with_sides(positives: Tensor, drawn: Tensor, is_head: Tensor
               ) -> tuple[Tensor, Tensor]:
    """``([B, K] heads, [B, K] tails)`` of negatives that put the ``drawn``
    ids in the corrupted side of each positive."""
    h, _, t = positives.unbind(1)
    shape = drawn.shape
    return (torch.where(is_head, drawn, h.unsqueeze(1).expand(shape)),
            torch.where(is_head, t.unsqueeze(1).expand(shape), drawn))


def filter_with_fallback(positives: Tensor, drawn: Tensor, is_head: Tensor,
                         index: FilterIndex | None, num_entities: int,
                         generator: torch.Generator, rounds: int = 3
                         ) -> tuple[Tensor, Tensor | None]:
    """Replaces drawn ids that make a known true triple by uniform ones (up
    to ``rounds`` times); returns ``(ids [B, K], weight [B, K] or None)``,
    weight ``0`` where a known true triple remains (``None`` without an
    index)."""
    if index is None:
        return drawn, None
    false = known_mask(positives, drawn, is_head, index)
    for _ in range(rounds):
        redraw = torch.randint(0, num_entities, drawn.shape, generator=generator,
                               device=drawn.device)
        drawn = torch.where(false, redraw, drawn)
        row, col = false.nonzero(as_tuple=True)   # look up the redrawn ids only
        false[row, col] = known_mask(positives[row], drawn[row, col, None],
                                     is_head[row, col, None], index).squeeze(1)
    return drawn, (~false).float()


def known_mask(positives: Tensor, candidates: Tensor, is_head: Tensor,
               index: FilterIndex) -> Tensor:
    """``[B, C]`` bool: the candidates that make a known true triple."""
    heads, tails = with_sides(positives, candidates, is_head)
    return index.contains(heads, positives[:, 1:2].expand(candidates.shape), tails)


def candidate_scores(model: ModelView, table: TableView, positives: Tensor,
                     candidates: Tensor, is_head: Tensor) -> Tensor:
    """Scores ``[B, C]``, without gradient, of each positive with its
    corrupted side replaced by each of its ``candidates`` ``[B, C]``
    (``is_head`` ``[B, C]``: ``True`` where the head is replaced), in one
    batched product (the step's table rows are detached, never copied per
    candidate)."""
    h, r, t = positives.unbind(1)
    rows, index = table.gatherable(candidates)
    rows = rows.detach()
    with torch.no_grad():
        known = table.entity(torch.stack([h, t])).detach()
        rel = model.relations(r)
        scorer = model.scorer
        queries = torch.stack([scorer.compose(known[0], rel, "tail"),
                               scorer.compose(known[1], rel, "head")], 1)
        return scorer.match_rows(queries, rows, index, is_head.long())


def gumbel_noise(shape: tuple[int, ...], generator: torch.Generator,
                 device: torch.device) -> Tensor:
    """Standard Gumbel noise: ``argmax(logits + noise)`` draws from
    ``softmax(logits)``; its top-``k`` draws ``k`` without replacement."""
    u = torch.rand(shape, generator=generator, device=device)
    return -torch.log(-torch.log(u.clamp(1e-20, 1.0 - 1e-7)))
