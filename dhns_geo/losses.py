r"""Losses over positive scores ``[B]`` and negative scores ``[B, K]``.

All losses share one signature: ``loss(pos, neg, margin_factor=1.0,
weight=None)``. The margin of negative ``k`` is ``margin * margin_factor_k``
(NTAT gives each hardness level its own factor); ``weight`` ``[B, K]``
reweights negatives (``0`` drops one) and is renormalised per positive.

* ``margin``: :math:`\sum_k w_k\,[\gamma_k - s^+ + s^-_k]_+`
* ``softplus``: :math:`\lambda\,\mathrm{softplus}(-(\gamma + s^+)) + \sum_k w_k\,
  \mathrm{softplus}(\gamma_k + s^-_k)` (the logistic loss; with
  distance-based scores ``s = -d`` the logit is ``gamma - d`` as in RotatE)
* ``self-adversarial``: the logistic loss with negatives weighted by
  :math:`\mathrm{softmax}_k(\alpha s^-_k)` (detached), Sun et al. (2019)

:math:`\lambda` (``positive_weight``, default 1) weighs the positives' term
of the logistic losses. Every group of negatives carries that term, so a
DHNS loss weight ``mu`` re-weights the positives as well (README, the DHNS
investigation).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dhns_geo.config import LOSSES, REGULARIZERS
from dhns_geo.errors import DHNSError

__all__ = ["LOSSES", "REGULARIZERS", "KGELoss", "negative_weights",
           "regularization"]


def regularization(kind: str, factors: Sequence[Tensor],
                   complex: bool = False) -> Tensor:
    r"""Penalty of the ``[B, d_f]`` factors of a batch (head, relation, tail
    embeddings), the mean over the ``B`` rows of its per-row sum:

    * ``l2``: :math:`\sum_f \|f\|_2^2`; ``l3``: :math:`\sum_f \sum_i |f_i|^3`;
    * ``n3``: the nuclear 3-norm of Lacroix et al. (ICML 2018),
      :math:`\sum_f \sum_i |f_i|^3` over the *moduli* of complex entries
      (``complex=True``: ``[re, im]`` halves); ``l3`` on real factors;
    * ``dura``: DURA (Zhang et al., NeurIPS 2020) in the weighting of its
      authors' ``DURA_W``:
      :math:`\sum_i \tfrac12 (|h_i|^2 + |t_i|^2) + \tfrac32 (|h_i|^2 |r_i|^2
      + |t_i|^2 |r_i|^2)` over entries (moduli of complex entries), for
      bilinear models (DistMult, ComplEx).
    """
    if kind not in REGULARIZERS[1:]:
        raise DHNSError(f"unknown regularizer {kind!r}; choose from "
                        f"{', '.join(REGULARIZERS[1:])}")
    if kind == "dura":
        h, r, t = (_squared_moduli(f, complex) for f in factors)
        per = 0.5 * (h + t) + 1.5 * (h * r + t * r)
        return per.sum(dim=-1).mean()
    total = factors[0].new_zeros(())
    for f in factors:
        if kind == "l2":
            per = f.pow(2)
        elif kind == "n3" and complex:
            per = _squared_moduli(f, True).pow(1.5)     # |z|^3, smooth at 0
        else:
            per = f.abs().pow(3)
        total = total + per.sum(dim=-1).mean()
    return total


def _squared_moduli(f: Tensor, complex: bool) -> Tensor:
    """``|f_i|^2`` of real entries, or of the complex entries of ``[re, im]``
    halves."""
    if not complex:
        return f * f
    re, im = f.chunk(2, dim=-1)
    return re * re + im * im


def negative_weights(neg: Tensor, weight: Tensor | None = None,
                     temperature: float | None = None) -> Tensor:
    """Normalised ``[B, K]`` weights of negatives: ``weight`` (default 1),
    times the detached ``softmax(temperature * neg)`` when a temperature is
    given, summing to 1 per row (rows of zeros stay zero)."""
    w = torch.ones_like(neg) if weight is None else weight.expand_as(neg)
    if temperature is not None:
        logits = (temperature * neg.detach()).masked_fill(w <= 0, float("-inf"))
        w = w * torch.softmax(logits, dim=-1).nan_to_num(0.0)
    return w / w.sum(dim=-1, keepdim=True).clamp_min(1e-12)


class KGELoss(nn.Module):
    """A loss by name, with a base margin and adversarial temperature.

    Args:
        kind: ``margin``, ``softplus`` or ``self-adversarial``.
        margin: Base margin :math:`\\gamma`.
        temperature: :math:`\\alpha` of the self-adversarial loss.
        positive_weight: :math:`\\lambda`, the weight of the positives'
            term of the logistic losses.
    """

    def __init__(self, kind: str = "self-adversarial", margin: float = 6.0,
                 temperature: float = 1.0, positive_weight: float = 1.0) -> None:
        super().__init__()
        if kind not in LOSSES:
            raise DHNSError(f"unknown loss {kind!r}; choose from "
                            f"{', '.join(LOSSES)}")
        if positive_weight <= 0:
            raise DHNSError(f"positive_weight must be positive, got {positive_weight}")
        if kind == "margin" and positive_weight != 1.0:
            raise DHNSError("positive_weight applies to the softplus and "
                            "self-adversarial losses, not to margin")
        self.kind, self.margin, self.temperature = kind, margin, temperature
        self.positive_weight = positive_weight

    def forward(self, pos: Tensor, neg: Tensor,
                margin_factor: Tensor | float = 1.0,
                weight: Tensor | None = None) -> Tensor:
        """Mean loss of ``[B]`` positive and ``[B, K]`` negative scores."""
        neg_margin = self.margin * margin_factor
        if self.kind == "margin":
            w = negative_weights(neg, weight)
            per = F.relu(neg_margin - pos.unsqueeze(1) + neg)
            return (w * per).sum(dim=-1).mean()
        temperature = self.temperature if self.kind == "self-adversarial" else None
        w = negative_weights(neg, weight, temperature)
        pos_loss = self.positive_weight * F.softplus(-(self.margin + pos))
        neg_loss = (w * F.softplus(neg_margin + neg)).sum(dim=-1)
        return (pos_loss + neg_loss).mean() / 2

    def extra_repr(self) -> str:
        return (f"kind={self.kind}, margin={self.margin}, temperature="
                f"{self.temperature}, positive_weight={self.positive_weight}")
