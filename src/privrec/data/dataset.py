"""A dataset: interactions plus the private attributes of the same users."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from privrec.data.attributes import UserAttributes
from privrec.data.interactions import Interactions
from privrec.errors import DataError


@dataclass(frozen=True, eq=False)
class Dataset:
    """Interactions and user attributes sharing one user index.

    Attributes:
        name: dataset name (``"ml-1m"``, ``"synthetic"``, ...).
        interactions: every interaction, in source-file order.
        attributes: private attributes aligned to ``interactions.user_ids``.
        item_titles: optional human-readable item names aligned to ``interactions.item_ids``.
        notes: free-form provenance notes (e.g. integrity warnings).
        options: the loader options that rebuild it with
            :func:`~privrec.data.registry.load_dataset` (synthetic generator fields, CSV
            loader arguments; empty for MovieLens).
    """

    name: str
    interactions: Interactions
    attributes: UserAttributes
    item_titles: np.ndarray | None = None
    notes: tuple[str, ...] = field(default=())
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        a = np.asarray(self.attributes.user_ids).astype(str)
        b = np.asarray(self.interactions.user_ids).astype(str)
        if a.shape != b.shape or not np.array_equal(a, b):
            raise DataError(f"dataset '{self.name}': attributes are not aligned to the user index")

    @property
    def user_ids(self) -> np.ndarray:
        """Original user ids, in the order of the user index."""
        return self.interactions.user_ids

    @property
    def item_ids(self) -> np.ndarray:
        """Original item ids, in the order of the item index."""
        return self.interactions.item_ids
