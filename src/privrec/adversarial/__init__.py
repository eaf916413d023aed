"""Privacy-adversarial training: attribute heads behind gradient reversal."""

from privrec.adversarial.penalty import AdversarialPenalty, AdversarySpec, build_adversaries

__all__ = ["AdversarialPenalty", "AdversarySpec", "build_adversaries"]
