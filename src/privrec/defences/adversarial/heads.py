"""Attribute readout heads: linear (the paper's softmax readout) or MLP."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def make_head(
    dim: int, out: int, hidden: Sequence[int] = (), generator: torch.Generator | None = None
) -> nn.Module:
    """A linear map (``hidden=()``) or an MLP with ReLU hidden layers, seeded by ``generator``."""
    layers: list[nn.Module] = []
    sizes = [dim, *hidden, out]
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    net = nn.Sequential(*layers[:-1])
    reset_head(net, generator)
    return net


@torch.no_grad()
def reset_head(net: nn.Module, generator: torch.Generator | None = None) -> None:
    """Re-initialise a head's weights (Kaiming-uniform-like bounds) from ``generator``.

    The values are drawn on the CPU (where the seeded generator lives) and copied to the
    head's device, so a head on a GPU gets the same weights as on the CPU."""
    for m in net.modules():
        if isinstance(m, nn.Linear):
            bound = 1.0 / m.in_features**0.5
            for p in (m.weight, m.bias):
                values = torch.empty(p.shape).uniform_(-bound, bound, generator=generator)
                p.copy_(values)
