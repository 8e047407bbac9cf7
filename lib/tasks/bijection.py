"""Bijection elimination, the "sep-vocab" format of Paper I (spec paper1.md §2.1).

A fresh bijection pi on {0..V-1} per sequence. The sequence shows L keys drawn without
replacement, each followed by its value:  k1, V+pi(k1), k2, V+pi(k2), ..., k_L  (length 2L-1).
Keys use token ids 0..V-1 and values V..2V-1. Every key position is a query: the model
predicts the value of the key it has just read. After t observed pairs the Bayesian
predictive is uniform over the V - t values not yet seen, so H_Bayes = log2(V - t).

Used by: 01_bijection (C1).
"""
from dataclasses import dataclass
from typing import ClassVar

import torch

from lib.tasks.batch import Batch
from lib.validate import check_field_types


@dataclass(frozen=True)
class Bijection:
    V: int = 20  # number of keys = number of values
    L: int = 19  # keys shown per sequence (without replacement, so L <= V)
    name: ClassVar[str] = "bijection"
    VERSION: ClassVar[int] = 1  # of what it samples: bump when that changes (lib/cache.py)

    def __post_init__(self):
        check_field_types(self)
        if self.V < 2:
            raise ValueError(f"Bijection: V must be at least 2, got V={self.V}")
        if not 1 <= self.L <= self.V:
            raise ValueError(f"Bijection: L must be in 1..V={self.V}, got L={self.L}")

    @property
    def seq_len(self) -> int:
        return 2 * self.L - 1

    @property
    def vocab_size(self) -> int:
        return 2 * self.V

    @property
    def n_out(self) -> int:
        """The model scores the V value tokens only."""
        return self.V

    @property
    def query_pos(self) -> torch.Tensor:
        return torch.arange(0, self.seq_len, 2)  # every key position

    def sample(self, batch_size: int, generator: torch.Generator):
        device = generator.device
        noise = torch.rand(batch_size, 2, self.V, generator=generator, device=device)
        pi, key_order = noise.argsort(dim=-1).unbind(1)  # two independent uniform permutations
        keys = key_order[:, : self.L]                     # [batch, L] distinct keys
        values = pi.gather(1, keys)                       # [batch, L] their values pi(k)
        tokens = torch.empty(batch_size, self.seq_len, dtype=torch.long, device=device)
        tokens[:, 0::2] = keys
        tokens[:, 1::2] = values[:, :-1] + self.V
        return Batch(tokens, self.query_pos.to(device), self.posterior(tokens), values)

    def posterior(self, tokens: torch.Tensor) -> torch.Tensor:
        """Exact predictive at every key position: uniform over values not yet observed.

        tokens: [batch, seq_len] -> probs [batch, L, V] (float64).
        """
        observed = tokens[:, 1::2] - self.V                                   # [batch, L-1]
        seen = torch.nn.functional.one_hot(observed, self.V).cumsum(1)        # [batch, L-1, V]
        seen = torch.nn.functional.pad(seen, (0, 0, 1, 0))                    # [batch, L, V]: none seen at t=0
        unseen = (seen == 0).double()
        return unseen / unseen.sum(-1, keepdim=True)
