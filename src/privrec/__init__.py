"""privrec: privacy-adversarial recommender systems.

Audit how much user vectors leak private attributes, train recommenders whose user vectors
hide chosen attributes (adversarial heads behind gradient reversal, dependence penalties),
erase attributes from trained vectors, and sweep the accuracy-vs-leakage trade-off.

The curated API (imported on first use, so ``import privrec`` stays light):

* :func:`load_dataset`, :func:`train`, :func:`audit`, :func:`erase`, :func:`purge`,
  :func:`load_run`;
* :class:`Run` (``.metrics``, ``.user_vectors``, ``.recommend()``, ``.save()``),
  :class:`RunSpec`, :class:`TrainConfig`, :class:`AdversarySpec`, :class:`DependenceSpec`,
  :class:`Dataset`, :class:`AuditResult`;
* the errors :class:`PrivrecError`, :class:`DataError`, :class:`ConfigError`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from privrec._version import __version__
from privrec.errors import ConfigError, DataError, PrivrecError

if TYPE_CHECKING:
    from privrec.api import audit, erase, load_dataset, load_run, purge, train
    from privrec.audit.result import AuditResult
    from privrec.data.dataset import Dataset
    from privrec.defences.adversarial.adversary import AdversarySpec
    from privrec.defences.dependence import DependenceSpec
    from privrec.runs.run_result import Run
    from privrec.runs.run_spec import RunSpec
    from privrec.training.config import TrainConfig

_LAZY: dict[str, str] = {
    "load_dataset": "privrec.api",
    "train": "privrec.api",
    "audit": "privrec.api",
    "erase": "privrec.api",
    "purge": "privrec.api",
    "load_run": "privrec.api",
    "Run": "privrec.runs.run_result",
    "RunSpec": "privrec.runs.run_spec",
    "TrainConfig": "privrec.training.config",
    "AdversarySpec": "privrec.defences.adversarial.adversary",
    "DependenceSpec": "privrec.defences.dependence",
    "Dataset": "privrec.data.dataset",
    "AuditResult": "privrec.audit.result",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'privrec' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AdversarySpec",
    "AuditResult",
    "ConfigError",
    "DataError",
    "Dataset",
    "DependenceSpec",
    "PrivrecError",
    "Run",
    "RunSpec",
    "TrainConfig",
    "__version__",
    "audit",
    "erase",
    "purge",
    "load_dataset",
    "load_run",
    "train",
]
