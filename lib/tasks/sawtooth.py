"""Bijection elimination with keys drawn WITH replacement: the "sawtooth" control of
Paper I's value-manifold claim (spec paper1.md §2.1 and §4.3).

Same sep-vocab layout as `Bijection` (k1, V+pi(k1), k2, ..., k_L), but keys repeat: each
key after the first repeats one already shown with probability `repeat` (picking an earlier
position uniformly), else is a new key, uniform over those not yet shown. At a query whose key
was already shown, the value is known (H_Bayes = 0); otherwise it is uniform over the values
not yet seen, H_Bayes = log2(V - #distinct values seen). Entropy then rises and falls along a
sequence instead of being a function of position: that separates "ordered by entropy" from
"ordered by position". The posterior does not depend on how keys are chosen, since the query
key is observed.

Why not i.i.d. uniform keys (the authors' `with_replacement`)? Averaged over the query key,
every value then has posterior probability exactly 1/V whatever the context, so a model at
initialisation gets no gradient from the values it has seen; in our runs chapter 1's recipe
stayed at the uniform predictor for all 3000 steps. A fixed repeat probability breaks that
symmetry.

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
    repeat: float = 0.5  # probability that a key (after the first) repeats an earlier one
    name: ClassVar[str] = "sawtooth"
    VERSION: ClassVar[int] = 1  # of what it samples: bump when that changes (lib/cache.py)

    def __post_init__(self):
        super().__post_init__()
        if not 0 <= self.repeat < 1:
            raise ValueError(f"Sawtooth: repeat must be in [0, 1), got repeat={self.repeat}")

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        device = generator.device
        noise = torch.rand(batch_size, 2, self.V, generator=generator, device=device)
        pi, new_keys = noise.argsort(dim=-1).unbind(1)   # the bijection, and the order new keys appear in
        u = torch.rand(batch_size, 2, self.L, generator=generator, device=device)
        keys = torch.zeros(batch_size, self.L, dtype=torch.long, device=device)
        n_distinct = torch.zeros(batch_size, dtype=torch.long, device=device)
        for t in range(self.L):
            is_repeat = (u[:, 0, t] < self.repeat) & (t > 0)
            earlier = keys.gather(1, (u[:, 1, t] * t).long().clamp_max(max(t - 1, 0))[:, None]).squeeze(1)
            fresh = new_keys.gather(1, n_distinct[:, None]).squeeze(1)
            keys[:, t] = torch.where(is_repeat, earlier, fresh)
            n_distinct += ~is_repeat
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
