"""The specification of one run: dataset, training, defences, erasure and audit.

A :class:`RunSpec` is everything one run needs. It is frozen and validated, and its
:attr:`RunSpec.run_id` is a readable prefix plus a short hash of its canonical JSON, so the same
run always gets the same id (sweeps use it as the run's directory name, which makes them
resumable).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from privrec.artifacts import jsonable
from privrec.config_types import build, check_keys, convert, unknown_key
from privrec.defence_names import PENALTY_FAMILIES
from privrec.errors import ConfigError

#: Audit attributes used when a run names no adversary weights and no ``audit_attributes``.
DEFAULT_AUDIT_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "ml-1m": ("gender", "age"),
    "ml-100k": ("gender", "age"),
    "synthetic": ("attr",),
}
RUN_KEYS: tuple[str, ...] = (
    "dataset",
    "data_dir",
    "data",
    "train",
    "adversary",
    "dependence",
    "erasure",
    "erasure_attributes",
    "erasure_options",
    "erasure_holdout",
    "erasure_refit_items",
    "label_fraction",
    "audit_attributes",
    "attackers",
    "folds",
    "seed",
    "baseline_check",
    "audit_lists",
)

BASELINE_CHECKS: tuple[str, ...] = ("auto", "always", "never")
"""Values of :attr:`RunSpec.baseline_check`."""
#: Training defaults of runs that differ from :class:`TrainConfig`'s (as in ``privrec train``).
RUN_TRAIN_DEFAULTS: dict[str, Any] = {"collapse_ratio": 0.5}


def train_defaults(model: object = None) -> dict[str, Any]:
    """The training defaults of a run of ``model``: :data:`RUN_TRAIN_DEFAULTS` over the model's
    own (:data:`privrec.models.MODEL_DEFAULTS`; none for an unknown name, which the
    configuration check then reports)."""
    from privrec.models.registry import MODEL_DEFAULTS

    own = MODEL_DEFAULTS.get(model, {}) if isinstance(model, str) else {}
    return {**own, **RUN_TRAIN_DEFAULTS}


#: Options added after privrec 0.1, with the default that reproduces 0.1's behaviour: omitted
#: from :meth:`RunSpec.identity` at that default (run ids of older sweeps stay valid), and
#: filled in where a recorded spec lacks them (:meth:`RunSpec.from_record`: e.g. a 0.1 run
#: trained with gradient reversal, today's ``adversary.objective`` default being
#: ``confusion``). The section ``""`` holds the run's own top-level keys.
_LATER_OPTIONS: dict[str, dict[str, Any]] = {
    "": {
        "erasure_options": {},
        "erasure_holdout": 0.0,
        "erasure_refit_items": 0,
        "label_fraction": 1.0,
        "audit_lists": False,
    },
    "adversary": {
        "objective": "reverse",
        "refit_epochs": 0,
        "refit_steps": 300,
        "probe_attacker": "logistic",
        "input_dropout": 0.0,
    },
    "train": {
        "vae_hidden": 600,
        "vae_dropout": 0.5,
        "vae_beta": 0.2,
        "vae_anneal": 0.5,
        "gcn_layers": 3,
    },
    "dependence": {
        "schedule": "constant",
        "gamma": 10.0,
        "scaling": "spread",
        "swd": {},
        "n_projections": 32,
        "n_quantiles": 64,
        "swd_sample_size": 2048,
        "null_every": 10,
        "pseudo_labels": False,
    },
}

# ---------------------------------------------------------------------------------------------
# Building dataclasses from plain dicts, with clear errors
# ---------------------------------------------------------------------------------------------


def data_fields(dataset: str) -> list[str] | None:
    """Allowed data options of ``dataset`` (None = anything goes)."""
    if dataset == "synthetic":
        from privrec.data.synthetic import SyntheticConfig

        return [f.name for f in dataclasses.fields(SyntheticConfig)]
    if dataset == "csv":
        import inspect

        from privrec.data.tabular import load_csv

        return list(inspect.signature(load_csv).parameters)
    return []


def _fmt(v: float) -> str:
    return f"{float(v):g}"


# ---------------------------------------------------------------------------------------------
# One run
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSpec:
    """Everything one run needs; frozen, validated, hashable into a stable id."""

    dataset: str = "synthetic"
    """Dataset name (``synthetic``, ``ml-100k``, ``ml-1m``, ``csv``; another name stands for
    a dataset built in Python, which a sweep cannot load)."""
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
    erasure_options: Mapping[str, Any] = field(default_factory=dict)
    """Options of the erasure method (see :func:`privrec.defences.erasure.fit_eraser`)."""
    erasure_holdout: float = 0.0
    """Share of the labelled users (seeded draw) whose labels the eraser does not see; the
    audit then scores only these users. ``0``: fit and audit on every labelled user."""
    erasure_refit_items: int = 0
    """After the erasure, re-fit the item vectors and biases on the erased user vectors for at
    most this many epochs (:mod:`privrec.training.refit`: BPR, user vectors fixed, the best
    validation epoch kept); ``0``: the items stay as trained."""
    label_fraction: float = 1.0
    """Share of the users (a stratified, seeded draw) whose private labels the defences may
    use; the audit and the defence check then score only the others. ``1``: every labelled
    user (the defences see the labels the audit scores)."""
    audit_attributes: tuple[str, ...] = ()
    """Attributes to audit (default: categorical attributes named in the adversary weights or
    dependence penalties, else ``gender, age`` for MovieLens and ``attr`` for synthetic data)."""
    attackers: str | tuple[str, ...] | None = "fast"
    """Attacker preset (``fast``, ``paper``, ``strong``, ``all``) or attacker names; ``None``
    (or ``"none"``): no audit."""
    folds: int = 5
    """Cross-validation folds of the audit."""
    seed: int = 0
    """The run's seed: training, adversarial heads, audit folds and erasure."""
    baseline_check: str = "auto"
    """Whether the defence check also trains the run's plain twin (same spec and seed, no
    defence) and calls the run ``leaky`` when a fresh probe reads an attribute better than on
    the twin's vectors: ``auto`` for training-time defences that make no claim of their own
    to check (MMD/HSIC penalties without adversarial heads), ``always`` for any training-time
    defence, ``never``. It changes the check, not the vectors: not part of the run's id."""
    audit_lists: bool = False
    """Also audit what each user is served: the attackers (the sparse-capable
    :data:`~privrec.audit.recommendations.RECOMMENDATION_ATTACKERS`) read the attribute from
    each user's top-k list, training items excluded, on the same users as the audit
    (stage ``lists`` of the records, ``audit_lists/`` in the run directory)."""

    def __post_init__(self) -> None:
        from privrec.defences.adversarial.adversary import AdversarySpec
        from privrec.training.config import TrainConfig

        allowed = data_fields(self.dataset)
        opts = dict(self.data_options or {})
        if allowed is not None:
            for key in opts:
                if key not in allowed:
                    if not allowed:
                        raise ConfigError(
                            f"dataset {self.dataset!r} takes no data options, got 'data.{key}'"
                        )
                    raise unknown_key(key, "data", allowed)
        object.__setattr__(self, "data_options", opts)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"seed must be an integer, got {self.seed!r}")
        train = self.train if self.train is not None else TrainConfig(**RUN_TRAIN_DEFAULTS)
        object.__setattr__(self, "train", train.replace(seed=self.seed))
        adv = self.adversary if self.adversary is not None else AdversarySpec()
        adv = dataclasses.replace(adv, weights={k: float(v) for k, v in adv.weights.items()})
        object.__setattr__(self, "adversary", dataclasses.replace(adv, seed=self.seed))
        if self.dependence is not None:
            dep = dataclasses.replace(self.dependence, seed=self.seed)
            object.__setattr__(self, "dependence", None if dep.empty else dep)
        if self.erasure in ("", "none"):
            object.__setattr__(self, "erasure", None)
        from privrec.defences.erasure.fitting import METHODS as ERASURE_METHODS

        if self.erasure is not None and self.erasure not in ERASURE_METHODS:
            raise ConfigError(
                f"erasure must be one of {', '.join(ERASURE_METHODS)} or none, got {self.erasure!r}"
            )
        object.__setattr__(self, "erasure_attributes", tuple(self.erasure_attributes))
        object.__setattr__(self, "erasure_options", dict(self.erasure_options or {}))
        holdout = self.erasure_holdout
        if isinstance(holdout, bool) or not isinstance(holdout, int | float):
            raise ConfigError(f"erasure_holdout must be a number, got {holdout!r}")
        if not 0 <= holdout < 1:
            raise ConfigError(f"erasure_holdout must be in [0, 1), got {holdout}")
        object.__setattr__(self, "erasure_holdout", float(holdout))
        refit = self.erasure_refit_items
        if isinstance(refit, bool) or not isinstance(refit, int) or refit < 0:
            raise ConfigError(
                f"erasure_refit_items must be a whole number of epochs >= 0, got {refit!r}"
            )
        if refit and self.erasure is None:
            raise ConfigError("erasure_refit_items re-fits the items after an erasure: set erasure")
        fraction = self.label_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, int | float):
            raise ConfigError(f"label_fraction must be a number, got {fraction!r}")
        if not 0 < fraction <= 1:
            raise ConfigError(f"'label_fraction' must be in (0, 1], got {fraction}")
        if fraction < 1 and holdout > 0:
            raise ConfigError(
                "label_fraction and erasure_holdout both hide labels from the defence: "
                "use label_fraction alone"
            )
        object.__setattr__(self, "label_fraction", float(fraction))
        object.__setattr__(self, "audit_attributes", tuple(self.audit_attributes))
        attackers = self.attackers
        if isinstance(attackers, str) and attackers.strip().lower() == "none":
            attackers = None
        if attackers is None:
            pass
        elif not isinstance(attackers, str):
            attackers = tuple(str(a) for a in attackers)
            if not attackers:
                raise ConfigError("attackers: no attacker selected")
        elif not attackers.strip():
            raise ConfigError("attackers: no attacker selected")
        object.__setattr__(self, "attackers", attackers)
        if isinstance(self.folds, bool) or not isinstance(self.folds, int) or self.folds < 2:
            raise ConfigError(f"folds must be an integer >= 2, got {self.folds!r}")
        if not isinstance(self.audit_lists, bool):
            raise ConfigError(f"'audit_lists' must be true or false, got {self.audit_lists!r}")
        if self.baseline_check not in BASELINE_CHECKS:
            raise ConfigError(
                f"'baseline_check' must be one of {', '.join(BASELINE_CHECKS)}, "
                f"got {self.baseline_check!r}"
            )

    # -- serialisation -------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """Plain-JSON form; :meth:`from_dict` inverts it."""
        return jsonable(
            {
                "dataset": self.dataset,
                "data_dir": self.data_dir,
                "data": dict(self.data_options),
                "train": self.train.to_dict(),
                "adversary": self.adversary.to_dict(),
                "dependence": None if self.dependence is None else self.dependence.to_dict(),
                "erasure": self.erasure,
                "erasure_attributes": list(self.erasure_attributes),
                "erasure_options": dict(self.erasure_options),
                "erasure_holdout": self.erasure_holdout,
                "erasure_refit_items": self.erasure_refit_items,
                "label_fraction": self.label_fraction,
                "audit_attributes": list(self.audit_attributes),
                "attackers": self.attackers
                if self.attackers is None or isinstance(self.attackers, str)
                else list(self.attackers),
                "folds": self.folds,
                "seed": self.seed,
                "baseline_check": self.baseline_check,
                "audit_lists": self.audit_lists,
            }
        )

    @classmethod
    def from_dict(cls, d: Mapping, where: str = "run") -> RunSpec:
        """Build from a plain dict (TOML ``[run]`` table); unknown keys raise ConfigError."""
        from privrec.defences.adversarial.adversary import AdversarySpec
        from privrec.training.config import TrainConfig

        check_keys(d, RUN_KEYS, where)
        kw: dict[str, Any] = {}
        for key in ("dataset", "data_dir", "erasure", "baseline_check"):
            if key in d:
                kw[key] = convert(d[key], str | None, f"{where}.{key}")
        if "data" in d:
            check_keys(d["data"] or {}, list(d["data"] or {}), f"{where}.data")
            kw["data_options"] = jsonable(dict(d["data"] or {}))
        train = d.get("train") or {}
        kw["train"] = build(
            TrainConfig,
            train,
            f"{where}.train",
            train_defaults(train.get("model") if isinstance(train, Mapping) else None),
        )
        kw["adversary"] = build(AdversarySpec, d.get("adversary") or {}, f"{where}.adversary")
        if d.get("dependence"):
            from privrec.defences import DependenceSpec

            kw["dependence"] = build(DependenceSpec, d["dependence"], f"{where}.dependence")
        for key in ("erasure_attributes", "audit_attributes"):
            if key in d:
                v = d[key]
                if isinstance(v, str):
                    v = [s.strip() for s in v.split(",") if s.strip()]
                kw[key] = tuple(str(x) for x in v)
        if "attackers" in d:
            v = d["attackers"]
            kw["attackers"] = v if v is None or isinstance(v, str) else tuple(str(x) for x in v)
        if "erasure_options" in d:
            opts = d["erasure_options"] or {}
            check_keys(opts, list(opts), f"{where}.erasure_options")
            kw["erasure_options"] = jsonable(dict(opts))
        if "audit_lists" in d:
            kw["audit_lists"] = convert(d["audit_lists"], bool, f"{where}.audit_lists")
        if "label_fraction" in d:
            kw["label_fraction"] = convert(d["label_fraction"], float, f"{where}.label_fraction")
        if "erasure_holdout" in d:
            kw["erasure_holdout"] = convert(d["erasure_holdout"], float, f"{where}.erasure_holdout")
        for key in ("folds", "seed", "erasure_refit_items"):
            if key in d:
                kw[key] = convert(d[key], int, f"{where}.{key}")
        try:
            return cls(**kw)
        except ConfigError as exc:
            if str(exc).startswith(where):
                raise
            raise ConfigError(f"{where}: {exc}") from None

    # -- identity ------------------------------------------------------------------------------

    @classmethod
    def from_record(cls, d: Mapping, where: str = "run") -> RunSpec:
        """:meth:`from_dict` for a spec that privrec recorded (a run directory's or a sweep's):
        options it lacks take the value they had before they existed (``_LATER_OPTIONS``),
        not today's default."""
        filled = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in d.items()}
        for section, defaults in _LATER_OPTIONS.items():
            if section == "":
                for key, value in defaults.items():
                    filled.setdefault(key, value)
                continue
            if section in ("train", "adversary") and filled.get(section) is None:
                filled[section] = {}  # always built, so an absent one means all its defaults
            if isinstance(filled.get(section), dict):
                for key, value in defaults.items():
                    filled[section].setdefault(key, value)
        return cls.from_dict(filled, where)

    def identity(self) -> dict:
        """The canonical content hashed into :attr:`run_id` (no file locations, thread counts or
        devices, no :attr:`baseline_check`; no adversarial objective when every λ is 0; options added after 0.1 are left
        out while they hold the value that reproduces 0.1, so a sweep made before they existed
        keeps its run ids and resumes)."""
        d = self.to_dict()
        d.pop("data_dir", None)
        d.pop("baseline_check", None)
        d["train"].pop("num_threads", None)
        d["train"].pop("device", None)
        if not any(self.adversary.weights.values()):
            d["adversary"].pop("objective")  # no head moves the vectors: the same run
        for section, defaults in _LATER_OPTIONS.items():
            sub = d if section == "" else d.get(section)
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
            for fam in PENALTY_FAMILIES:
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
            parts += list(self.dependence.weights())
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
            named += [a for weights in spec.dependence.weights().values() for a in weights]
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
