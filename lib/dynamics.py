"""Training dynamics: does the attention "frame" settle before the "precision"?

Paper I (C10) and Paper II (G5) say that during training the frame (where attention routes
information) stabilises early, while the precision (calibration against the posterior, the
sharpness of the entropy-ordered value manifold) keeps improving long afterwards. Spec
paper1.md §4.6 and paper2_3.md §2.7 give the protocol measured here, on a run's weight
snapshots and one fixed probe batch:

- frame: attention patterns' similarity to the final model's (1 - Jensen-Shannon), the
  overlap of each layer-0 head's key subspace with the final one, layer-0 key orthogonality,
  and the routing-to-value gradient ratio of Paper II's laws;
- precision: entropy MAE and KL against the posterior, the value manifold's PC1 share and
  |Spearman(PC1, H)|, and how well PC1 separates the last (lowest) entropy levels.

Used by: 06_frame_precision (C10).
"""
import math
from dataclasses import dataclass

import numpy as np
import scipy.stats
import torch

from lib import cache, geometry, metrics
from lib.tasks import hmm
from lib.train import loss_fn

# The version of the numbers this module computes: it keys their cache entries (lib/cache.py).
# Bump it when a change alters them; a comment or a refactor keeps it.
VERSION = 1


def checkpoint_steps(run) -> list[int]:
    """Initialisation (step 0), every snapshot, and the final step."""
    return [0, *sorted(run.snapshots), run.config.train.steps]


def model_at(run, step: int) -> torch.nn.Module:
    """The run's model after `step` steps: 0 (rebuilt from the seed), a snapshot, or the end."""
    if step == 0:
        return geometry.initial_model(run.config)
    return run.model if step == run.config.train.steps else run.model_at(step)


# Frame metrics

def js_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence in bits (0 for equal, 1 for disjoint distributions) over the last axis."""
    m = (p + q) / 2
    return metrics.entropy_bits(m) - (metrics.entropy_bits(p) + metrics.entropy_bits(q)) / 2


def attention_similarity(patterns: torch.Tensor, final: torch.Tensor) -> float:
    """1 - JS(pattern, final pattern), averaged over layers, heads, sequences and query
    positions; patterns as `geometry.query_patterns` returns them."""
    return 1 - js_divergence(patterns.double(), final.double()).mean().item()


def key_subspace(model, layer: int = 0) -> torch.Tensor:
    """Orthonormal bases of the residual-stream directions each head's W_K reads: [n_heads, d_model, d_head]."""
    attn = model.blocks[layer].attn
    w = attn.W_K.weight.detach().double().unflatten(0, (attn.n_heads, attn.d_head))  # [head, d_head, d_model]
    return torch.linalg.qr(w.mT).Q


def key_subspace_overlap(model, final, layer: int = 0) -> float:
    """Mean over heads of the mean squared cosine of the principal angles between a head's key
    subspace and the final model's: 1 for the same subspace, d_head / d_model expected by chance."""
    a, b = key_subspace(model, layer), key_subspace(final, layer)
    return ((a.mT @ b) ** 2).sum((-1, -2)).div(a.shape[-1]).mean().item()


def gradient_ratio(model, batch, target: str = "soft") -> float:
    """Paper II's two gradients at one batch: ||dL/ds|| over attention scores relative to
    ||dL/dv|| over value vectors, summed over layers with attention. A frame that has settled
    gets little routing gradient while the values keep receiving theirs."""
    acts = {}

    def keep(x, name):
        x.retain_grad()
        acts[name] = x

    layers = [i for i, block in enumerate(model.blocks) if block.attn is not None]
    names = [f"blocks.{i}.attn.hook_{kind}" for i in layers for kind in ("attn_scores", "v")]
    was_training = model.training
    model.eval()
    with torch.enable_grad(), model.hooks([(name, keep) for name in names]):
        loss_fn(model(batch.tokens), batch, target).backward()
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    norm = lambda kind: math.sqrt(sum(acts[n].grad.pow(2).sum().item() for n in names if n.endswith(kind)))  # noqa: E731
    return norm("attn_scores") / norm("v")


# Precision metric beyond the canonical scores

def level_resolution(pc1: np.ndarray, groups: np.ndarray, levels: list[int]) -> float:
    """How cleanly PC1 separates adjacent groups (e.g. the last query positions of the
    bijection, whose posterior entropies are 2.32, 2, 1.58 and 1 bits): the mean over adjacent
    pairs of the Fisher ratio (mu_a - mu_b)^2 / ((var_a + var_b) / 2)."""
    mean = {g: pc1[groups == g].mean() for g in levels}
    var = {g: pc1[groups == g].var() for g in levels}
    return float(np.mean([(mean[a] - mean[b]) ** 2 / ((var[a] + var[b]) / 2) for a, b in zip(levels, levels[1:])]))


# A whole run

FRAME = ("attention similarity", "key subspace overlap")  # the two that decide when the frame has settled
PRECISION = "entropy MAE"                                  # the one that decides the precision


@dataclass
class Trajectory:
    steps: np.ndarray                  # [n_checkpoints], 0 (initialisation) to the final step
    values: dict[str, np.ndarray]      # metric -> [n_checkpoints]

    def progress(self, name: str) -> np.ndarray:
        """How far from its initial to its final value a metric is at each checkpoint (0 to 1).
        The entropy MAE and KL are taken on a log scale: they fall by orders of magnitude."""
        v = self.values[name]
        if name in ("entropy MAE", "KL"):
            v = np.log(v)
        return (v - v[0]) / (v[-1] - v[0])

    def settling_step(self, names, level: float = 0.9) -> int:
        """First checkpoint from which every metric in `names` stays at >= `level` of its progress."""
        ok = np.all([self.progress(n) >= level for n in names], axis=0)
        unsettled = np.flatnonzero(~ok)
        return int(self.steps[unsettled[-1] + 1]) if len(unsettled) else int(self.steps[0])

    def summary(self, level: float = 0.9) -> dict[str, float]:
        """When the frame settled, how far the precision still was from its final value then
        (as a ratio of entropy MAEs), and when the precision itself settled."""
        frame_step = self.settling_step(FRAME, level)
        precision_step = self.settling_step([PRECISION], level)
        mae = self.values[PRECISION]
        return {"frame_step": frame_step, "precision_step": precision_step,
                "mae_ratio_at_frame": float(mae[self.steps == frame_step][0] / mae[-1]),
                "step_ratio": precision_step / max(frame_step, 1)}


@torch.no_grad()
def value_manifold(model, batch) -> geometry.Manifold:
    """The final layer's value vectors at the query positions, against H_Bayes (chapter 3's manifold)."""
    values = geometry.representations(model, batch)["value vectors"]
    return geometry.manifold(values, metrics.entropy_bits(batch.posterior).numpy())


def measure(model, final, final_patterns, batch, cfg, resolve_last: int) -> dict[str, float]:
    """Every frame and precision metric of one checkpoint `model` of the run `cfg` against its `final` model."""
    scores = metrics.score(model, batch).summary()
    m = value_manifold(model, batch)
    row = {"attention similarity": attention_similarity(geometry.query_patterns(model, batch), final_patterns),
           "key subspace overlap": key_subspace_overlap(model, final),
           "key orthogonality": geometry.key_orthogonality(model, hypothesis_tokens(cfg.task)).mean().item(),
           "gradient ratio": gradient_ratio(model, batch, cfg.train.target),
           "entropy MAE": scores["entropy_mae"], "KL": scores["kl"],
           "PC1 share": float(m.explained[0]),
           "|Spearman(PC1, H)|": abs(float(scipy.stats.spearmanr(m.pc[:, 0], m.entropy).statistic))}
    if resolve_last:
        n_query = len(batch.query_pos)
        row["low-entropy resolution"] = level_resolution(m.pc[:, 0], m.position,
                                                         list(range(n_query - resolve_last, n_query)))
    return row


MODULES = ("dynamics", "geometry")


def trajectory(run, batch, resolve_last: int = 0) -> Trajectory:
    """Every metric at every checkpoint of `run` on the fixed probe `batch`; cached, keyed by the
    run, the batch's contents and `resolve_last` (> 0 adds the PC1 separation of the last
    `resolve_last` query positions, for the bijection)."""
    def compute():
        final = run.model
        final_patterns = geometry.query_patterns(final, batch)
        rows = [measure(model_at(run, step), final, final_patterns, batch, run.config, resolve_last)
                for step in checkpoint_steps(run)]
        return {"steps": torch.tensor(checkpoint_steps(run)),
                "values": {k: torch.tensor([r[k] for r in rows], dtype=torch.float64) for k in rows[0]}}

    saved = cache.get_or_compute_on_runs("trajectory", [run], {"probe": cache.digest(batch), "resolve_last": resolve_last},
                                         MODULES, compute)
    return Trajectory(saved["steps"].numpy(), {k: v.numpy() for k, v in saved["values"].items()})


def hypothesis_tokens(task) -> torch.Tensor:
    """The tokens that name a hypothesis, whose layer-0 keys Paper I calls a frame: the value
    tokens of the bijection, the observation symbols of the HMM."""
    if task.name in ("bijection", "sawtooth"):
        return torch.arange(task.V, 2 * task.V)
    if task.name == "hmm":
        return torch.arange(hmm.SYMBOL0, hmm.SYMBOL0 + task.O)
    raise ValueError(f"no hypothesis tokens for task {task.name!r}")
