"""The one metrics module: how far a model's predictive is from the exact posterior.

All quantities are in bits and are computed per (sequence, query position) first; every
aggregate is a mean of those, except the "cancelling" aggregator, which exists only to
reproduce a number the papers report (spec paper1.md §3.3).

Used by: 01_bijection (C1) and every later chapter.
"""
from dataclasses import dataclass, fields

import torch

# The version of the numbers this module computes: it keys their cache entries (lib/cache.py).
# Bump it when a change alters them; a comment or a refactor keeps it.
VERSION = 1


def entropy_bits(probs: torch.Tensor) -> torch.Tensor:
    """H(p) = -sum p log2 p over the last axis, with 0 log 0 = 0."""
    return -(probs * torch.log2(probs.clamp_min(1e-300))).sum(-1)


@dataclass
class Scores:
    """Per-(sequence, query position) comparison of a predictive q with the posterior p.
    Every field is [n_sequences, n_query] (float64)."""
    entropy_model: torch.Tensor  # H(q)
    entropy_bayes: torch.Tensor  # H(p)
    entropy_error: torch.Tensor  # |H(q) - H(p)|; its mean is the primary metric (per-sample MAE)
    kl: torch.Tensor             # KL(p || q) = sum_y p log2(p / q), finite where p has zeros
    tvd: torch.Tensor            # (1/2) sum_y |p - q|
    invalid_mass: torch.Tensor   # q's mass on outcomes the posterior rules out (p = 0)
    accuracy: torch.Tensor       # probability that q's top choice is right: p[argmax q]
    bayes_accuracy: torch.Tensor  # the ceiling: max p

    def summary(self) -> dict[str, float]:
        """Means over all (sequence, position) pairs, plus the cancelling aggregator."""
        out = {f.name: getattr(self, f.name).mean().item() for f in fields(self)}
        out["entropy_mae"] = out.pop("entropy_error")
        out["entropy_mae_cancelling"] = self.cancelling_entropy_mae()
        return out

    def at_positions(self, index) -> "Scores":
        """The same scores restricted to some query positions (an index or slice)."""
        return Scores(**{f.name: getattr(self, f.name)[:, index] for f in fields(self)})

    def per_position(self) -> dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name).mean(0) for f in fields(self)}

    def cancelling_entropy_mae(self) -> float:
        """|mean_n H(q) - mean_n H(p)| per position, then averaged over positions.

        NOT an error measure: over- and under-confident sequences cancel. Reported only
        because a paper number (HMM 7.5e-5 bits) is of this kind.
        """
        return (self.entropy_model.mean(0) - self.entropy_bayes.mean(0)).abs().mean().item()


def compare(probs: torch.Tensor, posterior: torch.Tensor) -> Scores:
    """Score a predictive `probs` against the exact `posterior`, both [n, n_query, n_out]."""
    q, p = probs.double(), posterior.double()
    h_q, h_p = entropy_bits(q), entropy_bits(p)
    ruled_out = p == 0
    kl = torch.where(ruled_out, 0.0, p * (torch.log2(p.clamp_min(1e-300)) - torch.log2(q.clamp_min(1e-300))))
    return Scores(
        entropy_model=h_q, entropy_bayes=h_p, entropy_error=(h_q - h_p).abs(), kl=kl.sum(-1),
        tvd=0.5 * (q - p).abs().sum(-1), invalid_mass=(q * ruled_out).sum(-1),
        accuracy=p.gather(-1, q.argmax(-1, keepdim=True)).squeeze(-1), bayes_accuracy=p.max(-1).values)


@torch.no_grad()
def predict(model: torch.nn.Module, batch, chunk: int = 1024) -> torch.Tensor:
    """The model's predictive at the batch's query positions: [n, n_query, n_out] float64."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    probs = [model(tokens.to(device))[:, batch.query_pos].double().softmax(-1).cpu()
             for tokens in batch.tokens.split(chunk)]
    model.train(was_training)
    return torch.cat(probs)


def score(model: torch.nn.Module, batch) -> Scores:
    return compare(predict(model, batch), batch.posterior.cpu())


def uniform_scores(batch) -> Scores:
    """The trivial baseline: uniform over every outcome, ignoring the context."""
    posterior = batch.posterior.cpu()
    return compare(torch.full_like(posterior, 1 / posterior.shape[-1]), posterior)
