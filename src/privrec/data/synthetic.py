"""Synthetic interactions with a planted private-attribute signal.

Generative story (all draws from one seeded ``numpy.random.Generator``):

1. Each user ``u`` has a hidden attribute ``a_u`` drawn from ``class_probs`` (default: a 70/30
   split, like ML-1M's gender) and a personal taste ``z_u ~ N(0, I_d)``.
2. Each item ``i`` has a latent vector ``q_i ~ N(0, I_d)`` and a popularity ``b_i ~ N(0, 1)``.
3. ``mode="direction"`` (linearly planted): each class ``c`` has a taste direction ``m_c`` and the
   user's taste is ``t_u = sqrt(1 - s) z_u + sqrt(s) * 2 m_{a_u}`` with ``s = strength``.
   ``mode="radius"`` (non-linearly planted): the class decides the *length* of the taste vector,
   not its direction: ``t_u = z_u / |z_u| * r_{a_u}`` blended with the neutral radius by ``s``;
   a linear reader of directions sees nothing, a non-linear one does.
4. Each user interacts with ``n_u ~ 1 + Poisson(density * n_items)`` distinct items, drawn
   without replacement with probability ∝ ``exp(t_u · q_i / sqrt(d) * sharpness + b_i)``
   (Gumbel-top-k), at random increasing timestamps.

``strength = 0`` gives no signal (attribute independent of the interactions).
A second attribute ``noise`` (3 balanced classes independent of everything) is a negative control.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Literal

import numpy as np

from privrec.config_types import check_fields
from privrec.data.attributes import Attribute, UserAttributes
from privrec.data.dataset import Dataset
from privrec.data.interactions import Interactions
from privrec.errors import ConfigError


@dataclass(frozen=True)
class SyntheticConfig:
    """Parameters of the synthetic generator."""

    n_users: int = 1000
    """Number of users."""
    n_items: int = 400
    """Number of items."""
    density: float = 0.05
    """Mean fraction of the catalogue each user interacts with."""
    strength: float = 0.5
    """Share of the taste driven by the hidden attribute, in [0, 1]."""
    n_factors: int = 8
    """Dimension of the latent tastes."""
    class_probs: tuple[float, ...] = (0.7, 0.3)
    """Distribution of the planted attribute ``attr`` over its classes."""
    mode: Literal["direction", "radius"] = "direction"
    """``direction`` (linear signal) or ``radius`` (non-linear signal)."""
    sharpness: float = 2.5
    """How strongly taste decides the items chosen."""
    seed: int = 0
    """Seed of the generator."""

    def __post_init__(self) -> None:
        check_fields(self)
        if self.n_users < 2 or self.n_items < 4:
            raise ConfigError("synthetic data needs at least 2 users and 4 items")
        if not 0 < self.density < 1:
            raise ConfigError(f"density must be in (0, 1), got {self.density}")
        if not 0 <= self.strength <= 1:
            raise ConfigError(f"strength must be in [0, 1], got {self.strength}")
        p = np.asarray(self.class_probs, dtype=float)
        if len(p) < 2 or (p <= 0).any() or abs(p.sum() - 1) > 1e-6:
            raise ConfigError(f"class_probs must be ≥ 2 positive shares summing to 1, got {p}")


def make_synthetic(config: SyntheticConfig | None = None, **overrides) -> Dataset:
    """Generate a :class:`Dataset` following the module's generative story."""
    cfg = config or SyntheticConfig()
    if overrides:
        cfg = SyntheticConfig(**{**cfg.__dict__, **overrides})
    rng = np.random.default_rng(cfg.seed)
    d, n_u, n_i = cfg.n_factors, cfg.n_users, cfg.n_items
    probs = np.asarray(cfg.class_probs, dtype=float)
    attr = rng.choice(len(probs), size=n_u, p=probs / probs.sum())
    z = rng.standard_normal((n_u, d))
    q = rng.standard_normal((n_i, d))
    pop = rng.standard_normal(n_i)
    s = cfg.strength
    if cfg.mode == "direction":
        means = rng.standard_normal((len(probs), d))
        means /= np.linalg.norm(means, axis=1, keepdims=True)
        taste = np.sqrt(1 - s) * z + np.sqrt(s) * 2.0 * means[attr]
    else:
        radii = np.linspace(0.3, 2.5, len(probs))
        r = (1 - s) * np.sqrt(d) * 0.5 + s * radii[attr] * np.sqrt(d) * 0.5
        taste = z / np.linalg.norm(z, axis=1, keepdims=True) * r[:, None]
    noise_attr = rng.integers(0, 3, size=n_u)
    n_per_user = np.minimum(1 + rng.poisson(cfg.density * n_i, size=n_u), n_i - 1)

    users_out, items_out = [], []
    chunk = max(1, 2_000_000 // n_i)
    for lo in range(0, n_u, chunk):
        hi = min(n_u, lo + chunk)
        logits = taste[lo:hi] @ q.T / np.sqrt(d) * cfg.sharpness + pop
        g = logits + rng.gumbel(size=logits.shape)
        order = np.argsort(-g, axis=1)
        counts = n_per_user[lo:hi]
        keep = np.arange(n_i)[None, :] < counts[:, None]
        rows = np.broadcast_to(np.arange(lo, hi)[:, None], order.shape)
        users_out.append(rows[keep])
        items_out.append(order[keep])
    users = np.concatenate(users_out)
    items = np.concatenate(items_out)
    ds = assemble_synthetic(
        "synthetic", users, items, n_u, n_i, attr, len(probs), noise_attr, rng, f"synthetic {cfg}"
    )
    options = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()}
    return replace(ds, options=options)


def assemble_synthetic(
    name: str,
    users: np.ndarray,
    items: np.ndarray,
    n_users: int,
    n_items: int,
    attr: np.ndarray,
    n_classes: int,
    noise_attr: np.ndarray,
    rng: np.random.Generator,
    note: str,
) -> Dataset:
    """The :class:`Dataset` of generated (user, item) pairs, shared by the synthetic generators:
    each user's interactions in random order with strictly increasing timestamps, ids
    ``1..n``, the planted attribute ``attr`` (classes ``c0…``) and the independent ``noise``."""
    perm = rng.permutation(len(users))
    order = perm[np.argsort(users[perm], kind="stable")]
    users, items = users[order], items[order]
    ts = np.arange(len(users), dtype=np.int64) * 60 + 1_000_000_000
    inter = Interactions(
        users,
        items,
        ts,
        np.arange(len(users)),
        np.arange(1, n_users + 1),
        np.arange(1, n_items + 1),
    )
    classes = tuple(f"c{k}" for k in range(n_classes))
    attrs = UserAttributes(
        inter.user_ids,
        {
            "attr": Attribute("attr", "categorical", attr, classes),
            "noise": Attribute("noise", "categorical", noise_attr, ("n0", "n1", "n2")),
        },
    )
    return Dataset(name, inter, attrs, notes=(note,))
