"""Sweeps as data: a base :class:`~privrec.runs.run_spec.RunSpec` plus a grid, read from TOML.

A :class:`SweepSpec` is a base run plus a grid. Grid keys (TOML ``[grid]`` table or CLI
options):

=========================  ======================================================================
``embedding_size``         ``train.embedding_size`` (alias ``size``)
``lambda``                 the adversarial weight λ shared by every attribute of ``purge``
``lambda.<attr>``          the adversarial weight of one attribute
``mmd`` / ``hsic``         dependence-penalty weight shared by every attribute of ``purge``
``mmd.<attr>``             ... of one attribute (likewise ``hsic.<attr>``)
``seed``                   the run's seed (training, heads, audit folds, erasure)
``erasure``                post-hoc erasure method (``leace``, ``inlp``, or ``"none"``)
``label_fraction``         share of users whose labels the defences may use (audit: the rest)
``attackers`` / ``folds``  the audit's attacker preset/list and folds
``train.<field>``          any :class:`~privrec.training.config.TrainConfig` field
``adversary.<field>``      any :class:`~privrec.defences.adversarial.AdversarySpec` field
``dependence.<field>``     any :class:`~privrec.defences.DependenceSpec` field
``data.<field>``           a dataset option (synthetic generator fields, csv loader options)
=========================  ======================================================================

A TOML file looks like::

    name = "paper-grid"
    purge = ["gender", "age"]          # attributes `lambda` applies to (and audited)

    [run]                              # the base run
    dataset = "ml-1m"
    attackers = "fast"
    folds = 5
    [run.train]
    epochs = 40
    batch_size = 4096
    [run.adversary]
    head = "linear"

    [grid]
    embedding_size = [10, 20, 50]
    lambda = [0, 0.01, 0.1, 1, 10]
    seed = [0, 1, 2]

    [[override]]                       # optional: change some grid points
    match = { embedding_size = 10, lambda = 0.1 }
    set = { attackers = "paper" }

Unknown keys anywhere raise :class:`~privrec.errors.ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from privrec.artifacts import jsonable
from privrec.config_types import check_keys, unknown_key
from privrec.errors import ConfigError
from privrec.runs.run_spec import DEFAULT_AUDIT_ATTRIBUTES, RunSpec, data_fields

SWEEP_KEYS: tuple[str, ...] = ("name", "purge", "run", "grid", "override")
GRID_ALIASES: dict[str, str] = {
    "embedding_size": "train.embedding_size",
    "size": "train.embedding_size",
    "seed": "seed",
    "erasure": "erasure",
    "label_fraction": "label_fraction",
    "attackers": "attackers",
    "folds": "folds",
}
_SHARED = {"lambda": "adversary.weights", "mmd": "dependence.mmd", "hsic": "dependence.hsic"}


@dataclass(frozen=True)
class SweepSpec:
    """A base :class:`RunSpec` and a grid of replacements (see the module docstring)."""

    base: RunSpec = field(default_factory=RunSpec)
    """The run every grid point starts from."""
    grid: Mapping[str, tuple] = field(default_factory=dict)
    """Grid key → values; the sweep is the Cartesian product, in key order."""
    purge: tuple[str, ...] = ()
    """Attributes the shared ``lambda``/``mmd``/``hsic`` keys apply to (default: the base's
    adversary weights, else the dataset's default audit attributes)."""
    overrides: tuple[tuple[Mapping, Mapping], ...] = ()
    """``(match, set)`` pairs: grid points whose values equal ``match`` get ``set`` applied."""
    name: str = "sweep"
    """Name of the sweep (recorded in ``sweep.json``)."""

    def __post_init__(self) -> None:
        from privrec.data.registry import DATASETS

        if self.base.dataset not in DATASETS:
            raise ConfigError(
                f"unknown dataset {self.base.dataset!r}; expected one of: {', '.join(DATASETS)}"
            )
        grid: dict[str, tuple] = {}
        for key, values in dict(self.grid).items():
            if isinstance(values, str) or not isinstance(values, Sequence):
                values = (values,)
            values = tuple(values)
            if not values:
                raise ConfigError(f"grid key '{key}' has no values")
            seen = [json.dumps(jsonable(v), sort_keys=True) for v in values]
            if len(set(seen)) != len(seen):
                raise ConfigError(f"grid key '{key}' repeats a value: {list(values)}")
            grid[str(key)] = values
        object.__setattr__(self, "grid", grid)
        purge = self.purge
        if isinstance(purge, str):
            purge = tuple(s.strip() for s in purge.split(",") if s.strip())
        purge = tuple(purge)
        if not purge:
            purge = tuple(self.base.adversary.weights) or DEFAULT_AUDIT_ATTRIBUTES.get(
                self.base.dataset, ()
            )
        object.__setattr__(self, "purge", purge)
        object.__setattr__(self, "overrides", tuple((dict(m), dict(s)) for m, s in self.overrides))
        for key in grid:
            self._paths(key)  # validate key names early
        for match, changes in self.overrides:
            for key in match:
                if key not in grid:
                    raise ConfigError(
                        f"override matches on '{key}', which is not a grid key "
                        f"(grid keys: {', '.join(grid) or 'none'})"
                    )
            for key in changes:
                self._paths(key)
        self.expand()  # every grid point must build

    def _paths(self, key: str) -> list[tuple[str, ...]]:
        """The dotted paths into :meth:`RunSpec.to_dict` that a grid key replaces."""
        if key in GRID_ALIASES:
            return [tuple(GRID_ALIASES[key].split("."))]
        if key in _SHARED:
            if not self.purge:
                raise ConfigError(
                    f"grid key '{key}' needs the attributes it applies to: set purge = [...]"
                )
            return [(*_SHARED[key].split("."), a) for a in self.purge]
        head, _, rest = key.partition(".")
        if head in _SHARED and rest:
            return [(*_SHARED[head].split("."), rest)]
        if head in ("train", "adversary", "dependence", "data") and rest:
            section = head
            allowed: list[str] | None
            if section == "train":
                from privrec.training.config import TrainConfig

                allowed = [f.name for f in dataclasses.fields(TrainConfig)]
            elif section == "adversary":
                from privrec.defences.adversarial.adversary import AdversarySpec

                allowed = [f.name for f in dataclasses.fields(AdversarySpec)]
            elif section == "dependence":
                from privrec.defences import DependenceSpec

                allowed = [f.name for f in dataclasses.fields(DependenceSpec)]
            else:
                allowed = data_fields(self.base.dataset)
            first = rest.split(".")[0]
            if allowed is not None and first not in allowed:
                raise unknown_key(first, f"grid.{section}", allowed)
            return [(section, *rest.split("."))]
        allowed = [*GRID_ALIASES, *_SHARED, "lambda.<attr>", "mmd.<attr>", "hsic.<attr>"]
        allowed += ["train.<field>", "adversary.<field>", "dependence.<field>", "data.<field>"]
        raise unknown_key(key, "grid", allowed)

    def _apply(self, d: dict, key: str, value: Any) -> None:
        for path in self._paths(key):
            node = d
            for part in path[:-1]:
                if node.get(part) is None:
                    node[part] = {}
                node = node[part]
            node[path[-1]] = value

    def expand(self) -> list[tuple[dict, RunSpec]]:
        """Every grid point as ``(grid values, RunSpec)``, in grid order."""
        base = self.base.to_dict()
        keys = list(self.grid)
        out = []
        seen: dict[str, dict] = {}
        for combo in itertools.product(*(self.grid[k] for k in keys)):
            values = dict(zip(keys, combo, strict=True))
            d = json.loads(json.dumps(base))
            for k, v in values.items():
                self._apply(d, k, v)
            for match, changes in self.overrides:
                if all(_same(values[k], v) for k, v in match.items()):
                    for k, v in changes.items():
                        self._apply(d, k, v)
            where = "run[" + ", ".join(f"{k}={v}" for k, v in values.items()) + "]"
            spec = RunSpec.from_dict(d, where=where if values else "run")
            if spec.run_id in seen:
                raise ConfigError(
                    f"grid points {seen[spec.run_id]} and {values} are the same run ({spec.run_id})"
                )
            seen[spec.run_id] = values
            out.append((values, spec))
        return out

    @property
    def runs(self) -> list[RunSpec]:
        return [s for _, s in self.expand()]

    def to_dict(self) -> dict:
        return jsonable(
            {
                "name": self.name,
                "purge": list(self.purge),
                "run": self.base.to_dict(),
                "grid": {k: list(v) for k, v in self.grid.items()},
                "override": [{"match": m, "set": s} for m, s in self.overrides],
            }
        )

    @classmethod
    def from_dict(cls, d: Mapping) -> SweepSpec:
        """Build from a plain dict (a parsed TOML file); unknown keys raise ConfigError."""
        check_keys(d, SWEEP_KEYS, "")
        base = RunSpec.from_dict(d.get("run") or {}, "run")
        grid = d.get("grid") or {}
        if not isinstance(grid, Mapping):
            raise ConfigError("'grid' must be a table of key = [values]")
        grid = _flatten_grid(grid)
        overrides = []
        for i, o in enumerate(d.get("override") or []):
            check_keys(o, ("match", "set"), f"override[{i}]")
            overrides.append((dict(o.get("match") or {}), _flatten_grid(o.get("set") or {})))
        name = d.get("name", "sweep")
        return cls(
            base=base,
            grid=grid,
            purge=tuple(d.get("purge") or ()),
            overrides=tuple(overrides),
            name=str(name),
        )

    def with_grid(self, **changes: Sequence) -> SweepSpec:
        """A copy with grid keys replaced (``None`` values are ignored)."""
        grid = dict(self.grid)
        for k, v in changes.items():
            if v is not None:
                grid[k] = tuple(v)
        return dataclasses.replace(self, grid=grid)


def _flatten_grid(grid: Mapping, prefix: str = "") -> dict:
    """TOML ``[grid.train] learning_rate = [...]`` → ``{"train.learning_rate": [...]}``."""
    out = {}
    for k, v in grid.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and not key.startswith(("dependence.mmd", "dependence.hsic")):
            out.update(_flatten_grid(v, key + "."))
        else:
            out[key] = v
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-15)
    return a == b


def load_sweep_toml(path: str | Path) -> SweepSpec:
    """Read a :class:`SweepSpec` from a TOML file (see the module docstring)."""
    import tomllib

    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from None
    try:
        return SweepSpec.from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
