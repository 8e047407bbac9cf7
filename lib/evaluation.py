"""Trained runs scored on fixed evaluation batches, cached under data/runs: each `metrics.Scores`
is reduced to what a chapter reads from it (its summary, the per-sequence entropy error over all
positions and over named position ranges, the per-position entropy error), which is small enough
to commit and gives the chapter's numbers exactly; re-executing a chapter then reads them
instead of running every model again.

Chapter 3's measurements of `lib.geometry` (focusing, value manifolds, ablations) are cached
here too, one artifact per run and batch, as the numbers and arrays the chapter reads.

Used by: 02_hmm (C2, C3, C4: the test lengths, the emission-only filter, the position table);
03_geometry (C5, C6, C8, C9).
"""
import dataclasses

import numpy as np
import torch

from lib import cache, geometry, metrics, stats, train
from lib.tasks.hmm import forward_filter

# The version of the numbers this module computes: it keys their cache entries (lib/cache.py).
# Bump it when a change alters them; a comment or a refactor keeps it.
VERSION = 1

MODULES = ("evaluation",)
GEOMETRY_MODULES = ("evaluation", "geometry")


def reduce(scores: metrics.Scores, splits: dict[str, slice]) -> dict:
    """A Scores as plain tensors: `summary` (the means of `Scores.summary`), `per_position`
    (entropy error [n_query]) and `per_sequence` (entropy error [n_sequences] over all
    positions, "all", and over each named slice of positions that holds any)."""
    error = scores.entropy_error
    parts = {name: error[:, s] for name, s in splits.items()}
    return {"summary": scores.summary(), "per_position": error.mean(0),
            "per_sequence": {"all": error.mean(1), **{name: e.mean(1) for name, e in parts.items() if e.shape[1]}}}


def across_seeds(per_seed: list[dict], part: str = "all") -> dict:
    """`stats.across_seeds` of reduced scores: the entropy error over `part`'s positions,
    sequences and seeds, its 95% interval and the per-seed means."""
    return stats.seed_mean(torch.stack([r["per_sequence"][part] for r in per_seed]))


def mean_summary(per_seed: list[dict]) -> dict[str, float]:
    """Each `Scores.summary()` field, averaged over seeds."""
    summaries = [r["summary"] for r in per_seed]
    return {k: float(np.mean([summary[k] for summary in summaries])) for k in summaries[0]}


def per_position(per_seed: list[dict]) -> np.ndarray:
    """Entropy error at each position, averaged over sequences and then seeds: [n_query]."""
    return np.mean([r["per_position"].numpy() for r in per_seed], 0)


def _json_slices(splits: dict[str, slice]) -> dict:
    return {name: [s.start, s.stop, s.step] for name, s in splits.items()}


# Chapter 2: every model at every test length, and the trained transformer's position table

def test_batches(task, test_K, size: int) -> dict:
    """The evaluation batch of each test length K: `size` fresh HMMs from stream offset K."""
    return {K: train.eval_batch(dataclasses.replace(task, K=K), size, torch.device("cpu"), offset=K) for K in test_K}


def emission_only_scores(task, batch) -> metrics.Scores:
    """The filter that ignores transitions (a uniform T): each posterior is the normalised emission column."""
    T, E, obs = task.decode(batch.tokens)
    return metrics.compare(forward_filter(torch.full_like(T, 1 / task.S), E, obs), batch.posterior)


def scores_by_length(runs: dict[str, list], task, batches: dict, splits: dict[str, slice]) -> dict:
    """{(name, K): [reduced Scores per seed]} for every run, the uniform predictor ("uniform") and
    the emission-only filter ("emission_only") on each batch; cached, keyed by the runs, the
    batches' contents and `splits`."""
    def compute():
        out = {}
        for K, batch in batches.items():
            out["uniform", K] = [reduce(metrics.uniform_scores(batch), splits)]
            out["emission_only", K] = [reduce(emission_only_scores(task, batch), splits)]
            for name, rs in runs.items():
                out[name, K] = [reduce(metrics.score(r.model, batch), splits) for r in rs]
        return out

    key = {"names": list(runs), "batches": {str(K): cache.digest(b) for K, b in batches.items()},
           "splits": _json_slices(splits)}
    return cache.get_or_compute_on_runs("scores", [r for rs in runs.values() for r in rs], key,
                                        MODULES, compute)


def zero_untrained(trained_len: int):
    """Position-table rewrite: every row from `trained_len` on set to zero."""
    def rewrite(pos_embed, _):
        pos_embed = pos_embed.clone()
        pos_embed[..., trained_len:, :] = 0
        return pos_embed
    return rewrite


def repeat_last_trained_pair(trained_len: int):
    """Position-table rewrite: every new position gets the embedding of the last trained
    `[OBS]`/symbol pair, with the right parity."""
    def rewrite(pos_embed, _):
        new = torch.arange(trained_len, pos_embed.shape[-2])
        pos_embed = pos_embed.clone()
        pos_embed[..., new, :] = pos_embed[..., trained_len - 2 + (new - trained_len) % 2, :]
        return pos_embed
    return rewrite


REWRITES = {"untrained rows zeroed": zero_untrained, "last trained pair repeated": repeat_last_trained_pair}


def position_handling(runs: list, batch, trained_len: int, splits: dict[str, slice]) -> dict:
    """{label: [reduced Scores per seed]}: each run scored on `batch` with its position table
    rewritten through `hook_pos_embed` (`REWRITES`); cached."""
    def compute():
        out = {}
        for label, rewrite in REWRITES.items():
            out[label] = []
            for r in runs:
                with r.model.hooks([("hook_pos_embed", rewrite(trained_len))]):
                    out[label].append(reduce(metrics.score(r.model, batch), splits))
        return out

    key = {"batch": cache.digest(batch), "trained_len": trained_len, "splits": _json_slices(splits)}
    return cache.get_or_compute_on_runs("position-handling", runs, key, MODULES, compute)


# Chapter 3: lib.geometry's measurements of one run on one batch

def _on_run(kind: str, run, batch, compute) -> dict:
    return cache.get_or_compute_on_runs(kind, [run], {"batch": cache.digest(batch)}, GEOMETRY_MODULES, compute)


def focusing(run, batch) -> geometry.Focusing:
    """`geometry.focusing` of the run's attention at the batch's query positions; cached."""
    def compute():
        f = geometry.focusing(geometry.query_patterns(run.model, batch), batch.query_pos,
                              geometry.position_groups(run.config.task))
        return {"entropy": torch.from_numpy(f.entropy), "normalised": torch.from_numpy(f.normalised),
                "mass": {k: torch.from_numpy(v) for k, v in f.mass.items()}}

    saved = _on_run("focusing", run, batch, compute)
    return geometry.Focusing(saved["entropy"].numpy(), saved["normalised"].numpy(),
                             {k: v.numpy() for k, v in saved["mass"].items()})


def manifolds(run, batch) -> dict:
    """`geometry.manifold` of every representation of `geometry.representations` against the
    Bayes entropy: {"summary": {representation: Manifold.summary()}, and for the figure of the
    final layer's value vectors their PC scores "pc" [n_points, 2] and "explained" variances}; cached."""
    def compute():
        entropy = metrics.entropy_bits(batch.posterior).numpy()
        found = {rep: geometry.manifold(acts, entropy) for rep, acts in geometry.representations(run.model, batch).items()}
        return {"summary": {rep: m.summary() for rep, m in found.items()},
                "pc": torch.from_numpy(found["value vectors"].pc.copy()),  # a copy: the view would save all PCs
                "explained": torch.from_numpy(found["value vectors"].explained)}

    return _on_run("manifolds", run, batch, compute)


def layer_ablation_errors(run, batch) -> dict:
    """{(mode, layer): entropy MAE (bits, a 0-dim tensor)} of `geometry.layer_ablations`; cached."""
    return _on_run("layer-ablations", run, batch, lambda: {
        key: s.entropy_error.mean() for key, s in geometry.layer_ablations(run.model, batch).items()})


def head_ablation_errors(run, batch) -> dict:
    """{(mode, layer, head): entropy MAE (bits, a 0-dim tensor)} of `geometry.head_ablations`; cached."""
    return _on_run("head-ablations", run, batch, lambda: {
        key: s.entropy_error.mean() for key, s in geometry.head_ablations(run.model, batch).items()})
