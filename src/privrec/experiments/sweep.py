"""Sweeps: a grid of replacements over one base run, executed resumably.

A :class:`RunSpec` is everything one run needs (dataset, training, adversary, optional dependence
penalties and post-hoc erasure, the audit). Its :attr:`RunSpec.run_id` is a readable prefix plus
a short hash of its canonical JSON, so the same run always lands in the same directory
``<sweep>/runs/<run_id>/``. Each run directory is written atomically (a directory that exists is
complete), which makes a sweep resumable after any interruption, ``SIGKILL`` included: rerunning
the same sweep skips complete runs, cleans stale ``.partial`` temporary directories and never
duplicates a run.

A :class:`SweepSpec` is a base :class:`RunSpec` plus a grid. Grid keys (TOML ``[grid]`` table or
CLI options):

=========================  ======================================================================
``embedding_size``         ``train.embedding_size`` (alias ``size``)
``lambda``                 the adversarial weight λ shared by every attribute of ``purge``
``lambda.<attr>``          the adversarial weight of one attribute
``mmd`` / ``hsic``         dependence-penalty weight shared by every attribute of ``purge``
``mmd.<attr>``             ... of one attribute (likewise ``hsic.<attr>``)
``seed``                   the run's seed (training, heads, audit folds, erasure)
``erasure``                post-hoc erasure method (``leace``, ``inlp``, or ``"none"``)
``attackers`` / ``folds``  the audit's attacker preset/list and folds
``train.<field>``          any :class:`~privrec.training.config.TrainConfig` field
``adversary.<field>``      any :class:`~privrec.defences.adversarial.adversary.AdversarySpec` field
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

import contextlib
import dataclasses
import difflib
import hashlib
import itertools
import json
import math
import re
import shutil
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from privrec.errors import ConfigError, DataError

#: Audit attributes used when a run names no adversary weights and no ``audit_attributes``.
DEFAULT_AUDIT_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "ml-1m": ("gender", "age"),
    "ml-100k": ("gender", "age"),
    "synthetic": ("attr",),
}
ERASURE_METHODS: tuple[str, ...] = ("leace", "inlp")
RUN_KEYS: tuple[str, ...] = (
    "dataset",
    "data_dir",
    "data",
    "train",
    "adversary",
    "dependence",
    "erasure",
    "erasure_attributes",
    "audit_attributes",
    "attackers",
    "folds",
    "seed",
)
SWEEP_KEYS: tuple[str, ...] = ("name", "purge", "run", "grid", "override")
#: Training defaults of sweeps that differ from :class:`TrainConfig`'s (as in ``privrec train``).
SWEEP_TRAIN_DEFAULTS: dict[str, Any] = {"collapse_ratio": 0.5}
GRID_ALIASES: dict[str, str] = {
    "embedding_size": "train.embedding_size",
    "size": "train.embedding_size",
    "seed": "seed",
    "erasure": "erasure",
    "attackers": "attackers",
    "folds": "folds",
}
#: Options added after privrec 0.1, with the default that reproduces 0.1's behaviour: omitted
#: from :meth:`RunSpec.identity` at that default (run ids of older sweeps stay valid).
_LATER_OPTIONS: dict[str, dict[str, Any]] = {
    "adversary": {"objective": "reverse"},
    "dependence": {"schedule": "constant", "gamma": 10.0, "scaling": "spread"},
}

_SHARED = {"lambda": "adversary.weights", "mmd": "dependence.mmd", "hsic": "dependence.hsic"}


# ---------------------------------------------------------------------------------------------
# Building dataclasses from plain dicts, with clear errors
# ---------------------------------------------------------------------------------------------


def _unknown(key: str, where: str, allowed: Sequence[str]) -> ConfigError:
    close = difflib.get_close_matches(key, list(allowed), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    name = f"{where}.{key}" if where else key
    return ConfigError(f"unknown key '{name}'{hint}; allowed: {', '.join(allowed)}")


def _check_keys(d: Mapping, allowed: Sequence[str], where: str) -> None:
    if not isinstance(d, Mapping):
        raise ConfigError(f"'{where}' must be a table of keys, got {type(d).__name__}")
    for key in d:
        if key not in allowed:
            raise _unknown(str(key), where, allowed)


def _coerce(value: Any, annotation: str, where: str) -> Any:
    ann = str(annotation).replace(" ", "")
    base = {a for a in ann.split("|")}
    if value is None:
        if "None" in base:
            return None
        raise ConfigError(f"'{where}' may not be empty")
    if isinstance(value, bool):
        if "bool" in base:
            return value
        raise ConfigError(f"'{where}' must be a {ann}, got a boolean")
    if "float" in base and isinstance(value, int):
        return float(value)
    if "int" in base and isinstance(value, float) and value.is_integer() and "float" not in base:
        return int(value)
    if ann.startswith("tuple") and isinstance(value, list | tuple):
        inner = "float" if "float" in ann else ("int" if "[int" in ann else "")
        if inner:
            return tuple(_coerce(v, inner, where) for v in value)
        return tuple(value)
    if ann.startswith("Mapping[str,float]") or ann.startswith("dict[str,float]"):
        if not isinstance(value, Mapping):
            raise ConfigError(f"'{where}' must map attribute names to numbers")
        out = {}
        for k, v in value.items():
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise ConfigError(f"'{where}.{k}' must be a number, got {v!r}")
            out[str(k)] = float(v)
        return out
    for simple, typ in (("int", int), ("float", float), ("str", str)):
        if base <= {simple, "None"} and not isinstance(value, typ):
            raise ConfigError(f"'{where}' must be a {simple}, got {value!r}")
    return value


def _build(cls: type, d: Mapping, where: str, defaults: Mapping | None = None):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    _check_keys(d, list(fields), where)
    kwargs = dict(defaults or {})
    kwargs.update(d)
    kwargs = {k: _coerce(v, fields[k].type, f"{where}.{k}") for k, v in kwargs.items()}
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _data_fields(dataset: str) -> list[str] | None:
    """Allowed data options of ``dataset`` (None = anything goes)."""
    if dataset == "synthetic":
        from privrec.data.synthetic import SyntheticConfig

        return [f.name for f in dataclasses.fields(SyntheticConfig)]
    if dataset == "csv":
        import inspect

        from privrec.data.tabular import load_csv

        return list(inspect.signature(load_csv).parameters)
    return []


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item) and not isinstance(obj, str):
        with contextlib.suppress(Exception):
            return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _fmt(v: float) -> str:
    return f"{float(v):g}"


# ---------------------------------------------------------------------------------------------
# One run
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSpec:
    """Everything one run of a sweep needs; frozen, validated, hashable into a stable id."""

    dataset: str = "synthetic"
    """Dataset name (``synthetic``, ``ml-100k``, ``ml-1m``, ``csv``)."""
    data_options: Mapping[str, Any] = field(default_factory=dict)
    """Dataset options: :class:`~privrec.data.synthetic.SyntheticConfig` fields for
    ``synthetic``, :func:`~privrec.data.tabular.load_csv` arguments for ``csv``."""
    data_dir: str | None = None
    """Folder of the dataset's files. Where the data lives is not part of the run's identity."""
    train: Any = None
    """The :class:`~privrec.training.config.TrainConfig` (its seed is :attr:`seed`)."""
    adversary: Any = None
    """The :class:`~privrec.defences.adversarial.adversary.AdversarySpec` (its seed is :attr:`seed`)."""
    dependence: Any = None
    """Optional :class:`~privrec.defences.DependenceSpec` (MMD/HSIC penalties)."""
    erasure: str | None = None
    """Optional post-hoc erasure of the trained vectors: ``leace`` or ``inlp``."""
    erasure_attributes: tuple[str, ...] = ()
    """Attributes to erase (default: the audited ones)."""
    audit_attributes: tuple[str, ...] = ()
    """Attributes to audit (default: categorical attributes named in the adversary weights or
    dependence penalties, else ``gender, age`` for MovieLens and ``attr`` for synthetic data)."""
    attackers: str | tuple[str, ...] = "fast"
    """Attacker preset (``fast``, ``paper``, ``strong``, ``all``) or attacker names."""
    folds: int = 5
    """Cross-validation folds of the audit."""
    seed: int = 0
    """The run's seed: training, adversarial heads, audit folds and erasure."""

    def __post_init__(self) -> None:
        from privrec.data.registry import DATASETS
        from privrec.defences.adversarial.adversary import AdversarySpec
        from privrec.training.config import TrainConfig

        if self.dataset not in DATASETS:
            raise ConfigError(
                f"unknown dataset {self.dataset!r}; expected one of: {', '.join(DATASETS)}"
            )
        allowed = _data_fields(self.dataset)
        opts = dict(self.data_options or {})
        if allowed is not None:
            for key in opts:
                if key not in allowed:
                    if not allowed:
                        raise ConfigError(
                            f"dataset {self.dataset!r} takes no data options, got 'data.{key}'"
                        )
                    raise _unknown(key, "data", allowed)
        object.__setattr__(self, "data_options", opts)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"seed must be an integer, got {self.seed!r}")
        train = self.train if self.train is not None else TrainConfig(**SWEEP_TRAIN_DEFAULTS)
        object.__setattr__(self, "train", train.replace(seed=self.seed))
        adv = self.adversary if self.adversary is not None else AdversarySpec()
        adv = dataclasses.replace(adv, weights={k: float(v) for k, v in adv.weights.items()})
        object.__setattr__(self, "adversary", dataclasses.replace(adv, seed=self.seed))
        if self.dependence is not None:
            dep = dataclasses.replace(self.dependence, seed=self.seed)
            object.__setattr__(self, "dependence", None if dep.empty else dep)
        if self.erasure in ("", "none"):
            object.__setattr__(self, "erasure", None)
        if self.erasure is not None and self.erasure not in ERASURE_METHODS:
            raise ConfigError(
                f"erasure must be one of {', '.join(ERASURE_METHODS)} or none, got {self.erasure!r}"
            )
        object.__setattr__(self, "erasure_attributes", tuple(self.erasure_attributes))
        object.__setattr__(self, "audit_attributes", tuple(self.audit_attributes))
        attackers = self.attackers
        if not isinstance(attackers, str):
            attackers = tuple(str(a) for a in attackers)
            if not attackers:
                raise ConfigError("attackers: no attacker selected")
        elif not attackers.strip():
            raise ConfigError("attackers: no attacker selected")
        object.__setattr__(self, "attackers", attackers)
        if isinstance(self.folds, bool) or not isinstance(self.folds, int) or self.folds < 2:
            raise ConfigError(f"folds must be an integer >= 2, got {self.folds!r}")

    # -- serialisation -------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """Plain-JSON form; :meth:`from_dict` inverts it."""
        return _jsonable(
            {
                "dataset": self.dataset,
                "data_dir": self.data_dir,
                "data": dict(self.data_options),
                "train": self.train.to_dict(),
                "adversary": self.adversary.to_dict(),
                "dependence": None if self.dependence is None else self.dependence.to_dict(),
                "erasure": self.erasure,
                "erasure_attributes": list(self.erasure_attributes),
                "audit_attributes": list(self.audit_attributes),
                "attackers": self.attackers
                if isinstance(self.attackers, str)
                else list(self.attackers),
                "folds": self.folds,
                "seed": self.seed,
            }
        )

    @classmethod
    def from_dict(cls, d: Mapping, where: str = "run") -> RunSpec:
        """Build from a plain dict (TOML ``[run]`` table); unknown keys raise ConfigError."""
        from privrec.defences.adversarial.adversary import AdversarySpec
        from privrec.training.config import TrainConfig

        _check_keys(d, RUN_KEYS, where)
        kw: dict[str, Any] = {}
        for key in ("dataset", "data_dir", "erasure"):
            if key in d:
                kw[key] = _coerce(d[key], "str|None", f"{where}.{key}")
        if "data" in d:
            _check_keys(d["data"] or {}, list(d["data"] or {}), f"{where}.data")
            kw["data_options"] = _jsonable(dict(d["data"] or {}))
        kw["train"] = _build(
            TrainConfig, d.get("train") or {}, f"{where}.train", SWEEP_TRAIN_DEFAULTS
        )
        kw["adversary"] = _build(AdversarySpec, d.get("adversary") or {}, f"{where}.adversary")
        if d.get("dependence"):
            from privrec.defences import DependenceSpec

            kw["dependence"] = _build(DependenceSpec, d["dependence"], f"{where}.dependence")
        for key in ("erasure_attributes", "audit_attributes"):
            if key in d:
                v = d[key]
                if isinstance(v, str):
                    v = [s.strip() for s in v.split(",") if s.strip()]
                kw[key] = tuple(str(x) for x in v)
        if "attackers" in d:
            v = d["attackers"]
            kw["attackers"] = v if isinstance(v, str) else tuple(str(x) for x in v)
        for key in ("folds", "seed"):
            if key in d:
                kw[key] = _coerce(d[key], "int", f"{where}.{key}")
        try:
            return cls(**kw)
        except ConfigError as exc:
            if str(exc).startswith(where):
                raise
            raise ConfigError(f"{where}: {exc}") from None

    # -- identity ------------------------------------------------------------------------------

    def identity(self) -> dict:
        """The canonical content hashed into :attr:`run_id` (no file locations or thread counts;
        options added after 0.1 are left out while they hold their default, so a sweep made
        before they existed keeps its run ids and resumes)."""
        d = self.to_dict()
        d.pop("data_dir", None)
        d["train"].pop("num_threads", None)
        for section, defaults in _LATER_OPTIONS.items():
            sub = d.get(section)
            if isinstance(sub, dict):
                for key, default in defaults.items():
                    if key in sub and sub[key] == default:
                        del sub[key]
        return d

    @property
    def prefix(self) -> str:
        """Readable part of the run id, e.g. ``e10-lam0.1-s0``."""
        parts = [f"e{self.train.embedding_size}"]
        w = self.adversary.weights
        if w:
            vals = set(w.values())
            if len(vals) == 1:
                parts.append(f"lam{_fmt(next(iter(vals)))}")
            else:
                parts.append("-".join(f"{a}{_fmt(v)}" for a, v in w.items()))
        if self.dependence is not None:
            for fam in ("mmd", "hsic"):
                fw = getattr(self.dependence, fam)
                if fw:
                    vals = set(fw.values())
                    parts.append(
                        f"{fam}{_fmt(next(iter(vals)))}"
                        if len(vals) == 1
                        else fam + "-".join(f"{a}{_fmt(v)}" for a, v in fw.items())
                    )
        if self.erasure:
            parts.append(self.erasure)
        parts.append(f"s{self.seed}")
        return re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(parts))

    @property
    def run_id(self) -> str:
        """``<prefix>-<first 8 hex digits of sha256(canonical JSON)>``."""
        blob = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return f"{self.prefix}-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"

    @property
    def method(self) -> str:
        """Defence label: ``adversarial``, ``mmd``, ``hsic``, ``erasure-<m>`` (joined by ``+``),
        or ``plain``. A run with adversary weights of 0 is ``adversarial`` (its λ=0 point)."""
        parts = []
        if self.adversary.weights:
            parts.append("adversarial")
        if self.dependence is not None:
            parts += [fam for fam in ("mmd", "hsic") if getattr(self.dependence, fam)]
        if self.erasure:
            parts.append(f"erasure-{self.erasure}")
        return "+".join(parts) or "plain"

    def data_key(self) -> str:
        """Cache key of the dataset this run trains on."""
        return json.dumps(
            [self.dataset, self.data_dir, self.data_options], sort_keys=True, default=str
        )


def audit_attributes_for(spec: RunSpec, attributes) -> list[str]:
    """The attributes a run audits (see :attr:`RunSpec.audit_attributes`)."""
    if spec.audit_attributes:
        names = list(spec.audit_attributes)
    else:
        named = list(spec.adversary.weights)
        if spec.dependence is not None:
            named += list(spec.dependence.mmd) + list(spec.dependence.hsic)
        names = [
            n
            for n in dict.fromkeys(named)
            if n in attributes and attributes[n].kind == "categorical"
        ]
        if not names:
            default = DEFAULT_AUDIT_ATTRIBUTES.get(spec.dataset)
            if default is None:
                default = tuple(n for n in attributes.names if attributes[n].kind == "categorical")
            names = [n for n in default if n in attributes]
    missing = [n for n in names if n not in attributes]
    if missing:
        raise ConfigError(
            f"unknown attribute(s) {', '.join(missing)} to audit; "
            f"available: {', '.join(attributes.names) or 'none'}"
        )
    if not names:
        raise ConfigError("no attribute to audit: set audit_attributes")
    return names


# ---------------------------------------------------------------------------------------------
# The grid
# ---------------------------------------------------------------------------------------------


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
        grid: dict[str, tuple] = {}
        for key, values in dict(self.grid).items():
            if isinstance(values, str) or not isinstance(values, Sequence):
                values = (values,)
            values = tuple(values)
            if not values:
                raise ConfigError(f"grid key '{key}' has no values")
            seen = [json.dumps(_jsonable(v), sort_keys=True) for v in values]
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
                allowed = _data_fields(self.base.dataset)
            first = rest.split(".")[0]
            if allowed is not None and first not in allowed:
                raise _unknown(first, f"grid.{section}", allowed)
            return [(section, *rest.split("."))]
        allowed = [*GRID_ALIASES, *_SHARED, "lambda.<attr>", "mmd.<attr>", "hsic.<attr>"]
        allowed += ["train.<field>", "adversary.<field>", "dependence.<field>", "data.<field>"]
        raise _unknown(key, "grid", allowed)

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
        return _jsonable(
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
        _check_keys(d, SWEEP_KEYS, "")
        base = RunSpec.from_dict(d.get("run") or {}, "run")
        grid = d.get("grid") or {}
        if not isinstance(grid, Mapping):
            raise ConfigError("'grid' must be a table of key = [values]")
        grid = _flatten_grid(grid)
        overrides = []
        for i, o in enumerate(d.get("override") or []):
            _check_keys(o, ("match", "set"), f"override[{i}]")
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


# ---------------------------------------------------------------------------------------------
# Executing one run (in a worker process)
# ---------------------------------------------------------------------------------------------

_DATA_CACHE: dict[str, tuple] = {}
_DATA_CACHE_SIZE = 2


def load_data(spec: RunSpec):
    """``(dataset, split)`` of a run, loaded once per process and cached by data spec."""
    key = spec.data_key()
    hit = _DATA_CACHE.get(key)
    if hit is not None:
        return hit
    from privrec.data.registry import load_dataset
    from privrec.data.split import leave_last_out

    opts = dict(spec.data_options)
    ds = load_dataset(
        spec.dataset,
        spec.data_dir,
        progress=False,
        synthetic=opts if spec.dataset == "synthetic" else None,
        csv=opts if spec.dataset == "csv" else None,
    )
    split = leave_last_out(ds.interactions)
    while len(_DATA_CACHE) >= _DATA_CACHE_SIZE:
        _DATA_CACHE.pop(next(iter(_DATA_CACHE)))
    _DATA_CACHE[key] = (ds, split)
    return ds, split


@dataclass(frozen=True)
class RunTask:
    """What a worker needs to compute one run: its spec and its directory."""

    spec: RunSpec
    run_dir: str


def execute_task(task: RunTask) -> dict:
    """Worker entry point: the run's summary (computing and writing the run if not complete)."""
    return execute_run(task.spec, task.run_dir)


def execute_run(spec: RunSpec, run_dir: str | Path) -> dict:
    """Train, audit (and optionally erase) one run; write its directory atomically.

    Returns the run's flat summary (also written as ``summary.json``). A run directory that
    already exists is complete: its summary is returned without recomputing. A diverged run is
    written with ``status: "diverged"`` and no audit.
    """
    run_dir = Path(run_dir)
    if run_dir.exists():
        return read_summary(run_dir)
    started = time.perf_counter()
    from privrec.defences.adversarial.adversary import build_adversaries
    from privrec.experiments.run import train_and_evaluate

    ds, split = load_data(spec)
    load_seconds = time.perf_counter() - started
    cfg = spec.train
    names = audit_attributes_for(spec, ds.attributes)
    penalties = list(build_adversaries(ds.attributes, spec.adversary, cfg.embedding_size))
    if spec.dependence is not None:
        from privrec.defences import build_dependence_penalties

        penalties += build_dependence_penalties(ds.attributes, spec.dependence, cfg.embedding_size)
    captured: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        metrics, trained = train_and_evaluate(ds, split, cfg, penalties)
        audits: dict[str, dict] = {}
        final_vectors = None
        timings = {"load_seconds": load_seconds, "train_seconds": time.perf_counter() - t0}
        if trained is not None:
            from privrec.audit import audit_vectors

            ids = ds.interactions.user_ids
            vectors = trained.user_vectors()
            t0 = time.perf_counter()
            audit = audit_vectors(
                ids,
                vectors,
                ds.attributes,
                names=names,
                attackers=spec.attackers,
                folds=spec.folds,
                seed=spec.seed,
                jobs=1,
                progress=False,
            )
            audits["trained"] = audit.to_dict()
            timings["audit_seconds"] = time.perf_counter() - t0
            final_vectors = vectors
            if spec.erasure:
                final_vectors = _erase_and_evaluate(spec, ds, split, trained, names, metrics)
                t0 = time.perf_counter()
                audit_after = audit_vectors(
                    ids,
                    final_vectors,
                    ds.attributes,
                    names=names,
                    attackers=spec.attackers,
                    folds=spec.folds,
                    seed=spec.seed,
                    jobs=1,
                    progress=False,
                )
                audits["erased"] = audit_after.to_dict()
                timings["audit_seconds"] += time.perf_counter() - t0
        captured = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    timings["seconds"] = time.perf_counter() - started
    summary = summarise(spec, metrics, audits, names, timings, captured)
    _write_run_dir(
        run_dir, spec, ds, split, metrics, trained, final_vectors, audits, summary, names
    )
    return summary


def _erase_and_evaluate(spec, ds, split, trained, names, metrics) -> Any:
    from privrec.defences.erasure import erase_vectors
    from privrec.evaluation.protocol import evaluate_split, vectors_scorer

    t0 = time.perf_counter()
    erase_names = list(spec.erasure_attributes) or names
    erased = erase_vectors(
        ds.interactions.user_ids,
        trained.user_vectors(),
        ds.attributes,
        erase_names,
        method=spec.erasure,
        seed=spec.seed,
    )
    k = spec.train.k
    score = vectors_scorer(erased, trained.item_vectors(), trained.item_bias())
    val = evaluate_split(score, split, "validation", k)
    test = evaluate_split(score, split, "test", k)
    metrics["before_erasure"] = {"validation": metrics["validation"], "test": metrics["test"]}
    metrics["validation"] = {f"hr@{k}": val[f"hr@{k}"], f"ndcg@{k}": val[f"ndcg@{k}"]}
    metrics["test"] = {f"hr@{k}": test[f"hr@{k}"], f"ndcg@{k}": test[f"ndcg@{k}"]}
    metrics["erasure"] = {
        "method": spec.erasure,
        "attributes": erase_names,
        "seconds": time.perf_counter() - t0,
    }
    return erased


def summarise(
    spec: RunSpec,
    metrics: dict,
    audits: Mapping[str, dict],
    names: Sequence[str],
    timings: Mapping[str, float],
    warnings_seen: Sequence[str] = (),
) -> dict:
    """The flat results-table row of one run."""
    k = spec.train.k
    nan = float("nan")
    row: dict[str, Any] = {
        "run_id": spec.run_id,
        "dataset": spec.dataset,
        "method": spec.method,
        "embedding_size": spec.train.embedding_size,
        "seed": spec.seed,
    }
    weights = spec.adversary.weights
    shared = set(weights.values())
    row["lambda"] = next(iter(shared)) if len(shared) == 1 else nan
    for a, w in weights.items():
        row[f"lambda_{a}"] = w
    if spec.dependence is not None:
        for fam in ("mmd", "hsic"):
            for a, w in getattr(spec.dependence, fam).items():
                row[f"{fam}_{a}"] = w
    row["erasure"] = spec.erasure or ""
    row["attackers"] = (
        spec.attackers if isinstance(spec.attackers, str) else ",".join(spec.attackers)
    )
    row["status"] = metrics.get("status", "error")
    row["reason"] = metrics.get("reason", "")
    ok = row["status"] == "ok"
    for part, short in (("validation", "val"), ("test", "test")):
        for m in (f"hr@{k}", f"ndcg@{k}"):
            row[f"{short}_{m}"] = metrics[part][m] if ok else nan
    row["best_epoch"] = metrics.get("best_epoch", nan) if ok else nan
    row["epochs_run"] = metrics.get("epochs_run", nan)
    row["load_seconds"] = timings.get("load_seconds", nan)
    row["train_seconds"] = timings.get("train_seconds", nan)
    row["audit_seconds"] = timings.get("audit_seconds", nan)
    row["seconds"] = timings.get("seconds", nan)
    final = audits.get("erased") or audits.get("trained")
    row.update(_audit_columns(final, names))
    if "erased" in audits:
        before = metrics.get("before_erasure", {})
        for part, short in (("validation", "val"), ("test", "test")):
            for m in (f"hr@{k}", f"ndcg@{k}"):
                row[f"trained_{short}_{m}"] = before.get(part, {}).get(m, nan)
        for key, v in _audit_columns(audits["trained"], names, headline_only=True).items():
            row[f"trained_{key}"] = v
    row["warnings"] = " | ".join(warnings_seen)
    return row


HEADLINE_KEYS: tuple[str, ...] = (
    "max_roc_auc",
    "max_balanced_accuracy",
    "max_accuracy",
    "strongest_attacker",
    "majority",
    "mi_lower_bits",
)
ATTACKER_KEYS: dict[str, str] = {"accuracy": "acc", "balanced_accuracy": "bacc", "roc_auc": "auc"}


def _audit_columns(audit: dict | None, names: Sequence[str], headline_only: bool = False) -> dict:
    nan = float("nan")
    out: dict[str, Any] = {}
    heads = {h["attribute"]: h for h in (audit or {}).get("headline", [])}
    for a in names:
        h = heads.get(a, {})
        for key in HEADLINE_KEYS:
            v = h.get(key)
            if v is None:
                v = "" if key == "strongest_attacker" else nan
            out[f"{a}_{key}"] = v
    if headline_only:
        return out
    for rec in (audit or {}).get("table", []):
        a = rec.get("attribute")
        if a not in names:
            continue
        for metric, short in ATTACKER_KEYS.items():
            v = rec.get(metric)
            out[f"{a}_{short}_{rec['attacker']}"] = nan if v is None else v
    return out


def _write_run_dir(
    run_dir, spec, ds, split, metrics, trained, final_vectors, audits, summary, names
) -> None:
    from privrec import __version__
    from privrec.artifacts import atomic_dir, atomic_write_json, save_embeddings
    from privrec.experiments.run import embeddings_of

    try:
        with atomic_dir(run_dir) as tmp:
            atomic_write_json(
                tmp / "config.json",
                {
                    "privrec_version": __version__,
                    "run_id": spec.run_id,
                    "spec": spec.to_dict(),
                    "dataset": ds.name,
                    "dataset_notes": list(ds.notes),
                    "split": split.summary(),
                    "train": spec.train.to_dict(),
                    "adversary": spec.adversary.to_dict(),
                    "audit_attributes": list(names),
                },
            )
            atomic_write_json(tmp / "metrics.json", metrics)
            if trained is not None:
                emb = embeddings_of(trained, ds)
                if spec.erasure:
                    save_embeddings(tmp / "embeddings_trained.npz", emb)
                    emb = emb.replace_users(final_vectors)
                save_embeddings(tmp / "embeddings.npz", emb)
            if "trained" in audits:
                atomic_write_json(tmp / "audit.json", audits.get("erased") or audits["trained"])
            if "erased" in audits:
                atomic_write_json(tmp / "audit_trained.json", audits["trained"])
            atomic_write_json(tmp / "summary.json", summary)
    except DataError:
        if not run_dir.exists():  # pragma: no cover - a real error, not a lost race
            raise


def read_summary(run_dir: str | Path) -> dict:
    from privrec.artifacts import read_json

    return read_json(Path(run_dir) / "summary.json")


# ---------------------------------------------------------------------------------------------
# The sweep
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SweepOutcome:
    """What :func:`run_sweep` did.

    Attributes:
        out_dir: the sweep directory.
        results: one row per grid point (the content of ``results.csv``).
        computed: runs computed now; skipped: runs already complete; failed: runs that raised
            (not written; a rerun retries them).
        wall_seconds: wall time of this call.
        executor: description of the executor used.
        errors: ``run_id → error message`` of the failed runs.
    """

    out_dir: Path
    results: Any
    computed: int
    skipped: int
    failed: int
    wall_seconds: float
    executor: str
    errors: dict = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        s = self.results["status"] if len(self.results) else []
        return {
            status: int((s == status).sum()) if len(self.results) else 0
            for status in ("ok", "diverged", "error")
        }


def clean_partials(out_dir: Path) -> int:
    """Remove what an interrupted sweep left half-written in ``out_dir``: temporary run
    directories (``runs/.*.partial``) and temporary files of atomic writes (``.*.tmp``).
    Returns how many were removed."""
    n = 0
    runs_dir = out_dir / "runs"
    if runs_dir.is_dir():
        for p in runs_dir.iterdir():
            if p.name.startswith(".") and (p.name.endswith(".partial") or ".old-" in p.name):
                shutil.rmtree(p, ignore_errors=True)
                n += 1
    if out_dir.is_dir():
        for p in out_dir.iterdir():
            if p.name.startswith(".") and p.name.endswith(".tmp") and p.is_file():
                p.unlink(missing_ok=True)
                n += 1
    return n


@contextlib.contextmanager
def _sweep_lock(out_dir: Path):
    """An exclusive lock on the sweep directory (released by the OS even on SIGKILL)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    fh = (out_dir / ".sweep.lock").open("a+")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ConfigError(
                f"another sweep is writing to {out_dir}; wait for it or use another --out"
            ) from None
        yield
    finally:
        fh.close()


def run_sweep(
    spec: SweepSpec,
    out_dir: str | Path,
    executor: str = "local",
    workers: int | None = None,
    progress: bool = True,
    executor_options: Mapping[str, Any] | None = None,
) -> SweepOutcome:
    """Run every grid point of ``spec`` into ``out_dir`` (resumably) and write the results.

    ``executor_options`` go to the executor's constructor (``None`` values are dropped), e.g.
    ``{"address": "ray://head:10001", "num_cpus": 2, "num_gpus": 0.5}`` for ``ray``.

    Layout: ``out_dir/sweep.json`` (the spec, the grid points and their run ids),
    ``out_dir/runs/<run_id>/`` (one complete directory per run), and ``results.csv``,
    ``results.json``, ``results.parquet`` (when pyarrow is importable) with one row per grid
    point. Complete run directories are reused, never recomputed; stale ``.partial`` directories
    of an interrupted sweep are removed first.
    """
    from privrec import __version__
    from privrec.artifacts import atomic_write_json
    from privrec.experiments.executors import get_executor

    start = time.perf_counter()
    out_dir = Path(out_dir)
    runs_dir = out_dir / "runs"
    points = spec.expand()
    ex = get_executor(executor, workers, **dict(executor_options or {}))
    runs_dir.mkdir(parents=True, exist_ok=True)
    with _sweep_lock(out_dir):
        clean_partials(out_dir)
        atomic_write_json(
            out_dir / "sweep.json",
            {
                "privrec_version": __version__,
                "spec": spec.to_dict(),
                "points": [{"run_id": s.run_id, "grid": _jsonable(values)} for values, s in points],
            },
        )
        summaries: dict[str, dict] = {}
        todo: list[RunTask] = []
        for _, s in points:
            run_dir = runs_dir / s.run_id
            if run_dir.exists():
                try:
                    summaries[s.run_id] = read_summary(run_dir)
                    continue
                except DataError:  # an incomplete directory not written by privrec
                    shutil.rmtree(run_dir, ignore_errors=True)
            todo.append(RunTask(s, str(run_dir)))
        skipped = len(points) - len(todo)
        errors: dict[str, str] = {}
        with _progress_bar(len(points), skipped, progress) as advance, ex:
            for outcome in ex.map(execute_task, todo):
                task = todo[outcome.index]
                if outcome.ok:
                    summaries[task.spec.run_id] = outcome.result
                    status = outcome.result.get("status")
                else:
                    errors[task.spec.run_id] = outcome.error or "unknown error"
                    status = "error"
                    _report_error(task.spec.run_id, outcome, progress)
                advance(task.spec.run_id, status)
        results = _results_frame(spec, points, summaries, errors)
        write_results(results, out_dir)
    return SweepOutcome(
        out_dir=out_dir,
        results=results,
        computed=len(todo) - len(errors),
        skipped=skipped,
        failed=len(errors),
        wall_seconds=time.perf_counter() - start,
        executor=ex.describe(),
        errors=errors,
    )


def _report_error(run_id: str, outcome, progress: bool) -> None:
    from rich.console import Console

    console = Console(stderr=True)
    console.print(f"[red]run {run_id} failed:[/red] {outcome.error}", highlight=False)
    if outcome.traceback and not progress:
        console.print(outcome.traceback, highlight=False, markup=False)


@contextlib.contextmanager
def _progress_bar(total: int, done: int, enabled: bool):
    if not enabled:
        yield lambda run_id, status: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("[bold]sweep"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=Console(stderr=True),
    )
    with bar:
        info = f"{done} already complete" if done else ""
        task = bar.add_task("sweep", total=total, completed=done, info=info)

        def advance(run_id: str, status: str) -> None:
            bar.update(task, advance=1, info=f"{run_id}: {status}")

        yield advance


def _results_frame(spec: SweepSpec, points, summaries: Mapping, errors: Mapping):
    import pandas as pd

    rows = []
    for values, s in points:
        row = dict(summaries.get(s.run_id) or {})
        if not row:
            row = {
                "run_id": s.run_id,
                "dataset": s.dataset,
                "method": s.method,
                "embedding_size": s.train.embedding_size,
                "seed": s.seed,
                "status": "error",
                "reason": errors.get(s.run_id, "not run"),
            }
        for k, v in values.items():  # grid values under their grid key (unless standard)
            row.setdefault(k, _jsonable(v))
        rows.append(row)
    df = pd.DataFrame(rows)
    from privrec.experiments.pareto import flag_reversals

    df = flag_reversals(df)
    first = [
        c
        for c in ("run_id", "dataset", "method", "embedding_size", "lambda", "seed", "status")
        if c in df.columns
    ]
    return df[first + [c for c in df.columns if c not in first]]


def write_results(results, out_dir: str | Path) -> list[Path]:
    """Write ``results.csv``, ``results.json`` and (with pyarrow) ``results.parquet``."""
    import io

    from privrec.artifacts import atomic_write_bytes, atomic_write_json, atomic_write_text

    out_dir = Path(out_dir)
    written = [out_dir / "results.csv", out_dir / "results.json"]
    atomic_write_text(written[0], results.to_csv(index=False))
    atomic_write_json(written[1], _jsonable(results.to_dict(orient="records")))
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return written
    buf = io.BytesIO()
    frame = results.copy()
    for col in frame.columns:
        if frame[col].dtype == object:
            frame[col] = frame[col].map(
                lambda v: None if v is None or (isinstance(v, float) and v != v) else str(v)
            )
    frame.to_parquet(buf, index=False)
    atomic_write_bytes(out_dir / "results.parquet", buf.getvalue())
    written.append(out_dir / "results.parquet")
    return written


def load_results(sweep_dir: str | Path):
    """The results table of a sweep directory (``results.json``) as a DataFrame."""
    import pandas as pd

    from privrec.artifacts import read_json

    path = Path(sweep_dir) / "results.json"
    if not path.exists():
        raise DataError(f"{sweep_dir}: no results.json (is this a sweep directory?)")
    data = read_json(path)
    return pd.DataFrame(data)
