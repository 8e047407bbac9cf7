"""Faults injected for real: broken cache files, bad parameters, a diverging run, a bad cache
folder. Each must end in a one-line message that names what is wrong, never in a deep
traceback or in silently wrong numbers."""
import dataclasses
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from lib import cache, paths, train, validate
from lib.config import ModelConfig, RunConfig, TrainConfig
from lib.tasks import make_task

CFG = RunConfig(make_task("bijection", V=6, L=5), ModelConfig(d_model=16, n_layers=1, n_heads=2, d_mlp=32),
                TrainConfig(steps=20, batch_size=16, lr=3e-3, warmup=3, eval_every=10, eval_size=32))
SEED1 = dataclasses.replace(CFG, train=dataclasses.replace(CFG.train, seed=1))


@pytest.mark.parametrize("damage", ["truncate", "empty", "garbage"])
def test_a_damaged_run_file_is_named_moved_aside_and_retrained(damage):
    first = cache.get_or_train(CFG, progress=False)
    path = cache.run_path(CFG)
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "empty": b"", "garbage": b"not a torch file"}[damage])
    with pytest.warns(UserWarning, match=f"{path.name}: unreadable .*moved aside to {path.name}.bad") as caught:
        again = cache.get_or_train(CFG, progress=False)
    assert len(caught) == 1
    assert path.with_name(path.name + ".bad").exists() and path.exists()
    assert all(torch.equal(v, first.model.state_dict()[k]) for k, v in again.model.state_dict().items())


def test_another_runs_file_under_this_runs_name_is_never_read_as_it():
    seed0 = cache.get_or_train(CFG, progress=False)
    cache.get_or_train(SEED1, progress=False)
    cache.run_path(SEED1).write_bytes(cache.run_path(CFG).read_bytes())  # seed 0's file copied over seed 1's
    with pytest.warns(UserWarning, match="holds another key's result"):
        seed1 = cache.get_or_train(SEED1, progress=False)
    assert seed1.config.train.seed == 1
    assert not torch.equal(seed1.model.unembed.weight, seed0.model.unembed.weight)


def test_make_train_checks_validity_not_existence():
    cache.get_or_train(CFG, progress=False)
    cache.run_path(CFG).write_bytes(b"")
    with pytest.warns(UserWarning, match="unreadable"):
        cache.train_missing([CFG], workers=1)
    assert cache.read_run(CFG) is not None


def test_a_damaged_artifact_is_recomputed():
    calls = []

    def compute():
        calls.append(1)
        return {"v": torch.ones(3)}
    cache.get_or_compute("probe", {"x": 1}, ("metrics",), compute)
    path = cache.artifact_path("probe", {"x": 1}, ("metrics",))
    path.write_bytes(path.read_bytes()[:10])
    with pytest.warns(UserWarning, match=f"{path.name}: unreadable"):
        assert cache.get_or_compute("probe", {"x": 1}, ("metrics",), compute)["v"].tolist() == [1.0, 1.0, 1.0]
    assert len(calls) == 2


def test_a_diverging_run_stops_with_its_name_and_step_and_caches_nothing():
    cfg = dataclasses.replace(CFG, train=dataclasses.replace(CFG.train, lr=1e12, grad_clip=None, steps=200))
    with pytest.raises(FloatingPointError, match=r"bijection-transformer-soft-s0: the loss is nan at step \d+"):
        cache.get_or_train(cfg, progress=False)
    assert not cache.run_path(cfg).exists()


@pytest.mark.parametrize("build,word", [
    (lambda: TrainConfig(lr=float("inf")), "lr"), (lambda: TrainConfig(lr=0.0), "lr"),
    (lambda: TrainConfig(grad_clip=0.0), "grad_clip"), (lambda: TrainConfig(weight_decay=-0.1), "weight_decay"),
    (lambda: TrainConfig(seed=-1), "seed"), (lambda: TrainConfig(steps=10.0), "steps"),
    (lambda: make_task("bijection", V=2.5, L=2), "V"), (lambda: make_task("bijection", V="12", L=2), "V"),
    (lambda: make_task("bijection", V=True, L=1), "V"), (lambda: make_task("hmm", K=20.0), "K"),
    (lambda: ModelConfig(d_model=64.0), "d_model"),
    (lambda: validate.check_seed("example_seed", -1), "example_seed"),
    (lambda: validate.check_seed("example_seed", 1.0), "example_seed")])
def test_bad_parameters_are_refused_by_name(build, word):
    with pytest.raises((TypeError, ValueError), match=rf"\b{word}\b"):
        build()


def test_grad_clip_none_trains_without_clipping():
    cfg = dataclasses.replace(CFG, train=dataclasses.replace(CFG.train, grad_clip=None))
    assert train.train(cfg, progress=False).history[-1]["loss"] < train.train(CFG, progress=False).history[0]["loss"]


def cache_dir_of(value: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from lib import paths; print(paths.RUNS)"], cwd=cwd,
                          env={**os.environ, "BAR_RUNS_DIR": value, "PYTHONPATH": str(paths.ROOT)},
                          capture_output=True, text=True)


def test_the_cache_folder_is_absolute_and_never_empty(tmp_path):
    relative = cache_dir_of("some/runs", tmp_path)
    assert relative.stdout.strip() == str(tmp_path / "some" / "runs")
    empty = cache_dir_of("", tmp_path)
    assert empty.returncode != 0 and "BAR_RUNS_DIR is empty" in empty.stderr.strip().splitlines()[-1]


def test_an_unusable_cache_folder_is_refused_before_any_training(tmp_path, monkeypatch):
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    monkeypatch.setattr(paths, "RUNS", not_a_folder / "runs")
    monkeypatch.setattr(cache, "train", lambda *a, **k: pytest.fail("trained before checking the cache folder"))
    with pytest.raises(OSError, match="the cache folder .*a-file/runs cannot be written"):
        cache.train_missing([CFG], workers=1)
    with pytest.raises(OSError, match="cannot be written"):
        cache.get_or_train(CFG, progress=False)


def python(code: str, runs, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "BAR_RUNS_DIR": str(runs),
                                                                   "PYTHONPATH": str(paths.ROOT)},
                            cwd=paths.ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_two_trainers_of_one_run_train_it_once(tmp_path):
    """The second waits on the run's lock, then reads what the first saved."""
    code = ("from lib import cache\nfrom tests.test_faults import CFG\nimport dataclasses\n"
            "cfg = dataclasses.replace(CFG, train=dataclasses.replace(CFG.train, steps=300))\n"
            "print(cache.get_or_train(cfg, progress=False).train_seconds)")
    first, second = python(code, tmp_path / "runs"), python(code, tmp_path / "runs")
    outputs = [p.communicate(timeout=300) for p in (first, second)]
    assert all(p.returncode == 0 for p in (first, second)), outputs
    assert outputs[0][0] == outputs[1][0]  # the same recorded training: one of them only read it


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                if entry.isdigit() and int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
        except OSError:
            continue
    return found


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_training_workers_die_with_a_killed_parent(tmp_path, sig):
    """The local Dask cluster's worker processes (spawned, under nannies) end with the `make
    train` that started them, however it is killed: no orphan trains on beside a restart."""
    code = ("from lib import cache\nfrom tests.test_faults import CFG\nimport dataclasses\n"
            "cfgs = [dataclasses.replace(CFG, train=dataclasses.replace(CFG.train, steps=10**6, seed=s)) for s in (0, 1)]\n"
            "cache.train_missing(cfgs, workers=2)")
    parent = python(code, tmp_path / "runs")
    deadline = time.time() + 120
    while len(workers := [c for c in children(parent.pid) if b"spawn_main" in open(f"/proc/{c}/cmdline", "rb").read()]) < 2:
        assert time.time() < deadline and parent.poll() is None, parent.communicate()
        time.sleep(0.5)
    time.sleep(3)  # the workers are training now
    parent.send_signal(sig)
    parent.wait()
    deadline = time.time() + 20
    while any(os.path.exists(f"/proc/{w}") and "Z" not in open(f"/proc/{w}/stat").read().split(")")[1][:3]
              for w in workers):
        assert time.time() < deadline, f"workers {workers} outlived their killed parent"
        time.sleep(0.2)


def test_a_killed_run_resumes_from_its_checkpoint_bit_identical(tmp_path):
    """Killed for real (SIGKILL) after a checkpoint; the partial state is never read as a
    finished run, and the resumed run equals one that was never stopped, bit for bit."""
    cfg = dataclasses.replace(CFG, train=dataclasses.replace(CFG.train, steps=2000, eval_every=250, snapshots=(100, 2000)))
    code = ("from lib import cache, train\nfrom tests.test_faults import CFG\nimport dataclasses\n"
            "train.CHECKPOINT_SECONDS = 0.0\n"
            "cfg = dataclasses.replace(CFG, train=dataclasses.replace(CFG.train, steps=2000, eval_every=250, snapshots=(100, 2000)))\n"
            "cache.get_or_train(cfg, progress=False)")
    trainer = python(code, paths.RUNS)  # the test's own cache folder (tests/conftest.py)
    checkpoint = paths.RUNS / "checkpoints" / f"{cache.run_path(cfg).stem}.checkpoint.pt"
    deadline = time.time() + 120
    while not (checkpoint.exists() and torch.load(checkpoint, weights_only=True)["step"] >= 150):
        assert time.time() < deadline and trainer.poll() is None, trainer.communicate()
        time.sleep(0.1)
    trainer.kill()
    trainer.wait()
    step = torch.load(checkpoint, weights_only=True)["step"]
    assert 150 <= step < 2000  # killed mid-way (steps are far slower than the polling)
    assert cache.read_run(cfg) is None  # the checkpoint is no finished run
    resumed = cache.get_or_train(cfg, progress=False)
    assert not checkpoint.exists()  # deleted once the run is saved
    whole = train.train(cfg, progress=False)
    assert resumed.history == whole.history
    for name, tensor in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], tensor), name
    assert resumed.snapshots.keys() == {100, 2000}
    assert all(torch.equal(resumed.snapshots[100][k], v) for k, v in whole.snapshots[100].items())


def make_prune(workdir, runs) -> subprocess.CompletedProcess:
    """`make prune` of this Makefile, run in `workdir` (its _build/) on the cache `runs`."""
    return subprocess.run(["make", "-s", "-f", str(paths.ROOT / "Makefile"), "-C", str(workdir), "prune"],
                          env={**os.environ, "BAR_RUNS_DIR": str(runs), "PYTHONPATH": str(paths.ROOT)},
                          capture_output=True, text=True)


def test_prune_deletes_only_what_the_last_full_reproduction_did_not_read_and_waits_for_a_running_one(tmp_path):
    runs, build = tmp_path / "runs", tmp_path / "_build"
    runs.mkdir()
    build.mkdir()
    stale, read = runs / "stale.pt", runs / "read.pt"
    stale.write_bytes(b"old")
    time.sleep(0.05)
    (build / "reproduce.stamp").write_text(f"{runs}\n")  # a full reproduction started now ...
    time.sleep(0.05)
    read.write_bytes(b"new")
    cache.mark_used(read)                               # ... and read this
    (build / f"reproduce.started.{os.getpid()}").write_text(f"{runs}\n")  # another one is running
    refused = make_prune(tmp_path, runs)
    assert refused.returncode != 0 and "a reproduction is running" in refused.stderr
    assert stale.exists() and read.exists()
    (build / f"reproduce.started.{os.getpid()}").unlink()
    (build / "reproduce.started.999999999").write_text("")  # a killed one's marker: no such process
    pruned = make_prune(tmp_path, runs)
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    assert not stale.exists() and read.exists()


def test_prune_never_deletes_the_ladders_runs_its_measurements_or_unfinished_checkpoints(tmp_path):
    """A reproduction reads none of the ladder's runs (hours of training each), the analyses the
    last `make ladder` read, or a checkpoint that an interrupted run resumes from: all older
    than the reproduction's stamp, all kept; a stale file beside them goes."""
    from lib import profiles
    runs, build = tmp_path / "runs", tmp_path / "_build"
    (runs / "checkpoints").mkdir(parents=True)
    build.mkdir()
    rung = cache.run_path(profiles.ladder()["hmm"]["50,000 steps"][0]).name
    kept = [runs / rung, runs / "checkpoints" / "x.checkpoint.pt"]
    (build / "ladder.stamp").write_text("")
    time.sleep(0.05)
    measured, stale = runs / "scores-of-a-rung.pt", runs / "stale.pt"
    for path in (*kept, measured):
        path.write_bytes(b"keep")
    time.sleep(0.05)
    os.utime(stale.parent, None)
    stale.write_bytes(b"old")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))  # read before the last `make ladder`
    time.sleep(0.05)
    (build / "reproduce.stamp").write_text(f"{runs}\n")
    pruned = make_prune(tmp_path, runs)
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    assert all(path.exists() for path in (*kept, measured)) and not stale.exists()


@pytest.mark.parametrize("script", ["train.py", "timed_reproduce.py", "build_ledger.py"])
def test_scripts_use_this_repositorys_lib_whatever_else_is_installed(script, tmp_path):
    """Another clone's lib first on the path (an editable install, PYTHONPATH): the scripts
    still import this repository's, so the ledger is never written into the other clone."""
    decoy = tmp_path / "lib"
    decoy.mkdir()
    (decoy / "__init__.py").write_text("raise ImportError('the decoy lib was imported')\n")
    args = [] if script == "build_ledger.py" else ["--help"]
    done = subprocess.run([sys.executable, str(paths.ROOT / "scripts" / script), *args], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(tmp_path)}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "decoy" not in done.stderr
