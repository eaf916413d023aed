"""Evaluation: ranking accuracy (this package) and leakage (``privrec.audit``)."""

from privrec.evaluation.ranking import evaluate_ranking, hit_rate, ndcg, target_ranks

__all__ = ["evaluate_ranking", "hit_rate", "ndcg", "target_ranks"]
