"""Minibatch trainer for any :class:`~privrec.models.base.Recommender`."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from privrec.data.sampling import sample_negatives
from privrec.data.split import Split
from privrec.errors import ConfigError, FitError
from privrec.evaluation.protocol import evaluate_split, model_scorer
from privrec.models.base import Recommender
from privrec.models.losses import LOSSES
from privrec.models.mf import build_model
from privrec.training.config import TrainConfig
from privrec.training.optim import RowAdam
from privrec.training.penalty import UserPenalty

EpochCallback = Callable[[dict], None]


@dataclass(frozen=True, eq=False)
class TrainedModel:
    """The result of :meth:`Trainer.fit`: the model at its best validation epoch.

    Attributes:
        model: the recommender (weights of the best validation epoch).
        penalties: the user-vector penalties trained alongside (e.g. adversarial heads).
        config: the training configuration.
        history: one record per epoch (losses, validation metrics, penalty metrics, seconds).
        best_epoch: epoch whose weights were kept (1-based).
        validation: validation metrics of the kept weights.
        seconds: wall time of training.
    """

    model: Recommender
    penalties: tuple[UserPenalty, ...]
    config: TrainConfig
    history: tuple[dict, ...]
    best_epoch: int
    validation: dict
    seconds: float

    @property
    def epochs_run(self) -> int:
        return len(self.history)

    def user_vectors(self) -> np.ndarray:
        return self.model.all_user_vectors().detach().numpy().astype(np.float32)

    def item_vectors(self) -> np.ndarray:
        return self.model.item_vectors().detach().numpy().astype(np.float32)

    def item_bias(self) -> np.ndarray:
        return self.model.item_bias().detach().numpy().astype(np.float32)


class Trainer:
    """Trains a recommender on a split's training interactions.

    One optimizer step minimises the recommendation loss plus L2 plus the sum of the
    ``penalties`` (the seam for adversarial heads and dependence penalties). Validation HR@k is
    computed every ``eval_every`` epochs; the best weights are kept and training stops after
    ``patience`` evaluations without improvement. A non-finite loss or an exploding user vector
    raises :class:`~privrec.errors.FitError` carrying the history so far.
    """

    def __init__(
        self,
        config: TrainConfig,
        penalties: Sequence[UserPenalty] = (),
        callback: EpochCallback | None = None,
        model: Recommender | None = None,
    ) -> None:
        self.config = config
        self.penalties = tuple(penalties)
        self.callback = callback
        self._model = model

    def fit(self, split: Split) -> TrainedModel:
        """Train on ``split.train``, selecting on ``split.validation``; see the class.

        ``config.num_threads`` applies during the call only: torch's thread count is
        restored afterwards."""
        if len(split.train) == 0:
            raise ConfigError("the training split is empty: nothing to train on")
        threads = self.config.num_threads
        previous = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        try:
            return self._fit(split)
        finally:
            if threads and torch.get_num_threads() != previous:
                torch.set_num_threads(previous)

    def _fit(self, split: Split) -> TrainedModel:
        cfg = self.config
        train = split.train
        rng = np.random.default_rng(cfg.seed)
        model = self._model or build_model(
            cfg.model,
            train.n_users,
            train.n_items,
            cfg.embedding_size,
            cfg.init_std,
            cfg.seed,
            sparse=cfg.optimizer == "sparse-adam",
        )
        loss_fn = LOSSES[cfg.loss]
        params = list(model.parameters())
        for p in self.penalties:
            params += list(p.parameters())
        opt = _optimizer(cfg, model, params)

        t_users = train.users
        t_items = train.items
        n = len(train)
        history: list[dict] = []
        best: tuple[float, int, list[dict] | None, dict] = (-math.inf, 0, None, {})
        bad_evals = 0
        best_hr = 0.0
        start = time.perf_counter()
        total_steps = cfg.epochs * math.ceil(n / cfg.batch_size)
        step = 0
        pair_terms = getattr(model, "pair_terms", None)
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            model.train()
            perm = rng.permutation(n)
            users_np = t_users[perm]
            pos_np = t_items[perm]
            neg_np = sample_negatives(train, users_np, rng)
            users_t = torch.from_numpy(np.ascontiguousarray(users_np))
            pos_t = torch.from_numpy(pos_np)
            neg_t = torch.from_numpy(neg_np)
            sums: dict[str, float] = {}
            batches = 0
            for lo in range(0, n, cfg.batch_size):
                u = users_t[lo : lo + cfg.batch_size]
                i = pos_t[lo : lo + cfg.batch_size]
                j = neg_t[lo : lo + cfg.batch_size]
                progress = step / max(1, total_steps)
                pv = model.user_vectors(u)
                if pair_terms is not None:  # fused fast path: same values, one lookup per row
                    s_pos, s_neg, reg_term = pair_terms(pv, i, j)
                else:
                    s_pos, s_neg = model.score(pv, i), model.score(pv, j)
                    reg_term = model.regularization(pv, i, j)
                rec = loss_fn(s_pos, s_neg)
                loss = rec + cfg.reg * reg_term
                rec_val = float(rec.detach())
                stats = {"rec_loss": rec_val}
                if self.penalties:
                    uu = _distinct(u, train.n_users)
                    with torch.no_grad():
                        uvecs_now = model.user_vectors(uu)
                    for p in self.penalties:
                        p.before_step(uvecs_now, uu, progress)
                        opt.forget(p.take_reset_parameters())
                    uvecs = model.user_vectors(uu)
                    for p in self.penalties:
                        p_loss, p_stats = p(uvecs, uu, progress)
                        loss = loss + p_loss
                        stats.update(p_stats)
                loss_val = float(loss.detach())
                if not math.isfinite(loss_val):
                    raise FitError(
                        f"training diverged at epoch {epoch}: loss is {loss_val} "
                        "(try a lower learning rate or adversarial weight)",
                        reason="nan_loss",
                        history=history,
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.max_grad_norm is not None:
                    _clip_grad_norm(params, cfg.max_grad_norm)
                opt.step()
                stats["loss"] = loss_val
                for key, v in stats.items():
                    sums[key] = sums.get(key, 0.0) + v
                batches += 1
                step += 1
            record = {"epoch": epoch, **{k: v / batches for k, v in sums.items()}}
            model.eval()
            with torch.no_grad():
                norm = float(model.all_user_vectors().norm(dim=1).max())
            record["max_user_norm"] = norm
            if not math.isfinite(norm) or norm > cfg.max_user_norm:
                history.append(record)
                raise FitError(
                    f"training diverged at epoch {epoch}: a user vector has norm {norm:.3g} "
                    f"(limit {cfg.max_user_norm:g})",
                    reason="exploding_norm",
                    history=history,
                )
            # still at chance level and no better than the first epoch: nothing is being learnt
            stalled = bool(history) and record["rec_loss"] >= history[0]["rec_loss"] - 1e-3
            if epoch >= 3 and step >= 20 and stalled and record["rec_loss"] >= 0.99 * math.log(2):
                history.append(record)
                raise FitError(
                    f"training diverged at epoch {epoch}: the recommendation loss is stuck at "
                    f"{record['rec_loss']:.4f} (chance level ln 2 = 0.693); the penalties or the "
                    "learning rate overwhelm the recommender",
                    reason="no_learning",
                    history=history,
                )
            for p in self.penalties:
                record.update(p.epoch_end(model, epoch))
            if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
                val = evaluate_split(model_scorer(model), split, "validation", cfg.k)
                record[f"val_hr@{cfg.k}"] = val[f"hr@{cfg.k}"]
                record[f"val_ndcg@{cfg.k}"] = val[f"ndcg@{cfg.k}"]
                hr = val[f"hr@{cfg.k}"]
                if cfg.collapse_ratio and best_hr > 0 and hr < cfg.collapse_ratio * best_hr:
                    record["seconds"] = time.perf_counter() - t0
                    history.append(record)
                    raise FitError(
                        f"training diverged at epoch {epoch}: validation HR@{cfg.k} collapsed "
                        f"to {hr:.4f} from its best {best_hr:.4f}",
                        reason="collapse",
                        history=history,
                    )
                best_hr = max(best_hr, hr)
                score = hr
                if cfg.selection == "hr_probe":
                    leaks = [v for key, v in record.items() if key.endswith("_leak")]
                    score = hr * (1.0 - max(leaks, default=0.0))
                    record["selection_score"] = score
                if score > best[0]:
                    best = (score, epoch, _snapshot(model, self.penalties), val)
                    bad_evals = 0
                else:
                    bad_evals += 1
            record["seconds"] = time.perf_counter() - t0
            history.append(record)
            if self.callback is not None:
                self.callback(dict(record))
            if cfg.patience and bad_evals >= cfg.patience:
                break
        if best[2] is not None:
            _restore(model, self.penalties, best[2])
        model.eval()
        return TrainedModel(
            model=model,
            penalties=self.penalties,
            config=cfg,
            history=tuple(history),
            best_epoch=best[1],
            validation=best[3],
            seconds=time.perf_counter() - start,
        )


class _Optimizers:
    """Several optimizers over disjoint parameter groups, stepped as one."""

    def __init__(self, optimizers: Sequence[torch.optim.Optimizer]) -> None:
        self.optimizers = tuple(optimizers)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.optimizers:
            o.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for o in self.optimizers:
            o.step()

    def forget(self, params: Sequence[torch.Tensor]) -> None:
        """Drop the state (e.g. Adam's moments and step count) of ``params``: their next step
        starts as if they were new."""
        for o in self.optimizers:
            for p in params:
                o.state.pop(p, None)


def _optimizer(cfg: TrainConfig, model: Recommender, params: list) -> _Optimizers:
    """The optimizer(s) of ``cfg.optimizer`` over ``params``.

    ``sparse-adam``: row-wise Adam (:class:`~privrec.training.optim.RowAdam`) on the embedding
    tables that produce sparse gradients (``nn.Embedding(sparse=True)``) and ``torch.optim.Adam``
    on every other parameter.
    """
    lr = cfg.learning_rate
    if cfg.optimizer == "sgd":
        return _Optimizers([torch.optim.SGD(params, lr=lr)])
    if cfg.optimizer == "adam":
        return _Optimizers([torch.optim.Adam(params, lr=lr)])
    sparse_ids = {
        id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding) and m.sparse
    }
    if not sparse_ids:
        raise ConfigError(
            "optimizer 'sparse-adam' needs a model whose embedding tables have sparse=True "
            "(build it with build_model(..., sparse=True))"
        )
    sparse = [p for p in params if id(p) in sparse_ids]
    dense = [p for p in params if id(p) not in sparse_ids]
    opts: list[torch.optim.Optimizer] = [RowAdam(sparse, lr=lr)]
    if dense:
        opts.append(torch.optim.Adam(dense, lr=lr))
    return _Optimizers(opts)


def _distinct(users: torch.Tensor, n_users: int) -> torch.Tensor:
    """Sorted distinct entries of ``users`` (``torch.unique``): a bincount when the table is
    small next to the batch (O(batch + n_users), no sort), a sort otherwise (O(batch log
    batch), independent of the number of users)."""
    if n_users <= 8 * len(users):
        return torch.bincount(users, minlength=n_users).nonzero().squeeze(1)
    return torch.unique(users, sorted=True)


@torch.no_grad()
def _clip_grad_norm(params: Sequence[torch.Tensor], max_norm: float) -> None:
    """Scale all gradients so that their global L2 norm is at most ``max_norm``; like
    ``torch.nn.utils.clip_grad_norm_`` but also for sparse gradients (coalesced first, so that
    repeated rows are summed before the norm is taken)."""
    if not any(p.grad is not None and p.grad.is_sparse for p in params):
        torch.nn.utils.clip_grad_norm_(params, max_norm)
        return
    grads = []
    for p in params:
        if p.grad is None:
            continue
        if p.grad.is_sparse:
            p.grad = p.grad.coalesce()
            grads.append(p.grad._values())
        else:
            grads.append(p.grad)
    if not grads:
        return
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    scale = max_norm / (float(total) + 1e-6)
    if scale < 1.0:
        for g in grads:
            g.mul_(scale)


def _snapshot(model: Recommender, penalties: Sequence[UserPenalty]) -> list[dict]:
    return [copy.deepcopy(m.state_dict()) for m in (model, *penalties)]


def _restore(model: Recommender, penalties: Sequence[UserPenalty], states: list[dict]) -> None:
    for m, s in zip((model, *penalties), states, strict=True):
        m.load_state_dict(s)
