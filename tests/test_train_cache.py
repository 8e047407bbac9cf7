import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from lib import cache, metrics, paths, train
from lib.config import ModelConfig, RunConfig, TrainConfig
from lib.tasks import make_task

CFG = RunConfig(make_task("bijection", V=6, L=5), ModelConfig(d_model=16, n_layers=1, n_heads=2, d_mlp=32),
                TrainConfig(steps=30, batch_size=16, lr=3e-3, warmup=3, eval_every=10, eval_size=32))


def test_same_seed_gives_identical_runs_and_other_seeds_differ():
    a, b = train.train(CFG, progress=False), train.train(CFG, progress=False)
    c = train.train(dataclasses.replace(CFG, train=dataclasses.replace(CFG.train, seed=1)), progress=False)
    for name, tensor in a.model.state_dict().items():
        assert torch.equal(tensor, b.model.state_dict()[name]), name
    assert a.history == [dict(row) for row in b.history]
    assert not torch.equal(a.model.unembed.weight, c.model.unembed.weight)


def test_training_learns_far_beyond_the_uniform_predictor():
    run = train.train(dataclasses.replace(CFG, train=dataclasses.replace(CFG.train, steps=300, eval_every=50)),
                      progress=False)
    uniform = metrics.uniform_scores(train.eval_batch(CFG.task, CFG.train.eval_size, torch.device("cpu")))
    assert run.history[-1]["entropy_mae"] < 0.3 * uniform.summary()["entropy_mae"]
    assert run.history[-1]["entropy_mae"] < 0.5 * run.history[0]["entropy_mae"]


def test_soft_and_sampled_losses_agree_in_expectation():
    """E_label[-log q(label)] = -sum_y p(y) log q(y): the two objectives share the minimiser."""
    task = make_task("bijection", V=6, L=5)
    batch = task.sample(4, torch.Generator().manual_seed(0))
    logits = torch.randn(4, task.seq_len, task.n_out, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    soft = train.loss_fn(logits, batch, "soft")
    log_q = logits[:, batch.query_pos].log_softmax(-1)
    torch.testing.assert_close(soft, -(batch.posterior * log_q).sum(-1).mean())
    sampled = train.loss_fn(logits, batch, "sampled")
    torch.testing.assert_close(sampled, -log_q.gather(-1, batch.labels[..., None]).mean())


def test_cache_key_changes_with_config_and_code_versions_never_with_source_text(tmp_path, monkeypatch):
    key = cache.run_key(CFG)
    assert cache.run_key(dataclasses.replace(CFG, train=dataclasses.replace(CFG.train, lr=1e-3))) != key
    assert cache.run_key(dataclasses.replace(CFG, model=dataclasses.replace(CFG.model, d_mlp=64))) != key
    # a comment in the training code: the key is what it was (it reads no file)
    monkeypatch.setattr(paths, "ROOT", tmp_path)
    assert cache.run_key(CFG) == key
    # a version bump of the loop, the metrics, this architecture or this task: a new key
    from lib import model as model_module
    for owner in (train, metrics, model_module.Transformer, type(CFG.task)):
        with monkeypatch.context() as m:
            m.setattr(owner, "VERSION", owner.VERSION + 1)
            assert cache.run_key(CFG) != key, owner
    # another architecture's version leaves this run alone: a faster Mamba scan never
    # retrains the transformer
    mamba = dataclasses.replace(CFG, model=ModelConfig(arch="mamba", d_model=16, n_layers=1, d_mlp=32))
    keys = {"transformer": cache.run_key(CFG), "mamba": cache.run_key(mamba)}
    from lib.mamba import Mamba
    monkeypatch.setattr(Mamba, "VERSION", Mamba.VERSION + 1)
    assert cache.run_key(CFG) == keys["transformer"] and cache.run_key(mamba) != keys["mamba"]


def test_artifacts_are_keyed_by_module_versions(monkeypatch):
    from lib import geometry
    path = cache.artifact_path("x", {"a": 1}, ("geometry", "metrics"))
    assert cache.artifact_path("x", {"a": 2}, ("geometry", "metrics")) != path
    monkeypatch.setattr(geometry, "VERSION", geometry.VERSION + 1)
    assert cache.artifact_path("x", {"a": 1}, ("geometry", "metrics")) != path
    with pytest.raises(AttributeError, match="lib.paths has no integer VERSION"):
        cache.artifact_path("x", {"a": 1}, ("paths",))


def test_get_or_train_reuses_a_finished_run_and_ignores_half_written_ones(monkeypatch):
    path = cache.run_path(CFG)
    path.parent.mkdir(parents=True)
    path.with_name(path.name + ".tmp").write_bytes(b"interrupted")
    first = cache.get_or_train(CFG, progress=False)
    monkeypatch.setattr(cache, "train", lambda *a, **k: pytest.fail("a cached run was retrained"))
    second = cache.get_or_train(CFG, progress=False)
    assert second.history == first.history
    assert torch.equal(second.model.unembed.weight, first.model.unembed.weight)


def test_snapshots_keep_the_weights_of_the_requested_steps():
    cfg = dataclasses.replace(CFG, train=dataclasses.replace(CFG.train, snapshots=[10, 30]))
    run = cache.get_or_train(cfg, progress=False)
    loaded = cache.load(cache.run_path(cfg))
    assert sorted(loaded.snapshots) == [10, 30] and loaded.config.train.snapshots == (10, 30)
    for name, tensor in run.model.state_dict().items():
        torch.testing.assert_close(loaded.model_at(30).state_dict()[name], tensor)
    assert not torch.equal(loaded.model_at(10).unembed.weight, run.model.unembed.weight)
    with pytest.raises(ValueError, match="no snapshot at step 20"):
        loaded.model_at(20)


def test_half_precision_snapshots_are_the_weights_rounded_and_leave_other_keys_alone():
    full = dataclasses.replace(CFG, train=dataclasses.replace(CFG.train, snapshots=(10,)))
    half = dataclasses.replace(full, train=dataclasses.replace(full.train, snapshot_dtype="float16"))
    a, b = train.train(full, progress=False), train.train(half, progress=False)
    for name, tensor in a.snapshots[10].items():
        assert b.snapshots[10][name].dtype == torch.float16
        assert torch.equal(b.snapshots[10][name], tensor.half())
    assert b.model_at(10).unembed.weight.dtype == torch.float32
    assert torch.equal(b.model.unembed.weight, a.model.unembed.weight)  # the final weights stay float32
    # the field joined the config after runs were cached: at its default it is not in the key
    assert "snapshot_dtype" not in cache.run_key_text(full) and "float16" in cache.run_key_text(half)
    assert cache.run_key(full) != cache.run_key(half)
    assert RunConfig.from_dict(half.to_dict()) == half and RunConfig.from_dict(full.to_dict()) == full


def test_bad_training_parameters_are_errors():
    with pytest.raises(ValueError, match="target"):
        TrainConfig(target="hard")
    with pytest.raises(ValueError, match="warmup"):
        TrainConfig(steps=10, warmup=20)
    with pytest.raises(ValueError, match="snapshot"):
        TrainConfig(steps=10, warmup=1, snapshots=(11,))
    with pytest.raises(ValueError, match="snapshot_dtype"):
        TrainConfig(snapshot_dtype="bfloat16")


def test_get_or_train_all_trains_missing_runs_in_parallel_processes_as_one_process_would():
    other, third = (dataclasses.replace(CFG, train=dataclasses.replace(CFG.train, seed=s)) for s in (1, 2))
    cached = cache.get_or_train(CFG, progress=False)
    groups = cache.get_or_train_all({"a": [CFG, other], "b": [third, other]}, workers=2)  # one cached, two missing
    assert {name: [r.config for r in rs] for name, rs in groups.items()} == {"a": [CFG, other], "b": [third, other]}
    runs = groups["a"]
    assert torch.equal(runs[0].model.unembed.weight, cached.model.unembed.weight)
    # the same run trained in this process, one thread: the worker trained it the same way
    with torch.random.fork_rng(devices=[]):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            here = train.train(other, progress=False)
        finally:
            torch.set_num_threads(threads)
    assert runs[1].history == here.history
    assert torch.equal(runs[1].model.unembed.weight, here.model.unembed.weight)


def test_wall_minutes_gives_each_run_to_the_first_free_worker():
    assert cache.wall_minutes([5, 4, 3, 3, 3], workers=2) == 10  # [5 | 4] -> [5 | 7] -> [8 | 7] -> [8 | 10]
    assert cache.wall_minutes([5, 4, 3, 3, 3], workers=1) == 18
    assert cache.wall_minutes([], workers=2) == 0


def test_training_order_starts_the_costliest_run_first():
    short = dataclasses.replace(CFG, train=dataclasses.replace(CFG.train, steps=10))
    wide = dataclasses.replace(CFG, model=dataclasses.replace(CFG.model, d_model=32, d_mlp=64))
    assert cache.training_order([short, CFG, wide]) == [wide, CFG, short]


def _counting(result):
    calls = []

    def compute():
        calls.append(1)
        return result
    return compute, calls


def test_get_or_compute_on_runs_reuses_a_hit_and_recomputes_for_another_run_key_or_version(monkeypatch):
    from lib import evaluation
    run = cache.Run(CFG, None)
    other = cache.Run(dataclasses.replace(CFG, train=dataclasses.replace(CFG.train, seed=1)), None)
    compute, calls = _counting({"mae": torch.tensor(0.5), "per_seed": [1.0, 2.0], ("zero", 0): torch.ones(3)})

    def get(runs, batch="abc"):
        return cache.get_or_compute_on_runs("test-eval", runs, {"batch": batch}, ("evaluation",), compute)
    first, again = get([run]), get([run])
    assert len(calls) == 1  # the hit did not call compute
    torch.testing.assert_close(again["mae"], first["mae"])
    assert again[("zero", 0)].tolist() == [1.0, 1.0, 1.0] and again["per_seed"] == [1.0, 2.0]
    get([other]), get([run], batch="abd")  # another run, another key
    assert len(calls) == 3
    monkeypatch.setattr(evaluation, "VERSION", evaluation.VERSION + 1)
    get([run])
    assert len(calls) == 4  # a new version of the analysis
    monkeypatch.setattr(train, "VERSION", train.VERSION + 1)
    get([run])
    assert len(calls) == 5  # a new version of the training loop: the run's key changed
    with pytest.raises(ValueError, match="runs"):
        cache.get_or_compute_on_runs("test-eval", [run], {"runs": 1}, ("evaluation",), compute)


def test_digest_sees_content_dtype_shape_and_structure():
    batch = CFG.task.sample(4, torch.Generator().manual_seed(0))
    same = CFG.task.sample(4, torch.Generator().manual_seed(0))
    other = CFG.task.sample(4, torch.Generator().manual_seed(1))
    assert cache.digest(batch) == cache.digest(same) != cache.digest(other)
    x = torch.arange(6.0)
    assert len({cache.digest(x), cache.digest(x.double()), cache.digest(x.view(2, 3)), cache.digest([x]),
                cache.digest((x,)), cache.digest({"a": x}), cache.digest(x.numpy())} - {cache.digest(x)}) == 5
    assert cache.digest({"a": 1, "b": [None, "s", 2.5]}) == cache.digest({"b": [None, "s", 2.5], "a": 1})
    assert cache.digest(1) != cache.digest(1.0) != cache.digest("1")
    with pytest.raises(TypeError):
        cache.digest(object())


def test_em_vs_sgd_trains_once_and_round_trips_its_experiment(monkeypatch):
    from lib import em_vs_sgd
    cfg = em_vs_sgd.EMConfig(chain=em_vs_sgd.StickyChain(seq_len=40), steps=6, long_steps=10, long_arms=("sgd",),
                             long_seeds=1, seeds=(42, 7), eval_every=2)
    first = em_vs_sgd.run(cfg, workers=1)
    def refuse(*args):
        raise RuntimeError("trained although cached")
    monkeypatch.setattr(em_vs_sgd, "_train", refuse)
    again = em_vs_sgd.run(cfg, workers=1)
    for name in ("floor", "test_floor", "bayes_entropy"):
        torch.testing.assert_close(getattr(again, name), getattr(first, name))
    for part in ("budget", "long"):
        assert getattr(again, part).keys() == getattr(first, part).keys()
        for arm, curves in getattr(first, part).items():
            for field in ("loss", "entropy", "accuracy", "test_loss"):
                torch.testing.assert_close(getattr(getattr(again, part)[arm], field), getattr(curves, field))
    assert again.value_step == first.value_step and again.seconds == first.seconds and again.cfg == cfg
    with pytest.raises(RuntimeError, match="trained"):  # another config is not a hit
        em_vs_sgd.run(dataclasses.replace(cfg, lr=0.02), workers=1)


def test_every_read_marks_an_artifact_used_for_make_prune():
    cache.get_or_train(CFG, progress=False)
    computed = cache.get_or_compute("probe", {"x": 1}, ("metrics",), lambda: {"value": torch.ones(2)})
    paths_read = [cache.run_path(CFG), cache.artifact_path("probe", {"x": 1}, ("metrics",))]
    for path in paths_read:
        os.utime(path, (0, 0))  # as if last read in 1970
    cache.get_or_train(CFG, progress=False)
    torch.testing.assert_close(cache.get_or_compute("probe", {"x": 1}, ("metrics",), pytest.fail)["value"],
                               computed["value"])
    assert all(path.stat().st_mtime > 1e9 for path in paths_read)


def test_a_compiled_run_tracks_the_eager_run_step_by_step():
    cfg = dataclasses.replace(CFG, train=dataclasses.replace(CFG.train, steps=20, eval_every=1, eval_size=8))
    eager, compiled = train.train(cfg, progress=False, compile=False), train.train(cfg, progress=False, compile=True)
    losses = [[row["loss"] for row in run.history] for run in (eager, compiled)]
    assert len(losses[0]) == 20 and losses[0][-1] < losses[0][0]
    np.testing.assert_allclose(losses[1], losses[0], rtol=0, atol=1e-5)


def test_without_a_compiler_training_warns_once_and_runs_eagerly(tmp_path):
    """A real fault: the C++ compiler torch.compile needs does not exist (and nothing compiled
    is cached). The run must warn once, fall back, and equal the eager run exactly."""
    script = (
        "import dataclasses, warnings, torch\n"
        "from lib import train\n"
        "from tests.test_train_cache import CFG\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    fallen = train.train(CFG, progress=False, compile=True)\n"
        "eager = train.train(CFG, progress=False, compile=False)\n"
        "ours = [str(w.message) for w in caught if 'torch.compile failed' in str(w.message)]\n"
        "assert len(ours) == 1, ours\n"
        "assert all(torch.equal(v, eager.model.state_dict()[k]) for k, v in fallen.model.state_dict().items())\n"
        "print('fell back:', ours[0])\n")
    env = {**os.environ, "CXX": str(tmp_path / "no-such-compiler"), "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor"),
           "PYTHONPATH": str(paths.ROOT)}
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=paths.ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "fell back: torch.compile failed" in done.stdout


def test_training_flops_count_six_per_parameter_per_trained_token():
    from lib.model import build_model, n_params
    params = n_params(build_model(CFG.model, CFG.task))
    assert train.training_flops(CFG) == 6 * params * 30 * 16 * (2 * 5 - 1)  # steps x batch x tokens of 2L-1
    hmm = dataclasses.replace(CFG, task=make_task("hmm", K=6, K_max=20))
    hmm_params = n_params(build_model(hmm.model, hmm.task))
    assert train.training_flops(hmm) == 6 * hmm_params * 30 * 16 * (53 + 2 * 6)  # the sampled K, not K_max


def test_a_compiled_run_is_the_same_wherever_and_whenever_it_trains():
    """Compiled kernels split reductions across threads, and a second compile in a process
    could turn shapes dynamic: training on one thread, compiling each run afresh with static
    shapes, keeps a run's numbers independent of the process and of what it trained before."""
    cfg = dataclasses.replace(CFG, train=dataclasses.replace(CFG.train, steps=60))
    threads = torch.get_num_threads()
    digests = {cache.digest(train.train(cfg, progress=False, compile=True).model.state_dict()) for _ in range(2)}
    assert torch.get_num_threads() == threads  # the caller's thread count is restored
    code = ("import dataclasses\nfrom lib import cache, train\nfrom tests.test_train_cache import CFG\n"
            "cfg = dataclasses.replace(CFG, train=dataclasses.replace(CFG.train, steps=60))\n"
            "print(cache.digest(train.train(cfg, progress=False, compile=True).model.state_dict()))")
    fresh = subprocess.run([sys.executable, "-c", code], cwd=paths.ROOT, capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(paths.ROOT)})
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    assert digests == {fresh.stdout.split()[-1]}
