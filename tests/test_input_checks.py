"""Bad input files fail loudly, in one line naming the file (and line, field), never silently.

One group of tests per family of failure:

* out-of-range numbers: values beyond int64 or the field's range, and non-finite values, are
  rejected instead of being cast (``1e20`` used to load as -2**63);
* missing-value spellings: ``NaN``, ``NA``, ``None``, ``null``... in attribute CSVs are missing
  values, not classes, and thin attributes warn at load time;
* error location: every message names the file (and line, column) at fault;
* unreadable files: permission denied, truncated archives and absurd ``.npy`` headers are a
  ``DataError``, never a traceback or a huge allocation.
"""

from __future__ import annotations

import builtins
import io
import os
import re
import tracemalloc
import warnings
import zipfile

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privrec.artifacts import Embeddings, save_embeddings
from privrec.audit import load_vectors
from privrec.audit.attributes_csv import read_attributes_csv
from privrec.data.movielens import load_ml1m, load_ml100k
from privrec.data.parsing import AttributeWarning, read_csv_strings, to_int
from privrec.data.tabular import load_csv
from privrec.errors import DataError

INT64_MAX = 2**63 - 1


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg, f"message spans lines: {msg!r}"
    return msg


def _ml1m(tmp_path, ratings, users=None):
    users = users or "".join(f"{u}::{'FM'[u % 2]}::25::3::12345\n" for u in range(1, 4))
    (tmp_path / "ratings.dat").write_text(ratings, encoding="latin-1")
    (tmp_path / "users.dat").write_text(users, encoding="latin-1")
    (tmp_path / "movies.dat").write_text("1::A (1990)::Drama\n2::B (1991)::Comedy\n")
    return tmp_path


def _ml100k(tmp_path, data, users=None):
    users = users or "1|30|F|writer|11111\n2|41|M|none|22222\n"
    (tmp_path / "u.data").write_text(data)
    (tmp_path / "u.user").write_text(users)
    genres = "|".join("0" * 19)
    (tmp_path / "u.item").write_text(
        f"1|A (1990)|01-Jan-1990||http://a|{genres}\n2|B (1991)|01-Jan-1991||http://b|{genres}\n",
        encoding="latin-1",
    )
    return tmp_path


def _csv(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


# ============================================================== 1. out-of-range numbers
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1e20", r"expected an integer in 0\.\.9223372036854775807 \(it must fit in a 64-bit"),
        ("99999999999999999999", r"expected an integer in 0\.\.9223372036854775807"),
        ("9223372036854775808", r"expected an integer in 0\.\.9223372036854775807"),
        ("-3", r"expected an integer in 0\.\.9223372036854775807$"),
        ("inf", r"expected a finite integer"),
        ("-Infinity", r"expected a finite integer"),
        ("nan", r"expected a finite integer"),
        ("2.5", r"expected an integer in 0\.\."),
    ],
)
def test_out_of_range_numbers_ml1m_timestamp(tmp_path, value, expected):
    folder = _ml1m(tmp_path, f"1::1::5::100\n2::2::4::{value}\n3::1::3::102\n")
    with pytest.raises(DataError) as exc:
        load_ml1m(folder)
    msg = _one_line(exc)
    assert msg.startswith(f"{folder / 'ratings.dat'}:2: field 'timestamp' = '{value}'")
    assert re.search(expected, msg), msg


@pytest.mark.parametrize(
    ("ratings", "users", "where"),
    [
        ("1::18446744073709551617::5::1\n", None, "ratings.dat:1: field 'item'"),
        ("1::1::5e30::1\n", None, "ratings.dat:1: field 'rating' = '5e30', expected an integer in 1..5"),
        ("1::1::5::1\n", "1::F::1e19::3::1\n", "users.dat:1: field 'age' = '1e19'"),
        ("1::1::5::1\n", "1::F::25::-inf::1\n", "users.dat:1: field 'occupation' = '-inf'"),
        ("1::1::5::1\n", "1::F::25::3::1\n-9223372036854775809::M::25::3::1\n", "users.dat:2: field 'user'"),
    ],
)  # fmt: skip
def test_out_of_range_numbers_ml1m_every_field(tmp_path, ratings, users, where):
    with pytest.raises(DataError, match=where.replace("(", r"\(")) as exc:
        load_ml1m(_ml1m(tmp_path, ratings, users))
    _one_line(exc)


def test_out_of_range_numbers_ml100k(tmp_path):
    with pytest.raises(DataError, match=r"u.data:2: field 'timestamp' = '1E\+21', expected") as e:
        load_ml100k(_ml100k(tmp_path, "1\t1\t5\t10\n1\t2\t3\t1E+21\n"))
    _one_line(e)
    with pytest.raises(
        DataError, match=r"u.user:2: field 'age' = '4e2', expected an integer in 0..130"
    ):
        load_ml100k(_ml100k(tmp_path, "1\t1\t5\t10\n", users="1|30|F|a|1\n2|4e2|M|b|2\n"))


def test_out_of_range_numbers_valid_values_keep_loading(tmp_path):
    # the int64 limit itself, exponent notation and integral floats are integers
    ratings = f"1::1::5::{INT64_MAX}\n2::2::4::1e3\n3::1::3::7.0\n"
    ds = load_ml1m(_ml1m(tmp_path, ratings))
    assert ds.interactions.timestamps.tolist() == [INT64_MAX, 1000, 7]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1e20", "expected an integer in -9223372036854775808..9223372036854775807"),
        ("99999999999999999999", "expected an integer in -9223372036854775808.."),
        ("-1e19", "expected an integer in -9223372036854775808.."),
        ("inf", "expected a finite integer"),
        ("NaN", "expected a finite integer"),
        ("later", "expected an integer"),
    ],
)
def test_out_of_range_numbers_csv_timestamp(tmp_path, value, expected):
    p = _csv(tmp_path, "i.csv", f"user,item,timestamp\nu1,a,5\nu1,b,{value}\nu2,a,7\n")
    with pytest.raises(DataError) as exc:
        load_csv(p)
    msg = _one_line(exc)
    assert msg.startswith(f"{p}:3: field 'timestamp' = '{value}', ")
    assert expected in msg


def test_out_of_range_numbers_csv_exact_large_timestamps(tmp_path):
    # beyond a float's 53-bit mantissa, mixed with a float literal: converted exactly
    big = 2**53 + 1
    p = _csv(tmp_path, "i.csv", f"user,item,timestamp\nu1,a,{big}\nu1,b,1.0\nu2,a,{INT64_MAX}\n")
    assert load_csv(p).interactions.timestamps.tolist() == [big, 1, INT64_MAX]


@pytest.mark.parametrize("value", ["inf", "-inf", "Infinity", "1e400"])
def test_out_of_range_numbers_continuous_attribute(tmp_path, value):
    _csv(tmp_path, "i.csv", "user,item\n1,a\n2,a\n3,b\n")
    a = _csv(tmp_path, "a.csv", f"user,score\n1,0.5\n2,{value}\n3,1\n")
    for load in (
        lambda: read_attributes_csv(a, continuous=["score"]),
        lambda: load_csv(tmp_path / "i.csv", a, continuous=["score"]),
    ):
        with pytest.raises(DataError) as exc:
            load()
        msg = _one_line(exc)
        assert msg.startswith(f"{a}:3: column 'score' = '{value}', expected a finite number")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-(2**70), 2**70), min_size=1, max_size=8), st.booleans())
def test_out_of_range_numbers_to_int_is_exact_or_raises(values, with_float):
    texts = [str(v) for v in values] + (["3.0"] if with_float else [])
    df = pd.DataFrame({"n": texts})
    df.attrs["path"] = "x.dat"
    expect = values + ([3] if with_float else [])
    if all(-(2**63) <= v <= INT64_MAX for v in values):
        assert to_int(df, "n").tolist() == expect
    else:
        first = next(i for i, v in enumerate(values) if not -(2**63) <= v <= INT64_MAX)
        with pytest.raises(DataError, match=rf"^x.dat:{first + 1}: field 'n' = '{values[first]}'"):
            to_int(df, "n")


# ============================================================== 2. missing-value spellings
MARKERS = ["NaN", "nan", "NA", "N/A", "None", "null", "", "NULL", "<NA>", "  n/a  "]


def _attrs_text(values, n_each=6):
    """A user,gender CSV: ``n_each`` F and M users, then one user per value in ``values``."""
    rows = [f"{u},{'FM'[u % 2]}" for u in range(1, 2 * n_each + 1)]
    rows += [f"{2 * n_each + 1 + k},{v}" for k, v in enumerate(values)]
    return "user,gender\n" + "\n".join(rows) + "\n"


def test_missing_value_spellings_attributes_csv(tmp_path):
    p = _csv(tmp_path, "a.csv", _attrs_text(MARKERS))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 6 F, 6 M: a healthy attribute does not warn
        attrs = read_attributes_csv(p)
    g = attrs["gender"]
    assert g.classes == ("F", "M")
    assert (g.values[-len(MARKERS) :] == -1).all() and g.known.sum() == 12


def test_missing_value_spellings_tabular(tmp_path):
    n = 12 + len(MARKERS)
    inter = _csv(tmp_path, "i.csv", "user,item\n" + "".join(f"{u},a\n" for u in range(1, n + 1)))
    a = _csv(tmp_path, "a.csv", _attrs_text(MARKERS))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = load_csv(inter, a)
    assert ds.attributes["gender"].classes == ("F", "M")
    assert int(ds.attributes["gender"].known.sum()) == 12


def test_missing_value_spellings_continuous(tmp_path):
    p = _csv(tmp_path, "a.csv", "user,age\n1,30\n2,NA\n3,null\n4,None\n5,\n6,41.5\n")
    values = read_attributes_csv(p, continuous=["age"])["age"].values
    assert values[0] == 30 and values[5] == 41.5 and np.isnan(values[1:5]).all()


def test_missing_value_spellings_other_case_stays_a_class(tmp_path):
    # MovieLens 100K has a real occupation "none": only pandas' spellings are missing
    rows = "".join(f"{u},{'none' if u <= 6 else 'writer'}\n" for u in range(1, 13))
    attrs = read_attributes_csv(_csv(tmp_path, "a.csv", "user,occupation\n" + rows))
    assert attrs["occupation"].classes == ("none", "writer")


def test_missing_value_spellings_warn_single_class(tmp_path):
    p = _csv(
        tmp_path, "a.csv", "user,gender\n" + "".join(f"{u},F\n" for u in range(1, 9)) + "9,NA\n"
    )
    with pytest.warns(AttributeWarning, match=r"a.csv: attribute 'gender' has a single class \('F', 8 users\)"):  # fmt: skip
        read_attributes_csv(p)


def test_missing_value_spellings_warn_rare_class(tmp_path):
    p = _csv(tmp_path, "a.csv", _attrs_text(["X", "X", "Y"]))
    with pytest.warns(AttributeWarning) as record:
        read_attributes_csv(p)
    (w,) = [r for r in record if issubclass(r.category, AttributeWarning)]
    msg = str(w.message)
    assert "\n" not in msg
    assert "attribute 'gender' has 2 classes with fewer than 5 users: 'X' (2), 'Y' (1)" in msg
    # emitted at load time, attributed to the caller (this file), not to privrec internals
    assert w.filename == __file__


def test_missing_value_spellings_warn_in_csv_loader(tmp_path):
    inter = _csv(tmp_path, "i.csv", "user,item\n" + "".join(f"{u},a\n" for u in range(1, 16)))
    a = _csv(tmp_path, "a.csv", _attrs_text(["X", "null", "None"]))
    with pytest.warns(AttributeWarning, match=r"'X' \(1\)"):
        ds = load_csv(inter, a)
    assert ds.attributes["gender"].classes == ("F", "M", "X")


def test_missing_value_spellings_all_missing_column(tmp_path):
    p = _csv(tmp_path, "a.csv", "user,gender\n1,NA\n2,\n3,null\n")
    with pytest.raises(DataError, match=r"a.csv: column 'gender' has no values") as exc:
        read_attributes_csv(p)
    _one_line(exc)


def test_missing_value_spellings_constant_continuous_warns(tmp_path):
    p = _csv(tmp_path, "a.csv", "user,age\n1,30\n2,30\n3,NA\n")
    with pytest.warns(AttributeWarning, match=r"continuous attribute 'age' has a single value"):
        read_attributes_csv(p, continuous=["age"])


# ============================================================== 3. error location
def test_error_location_continuous_inf(tmp_path):
    # blank lines are counted: the message gives the real file line
    _csv(tmp_path, "i.csv", "user,item\n1,a\n2,a\n3,a\n")
    a = _csv(tmp_path, "a.csv", "user,g,height\n1,F,1.7\n\n2,M,1.8\n3,F,inf\n")
    for load in (
        lambda: read_attributes_csv(a, continuous=["height"]),
        lambda: load_csv(tmp_path / "i.csv", a, continuous=["height"]),
    ):
        with pytest.raises(DataError) as exc:
            load()
        assert _one_line(exc).startswith(f"{a}:5: column 'height' = 'inf', expected a finite")


def test_error_location_non_numeric_continuous_in_csv_loader(tmp_path):
    _csv(tmp_path, "i.csv", "user,item\n1,a\n2,a\n")
    a = _csv(tmp_path, "a.csv", "user,height\n1,1.7\n2,tall\n")
    with pytest.raises(DataError, match=r"a.csv:3: column 'height' = 'tall', expected a number"):
        load_csv(tmp_path / "i.csv", a, continuous=["height"])


def test_error_location_csv_lines_count_blank_lines(tmp_path):
    p = _csv(tmp_path, "i.csv", "user,item,timestamp\n\n1,a,1\n   \n1,a,2\n")
    with pytest.raises(DataError, match=r"i.csv:5: duplicate \(user, item\) pair"):
        load_csv(p)
    df = read_csv_strings(_csv(tmp_path, "q.csv", 'a,b\n"multi\nline",1\n2,3\n'))
    assert len(df) == 2  # a quoted newline: still one message per row, no crash


def test_error_location_1d_vectors_name_the_vector_file(tmp_path):
    np.save(tmp_path / "vectors.npy", np.arange(4.0))
    (tmp_path / "ids.txt").write_text("1\n2\n3\n4\n")
    np.save(tmp_path / "ids.npy", np.arange(4))
    for ids in ("ids.txt", "ids.npy"):
        with pytest.raises(DataError) as exc:
            load_vectors(tmp_path / "vectors.npy", tmp_path / ids)
        msg = _one_line(exc)
        assert msg.startswith(f"{tmp_path / 'vectors.npy'}: user vectors must be 2-D")
        assert "ids." not in msg


def test_error_location_id_count_names_both_files(tmp_path):
    np.save(tmp_path / "vectors.npy", np.zeros((3, 2)))
    (tmp_path / "ids.txt").write_text("1\n2\n")
    with pytest.raises(DataError, match=r"ids.txt: 2 user ids for 3 vectors in .*vectors.npy"):
        load_vectors(tmp_path / "vectors.npy", tmp_path / "ids.txt")


# ============================================================== 4. unreadable files
def _deny(monkeypatch, *names):
    """Make ``open`` fail with EACCES for files with these names (root can read anything)."""
    real_open = builtins.open

    def fake_open(file, *args, **kwargs):
        if os.path.basename(os.fspath(file)) in names:
            raise PermissionError(13, "Permission denied", os.fspath(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)


def _unreadable_cases(tmp_path):
    _ml1m(tmp_path, "1::1::5::1\n")
    _csv(tmp_path, "i.csv", "user,item\n1,a\n")
    _csv(tmp_path, "a.csv", "user,g\n1,F\n")
    np.save(tmp_path / "v.npy", np.zeros((2, 2)))
    np.save(tmp_path / "ids.npy", np.arange(2))
    (tmp_path / "ids.txt").write_text("1\n2\n")
    np.savez(tmp_path / "v.npz", user_ids=np.arange(2), user_vectors=np.zeros((2, 2)))
    pd.DataFrame({"user_id": [1, 2], "d0": [0.0, 1.0]}).to_csv(tmp_path / "v.csv", index=False)
    return [
        ("ratings.dat", lambda: load_ml1m(tmp_path), "lines of 4"),
        ("i.csv", lambda: load_csv(tmp_path / "i.csv"), "a CSV file"),
        ("a.csv", lambda: read_attributes_csv(tmp_path / "a.csv"), "a CSV file"),
        ("v.npy", lambda: load_vectors(tmp_path / "v.npy", tmp_path / "ids.npy"), ".npy array"),
        ("ids.npy", lambda: load_vectors(tmp_path / "v.npy", tmp_path / "ids.npy"), ".npy"),
        ("ids.txt", lambda: load_vectors(tmp_path / "v.npy", tmp_path / "ids.txt"), "user ids"),
        ("v.npz", lambda: load_vectors(tmp_path / "v.npz"), ".npz archive"),
        ("v.csv", lambda: load_vectors(tmp_path / "v.csv"), "a CSV file"),
    ]


def test_unreadable_files_permission_denied_simulated(tmp_path, monkeypatch):
    for name, load, expected in _unreadable_cases(tmp_path):
        with monkeypatch.context() as m:
            _deny(m, name)
            with pytest.raises(DataError) as exc:
                load()
        msg = _one_line(exc)
        assert msg.startswith(f"{tmp_path / name}: cannot read (Permission denied); expected")
        assert expected in msg, msg


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="running as root: chmod 000 does not stop root reading a file "
    "(test_unreadable_files_permission_denied_simulated covers this case)",
)
def test_unreadable_files_permission_denied(tmp_path):
    for name, load, _ in _unreadable_cases(tmp_path):
        path = tmp_path / name
        path.chmod(0)
        try:
            with pytest.raises(DataError, match=r"cannot read \(Permission denied\)") as exc:
                load()
            assert _one_line(exc).startswith(str(path))
        finally:
            path.chmod(0o644)


def _npz_bytes():
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    np.savez(buf, user_ids=np.arange(200), user_vectors=rng.standard_normal((200, 16)))
    return buf.getvalue()


@pytest.mark.parametrize("keep", [0.9, 0.5, 0.1, 10])
def test_unreadable_files_truncated_npz(tmp_path, keep):
    data = _npz_bytes()
    p = tmp_path / "v.npz"
    p.write_bytes(data[: int(keep if keep > 1 else len(data) * keep)])
    with pytest.raises(DataError) as exc:
        load_vectors(p)
    msg = _one_line(exc)
    assert msg.startswith(f"{p}: not a readable .npz, truncated or corrupt")
    assert "expected a .npz archive" in msg


def test_unreadable_files_corrupt_npz_member(tmp_path):
    buf = io.BytesIO()
    np.savez_compressed(buf, user_ids=np.arange(200), user_vectors=np.ones((200, 16)))
    data = bytearray(buf.getvalue())
    data[100:140] = b"\xff" * 40  # inside the first member's compressed stream
    p = tmp_path / "v.npz"
    p.write_bytes(bytes(data))
    with pytest.raises(DataError, match=rf"^{p}: array '\w+': not a readable .npz") as exc:
        load_vectors(p)
    _one_line(exc)


def _npy_header(shape, descr="<f8", payload=b"\0" * 64):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return buf.getvalue() + payload


@pytest.mark.parametrize("shape", [(10**12, 10**6), (10**5, 10**5), (3, 3)])
def test_unreadable_files_absurd_npy_header(tmp_path, shape):
    (tmp_path / "v.npy").write_bytes(_npy_header(shape))
    np.save(tmp_path / "ids.npy", np.arange(3))
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as exc:
            load_vectors(tmp_path / "v.npy", tmp_path / "ids.npy")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20  # checked against the file size before allocating anything
    msg = _one_line(exc)
    assert msg.startswith(f"{tmp_path / 'v.npy'}: header claims shape {shape} of float64")
    assert "but only 64 bytes of data follow; expected a complete .npy array" in msg


def test_unreadable_files_absurd_ids_npy_header(tmp_path):
    np.save(tmp_path / "v.npy", np.zeros((3, 2)))
    (tmp_path / "ids.npy").write_bytes(_npy_header((10**15,), "<i8"))
    with pytest.raises(DataError, match=r"ids.npy: header claims shape \(1000000000000000,\)"):
        load_vectors(tmp_path / "v.npy", tmp_path / "ids.npy")


def test_unreadable_files_absurd_npz_member_header(tmp_path):
    p = tmp_path / "v.npz"
    ids = io.BytesIO()
    np.save(ids, np.arange(3))
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("user_ids.npy", ids.getvalue())
        z.writestr("user_vectors.npy", _npy_header((10**12, 10**6)))
    with pytest.raises(DataError, match=r"v.npz: array 'user_vectors': header claims shape") as e:
        load_vectors(p)
    _one_line(e)
    run = tmp_path / "run"  # a run directory's embeddings.npz is checked the same way
    run.mkdir()
    (run / "embeddings.npz").write_bytes(p.read_bytes())
    with pytest.raises(DataError, match=r"embeddings.npz: array 'user_vectors': header claims"):
        load_vectors(run)


def test_unreadable_files_truncated_npy_and_garbage(tmp_path):
    np.save(tmp_path / "ids.npy", np.arange(4))
    np.save(tmp_path / "full.npy", np.ones((4, 3)))
    (tmp_path / "v.npy").write_bytes((tmp_path / "full.npy").read_bytes()[:-8])
    with pytest.raises(DataError, match=r"v.npy: header claims shape \(4, 3\) of float64 \(96 bytes\) but only 88"):  # fmt: skip
        load_vectors(tmp_path / "v.npy", tmp_path / "ids.npy")
    (tmp_path / "g.npy").write_bytes(b"not numpy")
    with pytest.raises(DataError, match=r"g.npy: not a valid .npy header") as exc:
        load_vectors(tmp_path / "g.npy", tmp_path / "ids.npy")
    _one_line(exc)


def test_unreadable_files_valid_inputs_still_load(tmp_path):
    vecs = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.save(tmp_path / "v.npy", vecs)
    np.save(tmp_path / "ids.npy", np.array([5, 6, 7, 8]))
    ids, v = load_vectors(tmp_path / "v.npy", tmp_path / "ids.npy")
    assert ids.tolist() == [5, 6, 7, 8] and v.dtype == np.float32 and np.array_equal(v, vecs)
    np.savez_compressed(tmp_path / "c.npz", user_ids=np.array(["a", "b"]), user_vectors=vecs[:2])
    ids, v = load_vectors(tmp_path / "c.npz")
    assert ids.tolist() == ["a", "b"] and np.array_equal(v, vecs[:2])
    emb = Embeddings(np.arange(4), vecs, np.arange(5), np.zeros((5, 3)), np.zeros(5))
    run = tmp_path / "run"
    run.mkdir()
    save_embeddings(run / "embeddings.npz", emb)
    ids, v = load_vectors(run)
    assert ids.tolist() == [0, 1, 2, 3] and np.array_equal(v, vecs)
