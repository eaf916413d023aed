"""Reference MultVAE and LightGCN, trained by outside libraries on privrec's exact split.

What is measured
----------------
Two reference implementations are trained on the **training part only** of privrec's
MovieLens-1M leave-last-out split (``load_ml1m`` + ``leave_last_out``; binary implicit
feedback) and scored with privrec's own full-ranking ``evaluate_split`` (HR@10 / NDCG@10;
training items excluded, and the validation item too when testing), so that privrec's own
MultVAE / LightGCN can be put side by side with them:

* ``vaecf``: Cornac's ``cornac.models.VAECF`` (Mult-VAE, Liang et al. 2018) with
  ``k=50, autoencoder_structure=[600], n_epochs=50, batch_size=100, learning_rate=0.001,
  seed=0`` (Cornac's defaults otherwise: tanh, multinomial likelihood, beta=1 without
  annealing, no dropout). At evaluation the encoder input is the user's training-item vector
  and the score is the decoder's softmax over all items at ``z = mu`` (exactly what
  ``VAECF.score(user)`` computes, only batched; checked against it for a few users).
  Cornac re-indexes users and items; its ``uid_map`` / ``iid_map`` are used to put the score
  columns back into privrec's item order.
* ``lightgcn``: RecBole's ``recbole.model.general_recommender.LightGCN`` (He et al. 2020),
  trained with RecBole's own ``Trainer._train_epoch`` (BPR, one uniform negative per positive,
  Adam) on RecBole atomic files written from the split (``benchmark_filename``). Config:
  ``embedding_size=64, n_layers=3, reg_weight=1e-4, learning_rate=1e-3,
  train_batch_size=8192`` (RecBole's defaults otherwise, e.g. ``require_pow=False``). The
  batch is 4x RecBole's default 2048 because one thread is slow: every step propagates the
  whole graph, so a 900 s budget buys about the same number of *steps* either way, and
  2048 would give only ~15 epochs. RecBole's COO ``torch.sparse.mm`` is swapped for the same
  product in CSR (forward and, the adjacency being symmetric, backward): ~5x faster, and
  checked at start-up to give the same embeddings, loss and gradients as RecBole's path
  (``--lgcn-spmm recbole`` keeps RecBole's). It is
  trained for as many epochs as fit in ``--lgcn-budget-s`` seconds of training time
  (default 900 s), then scored with privrec's ``evaluate_split`` from the propagated user
  and item embeddings (``model.forward()``), mapped back to privrec indices through RecBole's
  token maps. RecBole never sees the test items: its "valid" and "test" atomic files are both
  privrec's validation part (RecBole's own evaluation is never run).

Nothing is tuned on the test split: both models run a fixed configuration; the LightGCN
validation HR@10 curve (every ``--lgcn-val-every`` epochs) is recorded for information only
and the *last* model is the one scored.

Timing: ``train_seconds`` is the wall time of training only (data set building and
evaluation excluded); ``seconds_per_epoch = train_seconds / epochs``. Everything runs on
``--threads`` torch threads (default 1; ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` are set to
the same value before torch is imported unless already set).

Extra install (NOT project dependencies; a separate venv keeps the project's untouched)::

    python3 -m venv /work/refvenv && . /work/refvenv/bin/activate
    pip install torch==2.13.0        # the CPU wheel
    pip install -e .                 # privrec (data loading, split, evaluation)
    pip install cornac==3.0.1 recbole==1.2.1

RecBole 1.2.1 predates numpy 2: the numpy aliases it touches (``np.float_`` etc.) are
restored below before it is imported, ``scipy.sparse.dok_matrix._update`` (used by
LightGCN's adjacency construction, removed from new scipy) is re-added, and ``recbole.quick_start`` (which needs ray and
``pkg_resources``) is not used.

Command (from the repository root)::

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python benchmarks/reference_models.py \\
        --models vaecf,lightgcn --out benchmarks/results/reference_models.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = ("vaecf", "lightgcn")


def _set_thread_env(n: int) -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(n))


# ---------------------------------------------------------------------------------- helpers
def _versions() -> dict:
    import numpy as np
    import scipy
    import torch

    out = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "torch_num_threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "MKL_NUM_THREADS": os.environ.get("MKL_NUM_THREADS"),
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    out["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    for mod in ("cornac", "recbole", "privrec"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - optional
            out[mod] = None
    out["loadavg_start"] = list(os.getloadavg())
    return out


def _metrics(score_fn, split) -> dict:
    from privrec.evaluation.protocol import evaluate_split

    t0 = time.perf_counter()
    val = evaluate_split(score_fn, split, "validation", 10)
    test = evaluate_split(score_fn, split, "test", 10)
    return {
        "validation": {"hr@10": val["hr@10"], "ndcg@10": val["ndcg@10"], "users": val["users"]},
        "test": {"hr@10": test["hr@10"], "ndcg@10": test["ndcg@10"], "users": test["users"]},
        "eval_seconds": time.perf_counter() - t0,
    }


# ---------------------------------------------------------------------------------- VAECF
def run_vaecf(args, split) -> dict:
    import cornac
    import numpy as np
    import torch
    from cornac.data import Dataset
    from cornac.models import VAECF

    tr = split.train
    triples = list(zip(tr.users.tolist(), tr.items.tolist(), [1.0] * len(tr), strict=True))
    train_set = Dataset.from_uir(triples, seed=args.seed)
    # privrec index -> cornac index (cornac numbers ids in order of first appearance)
    u2c = np.array([train_set.uid_map[u] for u in range(tr.n_users)], dtype=np.int64)
    i2c = np.array([train_set.iid_map.get(i, -1) for i in range(tr.n_items)], dtype=np.int64)
    missing_items = int((i2c < 0).sum())
    c2i = np.full(train_set.num_items, -1, dtype=np.int64)
    c2i[i2c[i2c >= 0]] = np.flatnonzero(i2c >= 0)
    cfg = {
        "k": 50,
        "autoencoder_structure": [600],
        "n_epochs": args.vae_epochs,
        "batch_size": 100,
        "learning_rate": 0.001,
        "seed": args.seed,
    }
    model = VAECF(**cfg, verbose=False, use_gpu=False)
    t0 = time.perf_counter()
    model.fit(train_set)
    train_s = time.perf_counter() - t0

    r_mat = model.r_mat.tocsr()
    vae = model.vae.eval()
    safe_cols = torch.from_numpy(np.where(i2c < 0, 0, i2c))
    missing = torch.from_numpy(i2c < 0)

    @torch.no_grad()
    def score(users: np.ndarray) -> torch.Tensor:
        x = r_mat[u2c[np.asarray(users, dtype=np.int64)]].copy()
        x.data = np.ones(len(x.data))  # binarise, as VAECF.score does
        mu, _ = vae.encode(torch.tensor(x.toarray(), dtype=torch.float32))
        s = vae.decode(mu)[:, safe_cols]
        s[:, missing] = -float("inf")
        return s

    # hand check: batched scores == VAECF.score(user) mapped back to privrec columns;
    # and the encoder input is exactly privrec's training row of that user
    check_users = [0, 1, 17, tr.n_users // 2, tr.n_users - 1]
    batched = score(np.array(check_users)).numpy()
    train_csr = tr.csr
    for k, u in enumerate(check_users):
        ref = model.score(int(u2c[u]))[np.where(i2c < 0, 0, i2c)]
        assert np.allclose(batched[k][i2c >= 0], ref[i2c >= 0], rtol=1e-5, atol=1e-8), u
        c_items = set(c2i[r_mat[u2c[u]].indices].tolist())
        assert c_items == set(train_csr[u].indices.tolist()), u

    res = _metrics(score, split)
    return {
        "implementation": f"cornac {cornac.__version__} cornac.models.VAECF (Mult-VAE)",
        "config": {
            **cfg,
            "act_fn": model.act_fn,
            "likelihood": model.likelihood,
            "beta": model.beta,
            "scoring": "softmax decoder output at z = mu of the user's binarised training row",
        },
        "epochs": args.vae_epochs,
        "train_seconds": train_s,
        "seconds_per_epoch": train_s / args.vae_epochs,
        **res,
        "num_threads": torch.get_num_threads(),
        "items_without_training_interactions": missing_items,
        "items_without_training_interactions_scoring": "-inf (unknown to cornac)",
        "index_check_users": check_users,
    }


# ---------------------------------------------------------------------------------- LightGCN
def _patch_numpy_for_recbole() -> list[str]:
    """RecBole 1.2.1 predates numpy 2 / scipy 1.15: its ``Config.compatibility_settings``
    reads numpy aliases that numpy 2 removed, and LightGCN uses a private scipy method."""
    import numpy as np

    patched = []
    for name, value in {
        "float_": np.float64,
        "complex_": np.complex128,
        "unicode_": np.str_,
        "float": np.float64,
        "int": np.int_,
        "bool": np.bool_,
        "object": np.object_,
        "str": np.str_,
        "complex": np.complex128,
        "long": np.int_,
        "unicode": np.str_,
    }.items():
        if name not in np.__dict__:
            setattr(np, name, value)
            patched.append(f"numpy.{name}")
    # LightGCN.get_norm_adj_mat calls dok_matrix._update(dict), gone from new scipy (the
    # dok's entries now live in ._dict); same semantics: bulk-set the given entries
    import scipy.sparse as sp

    if not hasattr(sp.dok_matrix, "_update"):
        sp.dok_matrix._update = lambda self, data: self._dict.update(data)
        patched.append("scipy.sparse.dok_matrix._update")
    return patched


class _SymSpMM:
    """``y = A @ x`` for a symmetric sparse ``A`` held in CSR: the gradient ``A.T @ g`` is
    ``A @ g``, so both directions use the fast CSR kernel (torch's COO ``sparse.mm``, which
    RecBole uses, takes ~0.5 s per 3-layer forward+backward on one thread; this ~0.1 s)."""

    @staticmethod
    def build():
        import torch

        class Fn(torch.autograd.Function):
            @staticmethod
            def forward(ctx, a, x):
                ctx.a = a
                return torch.sparse.mm(a, x)

            @staticmethod
            def backward(ctx, g):
                return None, torch.sparse.mm(ctx.a, g.contiguous())

        return Fn


def _use_symmetric_csr_spmm(model, batch) -> dict:
    """Swap RecBole's LightGCN propagation for the same product computed by :class:`_SymSpMM`
    (identical maths; RecBole's ``forward`` is reproduced line for line below) and check that
    embeddings, loss and gradients on one training batch match RecBole's original path."""
    import torch

    coo = model.norm_adj_matrix.coalesce()
    t = coo.t().coalesce()
    assert torch.equal(coo.indices(), t.indices()) and torch.allclose(coo.values(), t.values())
    csr = coo.to_sparse_csr()
    fn = _SymSpMM.build()

    def forward():  # == recbole LightGCN.forward with torch.sparse.mm(A, .) -> fn.apply(A, .)
        all_embeddings = model.get_ego_embeddings()
        embeddings_list = [all_embeddings]
        for _ in range(model.n_layers):
            all_embeddings = fn.apply(csr, all_embeddings)
            embeddings_list.append(all_embeddings)
        out = torch.mean(torch.stack(embeddings_list, dim=1), dim=1)
        return torch.split(out, [model.n_users, model.n_items])

    def loss_and_grads():
        model.zero_grad()
        loss = model.calculate_loss(batch)
        loss.backward()
        g = [p.grad.clone() for p in model.parameters()]
        model.zero_grad()
        return loss.detach(), g

    with torch.no_grad():
        ref_u, ref_i = model.forward()
    ref_loss, ref_g = loss_and_grads()
    model.forward = forward  # instance attribute: calculate_loss / full_sort_predict use it
    with torch.no_grad():
        new_u, new_i = model.forward()
    new_loss, new_g = loss_and_grads()
    err = {
        "max_abs_embedding_diff": float(
            max((ref_u - new_u).abs().max(), (ref_i - new_i).abs().max())
        ),
        "loss_diff": float((ref_loss - new_loss).abs()),
        "max_abs_grad_diff": float(
            max((a - b).abs().max() for a, b in zip(ref_g, new_g, strict=True))
        ),
        "max_abs_grad": float(max(a.abs().max() for a in ref_g)),
    }
    assert torch.allclose(ref_u, new_u, atol=1e-6) and torch.allclose(ref_i, new_i, atol=1e-6)
    assert all(
        torch.allclose(a, b, rtol=1e-4, atol=1e-7) for a, b in zip(ref_g, new_g, strict=True)
    )
    return err


def _write_atomic(split, root: Path, name: str) -> None:
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    header = "user_id:token\titem_id:token\n"
    # RecBole never gets the test part: its "valid" and "test" files are privrec's validation
    for suffix, part in (
        ("train", split.train),
        ("valid", split.validation),
        ("test", split.validation),
    ):
        with open(d / f"{name}.{suffix}.inter", "w") as f:
            f.write(header)
            f.writelines(
                f"{u}\t{i}\n" for u, i in zip(part.users.tolist(), part.items.tolist(), strict=True)
            )


def run_lightgcn(args, split) -> dict:
    import numpy as np
    import torch

    patched = _patch_numpy_for_recbole()
    import recbole
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.general_recommender import LightGCN
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    from privrec.evaluation.protocol import evaluate_split, vectors_scorer

    work = Path(args.work_dir or tempfile.mkdtemp(prefix="recbole_ref_"))
    name = "privrec_ml1m"
    _write_atomic(split, work, name)
    cfg = {
        "embedding_size": 64,
        "n_layers": 3,
        "reg_weight": 1e-4,
        "learning_rate": 1e-3,
        "train_batch_size": args.lgcn_batch,
        "require_pow": False,
    }
    config_dict = {
        **cfg,
        "data_path": str(work),
        "benchmark_filename": ["train", "valid", "test"],
        "load_col": {"inter": ["user_id", "item_id"]},
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "TIME_FIELD": None,
        "RATING_FIELD": None,
        "LABEL_FIELD": None,
        "train_neg_sample_args": {
            "distribution": "uniform",
            "sample_num": 1,
            "alpha": 1.0,
            "dynamic": False,
            "candidate_num": 0,
        },
        "eval_args": {"group_by": "user", "order": "RO", "mode": "full"},
        "epochs": args.lgcn_max_epochs,
        "seed": args.seed,
        "reproducibility": True,
        "use_gpu": False,
        "worker": 0,
        "show_progress": False,
        "checkpoint_dir": str(work / "saved"),
        "log_wandb": False,
        "save_dataset": False,
        "save_dataloaders": False,
    }
    config = Config(model="LightGCN", dataset=name, config_dict=config_dict)
    torch.set_num_threads(args.threads)  # in case anything above changed it
    init_seed(config["seed"], config["reproducibility"])
    t0 = time.perf_counter()
    dataset = create_dataset(config)
    train_data, _valid_data, _test_data = data_preparation(config, dataset)
    model = LightGCN(config, train_data.dataset).to(config["device"])
    spmm_check = None
    if args.lgcn_spmm == "symmetric-csr":
        spmm_check = _use_symmetric_csr_spmm(model, next(iter(train_data)))
    with contextlib.chdir(work):  # RecBole's Trainer makes ./log_tensorboard/ (never written)
        trainer = Trainer(config, model)
    setup_s = time.perf_counter() - t0

    # privrec index -> RecBole id (RecBole maps tokens, id 0 is [PAD])
    uid_field, iid_field = dataset.uid_field, dataset.iid_field
    u_rec = dataset.token2id(uid_field, [str(u) for u in range(split.train.n_users)])
    item_tokens = set(dataset.field2token_id[iid_field])
    i_rec = np.array(
        [
            dataset.token2id(iid_field, str(i)) if str(i) in item_tokens else 0
            for i in range(split.train.n_items)
        ],
        dtype=np.int64,
    )
    # items without training interactions (RecBole may know one from its "valid" file, with an
    # untrained embedding): never recommended, as with VAECF, which cannot score them at all
    missing_items = np.flatnonzero(np.asarray(split.train.csr.sum(axis=0)).ravel() == 0).tolist()
    assert all(str(i) in item_tokens for i in range(split.train.n_items) if i not in missing_items)
    # RecBole's graph must be exactly privrec's training matrix (in privrec order)
    inter = model.interaction_matrix.tocsr()
    assert inter.nnz == len(split.train)
    keep = np.array([str(i) in item_tokens for i in range(split.train.n_items)])
    assert (inter[u_rec][:, i_rec[keep]] != split.train.csr[:, keep]).nnz == 0

    @torch.no_grad()
    def scorer():
        model.eval()
        ue, ie = model.forward()
        bias = np.zeros(split.train.n_items, dtype=np.float32)
        if missing_items:
            bias[missing_items] = -np.inf
        return vectors_scorer(ue[u_rec].numpy(), ie[i_rec].numpy(), bias)

    epochs: list[dict] = []
    train_s = 0.0
    for epoch in range(args.lgcn_max_epochs):
        t0 = time.perf_counter()
        loss = trainer._train_epoch(train_data, epoch, show_progress=False)
        dt = time.perf_counter() - t0
        train_s += dt
        rec = {"epoch": epoch + 1, "train_seconds": dt, "loss": float(loss)}
        if args.lgcn_val_every and (epoch + 1) % args.lgcn_val_every == 0:
            t1 = time.perf_counter()
            val = evaluate_split(scorer(), split, "validation", 10)
            rec.update(
                val_hr=val["hr@10"], val_ndcg=val["ndcg@10"], eval_seconds=time.perf_counter() - t1
            )
        epochs.append(rec)
        print(json.dumps(rec), file=sys.stderr, flush=True)
        if train_s + train_s / (epoch + 1) > args.lgcn_budget_s:  # the next would overrun
            break

    # hand check: our mapping reproduces RecBole's own full_sort_predict for a few users
    from recbole.data.interaction import Interaction

    check_users = [0, 1, 17, split.train.n_users // 2, split.train.n_users - 1]
    fn = scorer()
    ours = fn(np.array(check_users)).numpy()
    model.eval()
    with torch.no_grad():
        theirs = (
            model.full_sort_predict(Interaction({uid_field: torch.as_tensor(u_rec[check_users])}))
            .reshape(len(check_users), -1)
            .numpy()
        )
    theirs = theirs[:, i_rec]
    finite = np.ones(split.train.n_items, dtype=bool)
    finite[missing_items] = False
    assert np.isneginf(ours[:, ~finite]).all()
    ours, theirs = ours[:, finite], theirs[:, finite]
    if not np.allclose(ours, theirs, rtol=1e-4, atol=1e-6):
        d = np.abs(ours - theirs)
        raise AssertionError(f"mapping check failed: max diff {d.max()} of {np.abs(theirs).max()}")

    res = _metrics(scorer(), split)
    n = len(epochs)
    return {
        "implementation": f"recbole {recbole.__version__} "
        "recbole.model.general_recommender.LightGCN (trained with recbole.trainer.Trainer"
        "._train_epoch)",
        "config": {
            **cfg,
            "optimizer": config["learner"],
            "neg_sampling": config["train_neg_sample_args"],
            "weight_decay": config["weight_decay"],
            "budget_seconds": args.lgcn_budget_s,
            "stop_rule": "fixed training-time budget; the last epoch's model is scored",
        },
        "epochs": n,
        "train_seconds": train_s,
        "seconds_per_epoch": train_s / max(1, n),
        "setup_seconds": setup_s,
        **res,
        "num_threads": torch.get_num_threads(),
        "items_without_training_interactions": len(missing_items),
        "items_without_training_interactions_scoring": "-inf (never recommended)",
        "compat_patches_for_recbole": patched,
        "spmm": args.lgcn_spmm,
        "spmm_check_vs_recbole_coo": spmm_check,
        "per_epoch": epochs,
        "index_check_users": check_users,
    }


# ---------------------------------------------------------------------------------- main
def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="vaecf,lightgcn", help="comma list of " + ",".join(MODELS))
    p.add_argument("--out", default="benchmarks/results/reference_models.json")
    p.add_argument(
        "--data-dir",
        default=None,
        help="ML-1M directory (default $PRIVREC_DATA_DIR/ml-1m or ../shared/data/ml-1m)",
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vae-epochs", type=int, default=50)
    p.add_argument(
        "--lgcn-budget-s",
        type=float,
        default=900.0,
        help="LightGCN training-time budget (evaluation excluded)",
    )
    p.add_argument("--lgcn-max-epochs", type=int, default=1000)
    p.add_argument(
        "--lgcn-batch",
        type=int,
        default=8192,
        help="BPR batch (RecBole's default 2048 gives only ~15 epochs in 900 s)",
    )
    p.add_argument(
        "--lgcn-val-every",
        type=int,
        default=5,
        help="validation HR@10 every N epochs, for information (0: never)",
    )
    p.add_argument(
        "--lgcn-spmm",
        choices=("symmetric-csr", "recbole"),
        default="symmetric-csr",
        help="graph propagation kernel: RecBole's COO torch.sparse.mm, or the same "
        "product via CSR in both directions (5x faster on one thread; checked equal)",
    )
    p.add_argument("--work-dir", default=None, help="where RecBole's atomic files go (tmp)")
    args = p.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = [m for m in models if m not in MODELS]
    if bad:
        p.error(f"unknown models {bad}; choose from {MODELS}")

    _set_thread_env(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(HERE))
    from _common import default_data_dir

    from privrec.data.movielens import load_ml1m
    from privrec.data.split import leave_last_out

    data_dir = args.data_dir or default_data_dir()
    t0 = time.perf_counter()
    ds = load_ml1m(data_dir)
    split = leave_last_out(ds.interactions)
    _ = split.train.csr, split.validation.csr, split.test.csr
    load_s = time.perf_counter() - t0

    out_path = Path(args.out)
    out: dict = {
        "what": "reference MultVAE / LightGCN from outside libraries, trained on privrec's "
        "ML-1M leave-last-out training part, scored with privrec.evaluation.protocol."
        "evaluate_split (full ranking, k=10)",
        "command": "OMP_NUM_THREADS={} MKL_NUM_THREADS={} python {}".format(
            os.environ["OMP_NUM_THREADS"],
            os.environ["MKL_NUM_THREADS"],
            shlex.join(["benchmarks/reference_models.py", *(argv or sys.argv[1:])]),
        ),
        "data_dir": str(Path(data_dir).resolve()),
        "split": split.summary(),
        "load_split_seconds": load_s,
        "machine": _versions(),
        "models": {},
    }
    if out_path.exists():  # keep entries of models not re-run
        try:
            old = json.loads(out_path.read_text())
            out["models"] = {k: v for k, v in old.get("models", {}).items() if k not in models}
        except (OSError, ValueError):
            pass
    runners = {"vaecf": run_vaecf, "lightgcn": run_lightgcn}
    for m in models:
        print(f"== {m}", file=sys.stderr, flush=True)
        res = runners[m](args, split)
        res["command"] = out["command"]
        out["models"][m] = res
        summary = {
            k: res[k]
            for k in ("epochs", "train_seconds", "seconds_per_epoch", "validation", "test")
        }
        print(json.dumps({m: summary}), file=sys.stderr, flush=True)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(out, indent=2) + "\n")
    print(out_path)


if __name__ == "__main__":
    main()
