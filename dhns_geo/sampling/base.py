"""The negative sampler interface shared by every sampler."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from dhns_geo.negatives import Negatives

if TYPE_CHECKING:
    from dhns_geo.nn.model import EntityTable, KGCModel

__all__ = ["NegativeSampler", "Negatives"]


class NegativeSampler(nn.Module):
    """Base class: ``sample`` returns groups of :class:`Negatives`.

    Samplers are modules so that learned state (the DHNS generator and its
    optimizer) is saved and restored with checkpoints.
    """

    def sample(self, positives: Tensor, model: "KGCModel", table: "EntityTable",
               generator: torch.Generator) -> list[Negatives]:
        """Negatives of ``positives``.

        Args:
            positives: ``[B, 3]`` ``(head, relation, tail)`` ids.
            model: The KGC model being trained.
            table: Its entity table of the current step.
            generator: The random generator to draw from (for determinism).
        """
        raise NotImplementedError

    def step_stats(self) -> dict[str, Tensor | float]:
        """Numbers about the last :meth:`sample` call to track (e.g. a
        generator's loss), by name; tensors stay on the device until the
        epoch's means are taken."""
        return {}
