import numpy as np
import pytest

from privrec.data.attributes import Attribute, UserAttributes
from privrec.data.interactions import Interactions
from privrec.data.movielens import age_group, load_ml1m, load_ml100k
from privrec.data.registry import load_dataset
from privrec.data.synthetic import SyntheticConfig, make_synthetic
from privrec.data.tabular import load_csv
from privrec.errors import ConfigError, DataError


def test_interactions_index_and_views():
    inter = Interactions.from_ids(
        np.array([10, 10, 20]), np.array(["a", "b", "a"]), np.array([3, 1, 2])
    )
    assert inter.n_users == 2 and inter.n_items == 2 and len(inter) == 3
    assert inter.csr.toarray().tolist() == [[1, 1], [1, 0]]
    assert inter.contains(np.array([1, 1]), np.array([0, 1])).tolist() == [True, False]
    assert not inter.users.flags.writeable
    sub = inter.subset(np.array([True, False, True]))
    assert sub.user_ids is not None and np.array_equal(sub.item_ids, inter.item_ids)


def test_interactions_validation():
    with pytest.raises(DataError, match="duplicate"):
        Interactions.from_ids(np.array([1, 1]), np.array([5, 5]))
    with pytest.raises(DataError, match="entries"):
        Interactions(
            np.array([0]),
            np.array([0, 0]),
            np.array([0]),
            np.array([0]),
            np.array([1]),
            np.array([1]),
        )
    with pytest.raises(DataError, match="outside"):
        Interactions(
            np.array([3]), np.array([0]), np.array([0]), np.array([0]), np.array([1]), np.array([1])
        )


def test_attributes():
    a = Attribute.categorical("g", np.array(["M", "F", None, "M"], dtype=object))
    assert a.classes == ("F", "M") and a.values.tolist() == [1, 0, -1, 1]
    assert a.known.tolist() == [True, True, False, True]
    assert a.majority() == ("M", pytest.approx(2 / 3))
    ua = UserAttributes(np.array([1, 2, 3, 4]), {"g": a})
    al = ua.align_to(np.array([4, 9]))
    assert al["g"].values.tolist() == [1, -1]
    with pytest.raises(DataError, match="unknown attribute 'x'"):
        ua["x"]
    with pytest.raises(DataError, match="one per user"):
        UserAttributes(np.array([1]), {"g": a})


def test_age_groups_follow_ml1m_readme():
    ages = np.array([7, 17, 18, 24, 25, 34, 35, 44, 45, 49, 50, 55, 56, 73])
    assert age_group(ages).tolist() == [1, 1, 18, 18, 25, 25, 35, 35, 45, 45, 50, 50, 56, 56]


def _ml1m_files(
    tmp_path,
    ratings,
    users="1::F::1::10::48067\n2::M::56::16::70072\n",
    movies="1::Toy Story (1995)::Animation\n2::Jumanji (1995)::Adventure\n",
):
    (tmp_path / "ratings.dat").write_text(ratings, encoding="latin-1")
    (tmp_path / "users.dat").write_text(users, encoding="latin-1")
    (tmp_path / "movies.dat").write_text(movies, encoding="latin-1")
    return tmp_path


def test_ml1m_parser_small(tmp_path):
    ds = load_ml1m(_ml1m_files(tmp_path, "1::1::5::10\n1::2::3::11\n2::2::4::12\n"))
    assert len(ds.interactions) == 3 and ds.attributes["gender"].values.tolist() == [0, 1]
    assert ds.attributes["age"].classes[ds.attributes["age"].values[1]] == "56"


@pytest.mark.parametrize(
    ("ratings", "message"),
    [
        ("1::1::5::10\n1::2::3\n", r"ratings.dat:2: expected 4 fields"),
        ("1::1::5::10\nx::2::3::11\n", r"ratings.dat:2: field 'user' = 'x', expected an integer"),
        ("1::1::6::10\n", r"ratings.dat:1: field 'rating' = '6', expected an integer in 1..5"),
        ("1::1::5::10\n1::2::5::yesterday\n", r"ratings.dat:2: field 'timestamp'"),
        ("1::1::5::10\n1::1::4::11\n", r"ratings.dat:2: duplicate \(user, item\) pair"),
        ("3::1::5::10\n", r"ratings.dat:1: user id 3 is not listed in users.dat"),
        ("", r"ratings.dat: file is empty"),
        ("1::1::5::10\n1::2::5::11::9\n", r"ratings.dat:2: expected 4 fields"),
    ],
)
def test_ml1m_bad_lines(tmp_path, ratings, message):
    with pytest.raises(DataError, match=message):
        load_ml1m(_ml1m_files(tmp_path, ratings))


def test_ml1m_bad_user_line(tmp_path):
    with pytest.raises(DataError, match=r"users.dat:2: field 'gender' = 'X'"):
        load_ml1m(_ml1m_files(tmp_path, "1::1::5::10\n", users="1::F::1::10::1\n2::X::1::1::1\n"))


def test_ml1m_missing_file(tmp_path):
    with pytest.raises(DataError, match="missing movies.dat"):
        (tmp_path / "ratings.dat").write_text("1::1::5::1\n")
        (tmp_path / "users.dat").write_text("1::F::1::1::1\n")
        load_ml1m(tmp_path)


@pytest.mark.realdata
def test_ml100k_real(ml100k_dir):
    ds = load_ml100k(ml100k_dir)
    s = ds.interactions.summary()
    assert (s["users"], s["items"], s["interactions"]) == (943, 1682, 100_000)
    assert ds.attributes["gender"].majority()[1] == pytest.approx(0.7105, abs=1e-3)
    assert ds.attributes["age_years"].kind == "continuous"
    assert set(ds.attributes["age"].classes) == {"1", "18", "25", "35", "45", "50", "56"}


@pytest.mark.slow
@pytest.mark.realdata
def test_ml1m_real(ml1m):
    s = ml1m.interactions.summary()
    assert (s["users"], s["items"], s["interactions"]) == (6040, 3706, 1_000_209)
    assert ml1m.attributes["gender"].majority() == ("M", pytest.approx(0.717, abs=5e-4))
    assert ml1m.attributes["age"].majority() == ("25", pytest.approx(0.347, abs=5e-4))
    assert ml1m.attributes["occupation"].n_classes == 21


@pytest.mark.slow
@pytest.mark.realdata
def test_ml1m_reconstruction_warns(ml1m_dir):
    with pytest.warns(UserWarning, match="ratings.dat differs"):
        load_dataset("ml-1m", ml1m_dir, progress=False)


def test_csv_loader(tmp_path):
    (tmp_path / "i.csv").write_text("uid,iid,ts\nu1,a,5\nu1,b,6\nu2,a,7\n")
    (tmp_path / "a.csv").write_text("uid,sex,years\nu1,F,30\nu2,M,\n")
    ds = load_csv(
        tmp_path / "i.csv",
        tmp_path / "a.csv",
        user_col="uid",
        item_col="iid",
        time_col="ts",
        continuous=["years"],
    )
    assert ds.interactions.n_users == 2 and ds.attributes["sex"].classes == ("F", "M")
    assert np.isnan(ds.attributes["years"].values[1])


@pytest.mark.parametrize(
    ("inter", "attrs", "message"),
    [
        ("user,item\n1,a\n1,a\n", None, r"i.csv:3: duplicate \(user, item\)"),
        ("user,item,timestamp\n1,a,x\n", None, r"i.csv:2: field 'timestamp' = 'x'"),
        ("usr,item\n1,a\n", None, r"no column 'user'"),
        ("", None, "file is empty"),
        ("user,item\n1,a\n", "user,g\n9,F\n", r"user 9 has no interactions"),
        ("user,item\n1,a\n", "user,g\n1,F\n1,M\n", "duplicate user id"),
    ],
)
def test_csv_bad_input(tmp_path, inter, attrs, message):
    (tmp_path / "i.csv").write_text(inter)
    apath = None
    if attrs is not None:
        apath = tmp_path / "a.csv"
        apath.write_text(attrs)
    with pytest.raises(DataError, match=message):
        load_csv(tmp_path / "i.csv", apath)


def test_synthetic_is_seeded_and_planted():
    a = make_synthetic(n_users=300, n_items=80, seed=3)
    b = make_synthetic(n_users=300, n_items=80, seed=3)
    assert np.array_equal(a.interactions.items, b.interactions.items)
    assert a.attributes["attr"].n_classes == 2
    with pytest.raises(ConfigError, match="strength"):
        SyntheticConfig(strength=2)


def test_unknown_dataset():
    with pytest.raises(ConfigError, match="unknown dataset 'nope'"):
        load_dataset("nope")
