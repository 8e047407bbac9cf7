"""Inference primitives across architectures (Paper I v3; spec paper1.md §1, C11-C14).

One scale for three tasks: r = a model's error / the error of the context-blind baseline.
Accumulation (bijection) and transport (HMM) measure error as per-sample entropy MAE, the
baseline being the uniform predictor; binding (associative recall) measures 1 - top-1
accuracy, the baseline being chance, 1 - 1/n_values. r = 0 is Bayes, r = 1 is no use of the
context. `lib.claims.primitive_cell` grades r into the paper's tick / "~" / cross.

Used by: 04_architectures (C11-C15); 02_hmm (the late fall of its learning curves).
"""
import dataclasses

import numpy as np
import torch

from lib import cache, geometry, metrics, stats, train

# The version of the numbers this module computes: it keys their cache entries (lib/cache.py).
# Bump it when a change alters them; a comment or a refactor keeps it.
VERSION = 1

BINDING_TASKS = ("recall",)  # scored by accuracy: the posterior is a point mass


def error_field(task) -> str:
    """The `metrics.Scores` field whose mean is the task's error (accuracy is turned into 1 - accuracy)."""
    return "accuracy" if task.name in BINDING_TASKS else "entropy_error"


def error(task, mean_of_field: float) -> float:
    """The error from the mean of `error_field(task)`."""
    return 1 - mean_of_field if task.name in BINDING_TASKS else mean_of_field


def baseline_error(task, batch) -> float:
    """The context-blind baseline's error on `batch`: the uniform predictor's entropy MAE, or
    1 - chance for binding."""
    if task.name in BINDING_TASKS:
        return 1 - 1 / task.n_out
    return metrics.uniform_scores(batch).entropy_error.mean().item()


def score(model, batch, chunk: int = 256) -> metrics.Scores:
    """`metrics.score` in smaller chunks: Mamba's scan keeps one [pos, chunk, d_inner, 16]
    state tensor per block, which at 1024 HMM sequences of K=50 would need gigabytes."""
    return metrics.compare(metrics.predict(model, batch, chunk=chunk), batch.posterior.cpu())


def run_scores(run, batch) -> metrics.Scores:
    """`score` of a trained run on `batch`, each field averaged over positions ([n_sequences, 1]:
    all that `summarise` and the chapter read), cached under data/runs (keyed by the run, the
    batch's contents and this module's and lib.metrics' sources): re-executing the chapter
    reads it. Per-sequence means keep the artifact small (kilobytes, not megabytes)."""
    def compute():
        scores = score(run.model, batch)
        return {f.name: getattr(scores, f.name).mean(1, keepdim=True) for f in dataclasses.fields(scores)}

    saved = cache.get_or_compute_on_runs("run-scores", [run], {"batch": cache.digest(batch)},
                                         ("primitives", "metrics"), compute)
    return metrics.Scores(**saved)


def state_geometry(runs, batch, n_states: int, symbols: np.ndarray) -> dict:
    """C15's measures (`geometry.hmm_state_geometry`) of each run's final representation on the
    HMM `batch` ("per_seed": one dict per run, k-means seeded by the run's index) and, for the
    figure, the first run's representation on its first two standardised principal components
    ("pcs" [n_points, 2], "explained" ratios). Cached like `run_scores`: the forward passes,
    k-means and silhouettes take half a minute."""
    def compute():
        states = [geometry.final_residual(run.model, batch) for run in runs]
        explained, pcs = geometry.standardised_pca(states[0].reshape(-1, states[0].shape[-1]))
        return {"per_seed": [geometry.hmm_state_geometry(acts, batch.posterior.numpy(), n_states, seed=i,
                                                         symbols=symbols) for i, acts in enumerate(states)],
                "pcs": torch.from_numpy(pcs[:, :2].copy()), "explained": torch.from_numpy(explained)}

    return cache.get_or_compute_on_runs("state-geometry", runs,
                                        {"batch": cache.digest(batch), "n_states": n_states,
                                         "symbols": cache.digest(symbols)},
                                        ("primitives", "geometry", "metrics"), compute)


def learning_curve(run) -> tuple[np.ndarray, np.ndarray]:
    """(steps, r) of a run's learning curve: each point's error on the run's fixed curve batch
    (drawn again here, as `train.train` drew it) over the baseline's error on that batch."""
    task, tc = run.config.task, run.config.train
    baseline = baseline_error(task, train.eval_batch(task, tc.eval_size, torch.device("cpu")))
    key = "accuracy" if task.name in BINDING_TASKS else "entropy_mae"
    steps = np.array([h["step"] for h in run.history])
    return steps, np.array([error(task, h[key]) for h in run.history]) / baseline


def late_gain(values: np.ndarray, steps: np.ndarray, fraction: float = 0.2) -> float:
    """Relative fall of a learning curve over the last `fraction` of training: about 0 for a
    curve that has levelled off ("cannot", at this budget), clearly positive for one still
    improving ("not yet")."""
    late = values[steps >= (1 - fraction) * steps[-1]]
    return float(1 - late[-1] / late[0]) if late[0] > 0 else 0.0


def summarise(task, per_seed: list[metrics.Scores], base: float) -> dict:
    """A task's error over seeds (mean, 95% interval over seeds and sequences, per seed) and
    the same divided by the baseline's error `base`: "r", "r_ci95", "r_per_seed"."""
    agg = stats.across_seeds(per_seed, error_field(task))
    lo, hi = sorted(error(task, v) for v in agg["ci95"])
    mean, per_seed_error = error(task, agg["mean"]), [error(task, v) for v in agg["per_seed"]]
    return {"error": mean, "ci95": (lo, hi), "per_seed": per_seed_error, "r": mean / base,
            "r_ci95": (lo / base, hi / base), "r_per_seed": [v / base for v in per_seed_error]}
