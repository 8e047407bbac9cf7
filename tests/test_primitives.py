"""r = error / context-blind error on hand-built cases, and the late gain of a learning curve."""
import numpy as np
import pytest
import torch

from lib import geometry, metrics, primitives, train
from lib.config import ModelConfig, RunConfig, TrainConfig
from lib.tasks import HMM, Bijection, Recall


def test_baseline_errors_are_the_uniform_predictor_and_chance():
    task = Bijection(V=20, L=19)
    batch = task.sample(256, torch.Generator().manual_seed(0))
    assert primitives.baseline_error(task, batch) == pytest.approx(metrics.uniform_scores(batch).entropy_error.mean().item())
    recall = Recall(n_pairs=4, n_queries=2, n_filler=0, n_keys=8, n_values=8)
    assert primitives.baseline_error(recall, recall.sample(4, torch.Generator())) == pytest.approx(7 / 8)
    assert primitives.error_field(recall) == "accuracy" and primitives.error(recall, 0.75) == pytest.approx(0.25)
    assert primitives.error_field(task) == "entropy_error" and primitives.error(task, 0.1) == pytest.approx(0.1)


def test_a_model_that_predicts_the_posterior_has_r_zero_and_scoring_in_chunks_changes_nothing():
    recall = Recall(n_pairs=4, n_queries=2, n_filler=0, n_keys=8, n_values=8)
    batch = recall.sample(64, torch.Generator().manual_seed(1))
    exact = metrics.compare(batch.posterior, batch.posterior)
    assert primitives.error(recall, exact.accuracy.mean().item()) == 0
    cfg = RunConfig(recall, ModelConfig(d_model=8, n_layers=1, n_heads=2, d_mlp=16), TrainConfig(steps=1, warmup=1, eval_size=8))
    model = train.train(cfg, progress=False).model
    whole, chunked = metrics.score(model, batch), primitives.score(model, batch, chunk=5)
    torch.testing.assert_close(whole.entropy_error, chunked.entropy_error)


def test_run_scores_are_the_scores_and_a_second_call_reads_them(monkeypatch):
    recall = Recall(n_pairs=4, n_queries=2, n_filler=0, n_keys=8, n_values=8)
    batch = recall.sample(16, torch.Generator().manual_seed(3))
    cfg = RunConfig(recall, ModelConfig(d_model=8, n_layers=1, n_heads=2, d_mlp=16), TrainConfig(steps=1, warmup=1, eval_size=8))
    run = train.train(cfg, progress=False)
    first = primitives.run_scores(run, batch)
    for field in ("entropy_error", "kl", "accuracy"):
        full = getattr(primitives.score(run.model, batch), field)
        torch.testing.assert_close(getattr(first, field), full.mean(1, keepdim=True))
    assert primitives.summarise(recall, [first], 0.875) == primitives.summarise(recall, [primitives.score(run.model, batch)], 0.875)
    monkeypatch.setattr(primitives, "score", lambda *_: pytest.fail("scored again instead of reading the cache"))
    torch.testing.assert_close(primitives.run_scores(run, batch).kl, first.kl)
    other = recall.sample(16, torch.Generator().manual_seed(4))
    with pytest.raises(pytest.fail.Exception):
        primitives.run_scores(run, other)  # another batch is another key


def test_state_geometry_is_c15s_measures_per_run_and_a_second_call_reads_them(monkeypatch):
    task = HMM(K=6, K_max=6)
    batch = train.eval_batch(task, 24, torch.device("cpu"))
    symbols = task.decode(batch.tokens)[2].numpy()
    runs = [train.train(RunConfig(task, ModelConfig(arch="lstm", d_model=8, n_layers=1),
                                  TrainConfig(steps=1, warmup=1, eval_size=8, seed=s)), progress=False) for s in (0, 1)]
    first = primitives.state_geometry(runs, batch, task.S, symbols)
    for i, run in enumerate(runs):
        direct = geometry.hmm_state_geometry(geometry.final_residual(run.model, batch), batch.posterior.numpy(),
                                             task.S, seed=i, symbols=symbols)
        assert first["per_seed"][i] == pytest.approx(direct, nan_ok=True)
    flat = geometry.final_residual(runs[0].model, batch).reshape(-1, 8)
    np.testing.assert_allclose(first["pcs"].numpy(), geometry.standardised_pca(flat)[1][:, :2])
    monkeypatch.setattr(geometry, "final_residual", lambda *_: pytest.fail("measured again instead of reading the cache"))
    assert primitives.state_geometry(runs, batch, task.S, symbols)["per_seed"] == first["per_seed"]
    with pytest.raises(pytest.fail.Exception):
        primitives.state_geometry(runs[:1], batch, task.S, symbols)  # other runs are another key


def test_late_gain_tells_a_flat_curve_from_a_falling_one():
    steps = np.arange(1, 11) * 100
    assert primitives.late_gain(np.full(10, 0.5), steps) == pytest.approx(0.0)
    assert primitives.late_gain(np.linspace(1.0, 0.1, 10), steps) == pytest.approx(1 - 0.1 / 0.3)  # steps 800-1000: 0.3 -> 0.1


def test_learning_curve_is_in_units_of_the_baseline():
    task = Bijection(V=6, L=5)
    cfg = RunConfig(task, ModelConfig(d_model=8, n_layers=1, n_heads=2, d_mlp=16),
                    TrainConfig(steps=4, batch_size=8, warmup=1, eval_every=2, eval_size=16))
    run = train.train(cfg, progress=False)
    steps, r = primitives.learning_curve(run)
    baseline = metrics.uniform_scores(train.eval_batch(task, 16, torch.device("cpu"))).entropy_error.mean().item()
    np.testing.assert_array_equal(steps, [2, 4])
    np.testing.assert_allclose(r, [h["entropy_mae"] / baseline for h in run.history])


def test_summarise_turns_accuracy_into_error_and_divides_by_the_baseline():
    recall = Recall(n_pairs=4, n_queries=2, n_filler=0, n_keys=8, n_values=8)
    batch = recall.sample(32, torch.Generator().manual_seed(2))
    exact = metrics.compare(batch.posterior, batch.posterior)
    uniform = metrics.uniform_scores(batch)
    out = primitives.summarise(recall, [exact, uniform], base=0.875)
    expected = np.mean([0.0, 1 - uniform.accuracy.mean().item()])
    assert out["error"] == pytest.approx(expected) and out["r"] == pytest.approx(expected / 0.875)
    assert out["ci95"][0] <= out["error"] <= out["ci95"][1]
    assert out["r_per_seed"][0] == 0.0
