"""PatchGAN losses and taming's adaptive generator weight (pure functions)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor, kind: str = "hinge") -> torch.Tensor:
    """0.5 * (mean f(-D(x)) + mean f(D(G(x)))), fp32 scalar: f(v) = relu(1 + v) for "hinge", softplus(v) for
    "vanilla"."""
    if kind not in ("hinge", "vanilla"):
        raise ValueError(f"unknown discriminator loss {kind!r}; choose hinge or vanilla")
    f = (lambda v: F.relu(1.0 + v)) if kind == "hinge" else F.softplus
    return 0.5 * (f(-logits_real.float()).mean() + f(logits_fake.float()).mean())


def generator_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """-mean D(G(x)) (taming uses it for both hinge and vanilla), fp32 scalar."""
    return -logits_fake.float().mean()


def adaptive_weight(nll_loss: torch.Tensor, g_loss: torch.Tensor, last_layer: torch.Tensor,
                    disc_weight: float = 0.8, max_weight: float = 1e4) -> torch.Tensor:
    """taming's balance of the adversarial term against reconstruction at the decoder's last layer: disc_weight *
    ||grad_last(nll)|| / (||grad_last(g)|| + 1e-4), clamped to [0, max], detached; 0 without a graph (no_grad)."""
    if not (nll_loss.requires_grad and g_loss.requires_grad):
        return torch.zeros((), device=nll_loss.device)
    nll_grad = torch.autograd.grad(nll_loss, last_layer, retain_graph=True)[0]
    g_grad = torch.autograd.grad(g_loss, last_layer, retain_graph=True)[0]
    w = nll_grad.float().norm() / (g_grad.float().norm() + 1e-4)
    return (w.clamp(0.0, max_weight) * disc_weight).detach()
