"""Leakage audit: loading user vectors and attribute CSVs from every supported format."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privrec.artifacts import Embeddings, save_embeddings
from privrec.audit import load_vectors
from privrec.audit.attributes_csv import read_attributes_csv
from privrec.audit.vectors_io import _ids
from privrec.errors import ConfigError, DataError

IDS = np.array([3, 1, 7, 10])
VECS = np.arange(12, dtype=np.float64).reshape(4, 3) / 10


def _check(ids, vecs, expect_ids=IDS):
    assert ids.tolist() == list(expect_ids)
    np.testing.assert_allclose(vecs, VECS, rtol=1e-6)


def test_run_dir(tmp_path):
    emb = Embeddings(IDS, VECS.astype(np.float32), np.arange(5), np.zeros((5, 3)), np.zeros(5))
    run = tmp_path / "run"
    run.mkdir()
    save_embeddings(run / "embeddings.npz", emb)
    _check(*load_vectors(run))
    _check(*load_vectors(run / "embeddings.npz"))  # a full embeddings file is an npz too


def test_run_dir_without_embeddings(tmp_path):
    with pytest.raises(DataError, match="embeddings.npz: no such file"):
        load_vectors(tmp_path)


def test_npz(tmp_path):
    np.savez(tmp_path / "v.npz", user_ids=IDS.astype(str), user_vectors=VECS)
    ids, vecs = load_vectors(tmp_path / "v.npz")
    assert ids.dtype == np.int64  # integer literals come back as ints
    _check(ids, vecs)
    np.savez(tmp_path / "bad.npz", ids=IDS, user_vectors=VECS)
    with pytest.raises(DataError, match="missing array.*user_ids.*holds ids, user_vectors"):
        load_vectors(tmp_path / "bad.npz")
    np.savez(tmp_path / "obj.npz", user_ids=np.array([1, "a"], dtype=object), user_vectors=VECS)
    with pytest.raises(DataError, match="not a plain .npz"):
        load_vectors(tmp_path / "obj.npz")
    np.savez(tmp_path / "short.npz", user_ids=IDS[:3], user_vectors=VECS)
    with pytest.raises(DataError, match="3 user ids for 4 vectors"):
        load_vectors(tmp_path / "short.npz")
    np.savez(tmp_path / "flat.npz", user_ids=IDS, user_vectors=VECS.ravel())
    with pytest.raises(DataError, match="2-D"):
        load_vectors(tmp_path / "flat.npz")


def test_npy_with_npy_ids(tmp_path):
    np.save(tmp_path / "v.npy", VECS)
    np.save(tmp_path / "ids.npy", IDS)
    _check(*load_vectors(tmp_path / "v.npy", tmp_path / "ids.npy"))


@pytest.mark.parametrize(
    "name,text", [("ids.txt", "3\n1\n7\n10\n"), ("ids.csv", "user_id\n3\n1\n7\n10")]
)
def test_npy_with_text_ids(tmp_path, name, text):
    np.save(tmp_path / "v.npy", VECS)
    (tmp_path / name).write_text(text)
    _check(*load_vectors(tmp_path / "v.npy", tmp_path / name))


def test_npy_string_ids(tmp_path):
    np.save(tmp_path / "v.npy", VECS)
    (tmp_path / "ids.txt").write_text("a\nb\nc\n007\n")
    ids, _ = load_vectors(tmp_path / "v.npy", tmp_path / "ids.txt")
    assert ids.tolist() == ["a", "b", "c", "007"]


def test_npy_errors(tmp_path):
    np.save(tmp_path / "v.npy", VECS)
    with pytest.raises(ConfigError, match="no user ids; give the ids file"):
        load_vectors(tmp_path / "v.npy")
    (tmp_path / "ids.txt").write_text("1\n2\n")
    with pytest.raises(DataError, match="2 user ids for 4 vectors"):
        load_vectors(tmp_path / "v.npy", tmp_path / "ids.txt")
    (tmp_path / "ids2.txt").write_text("1\n\n2\n3\n")
    with pytest.raises(DataError, match="ids2.txt:2: empty line"):
        load_vectors(tmp_path / "v.npy", tmp_path / "ids2.txt")
    with pytest.raises(DataError, match="no such file"):
        load_vectors(tmp_path / "v.npy", tmp_path / "missing.txt")
    np.savez(tmp_path / "v.npz", user_ids=IDS, user_vectors=VECS)
    with pytest.raises(ConfigError, match="only goes with .npy"):
        load_vectors(tmp_path / "v.npz", tmp_path / "ids.txt")


def _frame(id_column="user_id"):
    df = pd.DataFrame(VECS, columns=["d0", "d1", "d2"])
    df.insert(0, id_column, IDS)
    return df


def test_csv(tmp_path):
    _frame().to_csv(tmp_path / "v.csv", index=False)
    _check(*load_vectors(tmp_path / "v.csv"))
    _frame("uid").to_csv(tmp_path / "u.csv", index=False)
    _check(*load_vectors(tmp_path / "u.csv", id_column="uid"))
    with pytest.raises(DataError, match="no id column 'user_id'.*columns are: uid, d0"):
        load_vectors(tmp_path / "u.csv")


def test_csv_non_numeric_column_is_named(tmp_path):
    df = _frame()
    df["d1"] = ["0.1", "x", "0.3", "0.4"]
    df.to_csv(tmp_path / "v.csv", index=False)
    with pytest.raises(DataError, match=r"column 'd1' is not numeric \(e.g. 'x'\)"):
        load_vectors(tmp_path / "v.csv")


def test_parquet(tmp_path):
    pytest.importorskip("pyarrow")
    _frame().to_parquet(tmp_path / "v.parquet", index=False)
    _check(*load_vectors(tmp_path / "v.parquet"))
    df = _frame()
    df["label"] = ["a", "b", "c", "d"]
    df.to_parquet(tmp_path / "bad.parquet", index=False)
    with pytest.raises(DataError, match="column 'label' is not numeric"):
        load_vectors(tmp_path / "bad.parquet")


def test_parquet_without_pyarrow_says_so(tmp_path, monkeypatch):
    (tmp_path / "v.parquet").write_bytes(b"PAR1")

    def no_engine(*args, **kwargs):
        raise ImportError("Unable to find a usable engine")

    monkeypatch.setattr(pd, "read_parquet", no_engine)
    with pytest.raises(DataError, match="needs pyarrow"):
        load_vectors(tmp_path / "v.parquet")


def test_unknown_format_and_missing_file(tmp_path):
    (tmp_path / "v.h5").write_bytes(b"")
    with pytest.raises(DataError, match="unknown vectors format .h5"):
        load_vectors(tmp_path / "v.h5")
    with pytest.raises(DataError, match="no such file"):
        load_vectors(tmp_path / "nope.npz")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-(10**12), 10**12), min_size=1, max_size=20))
def test_integer_ids_round_trip_as_ints(values):
    as_text = np.array([str(v) for v in values])
    assert _ids(as_text).tolist() == values
    assert _ids(np.array(values)).tolist() == values


def test_attributes_csv(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("user,gender,age,score\n1,F,25,0.5\n2,M,,1.5\n3,F,35,\n")
    attrs = read_attributes_csv(p, "user", continuous=["score"])
    assert attrs.user_ids.tolist() == [1, 2, 3]
    assert attrs["gender"].classes == ("F", "M")
    assert attrs["age"].values.tolist() == [0, -1, 1]
    assert attrs["score"].kind == "continuous"
    assert np.isnan(attrs["score"].values[2])
    with pytest.raises(DataError, match="no user column 'user_id'"):
        read_attributes_csv(p, "user_id")
    with pytest.raises(DataError, match=r"a.csv:2: column 'gender' = 'F', expected a number"):
        read_attributes_csv(p, "user", continuous=["gender"])
    p.write_text("user,gender\n1,F\n1,M\n")
    with pytest.raises(DataError, match="a.csv:3: duplicate user id '1'"):
        read_attributes_csv(p, "user")
