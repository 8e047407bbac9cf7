"""Bijection elimination with keys drawn WITH replacement: the "sawtooth" control of
Paper I's value-manifold claim (spec paper1.md §2.1 and §4.3).

Same sep-vocab layout as `Bijection` (k1, V+pi(k1), k2, ..., k_L), but each key is drawn
uniformly from all V keys, so keys repeat. At a query whose key was already shown, the value
is known (H_Bayes = 0); otherwise it is uniform over the values not yet seen,
H_Bayes = log2(V - #distinct values seen). Entropy then rises and falls along a sequence
instead of being a function of position: that separates "ordered by entropy" from
"ordered by position".

Used by: 03_geometry (C9).
"""
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch.nn.functional import one_hot, pad

from lib.tasks.batch import Batch
from lib.tasks.bijection import Bijection


@dataclass(frozen=True)
class Sawtooth(Bijection):
    name: ClassVar[str] = "sawtooth"

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        device = generator.device
        pi = torch.rand(batch_size, self.V, generator=generator, device=device).argsort(-1)
        keys = torch.randint(self.V, (batch_size, self.L), generator=generator, device=device)
        values = pi.gather(1, keys)                       # [batch, L] pi(k), repeats included
        tokens = torch.empty(batch_size, self.seq_len, dtype=torch.long, device=device)
        tokens[:, 0::2] = keys
        tokens[:, 1::2] = values[:, :-1] + self.V
        return Batch(tokens, self.query_pos.to(device), self.posterior(tokens), values)

    def posterior(self, tokens: torch.Tensor) -> torch.Tensor:
        """Exact predictive at every key position: a point mass on the value already shown
        for a repeated key, else uniform over the values not yet observed.

        tokens: [batch, seq_len] -> probs [batch, L, V] (float64).
        """
        keys, observed = tokens[:, 0::2], tokens[:, 1::2] - self.V            # [batch, L], [batch, L-1]
        seen_values = one_hot(observed, self.V)                               # [batch, L-1, V]
        unseen = pad(seen_values.cumsum(1), (0, 0, 1, 0)) == 0                # [batch, L, V]: not seen before t
        uniform = unseen.double() / unseen.sum(-1, keepdim=True)
        before = torch.ones(self.L, self.L, dtype=torch.bool, device=tokens.device).tril(-1)[:, :-1]  # pair j < query t
        same_key = (keys[:, :, None] == keys[:, None, :-1]) & before          # [batch, L, L-1]
        known = torch.einsum("btj,bjv->btv", same_key.double(), seen_values.double()).clamp_max(1)
        repeat = same_key.any(-1, keepdim=True)                               # [batch, L, 1]
        return torch.where(repeat, known, uniform)
