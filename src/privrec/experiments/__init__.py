"""Experiments: single runs, sweeps, Pareto fronts and reports."""
