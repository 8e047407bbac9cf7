"""Aggregating per-sequence errors over sequences and seeds, with honest intervals.

Kept apart from `metrics` (which the training loop uses, and whose source is part of every
run's cache key) because how we summarise never changes what was trained.

Used by: 01_bijection (C1) and every chapter that reports a mean over seeds.
"""
import scipy.stats
import torch

# The version of the numbers this module computes: it keys their cache entries (lib/cache.py).
# Bump it when a change alters them; a comment or a refactor keeps it.
VERSION = 1


def bootstrap_ci(per_sequence: torch.Tensor, n_boot: int = 2000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the mean of `per_sequence` ([n_runs, n_sequences] or [n_sequences]).

    Resamples sequences (never positions, which are correlated within a sequence) and, when
    there are several runs (seeds sharing one evaluation batch), the runs too: a seed-to-seed
    spread larger than the sequence noise widens the interval, as it should.
    """
    values = per_sequence.double().reshape(-1, per_sequence.shape[-1])
    n_runs, n_seq = values.shape
    gen = torch.Generator().manual_seed(seed)
    seq_idx = torch.randint(n_seq, (n_boot, n_seq), generator=gen)
    run_means = torch.stack([run[seq_idx].mean(-1) for run in values])        # [n_runs, n_boot]
    run_idx = torch.randint(n_runs, (n_runs, n_boot), generator=gen)
    means = run_means.gather(0, run_idx).mean(0) if n_runs > 1 else run_means[0]
    tail = (1 - level) / 2
    return means.quantile(tail).item(), means.quantile(1 - tail).item()


def across_seeds(per_seed: list, field: str = "entropy_error") -> dict:
    """Mean of a per-(sequence, position) field of `metrics.Scores` over positions, sequences
    and seeds, with its 95% interval and the per-seed means."""
    return seed_mean(torch.stack([getattr(s, field).mean(1) for s in per_seed]))


def seed_mean(per_sequence: torch.Tensor) -> dict:
    """Mean of per-sequence values [n_seeds, n_sequences] over sequences and seeds, with its 95%
    interval and the per-seed means."""
    return {"mean": per_sequence.mean().item(), "ci95": bootstrap_ci(per_sequence),
            "per_seed": per_sequence.mean(1).tolist()}


def degradation_shape(curve, start: int) -> dict:
    """How an error curve rises past `start` (e.g. the last trained position): the Spearman
    correlation of error with position (1 = rises steadily), and the largest single-step
    increase as a fraction of the total rise (small = no cliff)."""
    tail = torch.as_tensor(curve, dtype=torch.float64)[start:]
    rise = (tail[-1] - tail[0]).item()
    steps = tail.diff()
    return {"spearman": scipy.stats.spearmanr(range(len(tail)), tail.numpy()).statistic,
            "largest_step_fraction": steps.max().item() / rise if rise > 0 else float("inf"),
            "rise": rise}
