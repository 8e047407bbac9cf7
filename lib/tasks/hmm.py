"""HMM filtering, Paper I's second wind tunnel (spec paper1.md §2.2).

Every sequence draws a fresh hidden Markov model with S=5 states and O=5 symbols, writes its
transition and emission matrices into a 53-token header, then shows K observations. At each
observation the target is the filtering posterior p(s_t | o_0..o_t), computed exactly by the
forward algorithm (log space, float64) from the quantised matrices the model reads.

Matrix rows follow the authors' generator: Dirichlet(1), floored at 0.05 and renormalised,
rounded to whole hundredths with every entry at least 0.05, and repaired to sum to exactly 1
(add a cent to the smallest entries, or take one from the largest, cycling). The initial
state is uniform and the recursion starts with an emission, not a transition:
    alpha_0 ∝ pi0 * E[:, o_0],    alpha_t ∝ (alpha_{t-1} T) * E[:, o_t].

Tokens: 0..95 probabilities 0.05..1.00, 96 [TRANS], 97 [EMIT], 98 [SEP], 99 [OBS],
100.. observation symbols. Layout: [TRANS] T (row-major) [EMIT] E [SEP] then [OBS] o_t pairs;
the prediction for step t is read at the symbol o_t, index 54 + 2t.

`K` is the number of observations in a sampled sequence; `K_max` fixes the length the model
is built for (its position table), so one model can be trained at K=20 and evaluated at 50.

Used by: 02_hmm (C2, C3, C4).
"""
from dataclasses import dataclass
from typing import ClassVar

import torch

from lib.tasks.batch import Batch
from lib.validate import check_field_types

MIN_CENTS = 5  # the 0.05 floor on every matrix entry
TRANS, EMIT, SEP, OBS = 96, 97, 98, 99
SYMBOL0 = 100
HEADER = 53


def sample_matrices(batch_size: int, n_rows: int, n_cols: int, generator: torch.Generator) -> torch.Tensor:
    """[batch, n_rows, n_cols] row-stochastic matrices on the authors' 0.01 grid (float64)."""
    u = torch.rand(batch_size, n_rows, n_cols, generator=generator, device=generator.device, dtype=torch.float64)
    raw = -torch.log1p(-u)                       # Exponential(1) draws ...
    raw = raw / raw.sum(-1, keepdim=True)        # ... normalised: a Dirichlet(1) row
    raw = raw.clamp_min(MIN_CENTS / 100)
    raw = raw / raw.sum(-1, keepdim=True)
    return repair_to_grid(raw) / 100


def repair_to_grid(rows: torch.Tensor) -> torch.Tensor:
    """Round rows to whole cents (each >= MIN_CENTS) and repair each sum to exactly 100:
    a missing cent goes to the smallest entries first, a surplus cent comes from the
    largest entries that are above the floor, cycling through the row as often as needed."""
    cents = torch.round(torch.round(rows, decimals=2) * 100).clamp_min(MIN_CENTS)
    n_cols = cents.shape[-1]
    diff = 100 - cents.sum(-1)                                        # [...], cents to add (+) or remove (-)
    add_order = cents.argsort(-1)                                     # smallest first
    remove_order = (-cents).argsort(-1)                               # largest first
    while (diff != 0).any():
        for i in range(n_cols):
            adding, removing = diff > 0, diff < 0
            j_add = add_order[..., i:i + 1]
            j_remove = remove_order[..., i:i + 1]
            can_add = adding & (cents.gather(-1, j_add).squeeze(-1) < 100)
            can_remove = removing & (cents.gather(-1, j_remove).squeeze(-1) > MIN_CENTS)
            cents.scatter_add_(-1, j_add, can_add.to(cents.dtype)[..., None])
            cents.scatter_add_(-1, j_remove, -can_remove.to(cents.dtype)[..., None])
            diff = diff - can_add.to(diff.dtype) + can_remove.to(diff.dtype)
    return cents


def forward_filter(T: torch.Tensor, E: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
    """Filtering posteriors p(s_t | o_0..o_t) with a uniform initial state, in log space.

    T: [batch, S, S], E: [batch, S, O], obs: [batch, K] -> [batch, K, S] (float64).
    """
    log_T, log_E = T.double().log(), E.double().log()
    S = T.shape[-1]
    emit = log_E.gather(-1, obs[:, None, :].expand(-1, S, -1)).transpose(1, 2)  # [batch, K, S]: log E[s, o_t]
    log_alpha = torch.full_like(emit[:, 0], -torch.log(torch.tensor(float(S), dtype=torch.float64))) + emit[:, 0]
    log_alpha = log_alpha - log_alpha.logsumexp(-1, keepdim=True)
    out = [log_alpha]
    for t in range(1, obs.shape[1]):
        log_alpha = (log_alpha[:, :, None] + log_T).logsumexp(1) + emit[:, t]
        log_alpha = log_alpha - log_alpha.logsumexp(-1, keepdim=True)
        out.append(log_alpha)
    return torch.stack(out, 1).exp()


@dataclass(frozen=True)
class HMM:
    K: int = 20          # observations per sampled sequence
    K_max: int = 50      # the longest sequence the model is built for
    S: int = 5           # hidden states
    O: int = 5           # observation symbols
    name: ClassVar[str] = "hmm"
    VERSION: ClassVar[int] = 1  # of what it samples: bump when that changes (lib/cache.py)

    def __post_init__(self):
        check_field_types(self)
        if (self.S, self.O) != (5, 5):
            raise ValueError(f"HMM: the 53-token header format fixes S=5 and O=5, got S={self.S}, O={self.O}")
        if not 1 <= self.K <= self.K_max:
            raise ValueError(f"HMM: K must be in 1..K_max={self.K_max}, got K={self.K}")

    @property
    def seq_len(self) -> int:
        """Length of the longest sequence (K_max observations): the model's position table."""
        return HEADER + 2 * self.K_max

    @property
    def vocab_size(self) -> int:
        return SYMBOL0 + self.O

    @property
    def n_out(self) -> int:
        return self.S

    @property
    def query_pos(self) -> torch.Tensor:
        return HEADER + 1 + 2 * torch.arange(self.K)  # the observation symbols

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        device = generator.device
        T = sample_matrices(batch_size, self.S, self.S, generator)
        E = sample_matrices(batch_size, self.S, self.O, generator)
        u = torch.rand(batch_size, 2, self.K, generator=generator, device=device, dtype=torch.float64)
        states = torch.empty(batch_size, self.K, dtype=torch.long, device=device)
        obs = torch.empty_like(states)
        state_probs = torch.full((batch_size, self.S), 1 / self.S, dtype=torch.float64, device=device)
        rows = torch.arange(batch_size, device=device)
        for t in range(self.K):  # inverse-CDF sampling, vectorised over the batch
            if t > 0:
                state_probs = T[rows, states[:, t - 1]]
            states[:, t] = (u[:, 0, t, None] > state_probs.cumsum(-1)).sum(-1).clamp_max(self.S - 1)
            obs[:, t] = (u[:, 1, t, None] > E[rows, states[:, t]].cumsum(-1)).sum(-1).clamp_max(self.O - 1)
        tokens = self.encode(T, E, obs)
        return Batch(tokens, self.query_pos.to(device), forward_filter(T, E, obs), states)

    def encode(self, T: torch.Tensor, E: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        """Matrices on the 0.01 grid and observations -> tokens [batch, 53 + 2K]."""
        prob_token = lambda m: (torch.round(m * 100) - MIN_CENTS).long().flatten(1)  # noqa: E731
        n = obs.shape[0]
        special = lambda tok: torch.full((n, 1), tok, dtype=torch.long, device=obs.device)  # noqa: E731
        body = torch.stack([torch.full_like(obs, OBS), obs + SYMBOL0], -1).flatten(1)
        return torch.cat([special(TRANS), prob_token(T), special(EMIT), prob_token(E), special(SEP), body], 1)

    def decode(self, tokens: torch.Tensor):
        """tokens [batch, 53 + 2K] -> (T, E, observations): the inverse of `encode`."""
        prob = lambda block: (block + MIN_CENTS).double() / 100  # noqa: E731
        T = prob(tokens[:, 1:26]).view(-1, self.S, self.S)
        E = prob(tokens[:, 27:52]).view(-1, self.S, self.O)
        return T, E, tokens[:, HEADER + 1::2] - SYMBOL0

    def posterior(self, tokens: torch.Tensor) -> torch.Tensor:
        """Exact filtering posteriors read back from the tokens: [batch, K, S]."""
        return forward_filter(*self.decode(tokens))
