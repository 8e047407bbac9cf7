"""Statistics of Paper III's geometry, each with the null it must be compared with.

- Standardised PCA of n prompts x d coordinates: PC1, PC1+PC2 and the participation ratio
  over all eigenvalues; its null is governed by n, not by 1/d (about (1 + sqrt(n/d))^2/(n-1)),
  computed here by simulation (i.i.d. Gaussian) and by permuting each coordinate across
  prompts (same marginals, no shared axis); leave-one-out for outliers; bootstrap intervals.
- Correlation of PC1 with entropy (Spearman), with a bootstrap interval whose PC1 sign is
  aligned to the full-sample axis.
- A within-vector shuffle, the null for key orthogonality (the mean |cos| itself and its value
  for random directions are `lib.geometry`'s, shared with chapter 3).

Used by: 07_llm_geometry (L1-L5); Paper III §4.2, §5, spec paper2_3.md §3.6-§3.8.
"""
import contextlib
import math

import scipy.stats
import torch

# The version of the numbers this module computes: it keys their cache entries (lib/cache.py).
# Bump it when a change alters them; a comment or a refactor keeps it.
VERSION = 1


@contextlib.contextmanager
def one_thread():
    """Small linear algebra (75 x 192 SVDs, thousands of them) on one thread: with several
    threads on a loaded machine each call waits on its siblings and runs >10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def standardise_mask(x: torch.Tensor) -> torch.Tensor:
    """The coordinates that vary across prompts (relative to the most variable one)."""
    sd = x.double().std(0)
    return sd > 1e-12 * sd.max()


def standardise(x: torch.Tensor) -> torch.Tensor:
    """z-score each coordinate across prompts (coordinates constant across prompts are dropped)."""
    x = x[:, standardise_mask(x)].double()
    return (x - x.mean(0)) / x.std(0)


def eigenvalues(x: torch.Tensor, standardised: bool = True) -> torch.Tensor:
    """Covariance eigenvalues, descending, of prompts x coordinates (via the n x n Gram matrix)."""
    z = standardise(x) if standardised else x.double() - x.double().mean(0)
    s = torch.linalg.svdvals(z)
    return s ** 2 / (len(z) - 1)


def pca(x: torch.Tensor, standardised: bool = True) -> dict:
    lam = eigenvalues(x, standardised)
    total = lam.sum()
    return {"pc1": (lam[0] / total).item(), "pc12": (lam[:2].sum() / total).item(),
            "participation_ratio": (total ** 2 / (lam ** 2).sum()).item()}


def pc1_scores(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores of each prompt on standardised PC1 [n], loading [d])."""
    z = standardise(x)
    _, _, vh = torch.linalg.svd(z, full_matrices=False)
    return z @ vh[0], vh[0]


def null_pc1_approx(n: int, d: int) -> float:
    """Approximate null PC1 share of standardised i.i.d. data, n prompts, d coordinates
    (Marchenko-Pastur edge over the total variance)."""
    return (1 + math.sqrt(n / d)) ** 2 / (n - 1) if n <= d else (1 + math.sqrt(d / n)) ** 2 / d


def gaussian_null(n: int, d: int, reps: int, generator: torch.Generator) -> dict:
    """Mean PC1 and PC1+PC2 shares of standardised i.i.d. Gaussian n x d matrices."""
    shares = [pca(torch.randn(n, d, generator=generator, dtype=torch.float64)) for _ in range(reps)]
    return {k: sum(s[k] for s in shares) / reps for k in ("pc1", "pc12", "participation_ratio")}


def permutation_null(x: torch.Tensor, reps: int, generator: torch.Generator) -> dict:
    """PC shares after permuting every coordinate independently across prompts: the marginals
    stay, any axis shared by coordinates goes. Returns means and 95th percentiles."""
    n, d = x.shape
    shares = []
    for _ in range(reps):
        idx = torch.argsort(torch.rand(n, d, generator=generator), dim=0)
        shares.append(pca(torch.gather(x.double(), 0, idx)))
    out = {}
    for k in ("pc1", "pc12"):
        vals = torch.tensor([s[k] for s in shares])
        out[k], out[f"{k}_q95"] = vals.mean().item(), vals.quantile(0.95).item()
    return out


def leave_one_out_pc1(x: torch.Tensor) -> list[float]:
    return [s["pc1"] for s in leave_one_out(x)]


def leave_one_out(x: torch.Tensor) -> list[dict]:
    return [pca(torch.cat([x[:i], x[i + 1:]])) for i in range(len(x))]


def jackknife_ci(estimate: float, loo: list[float]) -> tuple[float, float]:
    """estimate +- 1.96 jackknife standard errors (row bootstraps duplicate prompts and bias
    PCA shares upward, so their percentile interval can miss the estimate altogether)."""
    loo_t = torch.tensor(loo, dtype=torch.float64)
    n = len(loo_t)
    se = math.sqrt((n - 1) / n * ((loo_t - loo_t.mean()) ** 2).sum().item())
    return estimate - 1.96 * se, estimate + 1.96 * se


def bootstrap_spearman(x: torch.Tensor, entropy: torch.Tensor, reps: int, generator: torch.Generator) -> tuple:
    """Percentile 95% interval over prompt resamples (re-standardised each time) of the Spearman
    correlation of PC1 with `entropy`, PC1's sign aligned with the full-sample loading."""
    _, loading = pc1_scores(x)
    keep = standardise_mask(x)
    rhos = []
    for _ in range(reps):
        idx = torch.randint(len(x), (len(x),), generator=generator)
        sample = x[idx][:, keep]
        if (sample.double().std(0) <= 0).any():  # a coordinate constant in the resample
            sample = sample + 1e-9 * torch.randn(sample.shape, generator=generator, dtype=sample.dtype)
        scores, load = pc1_scores(sample)
        sign = 1.0 if (load @ loading[:len(load)]).item() >= 0 else -1.0
        rhos.append(sign * spearman(scores, entropy[idx]))
    rhos = torch.tensor(rhos)
    return rhos.quantile(0.025).item(), rhos.quantile(0.975).item()


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman's rho (average ranks for ties), as scipy.stats.spearmanr."""
    ra = torch.from_numpy(scipy.stats.rankdata(a.numpy())).double()
    rb = torch.from_numpy(scipy.stats.rankdata(b.numpy())).double()
    return torch.corrcoef(torch.stack([ra, rb]))[0, 1].item()


def summary(x: torch.Tensor, entropy: torch.Tensor, generator: torch.Generator, boot: int, null_reps: int) -> dict:
    """Everything L1-L3 report for one prompt set: shares (standardised and raw), participation
    ratio, Spearman(PC1, entropy) with its p-value, bootstrap intervals, the Gaussian and
    permutation nulls, and the leave-one-out range of PC1."""
    scores, _ = pc1_scores(x)
    rho = scipy.stats.spearmanr(scores.numpy(), entropy.numpy())
    loo = leave_one_out(x)
    n, d = x.shape
    shares = pca(x)
    return {"n": n, "d": d, **shares, "raw": pca(x, standardised=False),
            "spearman": float(rho.statistic), "spearman_p": float(rho.pvalue),
            "spearman_ci": bootstrap_spearman(x, entropy, boot, generator),
            "gaussian_null": gaussian_null(n, d, null_reps, generator),
            "permutation_null": permutation_null(x, null_reps, generator),
            "loo_min": min(s["pc1"] for s in loo), "loo_max": max(s["pc1"] for s in loo),
            "loo_argmin": int(torch.tensor([s["pc1"] for s in loo]).argmin()),
            "jackknife": {k: jackknife_ci(shares[k], [s[k] for s in loo]) for k in ("pc1", "pc12")},
            "scores": scores}


def shuffled_within_vectors(v: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each row's coordinates permuted independently: same values per vector, no shared direction."""
    idx = torch.argsort(torch.rand(v.shape, generator=generator), dim=-1)
    return torch.gather(v, -1, idx)


def bootstrap_statistic(statistic, n: int, reps: int, generator: torch.Generator) -> tuple[float, float]:
    """Percentile 95% interval of `statistic(indices)` over prompt resamples (for statistics that
    are not a plain mean, e.g. a ratio of means; plain means use lib.stats.bootstrap_ci)."""
    vals = torch.tensor([statistic(torch.randint(n, (n,), generator=generator)) for _ in range(reps)])
    return vals.quantile(0.025).item(), vals.quantile(0.975).item()
