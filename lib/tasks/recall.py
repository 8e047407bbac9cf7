"""Associative recall, Paper I's binding wind tunnel (v3 only; spec paper1.md §2.3).

A sequence stores n_pairs fresh key-value bindings, waits, then asks for some of them:

    storage   n_pairs x [STORE, key, SEP, value]      keys and values each without replacement
    filler    n_filler x FILLER
    queries   [QUERY, key, PAD] per query, n_filler // 2 FILLER between queries

The queried keys are n_queries distinct stored keys. At the defaults (64 pairs, 3 queries,
32 fillers) the length is 4*64 + 32 + 3*3 + 2*16 = 329 tokens.

Target convention: the authors' generator attaches each query's target to its PAD position;
their training code for this task is not released, so where a model's answer is read is ours
to state. We read it at the queried key (`read_at="key"`, every profile): the model sees
[QUERY, key] and predicts the value next, the usual associative-recall convention. Reading
at the PAD (`read_at="pad"`) asks for one more hop: a causal model must first move the key
into the PAD position before it can look the key up; chapter 4 trains its transformer both
ways and shows what that hop costs. The model scores
the n_values value tokens only (as the bijection scores its V values); the Bayes posterior
is a point mass on the value stored with the queried key, so the metric is accuracy. Chance
is 1/n_values for a model that ignores the context and 1/n_pairs for one that knows which
values were stored but not which key went with which.

Tokens: PAD 0, STORE 1, FILLER 2, QUERY 3, SEP 4 (5..9 unused, as in the authors' layout),
keys 10..10+n_keys-1, then the values.

Used by: 04_architectures (C11, C14): the binding primitive.
"""
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch.nn.functional import one_hot

from lib.tasks.batch import Batch
from lib.validate import check_field_types

PAD, STORE, FILLER, QUERY, SEP = 0, 1, 2, 3, 4
KEY0 = 10  # the first key token
READ_AT = ("key", "pad")  # where each query's answer is read: at the queried key, or at the PAD after it


@dataclass(frozen=True)
class Recall:
    n_pairs: int = 64    # key-value bindings stored per sequence
    n_queries: int = 3   # distinct stored keys asked for
    n_filler: int = 32   # FILLER tokens after the storage (half as many between queries)
    n_keys: int = 256    # key vocabulary
    n_values: int = 256  # value vocabulary
    read_at: str = "key"  # "key": the answer is predicted right after the queried key; "pad": at its PAD
    name: ClassVar[str] = "recall"
    VERSION: ClassVar[int] = 1  # of what it samples: bump when that changes (lib/cache.py)

    def __post_init__(self):
        check_field_types(self)
        if min(self.n_keys, self.n_values) < 2:
            raise ValueError(f"Recall: n_keys must be >= 2 and n_values must be >= 2, got {self}")
        if not 1 <= self.n_pairs <= min(self.n_keys, self.n_values):
            raise ValueError(f"Recall: n_pairs must be in 1..min(n_keys, n_values)={min(self.n_keys, self.n_values)} "
                             f"(keys and values are drawn without replacement), got n_pairs={self.n_pairs}")
        if not 1 <= self.n_queries <= self.n_pairs:
            raise ValueError(f"Recall: n_queries must be in 1..n_pairs={self.n_pairs} (distinct stored keys), "
                             f"got n_queries={self.n_queries}")
        if self.read_at not in READ_AT:
            raise ValueError(f"Recall: read_at must be one of {READ_AT}, got {self.read_at!r}")
        if self.n_filler < 0:
            raise ValueError(f"Recall: n_filler must be >= 0, got n_filler={self.n_filler}")

    @property
    def value0(self) -> int:
        """The first value token."""
        return KEY0 + self.n_keys

    @property
    def storage_len(self) -> int:
        return 4 * self.n_pairs

    @property
    def seq_len(self) -> int:
        return self.storage_len + self.n_filler + 3 * self.n_queries + (self.n_filler // 2) * (self.n_queries - 1)

    @property
    def vocab_size(self) -> int:
        return self.value0 + self.n_values

    @property
    def n_out(self) -> int:
        """The model scores the value tokens only."""
        return self.n_values

    @property
    def pad_pos(self) -> torch.Tensor:
        """The PAD position of each query ([QUERY, key, PAD])."""
        first = self.storage_len + self.n_filler
        return first + torch.arange(self.n_queries) * (3 + self.n_filler // 2) + 2

    @property
    def query_pos(self) -> torch.Tensor:
        """Where each query's answer is read: its key or its PAD (`read_at`)."""
        return self.pad_pos - int(self.read_at == "key")

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        device = generator.device
        rand = lambda n: torch.rand(batch_size, n, generator=generator, device=device)  # noqa: E731
        keys = rand(self.n_keys).argsort(-1)[:, : self.n_pairs]        # [batch, n_pairs] distinct keys
        values = rand(self.n_values).argsort(-1)[:, : self.n_pairs]    # [batch, n_pairs] distinct values
        asked = rand(self.n_pairs).argsort(-1)[:, : self.n_queries]    # [batch, n_queries] distinct pair indices
        tokens = torch.full((batch_size, self.seq_len), FILLER, dtype=torch.long, device=device)
        storage = tokens[:, : self.storage_len].view(batch_size, self.n_pairs, 4)
        storage[..., 0], storage[..., 1], storage[..., 2], storage[..., 3] = STORE, keys + KEY0, SEP, values + self.value0
        pad = self.pad_pos.to(device)
        tokens[:, pad - 2], tokens[:, pad - 1], tokens[:, pad] = QUERY, keys.gather(1, asked) + KEY0, PAD
        labels = values.gather(1, asked)                                # [batch, n_queries]
        return Batch(tokens, self.query_pos.to(device), one_hot(labels, self.n_values).double(), labels)

    def posterior(self, tokens: torch.Tensor) -> torch.Tensor:
        """A point mass on the value stored with each queried key, read back from the tokens.

        tokens: [batch, seq_len] -> probs [batch, n_queries, n_values] (float64).
        """
        storage = tokens[:, : self.storage_len].view(tokens.shape[0], self.n_pairs, 4)
        asked = tokens[:, self.pad_pos.to(tokens.device) - 1]                       # [batch, n_queries] key tokens
        match = asked[:, :, None] == storage[:, None, :, 1]                         # [batch, n_queries, n_pairs]
        if (match.sum(-1) != 1).any():
            raise ValueError("Recall.posterior: every queried key must be stored exactly once")
        value = (match.long() * storage[:, None, :, 3]).sum(-1) - self.value0        # [batch, n_queries]
        return one_hot(value, self.n_values).double()
