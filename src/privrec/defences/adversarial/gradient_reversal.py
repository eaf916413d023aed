"""Gradient reversal: identity forward, gradient × −λ backward (Ganin & Lempitsky, 2015)."""

from __future__ import annotations

import torch


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: float) -> torch.Tensor:
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad * (-ctx.weight), None


def grad_reverse(x: torch.Tensor, weight: float) -> torch.Tensor:
    """Pass ``x`` through unchanged; scale its incoming gradient by ``-weight``.

    With ``weight = λ`` one optimizer step on ``L_R + L_a(h(grad_reverse(p, λ)))`` updates the
    head ``h`` to *minimise* ``L_a`` and the user vectors ``p`` to *maximise* it with weight λ.
    """
    return _GradReverse.apply(x, float(weight))
