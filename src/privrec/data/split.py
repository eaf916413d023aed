"""The paper's leave-last-out split, made exact (docs/protocol.md, Split)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from privrec.data.interactions import Interactions


@dataclass(frozen=True, eq=False)
class Split:
    """Train / validation / test interactions sharing the parent's user and item index.

    ``validation`` and ``test`` hold at most one interaction per user.
    """

    train: Interactions
    validation: Interactions
    test: Interactions
    min_interactions: int = 3

    def summary(self) -> dict[str, int]:
        counts = np.bincount(
            np.concatenate([self.train.users, self.validation.users, self.test.users]),
            minlength=self.train.n_users,
        )
        return {
            "users": self.train.n_users,
            "items": self.train.n_items,
            "train_interactions": len(self.train),
            "validation_interactions": len(self.validation),
            "test_interactions": len(self.test),
            "users_evaluated": len(self.test),
            "users_train_only": int(((counts > 0) & (counts < self.min_interactions)).sum()),
            "users_without_interactions": int((counts == 0).sum()),
        }


def leave_last_out(interactions: Interactions, min_interactions: int = 3) -> Split:
    """Per user: test = last interaction by timestamp (ties: later file line is later),
    validation = second-to-last, the rest training.

    Users with fewer than ``min_interactions`` interactions stay in training only (counted in
    :meth:`Split.summary`).
    """
    inter = interactions
    n = len(inter)
    srt = np.lexsort((inter.order, inter.timestamps, inter.users))
    u_sorted = inter.users[srt]
    counts = np.bincount(inter.users, minlength=inter.n_users)
    # position of each sorted row counted from its user's end: 0 = last
    end = np.cumsum(counts)[u_sorted]  # one past the user's last row
    from_end = end - 1 - np.arange(n)
    eligible = counts[u_sorted] >= min_interactions
    role = np.zeros(n, dtype=np.int8)  # 0 train, 1 validation, 2 test
    role[eligible & (from_end == 0)] = 2
    role[eligible & (from_end == 1)] = 1
    roles = np.empty(n, dtype=np.int8)
    roles[srt] = role
    return Split(
        inter.subset(roles == 0),
        inter.subset(roles == 1),
        inter.subset(roles == 2),
        min_interactions,
    )
