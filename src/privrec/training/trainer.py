"""Minibatch trainer for any :class:`~privrec.models.base.Recommender`."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from privrec.cpus import auto_threads
from privrec.data.interactions import Interactions
from privrec.data.split import Split
from privrec.errors import ConfigError, FitError
from privrec.evaluation.protocol import evaluate_split, model_scorer
from privrec.models import build_model
from privrec.models.base import Recommender
from privrec.models.losses import LOSSES
from privrec.training.config import TrainConfig
from privrec.training.device import resolve_device
from privrec.training.loops import PairLoop, StepTerms, UserLoop
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
        device: the torch device it trained on (``config.device`` resolved).
        threads: the torch intra-op threads it used (``config.num_threads`` or the automatic
            choice).
    """

    model: Recommender
    penalties: tuple[UserPenalty, ...]
    config: TrainConfig
    history: tuple[dict, ...]
    best_epoch: int
    validation: dict
    seconds: float
    device: str = "cpu"
    threads: int = 1

    @property
    def epochs_run(self) -> int:
        return len(self.history)

    def user_vectors(self) -> np.ndarray:
        return self.model.all_user_vectors().detach().cpu().numpy().astype(np.float32)

    def item_vectors(self) -> np.ndarray:
        return self.model.item_vectors().detach().cpu().numpy().astype(np.float32)

    def item_bias(self) -> np.ndarray:
        return self.model.item_bias().detach().cpu().numpy().astype(np.float32)


class Trainer:
    """Trains a recommender on a split's training interactions.

    One optimizer step minimises the recommendation loss plus L2 plus the sum of the
    ``penalties`` (the seam for adversarial heads and dependence penalties). Validation HR@k is
    computed every ``eval_every`` epochs; the best weights are kept and training stops after
    ``patience`` evaluations without improvement. A non-finite loss, an exploding user vector, a
    loss stuck at chance level or (with ``collapse_ratio``) a collapsing validation HR@k raises
    :class:`~privrec.errors.FitError` carrying the history so far.

    The parts: :meth:`_step` (one optimizer step), :meth:`_run_epoch` (one epoch and its
    divergence checks), :class:`_ModelSelection` (validation, best snapshot, early stopping),
    tied together by :meth:`_fit`.
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

        ``config.num_threads`` (or, when it is None, the count
        :func:`~privrec.cpus.auto_threads` chooses from the cores other processes
        leave free) applies during the call only: torch's thread count is restored afterwards.
        ``config.device`` is resolved first (a named device this machine lacks raises
        ConfigError before any work)."""
        if len(split.train) == 0:
            raise ConfigError("the training split is empty: nothing to train on")
        resolve_device(self.config.device)
        previous = torch.get_num_threads()
        threads = self.config.num_threads or auto_threads()
        torch.set_num_threads(threads)
        try:
            return self._fit(split, threads)
        finally:
            if torch.get_num_threads() != previous:
                torch.set_num_threads(previous)

    def _fit(self, split: Split, threads: int) -> TrainedModel:
        """Run the epochs (:meth:`_run_epoch`) until ``config.epochs`` or early stopping
        (:class:`_ModelSelection`) and return the model with its best validation weights."""
        cfg = self.config
        train = split.train
        rng = np.random.default_rng(cfg.seed)
        run = self._start_run(train)
        model = run.model
        selection = _ModelSelection(cfg, split, self.penalties)
        start = time.perf_counter()
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            record = self._run_epoch(run, train, rng, epoch)
            if selection.due(epoch):
                selection.evaluate(model, epoch, record, run.history, t0)
            record["seconds"] = time.perf_counter() - t0
            run.history.append(record)
            if self.callback is not None:
                self.callback(dict(record))
            if selection.should_stop():
                break
        selection.restore_best(model)
        model.eval()
        return TrainedModel(
            model=model,
            penalties=self.penalties,
            config=cfg,
            history=tuple(run.history),
            best_epoch=selection.best_epoch,
            validation=selection.best_validation,
            seconds=time.perf_counter() - start,
            device=str(run.device),
            threads=threads,
        )

    def _start_run(self, train: Interactions) -> _Run:
        """The model (the one given, else a new ``config.model``), its optimizer and the other
        state of a fit on ``train``, before the first step."""
        cfg = self.config
        device = resolve_device(cfg.device)
        model = self._model or build_model(
            cfg.model,
            train.n_users,
            train.n_items,
            cfg.embedding_size,
            cfg.init_std,
            cfg.seed,
            sparse=cfg.optimizer == "sparse-adam",
            train=train.csr if cfg.model in ("multvae", "lightgcn") else None,
            **cfg.model_options(),
        )
        model.to(device)
        for p in self.penalties:
            p.to(device)
        params: list[torch.Tensor] = list(model.parameters())
        for p in self.penalties:
            params += p.trainer_parameters()
        loop: PairLoop | UserLoop = (
            UserLoop() if model.loop == "users" else PairLoop(LOSSES[cfg.loss])
        )
        return _Run(
            model=model,
            opt=_optimizer(cfg, model, params),
            params=params,
            loop=loop,
            device=device,
            n_users=train.n_users,
            total_steps=cfg.epochs * loop.steps_per_epoch(train, cfg.batch_size),
        )

    def _run_epoch(
        self, run: _Run, train: Interactions, rng: np.random.Generator, epoch: int
    ) -> dict:
        """One epoch: the model's loop (:mod:`privrec.training.loops`) gives the epoch's
        minibatches of ``config.batch_size`` (every training pair once with a fresh negative,
        or every user once), one :meth:`_step` each.

        Returns the epoch record: ``epoch``, the per-batch means of the step numbers,
        ``max_user_norm`` and the penalties' ``epoch_end`` numbers (no validation metrics, no
        ``seconds``: :meth:`_fit` adds those). Raises FitError when training diverged
        (:meth:`_check_divergence`)."""
        cfg = self.config
        model = run.model
        model.train()
        sums: dict[str, float] = {}
        batches = 0
        for batch in run.loop.batches(train, rng, cfg.batch_size, run.device):
            stats = self._step(run, batch, epoch)
            for key, v in stats.items():
                sums[key] = sums.get(key, 0.0) + v
            batches += 1
        record = {"epoch": epoch, **{k: v / batches for k, v in sums.items()}}
        model.eval()
        with torch.no_grad():
            norm = float(model.all_user_vectors().norm(dim=1).max())
        record["max_user_norm"] = norm
        self._check_divergence(run, epoch, record)
        for p in self.penalties:
            record.update(p.epoch_end(model, epoch))
        return record

    def _check_divergence(self, run: _Run, epoch: int, record: dict) -> None:
        """Raise FitError, with ``record`` appended to the history, when a user vector's norm is
        not finite or above ``config.max_user_norm`` (``"exploding_norm"``), or when from the
        third epoch (and 20 steps) on the recommendation loss is still at chance level and no
        better than in the first epoch (``"no_learning"``)."""
        cfg = self.config
        history = run.history
        norm = record["max_user_norm"]
        if not math.isfinite(norm) or norm > cfg.max_user_norm:
            history.append(record)
            raise FitError(
                f"training diverged at epoch {epoch}: a user vector has norm {norm:.3g} "
                f"(limit {cfg.max_user_norm:g})",
                reason="exploding_norm",
                history=history,
            )
        # still at chance level and no better than the first epoch: nothing is being learnt
        # (pairwise losses only: their chance level is ln 2)
        stalled = bool(history) and record["rec_loss"] >= history[0]["rec_loss"] - 1e-3
        at_chance = run.model.uses_pair_loss and record["rec_loss"] >= 0.99 * math.log(2)
        if epoch >= 3 and run.step >= 20 and stalled and at_chance:
            history.append(record)
            raise FitError(
                f"training diverged at epoch {epoch}: the recommendation loss is stuck at "
                f"{record['rec_loss']:.4f} (chance level ln 2 = 0.693); the penalties or the "
                "learning rate overwhelm the recommender",
                reason="no_learning",
                history=history,
            )

    def _step(self, run: _Run, batch: tuple[torch.Tensor, ...], epoch: int) -> dict[str, float]:
        """One optimizer step on a batch of the model's loop (triples ``(u, i, j)``, or
        users): recommendation loss + ``config.reg`` × L2 + the penalties
        (:meth:`_add_penalties`), backward, gradient clipping when ``config.max_grad_norm`` is
        set, step.

        Returns the batch's numbers: ``rec_loss``, the penalties' stats, ``loss``. Raises
        FitError (``"nan_loss"``), before touching the weights, when the loss is not finite."""
        cfg = self.config
        model = run.model
        progress = run.step / max(1, run.total_steps)
        model.begin_step()
        terms = run.loop.terms(model, batch, progress)
        rec = terms.rec_loss
        loss = rec + cfg.reg * terms.reg if cfg.reg else rec
        stats = {"rec_loss": float(rec.detach())}
        if self.penalties:
            loss = self._add_penalties(run, terms, progress, loss, stats)
        loss_val = float(loss.detach())
        if not math.isfinite(loss_val):
            raise FitError(
                f"training diverged at epoch {epoch}: loss is {loss_val} "
                "(try a lower learning rate or adversarial weight)",
                reason="nan_loss",
                history=run.history,
            )
        run.opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.max_grad_norm is not None:
            _clip_grad_norm(run.params, cfg.max_grad_norm)
        run.opt.step()
        stats["loss"] = loss_val
        run.step += 1
        return stats

    def _add_penalties(
        self,
        run: _Run,
        terms: StepTerms,
        progress: float,
        loss: torch.Tensor,
        stats: dict[str, float],
    ) -> torch.Tensor:
        """``loss`` plus each penalty's loss on the batch's distinct users, added one at a time
        (their stats go into ``stats``). First each penalty's ``before_step`` sees the users'
        detached vectors, and the optimizer forgets the parameters it re-initialised. A loop
        that computed the vectors of distinct users (:class:`~privrec.training.loops.StepTerms`)
        has them reused; otherwise the distinct users are looked up (once: ``before_step``
        updates only the penalties' own parameters)."""
        if terms.user_vectors is not None:
            uu, uvecs = terms.users, terms.user_vectors
        else:
            uu = _distinct(terms.users, run.n_users)
            uvecs = run.model.user_vectors(uu)  # before_step changes no user vector
        uvecs_now = uvecs.detach()
        for p in self.penalties:
            p.before_step(uvecs_now, uu, progress)
            run.opt.forget(p.take_reset_parameters())
        for p in self.penalties:
            p_loss, p_stats = p(uvecs, uu, progress)
            loss = loss + p_loss
            stats.update(p_stats)
        return loss


@dataclass(eq=False)
class _Run:
    """What the epochs and steps of one :meth:`Trainer.fit` call share.

    Attributes:
        model: the recommender being trained.
        opt: the optimizer over ``params``.
        params: the model's and the penalties' parameters (for gradient clipping).
        loop: the model's training loop (:mod:`privrec.training.loops`).
        device: the torch device of the model, the penalties and the batches.
        n_users: the number of users of the training split.
        total_steps: the number of steps of all ``config.epochs`` epochs (for ``progress``).
        history: the records of the finished epochs.
        step: the number of optimizer steps taken so far.
    """

    model: Recommender
    opt: _Optimizers
    params: Sequence[torch.Tensor]
    loop: PairLoop | UserLoop
    device: torch.device
    n_users: int
    total_steps: int
    history: list[dict] = field(default_factory=list)
    step: int = 0


class _ModelSelection:
    """Model selection and early stopping on the validation split.

    Each evaluation (:meth:`evaluate`, on the epochs where :meth:`due`) adds validation HR@k
    and NDCG@k to the epoch record, raises FitError (``"collapse"``) when HR@k fell below
    ``config.collapse_ratio`` times its best so far, scores the epoch (HR@k, or with
    ``config.selection == "hr_probe"`` HR@k × (1 − the largest ``*_leak`` in the record), also
    recorded as ``selection_score``) and snapshots the model and penalties when the score beats
    the best one. :meth:`should_stop` is true after ``config.patience`` evaluations in a row
    without improvement (never with ``patience=0``).

    Attributes:
        best_epoch: the epoch of the best score (0 before any evaluation).
        best_validation: its validation metrics (empty before any evaluation).
    """

    def __init__(self, config: TrainConfig, split: Split, penalties: Sequence[UserPenalty]):
        self.config = config
        self.split = split
        self.penalties = tuple(penalties)
        self.best_score = -math.inf
        self.best_epoch = 0
        self.best_validation: dict = {}
        self._best_state: list[dict] | None = None
        self._best_hr = 0.0
        self._bad_evals = 0

    def due(self, epoch: int) -> bool:
        """Whether ``epoch`` is evaluated: every ``config.eval_every`` epochs and the last."""
        return epoch % self.config.eval_every == 0 or epoch == self.config.epochs

    def evaluate(
        self, model: Recommender, epoch: int, record: dict, history: list[dict], started: float
    ) -> None:
        """Evaluate ``model`` after ``epoch`` into its ``record`` (see the class). On a collapse
        the record gets its ``seconds`` (since ``started``, a ``time.perf_counter()``) and is
        appended to ``history`` before FitError is raised."""
        cfg = self.config
        val = evaluate_split(model_scorer(model), self.split, "validation", cfg.k)
        record[f"val_hr@{cfg.k}"] = val[f"hr@{cfg.k}"]
        record[f"val_ndcg@{cfg.k}"] = val[f"ndcg@{cfg.k}"]
        hr = val[f"hr@{cfg.k}"]
        best_hr = self._best_hr
        if cfg.collapse_ratio and best_hr > 0 and hr < cfg.collapse_ratio * best_hr:
            record["seconds"] = time.perf_counter() - started
            history.append(record)
            raise FitError(
                f"training diverged at epoch {epoch}: validation HR@{cfg.k} collapsed "
                f"to {hr:.4f} from its best {best_hr:.4f}",
                reason="collapse",
                history=history,
            )
        self._best_hr = max(best_hr, hr)
        score = self._score(hr, record)
        if score > self.best_score:
            self.best_score = score
            self.best_epoch = epoch
            self._best_state = _snapshot(model, self.penalties)
            self.best_validation = val
            self._bad_evals = 0
        else:
            self._bad_evals += 1

    def _score(self, hr: float, record: dict) -> float:
        """The selection score of an evaluated epoch (see the class)."""
        if self.config.selection != "hr_probe":
            return hr
        leaks = [v for key, v in record.items() if key.endswith("_leak")]
        score = hr * (1.0 - max(leaks, default=0.0))
        record["selection_score"] = score
        return score

    def should_stop(self) -> bool:
        """Whether to stop early: ``config.patience`` evaluations without improvement."""
        return bool(self.config.patience) and self._bad_evals >= self.config.patience

    def restore_best(self, model: Recommender) -> None:
        """Load the best snapshot into ``model`` and the penalties (no-op before any)."""
        if self._best_state is not None:
            _restore(model, self.penalties, self._best_state)


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

    The torch optimizers run their multi-tensor (``foreach``) implementation, which torch uses
    by default only on CUDA: on the CPU it gives the same weights as the per-tensor loop
    (tested) and halves the step's cost when the adversarial heads add their small tensors
    (``benchmarks/results/defence_cost.md``).
    """
    lr = cfg.learning_rate
    if cfg.optimizer == "sgd":
        return _Optimizers([torch.optim.SGD(params, lr=lr, foreach=True)])
    if cfg.optimizer == "adam":
        return _Optimizers([torch.optim.Adam(params, lr=lr, foreach=True)])
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
        opts.append(torch.optim.Adam(dense, lr=lr, foreach=True))
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
