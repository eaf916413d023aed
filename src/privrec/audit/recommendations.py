"""Leakage through recommendations: can the top-k lists alone reveal an attribute?

Each user's top-k items (score ``user_vectors @ item_vectors.T + item_bias``, the user's
training items excluded — the candidate set of the validation ranking, docs/protocol.md,
Ranking accuracy) become a binary bag of items, and the attacker suite is run on those bags
instead of on the vectors. An observer who sees only what a user is recommended learns at most
this much.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from privrec.artifacts import Embeddings, load_embeddings
from privrec.audit.core import _check_vectors, run_audit
from privrec.audit.result import AuditResult
from privrec.data.attributes import UserAttributes
from privrec.data.dataset import Dataset
from privrec.data.split import Split, leave_last_out
from privrec.errors import ConfigError, DataError

#: Attackers that take sparse input, used by default on bags of items.
RECOMMENDATION_ATTACKERS: tuple[str, ...] = ("logistic", "linear_svm_c1", "random_forest")


def recommendation_bags(
    embeddings: Embeddings, split: Split, k: int = 10, chunk_size: int = 1024
) -> tuple[np.ndarray, sp.csr_matrix, np.ndarray]:
    """Top-k recommendations of every user of ``embeddings`` as a binary users × items matrix.

    Users and items are joined to ``split``'s index by original id (as strings); a user's
    training items in ``split.train`` are never recommended to them. Users absent from the split
    get recommendations over all items.

    Returns:
        ``(user_ids, bags, item_ids)``: the embeddings' user ids, a CSR matrix with ``k`` ones per
        row (fewer if fewer candidates remain), and the item id of every column (only items
        recommended to at least one user are kept as columns).

    Raises:
        ConfigError: ``k < 1``.
        DataError: non-finite vectors, or no item of the embeddings in the split.
    """
    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}")
    U = _check_vectors(embeddings.user_ids, embeddings.user_vectors).astype(np.float32)
    V = np.asarray(embeddings.item_vectors, dtype=np.float32)
    b = np.asarray(embeddings.item_bias, dtype=np.float32).reshape(-1)
    if not (np.isfinite(V).all() and np.isfinite(b).all()):
        raise DataError("item vectors or item biases contain NaN or inf")
    if V.ndim != 2 or V.shape[1] != U.shape[1]:
        raise DataError(
            f"item vectors have shape {V.shape}, expected (n_items, {U.shape[1]}) like the users"
        )
    train = split.train
    item_col = {str(i): j for j, i in enumerate(np.asarray(embeddings.item_ids))}
    col_of_split_item = np.array(
        [item_col.get(str(i), -1) for i in np.asarray(train.item_ids)], dtype=np.int64
    )
    if (col_of_split_item < 0).all():
        raise DataError("none of the embeddings' item ids is an item of the dataset")
    split_user = {str(u): i for i, u in enumerate(np.asarray(train.user_ids))}
    row_in_split = np.array(
        [split_user.get(str(u), -1) for u in np.asarray(embeddings.user_ids)], dtype=np.int64
    )
    csr = train.csr
    n_items = V.shape[0]
    kk = min(k, n_items)
    rows_out, cols_out = [], []
    for lo in range(0, len(U), chunk_size):
        hi = min(len(U), lo + chunk_size)
        scores = U[lo:hi] @ V.T + b
        for r in range(lo, hi):
            s = row_in_split[r]
            if s < 0:
                continue
            seen = col_of_split_item[csr.indices[csr.indptr[s] : csr.indptr[s + 1]]]
            scores[r - lo, seen[seen >= 0]] = -np.inf
        top = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        ok = np.isfinite(np.take_along_axis(scores, top, axis=1))
        rows_out.append(np.broadcast_to(np.arange(lo, hi)[:, None], top.shape)[ok])
        cols_out.append(top[ok])
    rows = np.concatenate(rows_out)
    cols = np.concatenate(cols_out)
    used = np.unique(cols)
    remap = np.full(n_items, -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    bags = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float64), (rows, remap[cols])), shape=(len(U), len(used))
    )
    return np.asarray(embeddings.user_ids), bags, np.asarray(embeddings.item_ids)[used]


def audit_recommendations(
    run_dir_embeddings: Embeddings | Path,
    split_or_dataset: Split | Dataset,
    attributes: UserAttributes | None = None,
    k: int = 10,
    names: Sequence[str] | None = None,
    attackers: str | Sequence[str] = RECOMMENDATION_ATTACKERS,
    folds: int = 5,
    seed: int = 0,
    jobs: int = 1,
    progress: bool = False,
) -> AuditResult:
    """Audit the leakage of attributes through each user's top-k recommendations.

    Args:
        run_dir_embeddings: :class:`~privrec.artifacts.Embeddings`, or a run directory / an
            ``embeddings.npz`` path.
        split_or_dataset: the :class:`~privrec.data.split.Split` the model was trained on, or
            the :class:`~privrec.data.dataset.Dataset` (split with ``leave_last_out``).
        attributes: the private attributes (default: the dataset's).
        k: recommendations per user.
        names: attributes to audit (default: all of them), as in
            :func:`~privrec.audit.core.audit_vectors`.
        attackers: a preset, a comma list or a sequence of attacker names/presets, as in
            :func:`~privrec.audit.core.audit_vectors`; every attacker must accept sparse input
            (logistic, linear SVMs, rbf_svm, decision_tree, random_forest, mlp, knn).
        folds: cross-validation folds (≥ 2).
        seed: seed of the fold split and of every attacker.
        jobs: parallel worker processes over (attacker, fold).
        progress: show a Rich progress bar over (attribute × attacker) on stderr.

    Raises:
        ConfigError: no attributes given for a bare split, or an attacker that needs dense input.
        DataError: as :func:`recommendation_bags` and :func:`~privrec.audit.core.audit_vectors`.
    """
    emb = (
        run_dir_embeddings
        if isinstance(run_dir_embeddings, Embeddings)
        else load_embeddings(Path(run_dir_embeddings))
    )
    if isinstance(split_or_dataset, Dataset):
        split = leave_last_out(split_or_dataset.interactions)
        if attributes is None:
            attributes = split_or_dataset.attributes
    else:
        split = split_or_dataset
    if attributes is None:
        raise ConfigError("audit_recommendations needs the attributes when given a bare split")
    user_ids, bags, item_ids = recommendation_bags(emb, split, k)
    extra = {
        "source": "recommendations",
        "k": k,
        "n_items": int(len(np.asarray(emb.item_ids))),
        "n_items_recommended": int(len(item_ids)),
    }
    return run_audit(
        user_ids, bags, attributes, names, attackers, folds, seed, jobs, progress, extra
    )
