"""EM-like vs plain gradient descent on the sticky Markov chain (Paper II, claim G6), with the
controls the authors lack and the Bayes floor of the task.

Task (spec paper2_3.md §2.6.1). 8 symbols follow a circulant Markov chain whose off-diagonal
entries are 1/(circular distance), rescaled by 0.7 / (0.3 + sum of 1/d); the diagonal is the
rest of the row, 0.3 + 0.3 * 0.7 / (0.3 + sum of 1/d) = 0.3498 (the authors' construction,
nominally "0.3"). Symbol means mu_c in R^20 are drawn N(0, I) once, under a fixed seed. One
sequence per seed: y_0 uniform, then T-1 transitions; the input at position t is
x_t = mu_{y_{t-1}} + N(0, I) and the target is y_t. Training and evaluation use that sequence.

Model (§2.6.2). One causal softmax head, logits = softmax(X W_Q (X W_K)^T / sqrt(d_k)) X W_V W_O,
no biases, positions, residual or norm; weights N(0, 0.1^2), the same per seed in every arm.

Optimiser (§2.6.3). Full-batch gradient descent on the mean cross-entropy of the one sequence,
with a learning rate per weight matrix. This is deliberately NOT lib/train.py (AdamW on fresh
batches): the claim is about step counts of plain gradient descent, so this module runs the
authors' optimiser. The gradient is computed once per step from the Paper II laws
(lib.gradients; tests/test_gradients.py checks it against autograd) and every run of a seed is
batched into one tensor program. The loss recorded at a step is the loss before its update.

Arms: `ARMS` below. The Bayes floor is the cross-entropy of the exact predictive
p(y_t | x_1..x_t), a forward filter over the hidden previous symbol in log space (float64).

Used by: 05_gradient_laws (G6); spec §2.6.
"""
import math
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, fields

import torch

from lib import gradients

# The version of the numbers this module computes: it keys their cache entries (lib/cache.py).
# Bump it when a change alters them; a comment or a refactor keeps it.
VERSION = 1

PARAMS = ("W_Q", "W_K", "W_V", "W_O")


@dataclass(frozen=True)
class StickyChain:
    n_symbols: int = 8
    d_x: int = 20
    seq_len: int = 2000        # hidden symbols y_0..y_{T-1}; T-1 supervised positions
    self_prob: float = 0.3     # nominal; the effective self-transition is larger (see transition_matrix)
    means_seed: int = 0        # the symbol means are shared by every run

    def __post_init__(self):
        if self.n_symbols < 2 or self.d_x < 1 or self.seq_len < 2:
            raise ValueError(f"StickyChain: need n_symbols >= 2, d_x >= 1, seq_len >= 2, got {self}")
        if not 0 <= self.self_prob < 1:
            raise ValueError(f"StickyChain: self_prob must be in [0, 1), got {self.self_prob}")

    def transition_matrix(self) -> torch.Tensor:
        """[n, n] float64, rows sum to 1: off-diagonal (1/d) * (1 - s) / (s + sum_d 1/d), diagonal
        the remainder, d the circular distance, s = self_prob."""
        idx = torch.arange(self.n_symbols)
        gap = (idx[:, None] - idx[None, :]).abs()
        dist = torch.minimum(gap, self.n_symbols - gap).double()
        off = torch.where(dist > 0, 1 / dist.clamp_min(1), 0.0)
        off = off * (1 - self.self_prob) / (self.self_prob + off.sum(1, keepdim=True))
        return off + torch.diag(1 - off.sum(1))

    def means(self) -> torch.Tensor:
        """[n, d_x] symbol means, N(0, I) drawn in float32 under `means_seed`, as float64."""
        return torch.randn(self.n_symbols, self.d_x, generator=torch.Generator().manual_seed(self.means_seed)).double()

    def sample(self, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One sequence: inputs x [T-1, d_x] float64 and targets y [T-1] long. The draws follow
        the authors' order (start symbol, T-1 transitions, then the noise) from one generator."""
        gen = torch.Generator().manual_seed(seed)
        P = self.transition_matrix().float()
        states = [int(torch.randint(self.n_symbols, (1,), generator=gen))]
        for _ in range(self.seq_len - 1):
            states.append(int(torch.multinomial(P[states[-1]], 1, generator=gen)))
        y = torch.tensor(states)
        noise = torch.randn(self.seq_len - 1, self.d_x, generator=gen).double()
        return self.means()[y[:-1]] + noise, y[1:]

    def bayes_log_predictive(self, x: torch.Tensor) -> torch.Tensor:
        """log p(y_t = c | x_1..x_t): [..., T-1, n] float64, by a forward filter over the hidden
        previous symbol z_t = y_{t-1} (prior uniform, emission N(mu_z, I)), in log space."""
        log_P = self.transition_matrix().log()
        x = x.double()
        emit = -0.5 * (x.unsqueeze(-2) - self.means()).pow(2).sum(-1)  # [..., T-1, n]
        log_filter = torch.full_like(emit[..., 0, :], -math.log(self.n_symbols))  # p(z_1), before x_1
        out = []
        for t in range(x.shape[-2]):
            log_filter = (log_filter + emit[..., t, :]).log_softmax(-1)                         # p(z_t | x_<=t)
            log_pred = torch.logsumexp(log_filter.unsqueeze(-1) + log_P, dim=-2)                 # p(y_t | x_<=t)
            out.append(log_pred)
            log_filter = log_pred                                                                # p(z_{t+1} | x_<=t)
        return torch.stack(out, -2)

    def conditional_entropy(self) -> float:
        """The authors' 'theoretical minimum' H(Y_t | Y_{t-1}) in nats (previous symbol known)."""
        P = self.transition_matrix()
        return -(P * P.log()).sum(1).mean().item()


@dataclass(frozen=True)
class Arm:
    label: str
    lr_scale: tuple[tuple[str, float], ...] = ()  # per-matrix multipliers of the base rate; others 1
    value_step: str = "gradient"  # gradient | prototype (W_V moved by the least-squares image of
    #                               the responsibility-normalised prototype step, lib.gradients)

    def scale(self, name: str) -> float:
        return dict(self.lr_scale).get(name, 1.0)


def arms(boost: float) -> dict[str, Arm]:
    """The paper's two arms and our controls, keyed by name."""
    return {
        "sgd": Arm("SGD"),
        "em_like": Arm(f"'EM-like' ({boost:g}x on W_V)", (("W_V", boost),)),
        "uniform": Arm(f"{boost:g}x on all matrices", tuple((p, boost) for p in PARAMS)),
        "w_o": Arm(f"{boost:g}x on W_O", (("W_O", boost),)),
        "prototype": Arm("prototype value step", value_step="prototype"),
    }


@dataclass(frozen=True)
class EMConfig:
    chain: StickyChain = StickyChain()
    d_k: int = 10
    d_v: int = 15
    init_std: float = 0.1
    lr: float = 0.01                    # base learning rate (the SGD arm's, on every matrix)
    boost: float = 10.0                 # the authors' multiplier on W_V, reused by the controls
    steps: int = 1000                   # the paper's budget, at which the official metric is read
    long_steps: int = 0                 # a longer budget for `long_arms` on the first `long_seeds` seeds
    long_arms: tuple[str, ...] = ()
    long_seeds: int = 0
    seeds: tuple[int, ...] = (42, 2024, 1337, 7777, 9999)
    eval_every: int = 100               # steps between evaluations on the held-out sequence

    def __post_init__(self):
        if min(self.d_k, self.d_v, self.steps, self.eval_every) < 1 or self.lr <= 0 or self.boost <= 0 or not self.seeds:
            raise ValueError(f"EMConfig: sizes, steps, lr, boost must be positive and seeds non-empty, got {self}")
        unknown = set(self.long_arms) - set(arms(self.boost))
        if unknown or (self.long_arms and (self.long_steps <= self.steps or not 1 <= self.long_seeds <= len(self.seeds))):
            raise ValueError(f"EMConfig: long_arms must name arms in {sorted(arms(self.boost))}, long_steps exceed "
                             f"steps={self.steps} and long_seeds lie in 1..{len(self.seeds)}; got {self.long_arms}, "
                             f"{self.long_steps}, {self.long_seeds}")


def init_params(cfg: EMConfig, seed: int) -> dict[str, torch.Tensor]:
    """The authors' initialisation: W_Q, W_K, W_V, W_O in that order, N(0, init_std^2), from `seed`."""
    gen = torch.Generator().manual_seed(seed)
    shapes = {"W_Q": (cfg.chain.d_x, cfg.d_k), "W_K": (cfg.chain.d_x, cfg.d_k),
              "W_V": (cfg.chain.d_x, cfg.d_v), "W_O": (cfg.d_v, cfg.chain.n_symbols)}
    return {name: torch.randn(*shape, generator=gen) * cfg.init_std for name, shape in shapes.items()}


@dataclass
class Pass:
    """One forward and backward pass of a batch of runs (means over the sequence's positions)."""
    loss: torch.Tensor            # [R] mean cross-entropy (nats)
    entropy: torch.Tensor         # [R] mean predictive entropy (nats)
    accuracy: torch.Tensor        # [R] share of positions whose top prediction is the target
    grads: dict[str, torch.Tensor]  # dL/dW per matrix, [R, ...]
    grad_v: torch.Tensor          # [R, N, d_v] dL/dv_j, the value law summed over queries
    responsibility: torch.Tensor  # [R, N] sum_i a_ij


def forward_backward(W: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, block: int = 128,
                     responsibility: bool = False) -> Pass:
    """Loss and exact gradient of the single head for a batch of runs, W[name] [R, ...],
    x [R, N, d_x], y [R, N]. The gradient is assembled from the Paper II laws. Queries are
    processed in blocks of `block` rows that only meet the keys at or before them (the causal
    half), so the [N, N] attention matrix is never held whole: about 5x faster on a CPU than the
    dense computation, with the same result. `responsibility`: also sum the pattern's columns."""
    runs, n, _ = x.shape
    scale = 1 / math.sqrt(W["W_Q"].shape[-1])
    q, k, v = x @ W["W_Q"], x @ W["W_K"], x @ W["W_V"]
    q_scaled = q * scale
    d_q, d_k, d_v = torch.empty_like(q), torch.zeros_like(k), torch.zeros_like(v)
    g_wo, resp = torch.zeros_like(W["W_O"]), x.new_zeros(runs, n)
    total = {name: x.new_zeros(runs) for name in ("loss", "entropy", "accuracy")}
    future = torch.ones(block, block, dtype=torch.bool).triu(1)  # keys after the query, within a block
    for s in range(0, n, block):
        e = min(s + block, n)
        keys, values, y_b = k[:, :e], v[:, :e], y[:, s:e]
        scores = q_scaled[:, s:e] @ keys.mT                                           # [R, B, e]
        scores[..., s:].masked_fill_(future[: e - s, : e - s], float("-inf"))          # only the diagonal block
        pattern = scores.softmax(-1)
        o = pattern @ values                                                          # [R, B, d_v]
        log_probs = (o @ W["W_O"]).log_softmax(-1)
        probs = log_probs.exp()
        total["loss"] -= log_probs.gather(-1, y_b.unsqueeze(-1)).sum((-2, -1))
        total["entropy"] -= (probs * log_probs).sum((-2, -1))
        total["accuracy"] += (probs.argmax(-1) == y_b).sum(-1)
        g_logits = probs.scatter_add(-1, y_b.unsqueeze(-1), -torch.ones_like(probs[..., :1])) / n
        g_wo += o.mT @ g_logits
        u = g_logits @ W["W_O"].mT                                                    # dL/do_i
        g_scores = gradients.score_grad(pattern, u, values, o)                        # routing law (G1)
        d_q[:, s:e] = gradients.query_grad(g_scores, keys, scale)
        d_k[:, :e] += gradients.key_grad(g_scores, q[:, s:e], scale)
        d_v[:, :e] += gradients.value_grad(pattern, u)                                # value law (G2)
        if responsibility:
            resp[:, :e] += pattern.sum(-2)
    grads = {"W_Q": x.mT @ d_q, "W_K": x.mT @ d_k, "W_V": x.mT @ d_v, "W_O": g_wo}
    return Pass(total["loss"] / n, total["entropy"] / n, total["accuracy"] / n, grads, d_v, resp)


@dataclass
class Curves:
    """Per step, before each update and once more after the last: [..., steps + 1]; and the loss
    on a held-out sequence every `eval_every` steps: [..., steps // eval_every + 1]."""
    loss: torch.Tensor
    entropy: torch.Tensor
    accuracy: torch.Tensor
    test_loss: torch.Tensor
    eval_every: int

    def until(self, steps: int) -> "Curves":
        """The first `steps` steps (a longer run of a constant schedule contains the shorter one)."""
        return Curves(self.loss[..., : steps + 1], self.entropy[..., : steps + 1], self.accuracy[..., : steps + 1],
                      self.test_loss[..., : steps // self.eval_every + 1], self.eval_every)

    def to_dict(self) -> dict:
        """Plain tensors and values, for the cache (`torch.load(weights_only=True)`); `Curves(**d)` rebuilds."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @staticmethod
    def stack(curves: list["Curves"]) -> "Curves":
        fields = ("loss", "entropy", "accuracy", "test_loss")
        return Curves(*(torch.stack([getattr(c, f) for c in curves]) for f in fields), curves[0].eval_every)


TEST_OFFSET = 10_000  # the held-out sequence of seed s is drawn with seed s + TEST_OFFSET (as the authors' --deep mode)


def train_batch(cfg: EMConfig, seed: int, names: tuple[str, ...], steps: int) -> dict[str, Curves]:
    """Train the named arms on one seed's sequence for `steps` full-batch steps, as one batch of
    runs from the same initialisation, on one CPU thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the tensors are small: on a shared 2-core machine two threads ran up to 20x slower
    try:
        return _train_batch(cfg, seed, list(names), steps)
    finally:
        torch.set_num_threads(threads)


def _train_batch(cfg: EMConfig, seed: int, names: list[str], steps: int) -> dict[str, Curves]:
    table, runs = arms(cfg.boost), len(names)
    (x64, y), (x_test, y_test) = cfg.chain.sample(seed), cfg.chain.sample(seed + TEST_OFFSET)
    x, yy = x64.float().expand(runs, -1, -1), y.expand(runs, -1)
    x_test, y_test = x_test.float().expand(runs, -1, -1), y_test.expand(runs, -1)
    W = {p: w.expand(runs, *w.shape).clone() for p, w in init_params(cfg, seed).items()}
    lr = {p: torch.tensor([cfg.lr * table[a].scale(p) for a in names]).view(-1, 1, 1) for p in PARAMS}
    proto = torch.tensor([table[a].value_step == "prototype" for a in names]).view(-1, 1, 1)
    pinv_x = torch.linalg.pinv(x64).float()  # [d_x, N]: least-squares map of value steps into W_V
    curves = Curves(*(torch.empty(runs, steps + 1, dtype=torch.float64) for _ in range(3)),
                    torch.empty(runs, steps // cfg.eval_every + 1, dtype=torch.float64), cfg.eval_every)
    for step in range(steps + 1):
        now = forward_backward(W, x, yy, responsibility=bool(proto.any()))
        curves.loss[:, step], curves.entropy[:, step], curves.accuracy[:, step] = now.loss, now.entropy, now.accuracy
        if step % cfg.eval_every == 0:
            curves.test_loss[:, step // cfg.eval_every] = forward_backward(W, x_test, y_test).loss
        if step == steps:
            break
        update = {p: -lr[p] * now.grads[p] for p in PARAMS}
        if proto.any():
            # M-step-like: per-sample errors (u of the summed loss, n * grad_v), normalised by the
            # responsibilities, mapped into W_V by least squares: argmin_D |x D - step|
            target = gradients.prototype_step(x.shape[1] * now.grad_v, now.responsibility)
            update["W_V"] = torch.where(proto, pinv_x @ target, update["W_V"])
        for p in PARAMS:
            W[p] += update[p]
    return {name: Curves(*(getattr(curves, f)[i].clone() for f in ("loss", "entropy", "accuracy", "test_loss")),
                         cfg.eval_every) for i, name in enumerate(names)}


@dataclass
class Experiment:
    cfg: EMConfig
    floor: torch.Tensor           # [seeds] cross-entropy of the exact Bayes predictive on the training sequence (nats)
    test_floor: torch.Tensor      # [seeds] the same on the held-out sequence
    bayes_entropy: torch.Tensor   # [seeds] mean predictive entropy of the Bayes predictive, training sequence
    budget: dict[str, Curves]     # every arm at the paper's budget: [seeds, steps + 1]
    long: dict[str, Curves]       # long arms: [long_seeds, long_steps + 1]
    value_step: list[dict]        # per seed, at initialisation: free-value step vs the W_V-induced one
    seconds: float                # wall-clock time of the training

    def to_dict(self) -> dict:
        """Everything but `cfg` (the cache key) as plain tensors and values; `from_dict` rebuilds."""
        return {"floor": self.floor, "test_floor": self.test_floor, "bayes_entropy": self.bayes_entropy,
                "budget": {n: c.to_dict() for n, c in self.budget.items()},
                "long": {n: c.to_dict() for n, c in self.long.items()},
                "value_step": self.value_step, "seconds": self.seconds}

    @staticmethod
    def from_dict(cfg: EMConfig, saved: dict) -> "Experiment":
        return Experiment(cfg, saved["floor"], saved["test_floor"], saved["bayes_entropy"],
                          {n: Curves(**c) for n, c in saved["budget"].items()},
                          {n: Curves(**c) for n, c in saved["long"].items()}, saved["value_step"], saved["seconds"])


def bayes_floor(chain: StickyChain, seed: int) -> tuple[float, float]:
    """Cross-entropy of the exact predictive on seed's sequence, and its mean entropy (nats)."""
    x, y = chain.sample(seed)
    log_pred = chain.bayes_log_predictive(x)
    return -log_pred.gather(-1, y.unsqueeze(-1)).mean().item(), -(log_pred.exp() * log_pred).sum(-1).mean().item()


MODULES = ("em_vs_sgd", "gradients")


def run(cfg: EMConfig, workers: int = 2) -> Experiment:
    """Every arm on every seed for the paper's budget, and the long arms for the long budget on
    the first `long_seeds` seeds (their first `steps` steps are the budget run). Each seed's
    arms form one batch; batches run in `workers` processes (the results do not depend on it).
    The processes are spawned: from a script, call this under `if __name__ == "__main__":`.
    Cached under data/runs, keyed by `cfg` and the source of this module and lib.gradients:
    it trains only when that result is absent (`seconds` is then the time the training took)."""
    from lib import cache  # imported here: lib.cache imports lib.profiles, which imports this module
    saved = cache.get_or_compute("em-vs-sgd", asdict(cfg), MODULES, lambda: _train(cfg, workers).to_dict())
    return Experiment.from_dict(cfg, saved)


def _train(cfg: EMConfig, workers: int) -> Experiment:
    names = tuple(arms(cfg.boost))
    jobs = []
    for i, seed in enumerate(cfg.seeds):
        longer = tuple(n for n in cfg.long_arms if i < cfg.long_seeds)
        jobs += [(cfg, seed, longer, cfg.long_steps)] if longer else []
        jobs.append((cfg, seed, tuple(n for n in names if n not in longer), cfg.steps))
    start = time.perf_counter()
    if workers > 1:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: safe inside a notebook kernel
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            results = list(pool.map(train_batch, *zip(*jobs)))
    else:
        results = [train_batch(*job) for job in jobs]
    seconds = time.perf_counter() - start
    by_seed = {seed: {} for seed in cfg.seeds}
    for (_, seed, _, _), result in zip(jobs, results):
        by_seed[seed].update(result)
    floors = torch.tensor([bayes_floor(cfg.chain, seed) for seed in cfg.seeds], dtype=torch.float64)
    test_floor = torch.tensor([bayes_floor(cfg.chain, seed + TEST_OFFSET)[0] for seed in cfg.seeds], dtype=torch.float64)
    value_step = []
    for seed in cfg.seeds:
        x, y = cfg.chain.sample(seed)
        W = {p: w.unsqueeze(0) for p, w in init_params(cfg, seed).items()}
        value_step.append(gradients.free_vs_induced(x.float(), forward_backward(W, x.float()[None], y[None]).grad_v[0]))
    budget = {n: Curves.stack([by_seed[s][n].until(cfg.steps) for s in cfg.seeds]) for n in names}
    long = {n: Curves.stack([by_seed[s][n] for s in cfg.seeds[: cfg.long_seeds]]) for n in cfg.long_arms}
    return Experiment(cfg, floors[:, 0], test_floor, floors[:, 1], budget, long, value_step, seconds)


# Metrics (spec §2.6.4)

def steps_to_threshold(losses: torch.Tensor, threshold: torch.Tensor | float) -> torch.Tensor:
    """First step whose recorded loss is below `threshold` ([..., steps] -> [...]); the budget
    (number of steps) if never, as in the authors' metric."""
    below = losses < torch.as_tensor(threshold, dtype=losses.dtype).unsqueeze(-1)
    return torch.where(below.any(-1), below.double().argmax(-1), float(losses.shape[-1]))


def official_speedup(arm_losses: torch.Tensor, sgd_final: torch.Tensor) -> float:
    """budget / mean over seeds of the first step at which the arm's loss is below the mean final
    SGD loss; SGD's own time is the budget by definition. arm_losses: [seeds, steps] recorded
    before each update; sgd_final: [seeds] after the last update."""
    return arm_losses.shape[-1] / steps_to_threshold(arm_losses, sgd_final.mean()).mean().item()


def speedups(exp: Experiment, n_boot: int = 2000, seed: int = 0) -> dict[str, dict]:
    """The official speed-up of every arm, with per-seed steps and a 95% interval that resamples
    seeds (threshold included)."""
    sgd_final = exp.budget["sgd"].loss[:, -1]
    idx = torch.randint(len(sgd_final), (n_boot, len(sgd_final)), generator=torch.Generator().manual_seed(seed))
    out = {}
    for name, curves in exp.budget.items():
        losses = curves.loss[:, :-1]
        boot = torch.tensor([official_speedup(losses[i], sgd_final[i]) for i in idx], dtype=torch.float64)
        out[name] = {"speedup": official_speedup(losses, sgd_final),
                     "steps": steps_to_threshold(losses, sgd_final.mean()).tolist(),
                     "ci95": (boot.quantile(0.025).item(), boot.quantile(0.975).item())}
    return out


def gap_closed(losses: torch.Tensor, start: float, floor: torch.Tensor) -> torch.Tensor:
    """Fraction of the distance from the uniform predictor (loss `start` = ln n) to each seed's
    Bayes floor covered: losses [seeds, steps], floor [seeds] -> [seeds, steps]."""
    return (start - losses) / (start - floor).unsqueeze(-1)


def time_to_fraction(losses: torch.Tensor, start: float, floor: torch.Tensor,
                     fractions: list[float]) -> torch.Tensor:
    """First step at which each seed has closed each fraction of the gap to its floor:
    [seeds, len(fractions)] float64, NaN where the budget ran out first."""
    closed = gap_closed(losses, start, floor)
    out = []
    for f in fractions:
        reached = closed >= f
        out.append(torch.where(reached.any(-1), reached.double().argmax(-1), torch.nan))
    return torch.stack(out, -1)
