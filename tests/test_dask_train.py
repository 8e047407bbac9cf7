"""`make train` on Dask: runs trained on cluster workers are the runs trained here, a killed worker's
run resumes elsewhere from its last checkpoint, a run that keeps failing stops training by name,
and each run goes only to a worker that has the resources it asks for."""
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch
from distributed import Client, LocalCluster

from lib import cache, train
from tests.test_faults import CFG

CPU = torch.device("cpu")


def seeds(*seeds, **train_fields):
    return [dataclasses.replace(CFG, train=dataclasses.replace(CFG.train, seed=s, **train_fields)) for s in seeds]


def trained_here(cfg):
    return cache.digest(train.train(cfg, progress=False).model.state_dict())


def test_runs_trained_on_two_workers_equal_runs_trained_here_bit_for_bit():
    cfgs = seeds(0, 1)
    cache.train_missing(cfgs, workers=2)
    assert [cache.digest(cache.read_run(cfg).model.state_dict()) for cfg in cfgs] == [trained_here(cfg) for cfg in cfgs]


def test_a_run_goes_to_a_worker_only_when_one_is_free_to_start_it():
    # Dask would bind all four runs to the two workers at once, round robin, and each worker would
    # then work through its own two: a shorter run could start while a longer one still waited
    cfgs = seeds(0, 1, 2, 3, steps=300)
    with cache.local_cluster(2, CPU) as address, Client(address) as client:
        trainer = threading.Thread(target=cache.train_missing, args=(cfgs,), kwargs={"scheduler": address})
        trainer.start()
        handed_out = []
        while trainer.is_alive():
            handed_out.append(sum(len(keys) for keys in client.processing().values()))
            time.sleep(0.02)
    assert max(handed_out) == 2
    assert all(cache.cached(cfg) for cfg in cfgs)


def test_a_killed_worker_sends_its_run_to_another_which_resumes_from_the_checkpoint(monkeypatch, capsys):
    # a mirror interval far shorter than the run: training outlives many waits, as every real run does
    monkeypatch.setattr(cache, "MIRROR_SECONDS", 0.1)
    cfg, = seeds(0, steps=2000, eval_every=250)
    with cache.local_cluster(2, CPU) as address, Client(address) as client:
        trainer = threading.Thread(target=cache.train_missing, args=([cfg],),
                                   kwargs={"scheduler": address, "checkpoint_seconds": 0.2})
        trainer.start()
        deadline = time.time() + 120
        while (state := client.get_metadata(cache.checkpoint_name(cfg), None)) is None \
                or cache.checkpoint_step(state) < 150:
            assert time.time() < deadline and trainer.is_alive()
            time.sleep(0.1)
        while not cache.checkpoint_path(cfg).exists():  # mirrored to this machine while the run trains
            assert time.time() < deadline and trainer.is_alive()
            time.sleep(0.1)
        busy, = [worker for worker, keys in client.processing().items() if keys]
        os.kill(client.run(os.getpid, workers=[busy])[busy], signal.SIGKILL)
        trainer.join(timeout=300)
        assert not trainer.is_alive()
        resumed = [message for _, message in client.get_events("train")]
    assert len(resumed) == 1 and resumed[0].startswith(f"{cfg.label} resumed at step "), resumed
    assert 150 <= int(resumed[0].split()[-1]) < 2000
    assert not cache.checkpoint_path(cfg).exists()  # the client's mirror is deleted once the run is saved
    progress = [line for line in capsys.readouterr().out.splitlines() if "checkpointed" in line]
    assert progress and all(line.startswith(f"  {cache.described(cfg)}: at step ") for line in progress)
    steps = [int(line.split("at step ")[1].split()[0].replace(",", "")) for line in progress]
    assert len(set(steps)) == len(steps)  # each checkpoint is mirrored, and reported, once
    assert cache.digest(cache.read_run(cfg).model.state_dict()) == trained_here(cfg)


class Stopped(Exception):
    pass


def test_a_restarted_train_says_where_each_run_resumes_and_does_not_report_that_checkpoint_again(capsys):
    cfg, = seeds(0, steps=600, eval_every=200)
    checkpoint = cache.checkpoint_path(cfg)
    checkpoint.parent.mkdir(parents=True, exist_ok=True)

    def stop(_):  # the first checkpoint, as a killed `make train` leaves it
        raise Stopped
    with pytest.raises(Stopped):
        train.train(cfg, progress=False, checkpoint=checkpoint, on_checkpoint=stop, checkpoint_seconds=0.0)
    step = cache.checkpoint_step(checkpoint.read_bytes())
    cache.train_missing([cfg], workers=2)
    out = capsys.readouterr().out.splitlines()
    assert f"  {cache.described(cfg)}: resumes at step {step:,}" in out
    assert not [line for line in out if f"at step {step:,} " in line], out
    assert cache.digest(cache.read_run(cfg).model.state_dict()) == trained_here(cfg)


def test_a_run_that_always_fails_stops_training_with_its_name_after_three_attempts():
    diverging = dataclasses.replace(CFG, train=dataclasses.replace(CFG.train, lr=1e12, grad_clip=None, steps=200))
    with pytest.raises(cache.TrainingFailed, match=r"^train: run bijection-transformer-soft-s0 failed 3 times: "
                                           r"bijection-transformer-soft-s0: the loss is nan at step \d+; training stopped$"):
        cache.train_missing([diverging], workers=2)
    assert not cache.run_path(diverging).exists()


def test_a_gpu_run_goes_only_to_a_worker_that_advertises_a_gpu():
    # on a cluster the profile decides; on this machine's own cluster, what the machine has
    assert cache.run_resources("paper", "tcp://host:8786", CPU) == {"GPU": 1}
    assert cache.run_resources("default", "tcp://host:8786", torch.device("cuda")) == {"thread": 1}
    assert cache.run_resources("paper", None, CPU) == {"thread": 1}
    assert cache.run_resources("default", None, torch.device("cuda")) == {"GPU": 1}
    with LocalCluster(n_workers=1, threads_per_worker=1, resources={"thread": 1}, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        gpu_worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", cluster.scheduler_address,
                                       "--nthreads", "1", "--resources", "GPU=1", "--no-dashboard"])
        try:
            client.wait_for_workers(2, timeout=60)
            gpu_address, = [a for a, w in client.scheduler_info()["workers"].items() if "GPU" in w["resources"]]
            cfgs = seeds(0, 1, 2)
            client.get_task_stream()  # the first call starts recording
            start = time.time()
            cache.train_missing(cfgs, scheduler=cluster.scheduler_address, profile="paper")
            ran_on = {task["worker"] for task in client.get_task_stream(start=start)}
        finally:
            gpu_worker.terminate()
            gpu_worker.wait(timeout=30)
    assert ran_on == {gpu_address}
    assert all(cache.cached(cfg) for cfg in cfgs)


def test_runs_that_no_worker_can_take_stop_training_with_one_line():
    with LocalCluster(n_workers=1, threads_per_worker=1, resources={"thread": 1}, dashboard_address=None) as cluster:
        with pytest.raises(cache.TrainingFailed, match=r"^train: no worker of the cluster at tcp://\S+ offers GPU=1; "):
            cache.train_missing(seeds(0), scheduler=cluster.scheduler_address, profile="paper")
    assert not cache.cached(seeds(0)[0])
