"""Sweeps as data: a base :class:`~privrec.runs.run_spec.RunSpec` plus a grid, read from TOML.

A :class:`SweepSpec` is a base run plus a grid. Grid keys (TOML ``[grid]`` table or CLI
options):

=========================  ======================================================================
``embedding_size``         ``train.embedding_size`` (alias ``size``)
``lambda``                 the adversarial weight λ shared by every attribute of ``purge``
``lambda.<attr>``          the adversarial weight of one attribute
``mmd``/``hsic``/``swd``   dependence-penalty weight shared by every attribute of ``purge``
``mmd.<attr>``             ... of one attribute (likewise ``hsic.<attr>``, ``swd.<attr>``)
``seed``                   the run's seed (training, heads, audit folds, erasure)
``erasure``                post-hoc erasure method (``leace``, ``inlp``, ``purge`` or ``"none"``)
``erasure_options.<opt>``  an option of the erasure method (e.g. the purge's ``weight``)
``erasure_refit_items``    epochs of the item re-fit after the erasure (0: none)
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

Several methods in one sweep (a frontier): ``[[series]]`` tables, each with a ``name``, a
``set`` table (grid keys → one value, applied to the base run) and its own ``grid`` (crossed
with the shared ``[grid]``); the sweep is their union, and every grid point records its
``series``::

    [grid]
    seed = [0]

    [[series]]
    name = "confusion"
    set = { "adversary.objective" = "confusion" }
    grid = { lambda = [0, 0.1, 1] }

    [[series]]
    name = "purge"
    set = { erasure = "purge" }
    grid = { "erasure_options.weight" = [1, 3, 10] }

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
from privrec.defence_names import PENALTY_FAMILIES
from privrec.errors import ConfigError
from privrec.runs.run_spec import DEFAULT_AUDIT_ATTRIBUTES, RunSpec, data_fields

SWEEP_KEYS: tuple[str, ...] = ("name", "purge", "run", "grid", "series", "override")
SERIES_KEYS: tuple[str, ...] = ("name", "set", "grid")
GRID_ALIASES: dict[str, str] = {
    "embedding_size": "train.embedding_size",
    "size": "train.embedding_size",
    "seed": "seed",
    "erasure": "erasure",
    "erasure_refit_items": "erasure_refit_items",
    "label_fraction": "label_fraction",
    "attackers": "attackers",
    "folds": "folds",
}
_SHARED = {
    "lambda": "adversary.weights",
    **{family: f"dependence.{family}" for family in PENALTY_FAMILIES},
}


@dataclass(frozen=True)
class SweepSpec:
    """A base :class:`RunSpec` and a grid of replacements (see the module docstring)."""

    base: RunSpec = field(default_factory=RunSpec)
    """The run every grid point starts from."""
    grid: Mapping[str, tuple] = field(default_factory=dict)
    """Grid key → values; the sweep is the Cartesian product, in key order."""
    purge: tuple[str, ...] = ()
    """Attributes the shared ``lambda``/``mmd``/``hsic``/``swd`` keys apply to (default: the base's
    adversary weights, else the dataset's default audit attributes)."""
    overrides: tuple[tuple[Mapping, Mapping], ...] = ()
    """``(match, set)`` pairs: grid points whose values equal ``match`` get ``set`` applied."""
    series: tuple[tuple[str, Mapping, Mapping], ...] = ()
    """``(name, set, grid)`` triples: several methods in one sweep (a frontier). Each series
    applies ``set`` (grid keys → one value) to the base run and crosses its own ``grid`` with
    the shared :attr:`grid`; the sweep is the union of the series, in order. A run that two
    series share (e.g. λ = 0 of two objectives) is run once and belongs to the first. Every
    grid point's values name its series (``series``)."""
    name: str = "sweep"
    """Name of the sweep (recorded in ``sweep.json``)."""

    def __post_init__(self) -> None:
        from privrec.data.registry import DATASETS

        if self.base.dataset not in DATASETS:
            raise ConfigError(
                f"unknown dataset {self.base.dataset!r}; expected one of: {', '.join(DATASETS)}"
            )
        grid = _checked_grid(self.grid, "grid")
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
        series: list[tuple[str, dict, dict[str, tuple]]] = []
        for i, (label, changes, sub) in enumerate(self.series):
            label = str(label)
            if not label or label in [n for n, _, _ in series]:
                raise ConfigError(
                    f"series[{i}]: every series needs a name of its own, got {label!r}"
                )
            sub = _checked_grid(sub, f"series[{i}] ({label}).grid")
            clash = [k for k in sub if k in grid]
            if clash:
                raise ConfigError(
                    f"series[{i}] ({label}): grid key(s) {', '.join(clash)} are in the shared "
                    "grid too"
                )
            for key in (*changes, *sub):
                self._paths(key)
            series.append((label, dict(changes), sub))
        object.__setattr__(self, "series", tuple(series))
        for key in grid:
            self._paths(key)  # validate key names early
        keys = set(grid) | {k for _, _, sub in self.series for k in sub}
        if self.series:
            keys.add("series")
        for match, changes in self.overrides:
            for key in match:
                if key not in keys:
                    raise ConfigError(
                        f"override matches on '{key}', which is not a grid key "
                        f"(grid keys: {', '.join(sorted(keys)) or 'none'})"
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
        if head == "erasure_options" and rest:
            return [("erasure_options", rest)]
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
        allowed = [*GRID_ALIASES, *_SHARED, *(f"{key}.<attr>" for key in _SHARED)]
        allowed += ["train.<field>", "adversary.<field>", "dependence.<field>", "data.<field>"]
        allowed += ["erasure_options.<option>"]
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
        """Every grid point as ``(grid values, RunSpec)``, in grid order (series by series)."""
        base = self.base.to_dict()
        out = []
        seen: dict[str, dict] = {}
        parts = self.series or (("", {}, {}),)
        for label, fixed, sub in parts:
            start = json.loads(json.dumps(base))
            for k, v in fixed.items():
                self._apply(start, k, v)
            grid = {**sub, **self.grid}
            keys = list(grid)
            for combo in itertools.product(*(grid[k] for k in keys)):
                values = dict(zip(keys, combo, strict=True))
                if label:
                    values = {"series": label, **values}
                d = json.loads(json.dumps(start))
                for k, v in values.items():
                    if k != "series":
                        self._apply(d, k, v)
                for match, changes in self.overrides:
                    if all(k in values and _same(values[k], v) for k, v in match.items()):
                        for k, v in changes.items():
                            self._apply(d, k, v)
                where = "run[" + ", ".join(f"{k}={v}" for k, v in values.items()) + "]"
                spec = RunSpec.from_dict(d, where=where if values else "run")
                if spec.run_id in seen:
                    if label and seen[spec.run_id].get("series") != label:
                        continue  # shared with an earlier series: run once, listed there
                    raise ConfigError(
                        f"grid points {seen[spec.run_id]} and {values} are the same run "
                        f"({spec.run_id})"
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
                **(
                    {
                        "series": [
                            {"name": n, "set": dict(c), "grid": {k: list(v) for k, v in g.items()}}
                            for n, c, g in self.series
                        ]
                    }
                    if self.series
                    else {}
                ),
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
        series = []
        raw = d.get("series") or []
        if not isinstance(raw, Sequence) or isinstance(raw, str | Mapping):
            raise ConfigError("'series' must be an array of tables ([[series]])")
        for i, item in enumerate(raw):
            if not isinstance(item, Mapping):
                raise ConfigError(f"series[{i}] must be a table with name, set and grid")
            check_keys(item, SERIES_KEYS, f"series[{i}]")
            if "name" not in item:
                raise ConfigError(f"series[{i}]: missing 'name'")
            series.append(
                (
                    str(item["name"]),
                    _flatten_grid(item.get("set") or {}),
                    _flatten_grid(item.get("grid") or {}),
                )
            )
        name = d.get("name", "sweep")
        return cls(
            base=base,
            grid=grid,
            purge=tuple(d.get("purge") or ()),
            overrides=tuple(overrides),
            series=tuple(series),
            name=str(name),
        )

    def with_grid(self, **changes: Sequence) -> SweepSpec:
        """A copy with grid keys replaced (``None`` values are ignored)."""
        grid = dict(self.grid)
        for k, v in changes.items():
            if v is not None:
                grid[k] = tuple(v)
        return dataclasses.replace(self, grid=grid)


def _checked_grid(grid: Mapping, where: str) -> dict[str, tuple]:
    """Grid key → non-empty tuple of distinct values (a single value becomes a 1-tuple)."""
    out: dict[str, tuple] = {}
    for key, values in dict(grid).items():
        if isinstance(values, str) or not isinstance(values, Sequence):
            values = (values,)
        values = tuple(values)
        if not values:
            raise ConfigError(f"{where} key '{key}' has no values")
        seen = [json.dumps(jsonable(v), sort_keys=True) for v in values]
        if len(set(seen)) != len(seen):
            raise ConfigError(f"{where} key '{key}' repeats a value: {list(values)}")
        out[str(key)] = values
    return out


def _flatten_grid(grid: Mapping, prefix: str = "") -> dict:
    """TOML ``[grid.train] learning_rate = [...]`` → ``{"train.learning_rate": [...]}``."""
    out = {}
    for k, v in grid.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and not key.startswith(
            tuple(f"dependence.{family}" for family in PENALTY_FAMILIES)
        ):
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
