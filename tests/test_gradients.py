"""The Paper II gradient laws against autograd, and the EM-vs-SGD experiment's pieces."""
import itertools
import math

import pytest
import torch

from lib import em_vs_sgd, gradients, profiles, train
from lib.config import ModelConfig
from lib.model import build_model
from lib.tasks import make_task


def close(law, reference, rtol=1e-12):
    """Normwise: every entry within rtol * max|reference| (entries near zero carry no scale)."""
    torch.testing.assert_close(law, reference, rtol=0, atol=rtol * reference.abs().max().item())


def head(seed=0, n=3, T=9, scale=1.0):
    return gradients.random_head(n, T, d_x=6, d_k=4, d_v=5, n_out=3, generator=torch.Generator().manual_seed(seed),
                                 scale=scale)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_both_laws_and_their_corollaries_match_autograd_in_float64(seed):
    h = head(seed)
    f = gradients.head_forward(h)
    a, u, v, q, k, scale = f["pattern"], f["o"].grad, f["v"].detach(), f["q"].detach(), f["k"].detach(), f["scale"]
    law_s = gradients.score_grad(a, u, v)
    close(law_s, f["scores"].grad)
    close(gradients.score_grad(a, u, v, o=a @ v), f["scores"].grad)  # the O(q d) baseline u_i . o_i
    close(gradients.value_grad(a, u), f["v"].grad)
    close(gradients.query_grad(law_s, k, scale), f["q"].grad)
    close(gradients.key_grad(law_s, q, scale), f["k"].grad)
    close(h.x.mT @ gradients.value_grad(a, u), f["W_V"].grad)
    assert max(gradients.check_random_head(h).values()) < 1e-12


def test_a_wrong_law_is_caught():
    """The routing law without its baseline (a_ij b_ij) or without the a_ij factor must fail."""
    f = gradients.head_forward(head())
    a, u, v = f["pattern"], f["o"].grad, f["v"].detach()
    for wrong in (a * gradients.compatibility(u, v), -gradients.advantage(a, u, v)):
        with pytest.raises(AssertionError):
            close(wrong, f["scores"].grad)


def test_shift_invariance_and_the_vanishing_cases():
    f = gradients.head_forward(head())
    a, u, v = f["pattern"], f["o"].grad, f["v"].detach()
    g = gradients.score_grad(a, u, v)
    torch.testing.assert_close(g.sum(-1), torch.zeros_like(g[..., 0]), rtol=0, atol=1e-14)
    torch.testing.assert_close(f["scores"].grad.sum(-1), torch.zeros_like(g[..., 0]), rtol=0, atol=1e-14)
    one_hot = torch.nn.functional.one_hot(torch.zeros(a.shape[:-1], dtype=torch.long), a.shape[-1]).double()
    assert gradients.score_grad(one_hot, u, v).abs().max() == 0  # one-hot attention: no routing signal
    same = v[..., :1, :].expand_as(v)  # every attended value equally compatible
    torch.testing.assert_close(gradients.score_grad(a, u, same), torch.zeros_like(g), rtol=0, atol=1e-14)


def test_query_gradient_is_minus_the_attention_covariance_of_advantage_and_keys():
    f = gradients.head_forward(head())
    a, u, v, k, scale = f["pattern"], f["o"].grad, f["v"].detach(), f["k"].detach(), f["scale"]
    adv = gradients.advantage(a, u, v)
    mean_k = a @ k
    cov = (a * adv).unsqueeze(-1).mul(k.unsqueeze(-3) - mean_k.unsqueeze(-2)).sum(-2)
    close(f["q"].grad, -scale * cov)


def test_prototype_step_is_gradient_descent_with_step_one_over_the_responsibility():
    f = gradients.head_forward(head())
    a, u = f["pattern"], f["o"].grad
    step = gradients.prototype_step(gradients.value_grad(a, u), a.sum(-2))
    close(step, -f["v"].grad / a.sum(-2).unsqueeze(-1))


def test_the_induced_value_step_is_the_free_one_only_for_orthonormal_inputs():
    gen = torch.Generator().manual_seed(0)
    grad_v = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    one_hot = torch.eye(6, dtype=torch.float64)  # distinct one-hot tokens, untied embedding
    torch.testing.assert_close(gradients.kernel_smoothed(one_hot, grad_v), grad_v)
    assert gradients.free_vs_induced(one_hot, grad_v) == pytest.approx({"cosine": 1.0, "norm_ratio": 1.0})
    generic = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    assert gradients.free_vs_induced(generic, grad_v)["cosine"] < 0.99


def small_transformer(dtype):
    task = make_task("bijection", V=6, L=5)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_model(ModelConfig(d_model=16, n_layers=2, n_heads=2, d_mlp=32), task).to(dtype)
    batch = train.eval_batch(task, 8, torch.device("cpu"))
    return model, batch


def test_laws_hold_in_every_head_of_a_transformer_through_its_hooks():
    model, batch = small_transformer(torch.float64)
    rows = gradients.check_in_model(model, batch.tokens, lambda logits: train.loss_fn(logits, batch, "soft"))
    assert [(r["layer"], r["head"]) for r in rows] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for r in rows:
        assert max(r[key] for key in ("score", "query", "key", "value", "W_V", "row_sum")) < 1e-12, r
        assert -1 <= r["cosine"] <= 1 and r["norm_ratio"] > 0
    assert all(not hp._forward_hooks for hp in model.hook_points.values())
    assert all(p.grad is None for p in model.parameters())


def test_in_model_check_catches_a_pattern_that_is_not_the_softmax_of_the_scores():
    """Square and renormalise layer 1's pattern: its routing law must fail, the rest must hold."""
    model, batch = small_transformer(torch.float64)
    square = lambda module, args: (args[0] ** 2 / (args[0] ** 2).sum(-1, keepdim=True),)  # noqa: E731
    handle = model.blocks[1].attn.hook_pattern.register_forward_pre_hook(square)
    try:
        rows = gradients.check_in_model(model, batch.tokens, lambda logits: train.loss_fn(logits, batch, "soft"))
    finally:
        handle.remove()
    assert all(r["score"] < 1e-12 for r in rows if r["layer"] == 0)
    assert all(r["score"] > 1e-3 for r in rows if r["layer"] == 1)
    assert all(r["value"] < 1e-12 for r in rows)


def test_positive_feedback_self_term_has_slope_eta_and_the_expansion_is_first_order():
    fb = gradients.positive_feedback(head(n=20, T=10), etas=[1e-4, 1e-3])
    assert fb.components["self"] == pytest.approx(1.0, abs=1e-9)
    assert fb.slope_over_eta[0] == pytest.approx(sum(fb.components.values()), rel=1e-3)
    assert fb.first_order_error[1] / fb.first_order_error[0] == pytest.approx(10, rel=0.05)


# The EM-vs-SGD experiment

def test_sticky_chain_transition_matrix_is_the_authors_construction():
    P = em_vs_sgd.StickyChain().transition_matrix()
    torch.testing.assert_close(P.sum(1), torch.ones(8, dtype=torch.float64))
    inverse_distance = sum(1 / d for d in (1, 1, 2, 2, 3, 3, 4))
    assert P[0, 0].item() == pytest.approx(0.3 + 0.3 * 0.7 / (0.3 + inverse_distance), abs=1e-15)
    assert round(P[0, 0].item(), 4) == 0.3498
    expected_row = [0.3498, 0.1660, 0.0830, 0.0553, 0.0415, 0.0553, 0.0830, 0.1660]  # spec §2.6.1
    torch.testing.assert_close(P[0], torch.tensor(expected_row, dtype=torch.float64), rtol=0, atol=6e-5)
    torch.testing.assert_close(P, torch.stack([P[0].roll(i) for i in range(8)]))  # circulant


def test_sample_is_reproducible_and_shaped():
    chain = em_vs_sgd.StickyChain(seq_len=50)
    x, y = chain.sample(3)
    assert x.shape == (49, 20) and y.shape == (49,) and y.dtype == torch.long
    x2, y2 = chain.sample(3)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(y, chain.sample(4)[1])


def brute_force_log_predictive(chain, x):
    """p(y_t | x_1..x_t) by summing the joint over every hidden path y_0..y_t."""
    P, mu, n = chain.transition_matrix(), chain.means(), chain.n_symbols
    emit = -0.5 * (x.unsqueeze(1) - mu).pow(2).sum(-1)  # [T-1, n] log N(x_t; mu_{y_{t-1}}, I) + const
    out = []
    for t in range(x.shape[0]):  # target y_{t+1} in path terms: x_t is emitted by y_{t-1} (0-based: x[t] by path[t])
        weights = torch.zeros(n, dtype=torch.float64)
        for path in itertools.product(range(n), repeat=t + 2):
            w = 1 / n
            for s in range(t + 1):
                w *= P[path[s], path[s + 1]].item() * math.exp(emit[s, path[s]].item())
            weights[path[-1]] += w
        out.append((weights / weights.sum()).log())
    return torch.stack(out)


def test_bayes_filter_matches_brute_force_over_all_hidden_paths():
    chain = em_vs_sgd.StickyChain(n_symbols=4, d_x=3, seq_len=6)
    x, _ = chain.sample(0)
    torch.testing.assert_close(chain.bayes_log_predictive(x), brute_force_log_predictive(chain, x), rtol=1e-10, atol=1e-12)
    batched = chain.bayes_log_predictive(torch.stack([x, x.flip(0)]))
    torch.testing.assert_close(batched[1], brute_force_log_predictive(chain, x.flip(0)), rtol=1e-10, atol=1e-12)


def test_blocked_training_gradient_matches_autograd_on_the_dense_head():
    cfg = em_vs_sgd.EMConfig(chain=em_vs_sgd.StickyChain(seq_len=40))
    x, y = cfg.chain.sample(1)
    W = {p: w.double().unsqueeze(0) for p, w in em_vs_sgd.init_params(cfg, 1).items()}
    leaves = {p: w.clone().requires_grad_() for p, w in W.items()}
    q, k, v = x @ leaves["W_Q"][0], x @ leaves["W_K"][0], x @ leaves["W_V"][0]
    scores = (q @ k.T / math.sqrt(cfg.d_k)).masked_fill(~torch.ones(39, 39, dtype=torch.bool).tril(), float("-inf"))
    loss = torch.nn.functional.cross_entropy(scores.softmax(-1) @ v @ leaves["W_O"][0], y)
    loss.backward()
    for block in (7, 16, 39, 64):  # blocks that do and do not divide the length
        out = em_vs_sgd.forward_backward(W, x[None], y[None], block=block)
        torch.testing.assert_close(out.loss[0], loss.detach())
        for p in em_vs_sgd.PARAMS:
            close(out.grads[p], leaves[p].grad, rtol=1e-12)


def test_official_speedup_on_a_hand_built_case():
    steps = torch.arange(10.0)
    arm = torch.stack([2 - 0.2 * steps, 2 - 0.1 * steps])  # below 1.05 from steps 5 and 10 (never)
    assert em_vs_sgd.steps_to_threshold(arm, 1.05).tolist() == [5, 10]
    assert em_vs_sgd.official_speedup(arm, torch.tensor([1.0, 1.1])) == pytest.approx(10 / 7.5)
    fractions = em_vs_sgd.time_to_fraction(arm, 2.0, torch.tensor([1.0, 1.0]), [0.5, 0.95])
    assert fractions[0].tolist() == [3, 5] and fractions[1, 0] == 5 and math.isnan(fractions[1, 1])


def test_smoke_experiment_runs_and_the_long_runs_extend_the_budget_runs():
    cfg = profiles.c5("smoke")["em"]
    exp = em_vs_sgd.run(cfg, workers=1)
    assert set(exp.budget) == set(em_vs_sgd.arms(cfg.boost)) and set(exp.long) == set(cfg.long_arms)
    assert exp.budget["sgd"].loss.shape == (len(cfg.seeds), cfg.steps + 1)
    assert exp.budget["sgd"].test_loss.shape == (len(cfg.seeds), cfg.steps // cfg.eval_every + 1)
    assert exp.long["sgd"].loss.shape == (cfg.long_seeds, cfg.long_steps + 1)
    torch.testing.assert_close(exp.long["em_like"].loss[:, : cfg.steps + 1], exp.budget["em_like"].loss[: cfg.long_seeds])
    assert torch.equal(exp.budget["sgd"].loss[:, 0], exp.budget["em_like"].loss[:, 0])  # same initialisation
    assert (exp.floor < math.log(cfg.chain.n_symbols)).all() and (exp.test_floor < math.log(cfg.chain.n_symbols)).all()
    parallel = em_vs_sgd.run(cfg, workers=2)  # worker processes change nothing
    for name, curves in exp.budget.items():
        assert torch.equal(curves.loss, parallel.budget[name].loss), name


@pytest.mark.parametrize("make", [
    lambda: em_vs_sgd.StickyChain(n_symbols=1),
    lambda: em_vs_sgd.StickyChain(self_prob=1.0),
    lambda: em_vs_sgd.EMConfig(steps=0),
    lambda: em_vs_sgd.EMConfig(lr=-0.01),
    lambda: em_vs_sgd.EMConfig(long_steps=2000, long_arms=("adam",), long_seeds=1),
    lambda: em_vs_sgd.EMConfig(long_steps=500, long_arms=("sgd",), long_seeds=1),
    lambda: em_vs_sgd.EMConfig(long_steps=2000, long_arms=("sgd",), long_seeds=6),
    lambda: gradients.random_head(2, 0, 3, 3, 3, 3, torch.Generator()),
    lambda: gradients.random_head(2, 4, 3, 3, 3, 3, torch.Generator(), scale=0.0),
    lambda: profiles.c5("laptop"),
])
def test_bad_parameters_raise(make):
    with pytest.raises(ValueError):
        make()
