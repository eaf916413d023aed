import numpy as np
import pandas as pd
import pytest

from privrec.data.interactions import Interactions
from privrec.data.split import leave_last_out


def test_leave_last_out_ties_by_file_order():
    # user 1: ts 5,5,3 → sorted (3, 5@line1, 5@line2): test = line 2 item, val = line 1 item
    inter = Interactions.from_ids(
        np.array([1, 1, 1, 2, 2, 3, 3, 3, 3]),
        np.array([10, 11, 12, 10, 11, 10, 11, 12, 13]),
        np.array([5, 5, 3, 1, 2, 9, 8, 7, 6]),
    )
    s = leave_last_out(inter)
    ids = inter.item_ids
    test = dict(zip(inter.user_ids[s.test.users].tolist(), ids[s.test.items].tolist(), strict=True))
    val = dict(
        zip(
            inter.user_ids[s.validation.users].tolist(),
            ids[s.validation.items].tolist(),
            strict=True,
        )
    )
    assert test == {1: 11, 3: 10} and val == {1: 10, 3: 11}
    summ = s.summary()
    assert summ["users_train_only"] == 1 and summ["train_interactions"] == 5
    assert np.array_equal(s.train.item_ids, inter.item_ids)


@pytest.mark.slow
@pytest.mark.realdata
def test_split_matches_oracle(ml1m, ml1m_dir):
    s = leave_last_out(ml1m.interactions)
    st = pd.read_csv(ml1m_dir / "last_items_status.csv")
    uid, iid = ml1m.interactions.user_ids, ml1m.interactions.item_ids
    test = pd.Series(iid[s.test.items], index=uid[s.test.users])
    val = pd.Series(iid[s.validation.items], index=uid[s.validation.users])
    assert (st.UserID.map(test) == st["last"]).all()
    assert (st.UserID.map(val) == st["second"]).all()
    assert s.summary()["train_interactions"] == 1_000_209 - 2 * 6040
