"""The two gradient laws of a causal softmax attention head (Paper II) and their corollaries,
as small functions on tensors, with the checks that compare them against autograd.

Notation (spec paper2_3.md §2.2), one head, any leading batch dimensions:
  pattern  a [..., q, k]  attention weights; rows sum to 1, zero above the diagonal
  u        [..., q, d_v]  upstream error dL/do_i at the head's output o_i = sum_j a_ij v_j
  v        [..., k, d_v]  values
  b = u v^T [..., q, k]   compatibility b_ij = u_i . v_j = dL/da_ij
  A        [..., q, k]    advantage A_ij = -(b_ij - sum_k a_ik b_ik)

Routing law (G1):  dL/ds_ij = a_ij (b_ij - sum_k a_ik b_ik) = -a_ij A_ij
Value law (G2):    dL/dv_j  = sum_i a_ij u_i

Used by: 05_gradient_laws (G1, G2, G3, G6); Paper II abstract (boxed results), spec §2.3.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# The version of the numbers this module computes: it keys their cache entries (lib/cache.py).
# Bump it when a change alters them; a comment or a refactor keeps it.
VERSION = 1


# The laws and their corollaries (spec §2.3)

def compatibility(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """b_ij = u_i . v_j: the first-order change in loss from moving attention mass onto j."""
    return u @ v.mT  # [..., q, k]


def advantage(pattern: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """A_ij = -(b_ij - sum_k a_ik b_ik): how much better value j is than query i's current mix."""
    b = compatibility(u, v)
    return (pattern * b).sum(-1, keepdim=True) - b  # [..., q, k]


def score_grad(pattern: torch.Tensor, u: torch.Tensor, v: torch.Tensor,
               o: torch.Tensor | None = None) -> torch.Tensor:
    """Routing law (G1): dL/ds_ij = a_ij (b_ij - sum_k a_ik b_ik) = -a_ij A_ij. Rows sum to
    zero (shift invariance). Given the head's output o = pattern @ v, the baseline
    sum_k a_ik b_ik = u_i . o_i costs O(q d) instead of O(q k).
    Used by: 05_gradient_laws (G1, G6); spec §2.3.2."""
    if o is None:
        return -pattern * advantage(pattern, u, v)  # [..., q, k]
    return compatibility(u, v).sub_((u * o).sum(-1, keepdim=True)).mul_(pattern)


def value_grad(pattern: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Value law (G2): dL/dv_j = sum_i a_ij u_i, the responsibility-weighted sum of errors.
    Used by: 05_gradient_laws (G2, G3, G6); spec §2.3.1."""
    return pattern.mT @ u  # [..., k, d_v]


def query_grad(grad_scores: torch.Tensor, k: torch.Tensor, scale: float) -> torch.Tensor:
    """dL/dq_i = scale * sum_j dL/ds_ij k_j = -scale * Cov_{a_i}(A_i., k): queries move toward
    keys whose values have positive advantage. scale = 1/sqrt(d_k). Spec §2.3.3."""
    return scale * (grad_scores @ k)  # [..., q, d_k]


def key_grad(grad_scores: torch.Tensor, q: torch.Tensor, scale: float) -> torch.Tensor:
    """dL/dk_j = scale * sum_i dL/ds_ij q_i: key j moves toward the queries that find its
    value useful. Spec §2.3.3."""
    return scale * (grad_scores.mT @ q)  # [..., k, d_k]


def prototype_step(grad_v: torch.Tensor, responsibility: torch.Tensor) -> torch.Tensor:
    """The responsibility-normalised ("M-step-like") value step
    dv_j = -(sum_i a_ij u_i) / (sum_i a_ij): gradient descent on a free value with the per-value
    step size 1/sum_i a_ij. grad_v = value_grad(pattern, u) [..., k, d_v] and the total
    responsibility pattern.sum(-2) [..., k]. Used by: 05_gradient_laws (G6); spec §2.3.4."""
    return -grad_v / responsibility.unsqueeze(-1)  # [..., k, d_v]


def kernel_smoothed(x: torch.Tensor, grad_v: torch.Tensor) -> torch.Tensor:
    """The change in values a W_V gradient step induces, per unit step: with v = x W_V and
    dL/dW_V = x^T dL/dv, the step moves v_j by -eta sum_m (x_j . x_m) dL/dv_m.
    x: [..., n, d_in], grad_v: [..., n, d_v] -> [..., n, d_v] (times -eta). Spec §2.3.3."""
    return x @ (x.mT @ grad_v)


def rel_err(law: torch.Tensor, reference: torch.Tensor) -> float:
    """Normwise relative error max|law - reference| / max|reference|."""
    return ((law - reference).abs().max() / reference.abs().max()).item()


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return F.cosine_similarity(a.flatten(), b.flatten(), dim=0).item()


def free_vs_induced(x: torch.Tensor, grad_v: torch.Tensor) -> dict[str, float]:
    """Compare the free-value step -eta dL/dv with the step a W_V update induces, at equal eta:
    their cosine and the norm ratio |induced| / |free| (eta cancels in both), over all entries.
    x: [..., n, d_in] inputs to one W_V per leading index, grad_v: [..., n, d_v].
    Used by: 05_gradient_laws (G2, G6)."""
    induced = kernel_smoothed(x, grad_v)
    return {"cosine": cosine(grad_v, induced), "norm_ratio": (induced.norm() / grad_v.norm()).item()}


# A random head in float64, checked against autograd (spec §2.5 recipe)

@dataclass
class RandomHead:
    """A batch of independent causal heads with a linear read-out and cross-entropy labels."""
    x: torch.Tensor       # [n, T, d_x]
    W_Q: torch.Tensor     # [n, d_x, d_k]
    W_K: torch.Tensor     # [n, d_x, d_k]
    W_V: torch.Tensor     # [n, d_x, d_v]
    W_O: torch.Tensor     # [n, d_v, n_out]
    labels: torch.Tensor  # [n, T] long


def random_head(n: int, T: int, d_x: int, d_k: int, d_v: int, n_out: int, generator: torch.Generator,
                scale: float = 1.0, dtype: torch.dtype = torch.float64) -> RandomHead:
    """n heads with inputs N(0, 1), weights N(0, scale^2) and uniform random labels. A larger
    `scale` gives sharper attention and more confident predictions."""
    if min(n, T, d_x, d_k, d_v, n_out) < 1 or scale <= 0:
        raise ValueError(f"random_head: sizes and scale must be positive, got n={n} T={T} d_x={d_x} "
                         f"d_k={d_k} d_v={d_v} n_out={n_out} scale={scale}")
    draw = lambda *shape, s=scale: s * torch.randn(*shape, generator=generator, dtype=dtype)  # noqa: E731
    return RandomHead(draw(n, T, d_x, s=1.0), draw(n, d_x, d_k), draw(n, d_x, d_k), draw(n, d_x, d_v),
                      draw(n, d_v, n_out), torch.randint(n_out, (n, T), generator=generator))


def head_forward(head: RandomHead, values: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Forward pass with every intermediate kept and its gradient retained after backward.
    `values` replaces x W_V by free values [n, T, d_v]. Loss: summed cross-entropy, so that
    u_i = W_O (p_i - e_{y_i}) per position."""
    leaves = {name: getattr(head, name).detach().requires_grad_() for name in ("W_Q", "W_K", "W_V", "W_O")}
    q, k = head.x @ leaves["W_Q"], head.x @ leaves["W_K"]
    v = head.x @ leaves["W_V"] if values is None else values.detach().requires_grad_()
    T = head.x.shape[1]
    scores = q @ k.mT / math.sqrt(q.shape[-1])  # [n, T, T] before the mask
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    pattern = scores.masked_fill(~causal, float("-inf")).softmax(-1)
    o = pattern @ v
    logits = o @ leaves["W_O"]
    loss = F.cross_entropy(logits.flatten(0, 1), head.labels.flatten(), reduction="sum")
    for t in (q, k, v, scores, o):
        if not t.is_leaf:
            t.retain_grad()
    loss.backward()
    return {"q": q, "k": k, "v": v, "scores": scores, "pattern": pattern.detach(), "o": o, "loss": loss,
            "scale": 1 / math.sqrt(q.shape[-1]), **leaves}


def check_random_head(head: RandomHead) -> dict[str, float]:
    """Relative error of every law against autograd, and the largest row sum of autograd's
    dL/ds relative to max|dL/ds| (shift invariance). Used by: 05_gradient_laws (G1, G2)."""
    f = head_forward(head)
    u, a, v, q, k, scale = f["o"].grad, f["pattern"], f["v"].detach(), f["q"].detach(), f["k"].detach(), f["scale"]
    g_s = f["scores"].grad
    law_s = score_grad(a, u, v)
    law_v = value_grad(a, u)
    x = head.x
    return {
        "score": rel_err(law_s, g_s),
        "query": rel_err(query_grad(law_s, k, scale), f["q"].grad),
        "key": rel_err(key_grad(law_s, q, scale), f["k"].grad),
        "value": rel_err(law_v, f["v"].grad),
        "W_V": rel_err(x.mT @ law_v, f["W_V"].grad),
        "W_Q": rel_err(x.mT @ query_grad(law_s, k, scale), f["W_Q"].grad),
        "W_K": rel_err(x.mT @ key_grad(law_s, q, scale), f["W_K"].grad),
        "row_sum": (g_s.sum(-1).abs().max() / g_s.abs().max()).item(),
    }


# The same laws inside a trained Transformer, per layer and head, through its hook points

def _hook_names(layers: list[int]) -> list[str]:
    attn = [f"blocks.{i}.attn.hook_{n}" for i in layers for n in ("q", "k", "v", "attn_scores", "pattern", "z")]
    return attn + [f"blocks.{i}.hook_resid_pre" for i in layers]


def check_in_model(model, tokens: torch.Tensor, loss_fn) -> list[dict]:
    """Check both laws in every head of a `lib.model.Transformer` against autograd.

    Gradients are retained on the hook outputs (q, k, v, scores before the mask, and z, the
    head's output o_i before W_O, so u = dL/dz); the law is evaluated on the pattern, values
    and u, and compared with autograd's dL/ds, dL/dq, dL/dk, dL/dv and dL/dW_V. The input to
    W_V is the block's normed residual norm_attn(resid_pre). Rows of the answer: one per
    (layer, head) with relative errors and the free-vs-induced value step comparison.
    Used by: 05_gradient_laws (G1, G2); spec §2.5 step 6.
    """
    acts = {}

    def keep(x, name):
        if x.requires_grad:
            x.retain_grad()
        acts[name] = x

    layers = [i for i, block in enumerate(model.blocks) if block.attn is not None]  # blocks with attention
    model.zero_grad(set_to_none=True)
    with torch.enable_grad(), model.hooks([(name, keep) for name in _hook_names(layers)]):
        loss_fn(model(tokens)).backward()
    rows = []
    for i in layers:
        block = model.blocks[i]
        get = lambda n: acts[f"blocks.{i}.attn.hook_{n}"]  # noqa: E731
        heads = lambda t: t.detach().transpose(1, 2)  # noqa: E731  [batch, pos, head, d] -> [batch, head, pos, d]
        q, k, v, u = heads(get("q")), heads(get("k")), heads(get("v")), heads(get("z").grad)
        a, g_s = get("pattern").detach(), get("attn_scores").grad
        scale = 1 / math.sqrt(q.shape[-1])
        law_s, law_v = score_grad(a, u, v), value_grad(a, u)  # [batch, head, pos, ...]
        g_q, g_k, g_v = heads(get("q").grad), heads(get("k").grad), heads(get("v").grad)
        with torch.no_grad():
            x = block.norm_attn(acts[f"blocks.{i}.hook_resid_pre"]).flatten(0, 1)  # [batch * pos, d_model]
        law_v_flat = law_v.transpose(1, 2).flatten(2).flatten(0, 1)  # [batch * pos, d_model], heads in order
        w_v = rel_err(law_v_flat.mT @ x, block.attn.W_V.weight.grad)  # nn.Linear stores W_V^T
        d_head = q.shape[-1]
        for h in range(q.shape[1]):
            columns = slice(h * d_head, (h + 1) * d_head)
            rows.append({
                "layer": i, "head": h,
                "score": rel_err(law_s[:, h], g_s[:, h]),
                "query": rel_err(query_grad(law_s[:, h], k[:, h], scale), g_q[:, h]),
                "key": rel_err(key_grad(law_s[:, h], q[:, h], scale), g_k[:, h]),
                "value": rel_err(law_v[:, h], g_v[:, h]),
                "W_V": w_v,
                "row_sum": (g_s[:, h].sum(-1).abs().max() / g_s[:, h].abs().max()).item(),
                **free_vs_induced(x, law_v_flat[:, columns]),
            })
    model.zero_grad(set_to_none=True)
    return rows


# Positive feedback (G3): a value step raises the advantage of the queries using that value

@dataclass
class Feedback:
    etas: list[float]
    slope_over_eta: list[float]             # within-query least-squares slope / eta, per eta
    ci95: list[tuple[float, float]]         # bootstrap over heads, per eta
    first_order_error: list[float]          # |dA - eta * first-order prediction| / |dA|, per eta
    top_share: list[float]                  # share of queries whose most-attended value's advantage rose
    components: dict[str, float]            # slope / eta of each first-order term (they add up)
    sharpness: dict[str, float]             # mean largest attention weight and predicted probability
    regressor: torch.Tensor                 # a_ij |u_i|^2, row-demeaned, for a scatter plot (first eta)
    response: torch.Tensor                  # the change in A_ij, row-demeaned (first eta)


def positive_feedback(head: RandomHead, etas: list[float], n_boot: int = 2000, seed: int = 0) -> Feedback:
    """Take one free-value gradient step of size eta, recompute forward and backward, and regress
    the change in advantage dA_ij on a_ij |u_i|^2 within each query (row means removed, so any
    per-query constant drops out). To first order in eta (spec §2.3.5, completed):
      dA_ij = eta a_ij |u_i|^2                       (self: query i's own error pulls v_j)
            + eta sum_{m != i} a_mj u_i . u_m        (cross: other queries using v_j)
            - du_i . v_j                             (feedback: u_i changes because o_i moved)
            + (per-query constant);
    the self term alone has slope exactly eta, and the slope of the sum is the sum of the slopes.
    Used by: 05_gradient_laws (G3)."""
    values = (head.x @ head.W_V).detach()
    before = head_forward(head, values)
    a, u, o = before["pattern"], before["o"].grad, before["o"].detach()
    probs = (o @ head.W_O).softmax(-1)
    causal = torch.ones_like(a[0], dtype=torch.bool).tril()
    count = causal.sum(-1, keepdim=True)
    demean = lambda t: torch.where(causal, t - (t * causal).sum(-1, keepdim=True) / count, 0.0)  # noqa: E731
    centre = lambda t: (a * t).sum(-1, keepdim=True) - t  # noqa: E731  change in b -> change in A
    x = demean(a * u.pow(2).sum(-1, keepdim=True))  # [n, q, k]
    per_head = lambda y: ((x * y).sum((1, 2)), (x * x).sum((1, 2)))  # noqa: E731
    slope = lambda y: (lambda sxy, sxx: (sxy.sum() / sxx.sum()).item())(*per_head(y))  # noqa: E731

    step = -value_grad(a, u)                                  # free-value step per unit eta
    d_logits = (a @ step) @ head.W_O
    d_u = (probs * (d_logits - (probs * d_logits).sum(-1, keepdim=True))) @ head.W_O.mT
    self_term = -a * u.pow(2).sum(-1, keepdim=True)           # u_i . (-a_ij u_i)
    terms = {"self": self_term, "cross": compatibility(u, step) - self_term,
             "feedback": compatibility(d_u, values)}
    components = {name: slope(demean(centre(t))) for name, t in terms.items()}
    predicted = centre(sum(terms.values()))

    adv = advantage(a, u, values)
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(a.shape[0], (n_boot, a.shape[0]), generator=gen)
    top = a.argmax(-1, keepdim=True)
    choice = count.squeeze(-1) > 1  # queries with more than one key to choose from
    out = Feedback(list(etas), [], [], [], [], components,
                   {"attention": a.max(-1).values.mean().item(), "prediction": probs.max(-1).values.mean().item()},
                   x[:, causal], x.new_empty(0))
    for eta in etas:
        stepped = values + eta * step
        d_adv = advantage(a, head_forward(head, stepped)["o"].grad, stepped) - adv
        y = demean(d_adv)
        sxy, sxx = per_head(y)
        out.slope_over_eta.append((sxy.sum() / sxx.sum()).item() / eta)
        boot = sxy[idx].sum(1) / sxx[idx].sum(1) / eta
        out.ci95.append((boot.quantile(0.025).item(), boot.quantile(0.975).item()))
        out.first_order_error.append(((d_adv - eta * predicted)[:, causal].norm() / d_adv[:, causal].norm()).item())
        out.top_share.append((d_adv.gather(-1, top).squeeze(-1)[:, choice] > 0).double().mean().item())
        if not out.response.numel():
            out.response = y[:, causal]
    return out
