"""Adversarial attribute heads plugged into the trainer's user-vector penalty seam.

For attribute ``a`` with weight ``λ_a`` the heads ``h_a`` learn to read ``a`` off the batch's
user vectors ``p_u`` while the vectors learn to make them fail (docs/method.md), in one of two
ways (``AdversarySpec.objective``):

* ``confusion`` (the default): the heads learn on detached vectors, and the vectors minimise
  ``λ · KL(prior ‖ h_a(p_u))`` through the current heads — bounded below by "the heads see only
  the prior", so a large λ cannot be met by encoding the attribute inverted;
* ``reverse`` (the paper's): the penalty adds ``L_a(h_a(GRL_λ(p_u)))``, so that one optimizer
  step moves the heads to read ``a`` better and the vectors to *maximise* the heads' loss — an
  unbounded objective (``privrec reproduce`` asks for it).

``λ = 0`` leaves the recommender exactly as without heads; ``λ < 0`` is the multi-task setting
(the vectors learn to predict ``a`` too).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from privrec.config_types import check_fields
from privrec.data.attributes import Attribute, UserAttributes
from privrec.defences.adversarial.gradient_reversal import grad_reverse
from privrec.defences.adversarial.heads import make_head, reset_head
from privrec.errors import ConfigError
from privrec.training.penalty import UserPenalty
from privrec.training.schedule import ScheduleName, schedule_factor

AdversaryObjective = Literal["reverse", "confusion"]
"""What the user vectors are trained against (see :attr:`AdversarySpec.objective`)."""
HeadKind = Literal["linear", "mlp"]
"""Adversarial head architectures."""
ADVERSARY_OBJECTIVES: tuple[str, ...] = get_args(AdversaryObjective)
"""Allowed values of :attr:`AdversarySpec.objective`."""


@dataclass(frozen=True)
class AdversarySpec:
    """How the adversarial heads are built and scheduled (shared by all attributes)."""

    weights: Mapping[str, float] = field(default_factory=dict)
    """Attribute name → adversarial weight λ (0 = plain recommender, < 0 = multi-task)."""
    head: HeadKind = "linear"
    """``linear`` (the paper's softmax readout) or ``mlp``."""
    hidden: tuple[int, ...] = (32,)
    """Hidden sizes of ``mlp`` heads."""
    n_heads: int = 1
    """Parallel heads per attribute (an ensemble the vectors must fool at once)."""
    input_dropout: float = 0.0
    """Dropout rate on the heads' input while they train and while the vectors are pushed
    against them (as in Adv-MultVAE's adversaries): each head sees a different random part of
    each vector, so hiding the attribute from one coordinate is not enough. The masks come from
    the penalty's own seeded generator; the probes and the audits see whole vectors. 0
    (default) = none. On planted-signal data it did not help (docs/method.md, "Input
    dropout and several heads")."""
    schedule: ScheduleName = "constant"
    """``constant`` λ, or ``ramp``: λ · (2 / (1 + exp(−γ p)) − 1) with p the training progress."""
    gamma: float = 10.0
    """Steepness of the ramp."""
    objective: AdversaryObjective = "confusion"
    """What the user vectors are trained against. ``confusion`` (default): the heads learn on
    detached vectors, and the vectors minimise λ · KL(prior ‖ head prediction) through the
    current heads (for a continuous attribute, the squared prediction, i.e. "predict the
    mean") — bounded below by "the heads see only the prior". ``reverse`` (the paper's; what
    ``privrec reproduce`` uses): the heads' own cross-entropy through gradient reversal, i.e.
    the vectors *maximise* the heads' loss — an unbounded objective that, at large λ, can be met
    by encoding the attribute inverted (measured on ML-100K with λ = 0.1 for gender and 0.5 for
    age: age balanced accuracy 20.6 % → 99.5 %)."""
    steps: int = 1
    """Head updates per recommender update. 1: the heads are trained by the recommender's own
    optimizer, in its step. More: the heads have their own Adam (``head_lr``) and take
    ``steps`` updates on the batch's detached vectors before each recommender step; the
    recommender's optimizer then leaves them alone (one set of moments per parameter)."""
    head_lr: float = 0.01
    """Learning rate of the heads' own optimizer (``steps > 1``)."""
    reinit_every: int = 0
    """Re-initialise the heads every this many steps (0 = never)."""
    refit_epochs: int = 0
    """Every this many epochs (0 = never), at the epoch's end: re-initialise the heads and fit
    them afresh, full batch, on every label user's current (detached) vector
    (``refit_steps`` Adam updates at ``head_lr``), so that the vectors are next pushed against
    an attacker trained to convergence on them, not one that learned along with them. With
    ``head = "mlp"`` it is the in-training counterpart of the audit's MLP attacker."""
    refit_steps: int = 300
    """Full-batch updates of each refit (``refit_epochs``)."""
    probe: bool = False
    """After each epoch, fit a fresh probe (``probe_attacker``) on half the label users and
    score it on the other half; records ``probe_<attr>_auc``/``_bacc`` and a normalised
    ``probe_<attr>_leak`` in [0, 1] (usable for model selection, see
    ``TrainConfig.selection``)."""
    probe_attacker: str = "logistic"
    """Which attacker of the audit's suite the probe is (:mod:`privrec.audit.attackers`, e.g.
    ``mlp`` or ``rbf_svm``: a non-linear probe selects against what the strongest post-hoc
    attackers read, at the cost of its fit after every epoch)."""
    seed: int = 0
    """Seed of the heads' initialisation and of the probe's user split."""

    def __post_init__(self) -> None:
        check_fields(self)
        if self.n_heads < 1 or self.steps < 1 or self.reinit_every < 0:
            raise ConfigError("n_heads and steps must be >= 1 and reinit_every >= 0")
        if not 0.0 <= self.input_dropout < 1.0:
            raise ConfigError(
                f"'adversary.input_dropout' must be in [0, 1), got {self.input_dropout}"
            )
        if self.refit_epochs < 0 or self.refit_steps < 1:
            raise ConfigError(
                f"'adversary.refit_epochs' must be >= 0 and 'adversary.refit_steps' >= 1, got "
                f"{self.refit_epochs} and {self.refit_steps}"
            )
        from privrec.audit.attackers import ATTACKERS

        if self.probe_attacker not in ATTACKERS:
            raise ConfigError(
                f"'adversary.probe_attacker' must be one of {', '.join(ATTACKERS)}, got "
                f"{self.probe_attacker!r}"
            )
        object.__setattr__(self, "weights", dict(self.weights))

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class AdversarialPenalty(UserPenalty):
    """Readout heads for one attribute behind a gradient-reversal layer."""

    target: torch.Tensor
    known: torch.Tensor
    prior: torch.Tensor
    heads: nn.ModuleList

    def __init__(self, attribute: Attribute, weight: float, dim: int, spec: AdversarySpec) -> None:
        super().__init__()
        self.name = attribute.name
        self.kind = attribute.kind
        self.weight = float(weight)
        self.spec = spec
        self._gen = torch.Generator().manual_seed(spec.seed + _stable_hash(attribute.name))
        # the dropout masks' own stream, so that a rate of 0 leaves every other draw unchanged
        self._drop_gen = torch.Generator().manual_seed(spec.seed + _stable_hash(attribute.name) + 1)
        known = attribute.known
        if known.sum() == 0:
            raise ConfigError(
                f"attribute '{attribute.name}' has no known values to adversarially purge"
            )
        if attribute.kind == "categorical":
            out = attribute.n_classes
            target = torch.from_numpy(attribute.values.astype(np.int64))
        else:
            out = 1
            vals = attribute.values
            mu, sd = np.nanmean(vals), np.nanstd(vals) or 1.0
            target = torch.from_numpy(((vals - mu) / sd).astype(np.float32))
        self.register_buffer("target", target, persistent=False)
        self.register_buffer("known", torch.from_numpy(known), persistent=False)
        self._all_known = bool(known.all())
        if attribute.kind == "categorical":  # class shares among the users with a label
            counts = np.bincount(attribute.values[known], minlength=out).astype(np.float32)
            prior = torch.from_numpy(counts / counts.sum())
        else:
            prior = torch.zeros(1)
        self.register_buffer("prior", prior, persistent=False)
        self._prior_neg_entropy = float((prior * prior.clamp_min(1e-12).log()).sum())
        hidden = spec.hidden if spec.head == "mlp" else ()
        self.heads = nn.ModuleList(
            make_head(dim, out, hidden, self._gen) for _ in range(spec.n_heads)
        )
        self._head_opt = (
            torch.optim.Adam(self.heads.parameters(), lr=spec.head_lr, foreach=True)
            if spec.steps > 1
            else None
        )
        self._steps = 0
        self._reset: list[torch.Tensor] = []

    def take_reset_parameters(self) -> list[torch.Tensor]:
        out, self._reset = self._reset, []
        return out

    def trainer_parameters(self) -> list[torch.Tensor]:
        """The heads, unless they have their own optimizer (``steps > 1``)."""
        return [] if self._head_opt is not None else list(self.parameters())

    def epoch_end(self, model, epoch: int) -> dict[str, float]:
        out: dict[str, float] = {}
        every = self.spec.refit_epochs
        if every and epoch % every == 0 and self.weight != 0:
            out.update(self._refit(model))
        if not self.spec.probe or self.kind != "categorical":
            return out
        from privrec.defences.adversarial.probe import probe_leakage

        with torch.no_grad():
            vecs = model.all_user_vectors().cpu().numpy()
        known = self.known.cpu().numpy()
        out.update(
            (f"probe_{self.name}_{k}", v)
            for k, v in probe_leakage(
                vecs[known],
                self.target.cpu().numpy()[known],
                self.spec.seed,
                self.spec.probe_attacker,
            ).items()
        )
        return out

    def _refit(self, model) -> dict[str, float]:
        """Re-initialise the heads and fit them, full batch, on every label user's detached
        vector (see :attr:`AdversarySpec.refit_epochs`); the trainer's optimizer (or the
        heads' own) forgets the old moments. Returns the heads' final training accuracy."""
        with torch.no_grad():
            vecs = model.all_user_vectors().detach()
        users = torch.arange(vecs.shape[0], device=vecs.device)
        for head in self.heads:
            reset_head(head, self._gen)
        opt = torch.optim.Adam(self.heads.parameters(), lr=self.spec.head_lr, foreach=True)
        acc = float("nan")
        with torch.enable_grad():
            for _ in range(self.spec.refit_steps):
                loss, acc = self._loss(vecs, users)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        self._reset = list(self.heads.parameters())
        if self._head_opt is not None:
            for param in self._reset:
                self._head_opt.state.pop(param, None)
        stats = {f"adv_{self.name}_refit_loss": float(loss.detach())}
        if self.kind == "categorical":
            stats[f"adv_{self.name}_refit_acc"] = acc
        return stats

    def current_weight(self, progress: float) -> float:
        return self.weight * schedule_factor(self.spec.schedule, progress, self.spec.gamma)

    def _labelled(self, vecs: torch.Tensor, users: torch.Tensor):
        """The rows of ``vecs`` whose user has a known label, and the labels (None: none)."""
        if self._all_known:
            return vecs, self.target[users]
        mask = self.known[users]
        if not bool(mask.any()):
            return None, None
        return vecs[mask], self.target[users][mask]

    def _loss(
        self, vecs: torch.Tensor, users: torch.Tensor, labelled=None
    ) -> tuple[torch.Tensor, float]:
        """The heads' mean loss on the labelled rows (``labelled``: :meth:`_labelled`'s
        result when already at hand) and their mean accuracy."""
        v, y = labelled if labelled is not None else self._labelled(vecs, users)
        if v is None:
            return vecs.sum() * 0.0, float("nan")
        if len(self.heads) == 1:  # the default: no stack / mean of one value (same numbers)
            out = self.heads[0](self._dropped(v))
            if self.kind == "categorical":
                return _cross_entropy(out, y), float((out.argmax(1) == y).float().mean())
            return F.mse_loss(out.squeeze(-1), y), float("nan")
        losses, accs = [], []
        for head in self.heads:
            out = head(self._dropped(v))
            if self.kind == "categorical":
                losses.append(_cross_entropy(out, y))
                accs.append(float((out.argmax(1) == y).float().mean()))
            else:
                losses.append(F.mse_loss(out.squeeze(-1), y))
                accs.append(float("nan"))
        return torch.stack(losses).mean(), float(np.mean(accs))

    def _dropped(self, v: torch.Tensor) -> torch.Tensor:
        """``v`` with :attr:`AdversarySpec.input_dropout` applied (inverted dropout, a fresh
        mask per call from the penalty's own generator); ``v`` itself when the rate is 0."""
        rate = self.spec.input_dropout
        if rate == 0.0:
            return v
        keep = torch.rand(v.shape, generator=self._drop_gen) >= rate
        return v * (keep.to(device=v.device, dtype=v.dtype) / (1.0 - rate))

    def before_step(self, user_vecs, users, progress) -> None:
        self._steps += 1
        if self.spec.reinit_every and self._steps % self.spec.reinit_every == 0:
            for head in self.heads:
                reset_head(head, self._gen)
            self._reset = list(self.heads.parameters())
            if self._head_opt is not None:  # fresh heads start with fresh Adam moments
                for param in self._reset:
                    self._head_opt.state.pop(param, None)
        if self._head_opt is None:
            return
        for _ in range(self.spec.steps):
            loss, _ = self._loss(user_vecs, users)
            self._head_opt.zero_grad(set_to_none=True)
            loss.backward()
            self._head_opt.step()

    def _confusion(self, v: torch.Tensor | None, vecs: torch.Tensor) -> torch.Tensor:
        """How far the current heads' predictions on the labelled rows ``v`` (of ``vecs``) are
        from knowing nothing: KL(prior ‖ prediction) (categorical) or the mean squared
        prediction of the standardised value (continuous); the heads' weights are held fixed
        (no gradient to them)."""
        if v is None:
            return vecs.sum() * 0.0
        terms = []
        for head in self.heads:
            out = _frozen_forward(head, self._dropped(v))
            if self.kind == "categorical":
                # KL(π ‖ softmax(out)) = Σ π log π − π·out + logsumexp(out), per user
                kl = out.logsumexp(1) - out @ self.prior + self._prior_neg_entropy
                terms.append(kl.mean())
            else:
                terms.append(out.squeeze(-1).pow(2).mean())
        return terms[0] if len(terms) == 1 else torch.stack(terms).mean()

    def forward(self, user_vecs, users, progress):
        lam = self.current_weight(progress)
        if self.spec.objective == "confusion":
            v, y = self._labelled(user_vecs, users)  # the labelled rows, looked up once
            detached = (None, None) if v is None else (v.detach(), y)
            loss, acc = self._loss(user_vecs.detach(), users, detached)  # the heads learn
            confusion = self._confusion(v, user_vecs)  # the vectors learn to hide
            total = loss + lam * confusion
        else:
            loss, acc = self._loss(grad_reverse(user_vecs, lam), users)
            total = loss
        stats = {f"adv_{self.name}_loss": float(loss.detach()), f"adv_{self.name}_lambda": lam}
        if self.spec.objective == "confusion":
            stats[f"adv_{self.name}_confusion"] = float(confusion.detach())
        if self.kind == "categorical":
            stats[f"adv_{self.name}_acc"] = acc
        return total, stats


def build_adversaries(
    attributes: UserAttributes, spec: AdversarySpec, dim: int
) -> list[AdversarialPenalty]:
    """One :class:`AdversarialPenalty` per attribute named in ``spec.weights``."""
    missing = [n for n in spec.weights if n not in attributes]
    if missing:
        raise ConfigError(
            f"unknown attribute(s) {', '.join(missing)} in the adversary weights; "
            f"available: {', '.join(attributes.names) or 'none'}"
        )
    return [AdversarialPenalty(attributes[n], w, dim, spec) for n, w in spec.weights.items()]


def _frozen_forward(head: nn.Module, v: torch.Tensor) -> torch.Tensor:
    """``head(v)`` with the head's weights held fixed (gradient to ``v`` only); a linear head
    (the default) as one ``F.linear`` on detached weights, any other through
    ``torch.func.functional_call``."""
    if isinstance(head, nn.Sequential) and len(head) == 1 and isinstance(head[0], nn.Linear):
        return F.linear(v, head[0].weight.detach(), head[0].bias.detach())
    frozen = {k: p.detach() for k, p in head.named_parameters()}
    return torch.func.functional_call(head, frozen, (v,))


def _cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of integer targets: ``F.cross_entropy`` (same value up to rounding)
    written as ``logsumexp − the target's logit``, which on the CPU runs in about half the
    time for the few classes of an attribute."""
    picked = logits.gather(1, target[:, None]).squeeze(1)
    return (logits.logsumexp(1) - picked).mean()


def _stable_hash(s: str) -> int:
    return sum((i + 1) * ord(c) for i, c in enumerate(s)) % 100_003
