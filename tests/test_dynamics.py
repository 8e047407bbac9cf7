"""Each frame and precision metric of the training-dynamics chapter on a case whose answer is
known in advance, and a whole trajectory on a tiny trained run."""
import numpy as np
import pytest
import torch

from lib import dynamics, gradients, metrics, profiles, train
from lib.config import ModelConfig, RunConfig, TrainConfig
from lib.model import build_model
from lib.tasks import make_task


def test_snapshot_schedule_is_dense_early_and_stops_before_the_last_step():
    assert profiles.snapshot_schedule(3000, 10) == (10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700,
                                                    1000, 1500, 2000)
    assert profiles.snapshot_schedule(40, 2) == (2, 3, 5, 7, 10, 15, 20, 30)
    assert profiles.snapshot_schedule(100, 100) == ()


def test_js_divergence_is_zero_for_equal_and_one_bit_for_disjoint_distributions():
    p = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.1, 0.2, 0.3, 0.4]], dtype=torch.float64)
    q = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.1, 0.2, 0.3, 0.4]], dtype=torch.float64)
    torch.testing.assert_close(dynamics.js_divergence(p, q), torch.tensor([1.0, 0.0], dtype=torch.float64))
    # symmetric, and a hand-computed case: JS((1,0), (1/2,1/2)) = H(3/4,1/4) - 1/2
    a, b = torch.tensor([1.0, 0.0], dtype=torch.float64), torch.tensor([0.5, 0.5], dtype=torch.float64)
    expected = -(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25)) - 0.5
    assert dynamics.js_divergence(a, b).item() == pytest.approx(expected)
    assert dynamics.js_divergence(b, a).item() == pytest.approx(expected)
    assert dynamics.attention_similarity(p, p) == pytest.approx(1.0)
    assert dynamics.attention_similarity(p[:1], q[:1]) == pytest.approx(0.0)


def model(d_model, n_heads, seed=0, task=make_task("bijection", V=4, L=4)):
    torch.manual_seed(seed)
    return build_model(ModelConfig(d_model=d_model, n_layers=1, n_heads=n_heads, d_mlp=16), task)


def test_key_subspace_overlap_is_one_for_the_same_heads_zero_for_orthogonal_ones_and_chance_for_random():
    a, b = model(16, 2), model(16, 2, seed=1)
    assert dynamics.key_subspace_overlap(a, a) == pytest.approx(1.0)
    with torch.no_grad():  # each head of b reads only the 8 directions the same head of a ignores
        for rows in (slice(0, 8), slice(8, 16)):
            basis = torch.linalg.qr(a.blocks[0].attn.W_K.weight[rows].mT, mode="complete").Q  # [16, 16]
            b.blocks[0].attn.W_K.weight[rows] = basis[:, 8:].mT
    assert dynamics.key_subspace_overlap(b, a) == pytest.approx(0.0, abs=1e-12)
    # the overlap does not care which basis a head uses inside its subspace
    rotations = torch.block_diag(*(torch.linalg.qr(torch.randn(8, 8)).Q for _ in range(2)))  # one per head
    c = model(16, 2)
    with torch.no_grad():
        c.blocks[0].attn.W_K.weight.copy_(rotations @ a.blocks[0].attn.W_K.weight)
    assert dynamics.key_subspace_overlap(c, a) == pytest.approx(1.0)
    random_pairs = [dynamics.key_subspace_overlap(model(256, 32, seed=s), model(256, 32, seed=s + 100))
                    for s in range(3)]
    assert np.mean(random_pairs) == pytest.approx(8 / 256, rel=0.1)  # d_head / d_model


def test_gradient_ratio_is_the_ratio_of_the_routing_and_value_laws_of_paper_two():
    """||dL/ds|| / ||dL/dv|| from the model's hooks equals the same ratio built from Paper II's
    laws (G1: a (b - E_a b), G2: a^T u) evaluated on the pattern, values and u = dL/dz."""
    task = make_task("bijection", V=6, L=6)
    m = model(16, 2, task=task).double()
    batch = task.sample(8, torch.Generator().manual_seed(0))
    ratio = dynamics.gradient_ratio(m, batch)
    assert all(p.grad is None for p in m.parameters())  # it leaves no gradients behind
    acts = {}

    def keep(x, name):
        x.retain_grad()
        acts[name] = x

    names = ["blocks.0.attn.hook_pattern", "blocks.0.attn.hook_v", "blocks.0.attn.hook_z"]
    with m.hooks([(n, keep) for n in names]):
        train.loss_fn(m(batch.tokens), batch, "soft").backward()
    heads = lambda t: t.detach().transpose(1, 2)  # noqa: E731
    a = acts["blocks.0.attn.hook_pattern"].detach()
    u, v = heads(acts["blocks.0.attn.hook_z"].grad), heads(acts["blocks.0.attn.hook_v"])
    expected = gradients.score_grad(a, u, v).norm() / gradients.value_grad(a, u).norm()
    assert ratio == pytest.approx(expected.item(), rel=1e-9)


def test_level_resolution_is_the_mean_adjacent_fisher_ratio():
    # three groups at 0, 2, 4, each with points at mean +- 1 (variance exactly 1): ratio 4 each
    pc1 = np.array([-1, 1, 1, 3, 3, 5], dtype=float)
    groups = np.array([0, 0, 1, 1, 2, 2])
    assert dynamics.level_resolution(pc1, groups, [0, 1, 2]) == pytest.approx(4.0)
    assert dynamics.level_resolution(pc1 * 10, groups, [1, 2]) == pytest.approx(4.0)  # scale-free


def test_settling_step_and_the_ratio_of_precision_at_that_step():
    traj = dynamics.Trajectory(
        steps=np.array([0, 10, 20, 50, 100]),
        values={"attention similarity": np.array([0.5, 0.96, 0.94, 0.99, 1.0]),  # dips below 0.9 progress at 20
                "key subspace overlap": np.array([0.2, 0.95, 0.99, 1.0, 1.0]),
                "entropy MAE": np.array([1.0, 0.5, 0.1, 0.01, 0.001])})
    np.testing.assert_allclose(traj.progress("attention similarity"), [0, 0.92, 0.88, 0.98, 1.0])
    np.testing.assert_allclose(traj.progress("entropy MAE"), [0, np.log(2) / np.log(1000), 1 / 3, 2 / 3, 1])
    assert traj.settling_step(dynamics.FRAME) == 50     # the dip at step 20 resets it
    assert traj.settling_step(["entropy MAE"]) == 100
    summary = traj.summary()
    assert summary["mae_ratio_at_frame"] == pytest.approx(10.0)
    assert summary["step_ratio"] == pytest.approx(2.0)


def test_trajectory_of_a_tiny_run_starts_at_initialisation_ends_at_the_final_model_and_is_cached(monkeypatch):
    task = make_task("bijection", V=6, L=6)
    cfg = RunConfig(task, ModelConfig(d_model=16, n_layers=2, n_heads=2, d_mlp=32),
                    TrainConfig(steps=30, batch_size=16, warmup=3, eval_every=10, eval_size=16, snapshots=(5, 10, 20)))
    run = train.train(cfg, progress=False)
    batch = train.eval_batch(task, 32, torch.device("cpu"), offset=1)
    traj = dynamics.trajectory(run, batch, resolve_last=3)
    np.testing.assert_array_equal(traj.steps, [0, 5, 10, 20, 30])
    # cached: a second call reads the artifact instead of measuring again
    monkeypatch.setattr(dynamics, "measure", lambda *a: pytest.fail("a cached trajectory was measured again"))
    again = dynamics.trajectory(run, batch, resolve_last=3)
    assert all(np.array_equal(again.values[k], v) for k, v in traj.values.items())
    assert traj.values["attention similarity"][-1] == pytest.approx(1.0)
    assert traj.values["key subspace overlap"][-1] == pytest.approx(1.0)
    assert traj.values["entropy MAE"][-1] == pytest.approx(metrics.score(run.model, batch).summary()["entropy_mae"])
    assert np.all(np.isfinite(traj.values["low-entropy resolution"]))
    init_pattern_sim = traj.values["attention similarity"][0]
    assert 0 < init_pattern_sim < 1
