"""The geometry of wind-tunnel inference: orthogonal keys, attention focusing, the value
manifold, and ablations (Paper I §4; spec paper1.md §4.1-4.5).

Measurement only: every function takes a trained model (or activations) and returns arrays,
dicts or dataclasses; figures live in `lib.plotting`, verdicts in `lib.claims`.

Used by: 03_geometry (C5, C6, C7, C8, C9); 04_architectures (C15: clusters of the recurrent models'
states, `kmeans`, `adjusted_rand_index`, `silhouette`, `hmm_state_geometry`).
"""
import math
from dataclasses import dataclass

import numpy as np
import scipy.stats
import torch

from lib import metrics, stats
from lib.model import build_model, skip_block, zero_head, zero_output
from lib.tasks import hmm

# The version of the numbers this module computes: it keys their cache entries (lib/cache.py).
# Bump it when a change alters them; a comment or a refactor keeps it.
VERSION = 1


# Key orthogonality (C7, spec §4.1)

def mean_abs_cos(vectors: torch.Tensor) -> torch.Tensor:
    """Mean |cosine| over the ordered off-diagonal pairs of n vectors: [..., n, d] -> [...]."""
    unit = vectors / vectors.norm(dim=-1, keepdim=True)
    cos = (unit @ unit.transpose(-1, -2)).abs()
    n = cos.shape[-1]
    return (cos.sum((-1, -2)) - cos.diagonal(dim1=-2, dim2=-1).sum(-1)) / (n * (n - 1))


def gaussian_abs_cos(d: int) -> float:
    """E|cos| of two independent isotropic vectors in R^d: Gamma(d/2) / (sqrt(pi) Gamma((d+1)/2)),
    which is sqrt(2 / (pi d)) for large d. The "random keys" baseline for a d-dim head."""
    return math.exp(math.lgamma(d / 2) - math.lgamma((d + 1) / 2)) / math.sqrt(math.pi)


def welch_bound(n: int, d: int) -> float:
    """The Welch bound: n unit vectors in R^d always have some pair with
    |cos| >= sqrt((n - d) / (d (n - 1))); zero when n <= d (they can all be orthogonal)."""
    return math.sqrt(max(0, n - d) / (d * (n - 1)))


@torch.no_grad()
def layer0_keys(model, embeddings: torch.Tensor) -> torch.Tensor:
    """Layer-0 keys of token embeddings on their own (no position): W_K^h norm(e).
    embeddings [..., n, d_model] -> keys [..., n_heads, n, d_head]."""
    block = model.blocks[0]
    keys = block.attn.W_K(block.norm_attn(embeddings))                 # [..., n, d_model]
    return keys.unflatten(-1, (block.attn.n_heads, block.attn.d_head)).movedim(-2, -3)


def token_keys(model, token_ids: torch.Tensor) -> torch.Tensor:
    """The layer-0 keys of the tokens `token_ids`, each on its own: [n_heads, n, d_head]."""
    return layer0_keys(model, model.embed.weight[token_ids].detach())


def key_orthogonality(model, token_ids: torch.Tensor) -> torch.Tensor:
    """Mean |cos| between the layer-0 keys of `token_ids`, per head: [n_heads]."""
    return mean_abs_cos(token_keys(model, token_ids))


def shared_direction_share(vectors: torch.Tensor) -> torch.Tensor:
    """The share of n vectors' mean squared norm that lies in their mean, |mean|^2 / mean |v|^2:
    [..., n, d] -> [...]. 0 when they cancel out, 1 when they are one vector. A direction that all
    of them share raises their mean |cos| without making them any harder to tell apart."""
    return vectors.mean(-2).norm(dim=-1) ** 2 / (vectors.norm(dim=-1) ** 2).mean(-1)


def permutation_null(model, token_ids: torch.Tensor, n_permutations: int, seed: int = 0) -> torch.Tensor:
    """Key orthogonality when each token's embedding has its coordinates shuffled (a fresh
    permutation per token and draw): same norms and entries, no learned alignment with W_K.
    Returns [n_permutations, n_heads]."""
    embeddings = model.embed.weight[token_ids].detach()                 # [n, d_model]
    generator = torch.Generator().manual_seed(seed)
    order = torch.rand(n_permutations, *embeddings.shape, generator=generator).argsort(-1)
    return mean_abs_cos(layer0_keys(model, embeddings.expand(n_permutations, -1, -1).gather(-1, order)))


def initial_model(cfg):
    """The run's model at step 0, rebuilt as `lib.train.train` builds it (seeded with the run's seed)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)
        return build_model(cfg.model, cfg.task).eval()


@torch.no_grad()
def in_context_orthogonality(model, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Mean |cos| between the keys at `positions` of each sequence, from real forward passes,
    averaged over sequences: [n_layers, n_heads]."""
    names = [f"blocks.{layer}.attn.hook_k" for layer in range(len(model.blocks))]
    _, cache = model.run_with_cache(tokens, names)
    return torch.stack([mean_abs_cos(cache[name][:, positions].transpose(1, 2)).mean(0) for name in names])


# Attention focusing (C8, spec §4.2)

def position_groups(task) -> dict[str, torch.Tensor]:
    """Boolean masks over sequence positions, by what the token there is."""
    position = torch.arange(task.seq_len)
    if task.name in ("bijection", "sawtooth"):
        return {"keys": position % 2 == 0, "values": position % 2 == 1}
    if task.name == "hmm":
        body = position >= hmm.HEADER
        return {"T header": (position >= 1) & (position <= 25), "E header": (position >= 27) & (position <= 51),
                "observations": body & (position % 2 == 0), "[OBS] markers": body & (position % 2 == 1),
                "separators": position.unsqueeze(-1).eq(torch.tensor([0, 26, 52])).any(-1)}
    raise ValueError(f"no position groups for task {task.name!r}")


@torch.no_grad()
def query_patterns(model, batch, chunk: int = 256) -> torch.Tensor:
    """Every layer's attention pattern at the query positions: [n_layers, batch, head, n_query, seq]."""
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(len(model.blocks))]
    out = []
    for tokens in batch.tokens.split(chunk):
        _, cache = model.run_with_cache(tokens, names)
        out.append(torch.stack([cache[name][:, :, batch.query_pos] for name in names]))
    return torch.cat(out, 1)


@dataclass
class Focusing:
    entropy: np.ndarray           # [layer, head, n_query] attention entropy in bits, per head, mean over sequences
    normalised: np.ndarray        # the same / log2(positions visible), NaN where one position is visible
    mass: dict[str, np.ndarray]   # position group -> [layer, head] attention mass, mean over sequences and queries

    @property
    def by_layer(self) -> np.ndarray:
        """Mean attention entropy per layer (bits): heads and queries averaged after the entropy."""
        return self.entropy.mean((1, 2))

    @property
    def reduction(self) -> float:
        """Fraction of the layer-0 attention entropy gone at the last layer."""
        return float(1 - self.by_layer[-1] / self.by_layer[0])


def focusing(patterns: torch.Tensor, query_pos: torch.Tensor, groups: dict[str, torch.Tensor]) -> Focusing:
    """Attention entropy of each head taken before any averaging (averaging patterns first
    would hide sharp heads that look at different places), and mass per position group."""
    entropy = metrics.entropy_bits(patterns.double()).mean(1)           # [layer, head, n_query]
    visible = torch.log2((query_pos + 1).double())
    normalised = torch.where(visible > 0, entropy / visible, float("nan"))
    seq = patterns.shape[-1]  # a batch may be shorter than the model's position table (HMM at K < K_max)
    mass = {name: (patterns * mask[:seq]).sum(-1).mean((1, 3)).numpy() for name, mask in groups.items()}
    return Focusing(entropy.numpy(), normalised.numpy(), mass)


# The value manifold (C9, spec §4.3)

@torch.no_grad()
def representations(model, batch) -> dict[str, np.ndarray]:
    """At the query positions, from one forward pass: the final layer's attention value
    vectors (heads concatenated), its attention output after W_O, the final residual after
    the norm, and every layer's value vectors ("value vectors, layer l").
    Each [n_sequences, n_query, width]."""
    last = len(model.blocks) - 1
    names = {f"value vectors, layer {layer}": f"blocks.{layer}.attn.hook_v" for layer in range(last + 1)}
    names |= {"value vectors": f"blocks.{last}.attn.hook_v", "attention output": f"blocks.{last}.hook_attn_out",
              "final residual": "hook_resid_final"}
    _, cache = model.run_with_cache(batch.tokens, sorted(set(names.values())))
    return {label: cache[name][:, batch.query_pos].flatten(2).double().numpy() for label, name in names.items()}


@torch.no_grad()
def final_residual(model, batch) -> np.ndarray:
    """Any architecture's final representation (after its final norm, `hook_resid_final`) at the
    batch's query positions: [n_sequences, n_query, d_model] float64."""
    _, cache = model.run_with_cache(batch.tokens, ["hook_resid_final"])
    return cache["hook_resid_final"][:, batch.query_pos].double().numpy()


def standardised_pca(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PCA of z-scored coordinates (constant coordinates dropped): (explained variance
    ratios, scores [n, k]). Standardising stops a few large coordinates from posing as a manifold."""
    std = X.std(0)
    keep = std > 1e-12
    Z = (X[:, keep] - X[:, keep].mean(0)) / std[keep]
    U, S, _ = np.linalg.svd(Z, full_matrices=False)
    return S**2 / (S**2).sum(), U * S


def participation_ratio(variances: np.ndarray) -> float:
    """(sum lambda)^2 / sum lambda^2: 1 for a line, d for an isotropic cloud in R^d."""
    return float(variances.sum() ** 2 / (variances**2).sum())


def within_group_corr(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> float:
    """Pearson correlation of x and y after removing each group's mean from both: what is left
    when position (the group) can no longer explain the relation."""
    def centred(v):
        means = np.bincount(groups, weights=v) / np.bincount(groups)
        return v - means[groups]
    return float(np.corrcoef(centred(x), centred(y))[0, 1])


def r2_split_by_sequence(X: np.ndarray, y: np.ndarray, train_fraction: float = 0.8) -> float:
    """Held-out R^2 of a least-squares linear read-out of y from X, fitted on the first
    sequences and scored on the rest (never on points of a sequence it was fitted on).
    X [n_sequences, n_query, width], y [n_sequences, n_query]."""
    n_train = int(train_fraction * len(X))
    design = lambda A: np.concatenate([A.reshape(-1, A.shape[-1]), np.ones((A[..., 0].size, 1))], 1)  # noqa: E731
    coef, *_ = np.linalg.lstsq(design(X[:n_train]), y[:n_train].ravel(), rcond=None)
    residual = y[n_train:].ravel() - design(X[n_train:]) @ coef
    return float(1 - (residual**2).sum() / ((y[n_train:] - y[n_train:].mean()) ** 2).sum())


@dataclass
class Manifold:
    explained: np.ndarray  # explained variance ratio per principal component
    pc: np.ndarray         # [n_points, 2] scores on PC1 and PC2
    entropy: np.ndarray    # [n_points] H_Bayes at each point (bits)
    position: np.ndarray   # [n_points] query index of each point
    r2: float              # held-out R^2 of H_Bayes from the whole vector, split by sequence

    def summary(self) -> dict[str, float]:
        pc1 = self.pc[:, 0]
        return {"pc1_share": float(self.explained[0]), "pc12_share": float(self.explained[:2].sum()),
                "participation_ratio": participation_ratio(self.explained),
                "dim90": int(np.searchsorted(self.explained.cumsum(), 0.9) + 1),
                "pearson": float(np.corrcoef(pc1, self.entropy)[0, 1]),
                "spearman": float(scipy.stats.spearmanr(pc1, self.entropy).statistic),
                "within_position_r": within_group_corr(pc1, self.entropy, self.position),
                "position_spearman": float(scipy.stats.spearmanr(pc1, self.position).statistic),
                "r2": self.r2}


def manifold(acts: np.ndarray, entropy: np.ndarray) -> Manifold:
    """Standardised PCA of activations [n_sequences, n_query, width] against H_Bayes [n_sequences, n_query]."""
    n_seq, n_query, width = acts.shape
    explained, scores = standardised_pca(acts.reshape(-1, width))
    return Manifold(explained, scores[:, :2], entropy.ravel(), np.tile(np.arange(n_query), n_seq),
                    r2_split_by_sequence(acts, entropy))



def key_sharing(model, token_ids: torch.Tensor) -> dict[str, float]:
    """C7's quantity taken apart, each averaged over heads: the layer-0 keys' mean |cos|, the same
    once each head's mean key is removed, and the share of their energy in that mean."""
    keys = token_keys(model, token_ids)
    return {"mean |cos|": mean_abs_cos(keys).mean().item(),
            "centred mean |cos|": mean_abs_cos(keys - keys.mean(1, keepdim=True)).mean().item(),
            "shared share": shared_direction_share(keys).mean().item()}


def belief_spread(model, batch) -> dict[str, float]:
    """C9's quantity beside how much of the belief the final layer's value vectors hold: their
    standardised PCA's PC1 share and participation ratio, and the held-out R^2 of a linear
    read-out of each hidden state's posterior probability from them (mean over states)."""
    values = representations(model, batch)["value vectors"]
    explained, _ = standardised_pca(values.reshape(-1, values.shape[-1]))
    posterior = batch.posterior.double().numpy()
    return {"PC1 share": float(explained[0]), "participation ratio": participation_ratio(explained),
            "posterior R2": float(np.mean([r2_split_by_sequence(values, posterior[..., s])
                                           for s in range(posterior.shape[-1])]))}

# Ablations (C5, C6, spec §4.4-4.5)

def mean_head(layer: int, head: int, mean_z: torch.Tensor):
    """Replace one head's pattern-weighted values by their mean over the evaluation batch at
    each position (`mean_z` [seq, d_head]), keeping its average contribution."""
    def fn(z, name):
        z = z.clone()
        z[:, :, head] = mean_z[: z.shape[1]]
        return z
    return f"blocks.{layer}.attn.hook_z", fn


def ablated_scores(model, batch, fwd_hooks) -> metrics.Scores:
    """The canonical scores with `fwd_hooks` attached (removed again afterwards)."""
    with model.hooks(fwd_hooks):
        return metrics.score(model, batch)


def layer_ablations(model, batch) -> dict[tuple[str, int], metrics.Scores]:
    """{(mode, layer): Scores} for mode in skip block / zero attention / zero MLP."""
    out = {}
    for layer in range(len(model.blocks)):
        out["skip block", layer] = ablated_scores(model, batch, skip_block(layer))
        out["zero attention", layer] = ablated_scores(model, batch, [zero_output(f"blocks.{layer}.hook_attn_out")])
        out["zero MLP", layer] = ablated_scores(model, batch, [zero_output(f"blocks.{layer}.hook_mlp_out")])
    return out


@torch.no_grad()
def head_ablations(model, batch) -> dict[tuple[str, int, int], metrics.Scores]:
    """{(mode, layer, head): Scores} for zero and mean ablation of every head."""
    names = [f"blocks.{layer}.attn.hook_z" for layer in range(len(model.blocks))]
    _, cache = model.run_with_cache(batch.tokens, names)
    out = {}
    for layer, name in enumerate(names):
        mean_z = cache[name].mean(0)                                       # [seq, head, d_head]
        for head in range(mean_z.shape[1]):
            out["zero", layer, head] = ablated_scores(model, batch, [zero_head(layer, head)])
            out["mean", layer, head] = ablated_scores(model, batch, [mean_head(layer, head, mean_z[:, head])])
    return out


def concentration(damage: np.ndarray) -> dict[str, float]:
    """Is the damage of single-head ablations concentrated in one head? `damage` is the rise
    in error per head. "Single head" (the authors' later criterion): top >= 2x second."""
    ranked = np.sort(damage.ravel())[::-1]
    return {"top_over_second": float(ranked[0] / ranked[1]) if ranked[1] > 0 else float("inf"),
            "heads_above_half_top": int((ranked >= ranked[0] / 2).sum()),
            "top_share": float(ranked[0] / np.clip(ranked, 0, None).sum())}


def over_seeds(per_seed) -> dict:
    """Mean of a per-seed quantity with a 95% bootstrap interval over the seeds."""
    values = torch.as_tensor(np.asarray(per_seed, dtype=float))
    return {"mean": values.mean().item(), "ci95": stats.bootstrap_ci(values), "per_seed": values.tolist()}


# Clusters of hidden states (C15, spec §4.7): numpy only, seeded, no global RNG.

def kmeans(X: np.ndarray, k: int, seed: int = 0, n_init: int = 10, max_iter: int = 300) -> np.ndarray:
    """Lloyd's k-means with k-means++ seeding, the best of `n_init` starts (lowest within-cluster
    sum of squares): labels [n] in 0..k-1. X [n, d]. Deterministic given `seed`."""
    X = np.asarray(X, dtype=np.float64)
    if not 1 <= k <= len(X):
        raise ValueError(f"kmeans: k must be in 1..{len(X)} (the number of points), got {k}")
    rng = np.random.default_rng(seed)
    sq_norms = (X**2).sum(1)
    best, best_inertia = None, np.inf
    for _ in range(n_init):
        centres = X[[rng.integers(len(X))]]
        for _ in range(1, k):  # k-means++: next centre with probability proportional to squared distance
            d2 = np.clip(sq_norms[:, None] - 2 * X @ centres.T + (centres**2).sum(1), 0, None).min(1)
            p = d2 / d2.sum() if d2.sum() > 0 else np.full(len(X), 1 / len(X))
            centres = np.vstack([centres, X[rng.choice(len(X), p=p)]])
        labels = None
        for _ in range(max_iter):
            d2 = sq_norms[:, None] - 2 * X @ centres.T + (centres**2).sum(1)   # [n, k]
            new = d2.argmin(1)
            if labels is not None and (new == labels).all():
                break
            labels = new
            for j in range(k):  # an emptied cluster keeps its centre
                if (labels == j).any():
                    centres[j] = X[labels == j].mean(0)
        inertia = ((X - centres[labels]) ** 2).sum()
        if inertia < best_inertia:
            best, best_inertia = labels, inertia
    return best


def adjusted_rand_index(labels_a: np.ndarray, labels_b: np.ndarray) -> float:
    """Hubert and Arabie's adjusted Rand index of two partitions of the same points: 1 when they
    are the same up to relabelling, 0 in expectation for independent random labels."""
    a, b = np.unique(labels_a, return_inverse=True)[1], np.unique(labels_b, return_inverse=True)[1]
    if len(a) != len(b):
        raise ValueError("adjusted_rand_index: the two labellings must have the same length")
    table = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(table, (a, b), 1)
    pairs = lambda counts: (counts * (counts - 1) / 2).sum()  # noqa: E731
    both, rows, cols, total = pairs(table), pairs(table.sum(1)), pairs(table.sum(0)), len(a) * (len(a) - 1) / 2
    expected = rows * cols / total
    top = (rows + cols) / 2
    return 1.0 if top == expected else float((both - expected) / (top - expected))


def silhouette(X: np.ndarray, labels: np.ndarray, chunk: int = 1024) -> float:
    """Mean silhouette (b - a) / max(a, b) over points, Euclidean distances: a = mean distance to
    the point's own cluster (others), b = smallest mean distance to another cluster; 0 for a
    point alone in its cluster. Near 1: tight, far-apart clusters. Exact, in row chunks."""
    X = np.asarray(X, dtype=np.float64)
    labels = np.unique(labels, return_inverse=True)[1]
    n_clusters = labels.max() + 1
    if n_clusters < 2:
        raise ValueError("silhouette: needs at least two clusters")
    onehot = np.eye(n_clusters)[labels]                              # [n, n_clusters]
    sizes = onehot.sum(0)
    sq_norms = (X**2).sum(1)
    scores = np.empty(len(X))
    for start in range(0, len(X), chunk):
        rows = slice(start, start + chunk)
        dist = np.sqrt(np.clip(sq_norms[rows, None] - 2 * X[rows] @ X.T + sq_norms, 0, None))  # [chunk, n]
        own = labels[rows]
        sums = dist @ onehot                                          # [chunk, n_clusters]
        own_size = sizes[own] - 1
        a = np.where(own_size > 0, sums[np.arange(len(own)), own] / np.maximum(own_size, 1), 0.0)
        other = sums / sizes
        other[np.arange(len(own)), own] = np.inf
        b = other.min(1)
        scores[rows] = np.where(own_size > 0, (b - a) / np.maximum(np.maximum(a, b), 1e-300), 0.0)
    return float(scores.mean())


def hmm_state_geometry(acts: np.ndarray, posterior: np.ndarray, n_states: int, seed: int = 0,
                       symbols: np.ndarray | None = None) -> dict[str, float]:
    """C15's measures of a model's states at the observation positions of HMM sequences.
    acts [n_sequences, n_query, width]; posterior [n_sequences, n_query, n_states] (the exact
    filter). k-means with k = n_states on the vectors as they are (after the model's final
    norm, the geometry its read-out sees; z-scoring would blow up near-constant coordinates),
    its adjusted Rand index against the posterior's most probable state and its silhouette;
    the standardised PC1 share (as chapter 3); and the held-out R^2 of H_Bayes, split by
    sequence. With `symbols` [n_sequences, n_query] (the observed symbol at each point), also
    the ARI of the same clusters against the symbol: a control, since states that merely echo
    the current token also fall into n_states clusters, which the argmax state partly follows."""
    n_seq, n_query, width = acts.shape
    flat = acts.reshape(-1, width)
    clusters = kmeans(flat, n_states, seed=seed)
    entropy = metrics.entropy_bits(torch.as_tensor(posterior)).numpy()
    explained, _ = standardised_pca(flat)
    out = {"entropy_r2": r2_split_by_sequence(acts, entropy),
           "ari": adjusted_rand_index(clusters, posterior.reshape(-1, n_states).argmax(1)),
           "silhouette": silhouette(flat, clusters) if len(np.unique(clusters)) > 1 else float("nan"),
           "pc1_share": float(explained[0])}
    if symbols is not None:
        out["ari_symbol"] = adjusted_rand_index(clusters, np.asarray(symbols).ravel())
    return out
