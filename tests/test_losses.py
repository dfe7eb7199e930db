"""Losses and regularisers (dhns_geo/losses.py) against hand-computed values."""

import pytest
import torch

from dhns_geo.losses import KGELoss, regularization


def test_margin_loss_by_hand():
    loss = KGELoss("margin", margin=1.0)
    pos, neg = torch.tensor([1.0]), torch.tensor([[0.5, 2.0]])
    assert loss(pos, neg).item() == pytest.approx((0.5 + 2.0) / 2)
    assert loss(pos, neg, weight=torch.tensor([[1.0, 0.0]])).item() == pytest.approx(0.5)
    factors = torch.tensor([[0.5, 1.0]])
    assert loss(pos, neg, margin_factor=factors).item() == pytest.approx((0.0 + 2.0) / 2)


def test_softplus_and_self_adversarial_by_hand():
    sp = torch.nn.functional.softplus
    pos, neg = torch.tensor([-1.0]), torch.tensor([[-3.0, -1.0]])
    gamma = 2.0
    plain = KGELoss("softplus", margin=gamma)(pos, neg)
    expected = (sp(torch.tensor(-(gamma - 1.0))) +
                (sp(torch.tensor(gamma - 3.0)) + sp(torch.tensor(gamma - 1.0))) / 2) / 2
    assert plain.item() == pytest.approx(expected.item())
    adv = KGELoss("self-adversarial", margin=gamma, temperature=1.0)(pos, neg)
    w = torch.softmax(torch.tensor([-3.0, -1.0]), 0)
    expected = (sp(torch.tensor(-(gamma - 1.0))) +
                w[0] * sp(torch.tensor(gamma - 3.0)) + w[1] * sp(torch.tensor(gamma - 1.0))) / 2
    assert adv.item() == pytest.approx(expected.item())
    # Adversarial weights are not differentiated through.
    neg = neg.clone().requires_grad_()
    KGELoss("self-adversarial", margin=gamma)(pos, neg).backward()
    assert torch.allclose(neg.grad, (w * torch.sigmoid(gamma + neg.detach()) / 2))

    # The positives' term scales with positive_weight; the negatives' not.
    heavy = KGELoss("self-adversarial", margin=gamma, positive_weight=1.75)
    expected = (1.75 * sp(torch.tensor(-(gamma - 1.0))) +
                w[0] * sp(torch.tensor(gamma - 3.0)) + w[1] * sp(torch.tensor(gamma - 1.0))) / 2
    assert heavy(pos, neg).item() == pytest.approx(expected.item())


def test_dhns_groups_reweight_positives_like_positive_weight():
    """A base group plus DHNS groups of loss weight summing to 0.75 whose
    negatives are inert is the base loss with positive_weight 1.75."""
    g = torch.Generator().manual_seed(0)
    pos, neg = torch.randn(6, generator=g), torch.randn(6, 8, generator=g)
    inert = torch.full((6, 3), -1e4)
    loss = KGELoss("self-adversarial")
    groups = loss(pos, neg) + sum(w * loss(pos, inert, 0.5) for w in (0.25, 0.5))
    heavy = KGELoss("self-adversarial", positive_weight=1.75)(pos, neg)
    assert groups.item() == pytest.approx(heavy.item(), rel=1e-6)


def test_unknown_loss():
    from dhns_geo.errors import DHNSError
    with pytest.raises(DHNSError, match="unknown loss"):
        KGELoss("hinge")


def test_positive_weight_is_checked():
    from dhns_geo.errors import DHNSError
    with pytest.raises(DHNSError, match="must be positive"):
        KGELoss("softplus", positive_weight=0.0)
    with pytest.raises(DHNSError, match="not to margin"):
        KGELoss("margin", positive_weight=2.0)


def test_n3_is_the_sum_of_cubed_moduli():
    # Two complex entries per factor, [re, re, im, im].
    h = torch.tensor([[3., 0., 4., 0.], [0., 0., 0., 0.]])    # |3+4i| = 5
    r = torch.tensor([[1., 1., 0., 0.], [0., 0., 0., 0.]])
    t = torch.tensor([[0., 2., 0., 0.], [0., 0., 0., 0.]])
    assert regularization("n3", [h, r, t], complex=True).item() == pytest.approx(
        (125 + 2 + 8) / 2)
    # Lacroix et al.'s code: sum of sqrt(re^2 + im^2) ** 3 over the batch / B.
    lacroix = sum(torch.sqrt(f[:, :2] ** 2 + f[:, 2:] ** 2).pow(3).sum() for f in (h, r, t)) / 2
    assert regularization("n3", [h, r, t], complex=True).item() == pytest.approx(lacroix.item())
    # Real factors: N3 is the cube of each entry; l3 ignores complex pairs.
    assert regularization("n3", [h], complex=False).item() == pytest.approx((27 + 64) / 2)
    assert regularization("l3", [h], complex=True).item() == pytest.approx((27 + 64) / 2)
    assert regularization("l2", [h], complex=True).item() == pytest.approx(25 / 2)
    # Smooth at 0: no NaN gradient from the zero rows.
    x = h.clone().requires_grad_()
    regularization("n3", [x], complex=True).backward()
    assert torch.isfinite(x.grad).all() and x.grad[1].abs().sum() == 0


def test_dura_is_its_formula():
    from dhns_geo.losses import regularization

    torch.manual_seed(0)
    h, r, t = torch.randn(3, 5, 6).unbind(0)
    real = sum(0.5 * (h[b] ** 2 + t[b] ** 2).sum() + 1.5 * (h[b] ** 2 * r[b] ** 2
               + t[b] ** 2 * r[b] ** 2).sum() for b in range(5)) / 5
    assert float(regularization("dura", [h, r, t])) == pytest.approx(float(real), rel=1e-5)

    def moduli(x):                              # [re, im] halves -> |z|
        return (x[:, :3] ** 2 + x[:, 3:] ** 2).sqrt()
    hm, rm, tm = moduli(h), moduli(r), moduli(t)
    complex_ = (0.5 * (hm ** 2 + tm ** 2) + 1.5 * (hm ** 2 * rm ** 2 + tm ** 2 * rm ** 2)
                ).sum(1).mean()
    assert float(regularization("dura", [h, r, t], complex=True)) == pytest.approx(
        float(complex_), rel=1e-5)
