"""Parsers for the MovieLens 1M and 100K files (GroupLens formats)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from privrec.data.attributes import Attribute, UserAttributes
from privrec.data.dataset import Dataset
from privrec.data.interactions import Interactions
from privrec.data.parsing import check_unique_pairs, line_of, read_fields, to_int
from privrec.errors import DataError

#: ML-1M age groups (README: 1 "Under 18", 18 "18-24", 25 "25-34", 35 "35-44", 45 "45-49",
#: 50 "50-55", 56 "56+"), used for both datasets.
AGE_GROUPS: tuple[int, ...] = (1, 18, 25, 35, 45, 50, 56)
ML1M_OCCUPATIONS: tuple[str, ...] = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)  # fmt: skip


def age_group(age: np.ndarray) -> np.ndarray:
    """Bin raw ages into the ML-1M groups: the lower bound of each README range."""
    age = np.asarray(age)
    edges = np.array(AGE_GROUPS[1:])  # 18, 25, 35, 45, 50, 56
    return np.asarray(AGE_GROUPS)[np.searchsorted(edges, age, side="right")]


def _check_files(folder: Path, names: list[str]) -> None:
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise DataError(f"{folder}: missing {', '.join(missing)} (expected the dataset's files)")


def load_ml1m(folder: str | Path) -> Dataset:
    """Load MovieLens 1M from a folder holding ``ratings.dat``, ``users.dat``, ``movies.dat``.

    Every rating is an implicit positive interaction. Attributes: ``gender`` (F/M), ``age``
    (7 groups), ``occupation`` (21 classes).
    """
    folder = Path(folder)
    _check_files(folder, ["ratings.dat", "users.dat", "movies.dat"])
    users = read_fields(folder / "users.dat", "::", ["user", "gender", "age", "occupation", "zip"])
    uid = to_int(users, "user", lo=1)
    _unique(users, uid, "user")
    gender = users["gender"].str.strip().to_numpy()
    _check_values(users, "gender", gender, {"F", "M"})
    age = to_int(users, "age")
    _check_values(users, "age", age, set(AGE_GROUPS))
    occ = to_int(users, "occupation", lo=0, hi=len(ML1M_OCCUPATIONS) - 1)

    movies = read_fields(folder / "movies.dat", "::", ["item", "title", "genres"])
    mid = to_int(movies, "item", lo=1)
    _unique(movies, mid, "item")

    ratings = read_fields(folder / "ratings.dat", "::", ["user", "item", "rating", "timestamp"])
    ru = to_int(ratings, "user")
    ri = to_int(ratings, "item")
    to_int(ratings, "rating", lo=1, hi=5)
    rt = to_int(ratings, "timestamp", lo=0)
    _known(ratings, ru, uid, "user", "users.dat")
    _known(ratings, ri, mid, "item", "movies.dat")
    check_unique_pairs(ratings, ru, ri)

    rated = np.unique(ri)
    inter = Interactions.from_ids(ru, ri, rt, all_user_ids=np.sort(uid), all_item_ids=rated)
    order = np.argsort(uid)
    attrs = UserAttributes(
        inter.user_ids,
        {
            "gender": Attribute.categorical("gender", gender[order], ["F", "M"]),
            "age": Attribute.categorical(
                "age", age[order].astype(str), [str(a) for a in AGE_GROUPS]
            ),
            "occupation": Attribute("occupation", "categorical", occ[order], ML1M_OCCUPATIONS),
        },
    )
    titles = dict(zip(mid.tolist(), movies["title"].to_numpy(), strict=True))
    item_titles = np.array([titles[i] for i in inter.item_ids.tolist()], dtype=str)
    return Dataset("ml-1m", inter, attrs, item_titles)


def load_ml100k(folder: str | Path) -> Dataset:
    """Load MovieLens 100K from a folder holding ``u.data``, ``u.user``, ``u.item``.

    Attributes: ``gender``, ``age`` (binned into the ML-1M groups), ``age_years`` (continuous),
    ``occupation``.
    """
    folder = Path(folder)
    _check_files(folder, ["u.data", "u.user", "u.item"])
    users = read_fields(folder / "u.user", "|", ["user", "age", "gender", "occupation", "zip"])
    uid = to_int(users, "user", lo=1)
    _unique(users, uid, "user")
    age = to_int(users, "age", lo=0, hi=130)
    gender = users["gender"].str.strip().to_numpy()
    _check_values(users, "gender", gender, {"F", "M"})
    occ = users["occupation"].str.strip().to_numpy()

    items = read_fields(
        folder / "u.item",
        "|",
        ["item", "title", "date", "video", "url"] + [f"g{i}" for i in range(19)],
    )
    iid = to_int(items, "item", lo=1)
    _unique(items, iid, "item")

    ratings = read_fields(folder / "u.data", "\t", ["user", "item", "rating", "timestamp"])
    ru = to_int(ratings, "user")
    ri = to_int(ratings, "item")
    to_int(ratings, "rating", lo=1, hi=5)
    rt = to_int(ratings, "timestamp", lo=0)
    _known(ratings, ru, uid, "user", "u.user")
    _known(ratings, ri, iid, "item", "u.item")
    check_unique_pairs(ratings, ru, ri)

    inter = Interactions.from_ids(ru, ri, rt, all_user_ids=np.sort(uid), all_item_ids=np.unique(ri))
    order = np.argsort(uid)
    groups = age_group(age[order])
    attrs = UserAttributes(
        inter.user_ids,
        {
            "gender": Attribute.categorical("gender", gender[order], ["F", "M"]),
            "age": Attribute.categorical("age", groups.astype(str), [str(a) for a in AGE_GROUPS]),
            "age_years": Attribute("age_years", "continuous", age[order].astype(float)),
            "occupation": Attribute.categorical("occupation", occ[order]),
        },
    )
    titles = dict(zip(iid.tolist(), items["title"].to_numpy(), strict=True))
    item_titles = np.array([titles[i] for i in inter.item_ids.tolist()], dtype=str)
    return Dataset("ml-100k", inter, attrs, item_titles)


def _unique(df, ids: np.ndarray, what: str) -> None:
    _, first, counts = np.unique(ids, return_index=True, return_counts=True)
    if (counts > 1).any():
        dup_id = np.unique(ids)[counts > 1][0]
        rows = np.flatnonzero(ids == dup_id)
        raise DataError(f"{line_of(df, rows[1])}: duplicate {what} id {dup_id}")


def _check_values(df, field: str, values: np.ndarray, allowed: set) -> None:
    bad = ~np.isin(values, list(allowed))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{line_of(df, i)}: field '{field}' = '{values[i]}', expected one of "
            f"{sorted(allowed, key=str)}"
        )


def _known(df, values: np.ndarray, universe: np.ndarray, what: str, source: str) -> None:
    bad = ~np.isin(values, universe)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{line_of(df, i)}: {what} id {values[i]} is not listed in {source}")
