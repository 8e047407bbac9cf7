"""The one artifact cache: trained runs under data/runs, keyed by content.

The key hashes the run's canonical config and the source of every module that shapes
training, so a changed config or changed training code can never return an old result.
Writes are atomic (temporary name, then rename): an interrupted run leaves nothing behind,
and a restarted `make reproduce` redoes only what is missing; every read marks an artifact
used, so `make prune` can delete what a full reproduction no longer reads. The same store
holds artifacts computed from runs or models (evaluations, ablations, activations, the
EM-vs-SGD experiment), keyed by what they were computed from and the source of the code that
computed them, so that re-executing a chapter reads them in seconds.

Used by: every chapter.
"""
import contextlib
import dataclasses
import hashlib
import inspect
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from lib import paths
from lib.config import RunConfig
from lib.model import ARCHITECTURES, build_model
from lib.profiles import count_params
from lib.train import Run, default_device, train

# The code every trained run depends on, plus (in `source_files`) its own task's module and,
# for an architecture defined outside model.py (Mamba), that module. Analysis-only modules
# and the task registry (names -> classes) are left out on purpose, so that adding a
# chapter's task, architecture or analysis never invalidates another chapter's runs.
TRAINING_SOURCES = ("config.py", "hooks.py", "model.py", "train.py", "metrics.py", "tasks/batch.py")


def source_files(cfg: RunConfig) -> list[Path]:
    lib_dir = Path(__file__).parent
    own = {Path(inspect.getfile(type(cfg.task))), Path(inspect.getfile(ARCHITECTURES[cfg.model.arch]))}
    extra = sorted(f.relative_to(lib_dir).as_posix() for f in own)
    return [paths.ROOT / "lib" / name for name in dict.fromkeys((*TRAINING_SOURCES, *extra))]


def code_hash(cfg: RunConfig) -> str:
    digest = hashlib.sha256()
    for f in source_files(cfg):
        digest.update(f.relative_to(paths.ROOT).as_posix().encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()


def run_key(cfg: RunConfig) -> str:
    blob = json.dumps(cfg.to_dict(), sort_keys=True) + code_hash(cfg)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def run_path(cfg: RunConfig):
    return paths.RUNS / f"{cfg.label}-{run_key(cfg)}.pt"


def mark_used(path) -> None:
    """Set the artifact's modification time to now: `make prune` deletes what the last full
    `make reproduce` did not read. A read-only copy of the runs is left as it is."""
    with contextlib.suppress(OSError):
        os.utime(path)


def load(path) -> Run:
    mark_used(path)
    saved = torch.load(path, map_location="cpu", weights_only=True)
    cfg = RunConfig.from_dict(saved["config"])
    model = build_model(cfg.model, cfg.task)
    model.load_state_dict(saved["state_dict"], strict=True)
    return Run(cfg, model.eval(), saved["history"], saved["train_seconds"], saved["snapshots"])


def train_seconds(path) -> float:
    """How long the saved run at `path` took to train, as it recorded it (no model is built,
    and the read does not count as a use for `make prune`)."""
    return torch.load(path, map_location="cpu", weights_only=True)["train_seconds"]


def atomic_save(obj, path) -> None:
    """torch.save under a temporary name, then rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # unique: two processes may write the same file
    torch.save(obj, tmp)
    os.replace(tmp, path)


def save(run: Run, path) -> None:
    atomic_save({"config": run.config.to_dict(), "state_dict": run.model.state_dict(),
                 "history": run.history, "train_seconds": run.train_seconds, "snapshots": run.snapshots}, path)


def get_or_train(cfg: RunConfig, progress: bool = True) -> Run:
    """The cached run for `cfg`, training (and caching) it first if there is none."""
    path = run_path(cfg)
    if path.exists():
        return load(path)
    run = train(cfg, progress=progress)
    save(run, path)
    return run


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, where the platform has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def train_missing(cfgs: list[RunConfig], workers: int | None = None) -> None:
    """Train the runs of `cfgs` that are not in the cache, longest first. On the CPU they train
    in `workers` processes of one thread each (default: one per usable core): these models are
    too small for one process to keep two cores busy, and a run trained in a worker is the run
    trained here. On a GPU they train one after another."""
    workers = workers or usable_cores()
    missing = training_order({run_path(cfg): cfg for cfg in cfgs if not run_path(cfg).exists()}.values())
    if len(missing) > 1 and workers > 1 and default_device().type == "cpu":
        print(f"training {len(missing)} runs in {workers} processes, longest first", flush=True)
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: safe inside a notebook kernel
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            for label, seconds in pool.map(_train_one_thread, missing):
                print(f"  {label}: trained in {seconds / 60:.1f} min", flush=True)
    else:
        for cfg in missing:
            get_or_train(cfg)


def get_or_train_all(groups: dict[str, list[RunConfig]], workers: int | None = None) -> dict[str, list[Run]]:
    """The cached runs of every group ({name: [RunConfig, ...]}, as the profiles give them),
    training the missing ones first (`train_missing`)."""
    train_missing([cfg for group in groups.values() for cfg in group], workers)
    return {name: [load(run_path(cfg)) for cfg in group] for name, group in groups.items()}


def training_order(cfgs) -> list[RunConfig]:
    """The order `train_missing` starts runs in: longest first, by a proxy of their cost
    (steps x batch x sequence length x parameters)."""
    return sorted(cfgs, key=lambda cfg: -cfg.train.steps * cfg.train.batch_size * cfg.task.seq_len
                  * count_params(cfg.model, cfg.task))


def wall_minutes(minutes: list[float], workers: int = 2) -> float:
    """How long runs of these durations (in the order they start) take on `workers` workers,
    each run going to the first worker that is free, as in `train_missing`."""
    free_at = [0.0] * workers
    for m in minutes:
        free_at[free_at.index(min(free_at))] += m
    return max(free_at)


def _train_one_thread(cfg: RunConfig) -> tuple[str, float]:
    torch.set_num_threads(1)
    run = train(cfg, progress=False)
    save(run, run_path(cfg))
    return cfg.label, run.train_seconds


# Generic content-keyed artifacts (e.g. activations of a pretrained LM): the key hashes a
# canonical JSON description of what was computed plus the source of the lib modules that
# computed it. Same atomic writes as runs; nothing here changes how trained runs are keyed.

def artifact_path(kind: str, key: dict, sources: tuple[str, ...]):
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode())
    for name in sorted(sources):
        digest.update(name.encode() + b"\0" + (paths.ROOT / "lib" / name).read_bytes())
    return paths.RUNS / f"{kind}-{digest.hexdigest()[:16]}.pt"


def get_or_compute(kind: str, key: dict, sources: tuple[str, ...], compute) -> dict:
    """The cached result (a dict of tensors and plain values) of `compute()` for `key`,
    computing and saving it first if absent. `sources`: lib files (relative to lib/) whose
    code produced it. Used by: 02_hmm, 03_geometry, 05_gradient_laws, 07_llm_geometry."""
    path = artifact_path(kind, key, sources)
    if path.exists():
        mark_used(path)
        return torch.load(path, map_location="cpu", weights_only=True)
    result = compute()
    atomic_save(result, path)
    return result


def get_or_compute_on_runs(kind: str, runs: list[Run], key: dict, sources: tuple[str, ...], compute) -> dict:
    """`get_or_compute` for an evaluation of trained runs (scores, ablations, geometry): keyed by
    each run's own cache key (its config and training code, `run_key`), by `key` (every other
    value that shapes the result: batches, sizes, offsets) and by `sources` (the analysis code),
    so a retrained run or changed analysis code can never return an old result."""
    if "runs" in key:
        raise ValueError("get_or_compute_on_runs: 'runs' is the key of the runs themselves; rename it")
    return get_or_compute(kind, {"runs": [run_key(run.config) for run in runs], **key}, sources, compute)


def digest(obj) -> str:
    """Content hash of tensors, arrays, plain values, and dicts, lists, tuples and dataclasses
    of them: the key of an input too large to spell out in JSON (an evaluation batch, a set of
    activations). Dtypes and shapes count, so equal numbers in another dtype hash differently."""
    sha = hashlib.sha256()

    def feed(x):
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().contiguous()
            sha.update(f"tensor {x.dtype} {tuple(x.shape)}|".encode())
            sha.update(x.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(x, np.ndarray):
            feed(torch.from_numpy(np.ascontiguousarray(x)))
        elif dataclasses.is_dataclass(x) and not isinstance(x, type):
            sha.update(f"{type(x).__qualname__}(".encode())
            feed({f.name: getattr(x, f.name) for f in dataclasses.fields(x)})
        elif isinstance(x, dict):
            sha.update(b"{")
            for k in sorted(x, key=repr):
                feed(k)
                feed(x[k])
            sha.update(b"}")
        elif isinstance(x, (list, tuple)):
            sha.update(f"{type(x).__name__}[{len(x)}](".encode())
            for item in x:
                feed(item)
        elif x is None or isinstance(x, (bool, int, float, str)):
            sha.update(f"{type(x).__name__}:{x!r}|".encode())
        else:
            raise TypeError(f"digest: cannot hash a {type(x).__name__}; pass tensors, plain values or containers")

    feed(obj)
    return sha.hexdigest()[:16]
