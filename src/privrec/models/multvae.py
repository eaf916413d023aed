"""MultVAE (Liang et al., WWW 2018): a variational autoencoder over a user's training items.

The encoder reads the user's L2-normalised training-item vector (with dropout on the input
while training), through a ``tanh`` hidden layer, to a Gaussian latent ``N(μ, σ²)``; the decoder
maps a latent sample to logits over every item, scored by a multinomial log-likelihood. The loss
is ``-log p(x | z) + β · KL(q(z | x) ‖ N(0, I))`` with β rising linearly from 0 (KL annealing).

The user vector (what the defences and attackers read, and what ``embeddings.npz`` holds) is
the latent mean ``μ``. The decoder is one linear layer, so the ranking scores are exactly
``μ · W_i + b_i``: the exported layer is the latent mean, the item vectors are the decoder's
weight rows and the item bias its bias (the softmax does not change a user's ranking).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from privrec.models.base import Recommender, check_training_matrix


class UserItemRows(nn.Module):
    """A user × item binary matrix held as CSR index buffers, read as dense rows on the
    model's device (the training items a user-level model encodes)."""

    indptr: torch.Tensor
    indices: torch.Tensor

    def __init__(self, matrix: sp.csr_matrix) -> None:
        super().__init__()
        m = sp.csr_matrix(matrix)
        m.sum_duplicates()
        self.n_items = m.shape[1]
        self.register_buffer("indptr", torch.from_numpy(m.indptr.astype(np.int64)), False)
        self.register_buffer("indices", torch.from_numpy(m.indices.astype(np.int64)), False)

    def counts(self, users: torch.Tensor) -> torch.Tensor:
        return self.indptr[users + 1] - self.indptr[users]

    def dense(self, users: torch.Tensor) -> torch.Tensor:
        """The rows of ``users`` as a dense float32 (len(users), n_items) 0/1 matrix."""
        start = self.indptr[users]
        count = self.indptr[users + 1] - start
        rows = torch.repeat_interleave(torch.arange(len(users), device=users.device), count)
        first = torch.cumsum(count, 0) - count
        offset = torch.arange(int(count.sum()), device=users.device) - first[rows]
        cols = self.indices[start[rows] + offset]
        out = torch.zeros(len(users), self.n_items, device=users.device)
        out[rows, cols] = 1.0
        return out


class MultVAE(Recommender):
    """MultVAE with a ``[n_items → hidden → 2·dim]`` encoder and a linear ``dim → n_items``
    decoder; see the module docstring."""

    loop = "users"
    uses_pair_loss = False

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int,
        train: sp.csr_matrix,
        hidden: int = 600,
        dropout: float = 0.5,
        beta: float = 0.2,
        anneal: float = 0.5,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        check_training_matrix("multvae", train, n_users, n_items)
        self.n_users, self.n_items, self.dim = n_users, n_items, dim
        self.dropout, self.beta, self.anneal = dropout, beta, anneal
        self.rows = UserItemRows(train)
        self.encoder = nn.Linear(n_items, hidden)
        self.latent = nn.Linear(hidden, 2 * dim)
        self.decoder = nn.Linear(dim, n_items)
        with torch.no_grad():  # Xavier-normal weights, small normal biases (as Liang et al.)
            for layer in (self.encoder, self.latent, self.decoder):
                fan_in, fan_out = layer.weight.shape[1], layer.weight.shape[0]
                layer.weight.normal_(0.0, (2.0 / (fan_in + fan_out)) ** 0.5, generator=generator)
                layer.bias.normal_(0.0, 0.001, generator=generator)
        self._generator = generator

    def _noise(self, shape: torch.Size, device: torch.device) -> torch.Tensor:
        """Standard normal noise from the model's seeded generator (never torch's global one)."""
        return torch.randn(shape, generator=self._generator).to(device)

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(μ, log σ²)`` of the training-item rows ``x``; input dropout while training."""
        x = F.normalize(x, dim=1)
        if self.training and self.dropout > 0:
            keep = torch.rand(x.shape, generator=self._generator).to(x.device) >= self.dropout
            x = x * keep / (1.0 - self.dropout)
        h = torch.tanh(self.encoder(x))
        mu, logvar = self.latent(h).chunk(2, dim=1)
        return mu, logvar

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        return self._encode(self.rows.dense(users))[0]

    def score(self, user_vecs: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return (user_vecs * self.decoder.weight[items]).sum(-1) + self.decoder.bias[items]

    def regularization(self, user_vecs, pos, neg) -> torch.Tensor:
        return self.weight_norm()

    def weight_norm(self) -> torch.Tensor:
        """Sum of the squared weights (not biases) of the encoder and decoder."""
        return sum(
            (layer.weight.pow(2).sum() for layer in (self.encoder, self.latent, self.decoder)),
            start=torch.zeros((), device=self.device),
        )

    def kl_weight(self, progress: float) -> float:
        """β at ``progress`` (share of the planned steps done): linear from 0 to ``beta`` over
        the first ``anneal`` share, then ``beta`` (``anneal = 0``: ``beta`` throughout)."""
        if self.anneal <= 0:
            return self.beta
        return self.beta * min(1.0, progress / self.anneal)

    def user_terms(self, users, progress):
        x = self.rows.dense(users)
        mu, logvar = self._encode(x)
        z = mu
        if self.training:  # the reparameterised sample
            z = mu + self._noise(mu.shape, mu.device) * torch.exp(0.5 * logvar)
        log_probs = F.log_softmax(self.decoder(z), dim=1)
        nll = -(log_probs * x).sum(1).mean()
        kl = 0.5 * (logvar.exp() + mu.pow(2) - 1.0 - logvar).sum(1).mean()
        return nll + self.kl_weight(progress) * kl, self.weight_norm(), mu

    def item_vectors(self) -> torch.Tensor:
        return self.decoder.weight

    def item_bias(self) -> torch.Tensor:
        return self.decoder.bias
