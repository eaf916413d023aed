"""Weight schedules shared by the user-vector penalties."""

from __future__ import annotations

import math
from typing import Literal, get_args

ScheduleName = Literal["constant", "ramp"]
"""Weight schedules of the penalties."""
SCHEDULES: tuple[str, ...] = get_args(ScheduleName)
"""Allowed schedule names."""


def schedule_factor(schedule: str, progress: float, gamma: float = 10.0) -> float:
    """Multiplier of a penalty weight at ``progress`` ∈ [0, 1] of training.

    ``constant``: 1. ``ramp``: ``2 / (1 + exp(−γ · progress)) − 1``, the schedule of Ganin &
    Lempitsky's gradient-reversal paper: 0 at the start, 0.46 at progress 0.1 and 0.99 at 0.5
    for γ = 10, so the recommender learns before the penalty reaches full strength.
    """
    if schedule == "ramp":
        return 2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0
    return 1.0
