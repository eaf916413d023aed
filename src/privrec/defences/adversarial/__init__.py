"""Adversarial attribute heads behind gradient reversal (the paper's defence), and the
bounded ``confusion`` objective; plugged into the trainer's user-vector penalty seam."""

from privrec.defences.adversarial.adversary import (
    ADVERSARY_OBJECTIVES,
    AdversarialPenalty,
    AdversarySpec,
    build_adversaries,
)
from privrec.defences.adversarial.gradient_reversal import grad_reverse
from privrec.defences.adversarial.heads import make_head, reset_head
from privrec.defences.adversarial.probe import probe_leakage

__all__ = [
    "ADVERSARY_OBJECTIVES",
    "AdversarialPenalty",
    "AdversarySpec",
    "build_adversaries",
    "grad_reverse",
    "make_head",
    "probe_leakage",
    "reset_head",
]
