"""The one artifact cache: trained runs under data/runs, keyed by content.

The key hashes the run's canonical config and the VERSION of every piece of code whose numbers
it depends on (`code_versions`), so a changed config, or code that computes other numbers,
never returns an old result, while a comment or a refactor retrains nothing.
Writes are atomic (temporary name, then rename): an interrupted run leaves nothing behind,
and a restarted `make reproduce` redoes only what is missing; every read marks an artifact
used, so `make prune` can delete what a full reproduction no longer reads. The same store
holds artifacts computed from runs or models (evaluations, ablations, activations, the
EM-vs-SGD experiment), keyed by what they were computed from and the VERSION of the modules
that computed them, so that re-executing a chapter reads them in seconds.

Used by: every chapter.
"""
import contextlib
import dataclasses
import fcntl
import hashlib
import importlib
import io
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from lib import metrics, paths
from lib import train as train_module
from lib.config import RunConfig
from lib.model import ARCHITECTURES, build_model, count_params
from lib.train import Run, default_device, train


def code_versions(cfg: RunConfig) -> dict[str, int]:
    """The versions of the code whose numbers a run depends on: the training loop, the metrics
    of its learning curve, its architecture and its task. Each is a VERSION constant beside that
    code, bumped when a change alters the numbers (tests/test_golden_numerics.py catches a change
    that forgot to): a comment, a docstring or a refactor retrains nothing."""
    return {"train": train_module.VERSION, "metrics": metrics.VERSION,
            "model": ARCHITECTURES[cfg.model.arch].VERSION, "task": type(cfg.task).VERSION}


def run_key_text(cfg: RunConfig) -> str:
    """What a run's cache key hashes, as canonical JSON: its config and its code versions. The
    run's file holds it too, so a file is never read as another run's."""
    return json.dumps({"config": cfg.to_dict(), "code": code_versions(cfg)}, sort_keys=True)


def run_key(cfg: RunConfig) -> str:
    return hashlib.sha256(run_key_text(cfg).encode()).hexdigest()[:16]


def run_path(cfg: RunConfig):
    return paths.RUNS / f"{cfg.label}-{run_key(cfg)}.pt"


def mark_used(path) -> None:
    """Set the artifact's modification time to now: `make prune` deletes what the last full
    `make reproduce` did not read. A read-only copy of the runs is left as it is."""
    with contextlib.suppress(OSError):
        os.utime(path)


def read(path, key_text: str) -> dict | None:
    """The dict saved at `path` for the key `key_text`, or None when there is none. A file that
    cannot be read, or that holds another key's result (a file copied over another, an older
    format), is moved aside to NAME.bad with a one-line warning naming it and what is wrong,
    and reads as absent: the caller recomputes it."""
    if not path.exists():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        problem = None if isinstance(saved, dict) and saved.get("key") == key_text else "it holds another key's result"
    except Exception as error:  # noqa: BLE001 - truncated, empty, not a torch file: all unreadable
        problem = f"unreadable ({type(error).__name__}: {(str(error).splitlines() or [''])[0][:120]})"
    if problem is None:
        mark_used(path)
        return saved
    aside = path.with_name(path.name + ".bad")
    os.replace(path, aside)
    warnings.warn(f"{path}: {problem}; moved aside to {aside.name}, computing it again", stacklevel=2)
    return None


def load(path) -> Run:
    """The run saved at `path`, its model rebuilt from the saved config and loaded strictly."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    return run_from(saved)


def run_from(saved: dict) -> Run:
    cfg = RunConfig.from_dict(saved["config"])
    model = build_model(cfg.model, cfg.task)
    model.load_state_dict(saved["state_dict"], strict=True)
    return Run(cfg, model.eval(), saved["history"], saved["train_seconds"], saved["snapshots"])


def cached(cfg: RunConfig) -> bool:
    """Whether the cache holds a valid run for `cfg`, checked without building its model."""
    return read(run_path(cfg), run_key_text(cfg)) is not None


def read_run(cfg: RunConfig) -> Run | None:
    """The cached run for `cfg`, or None (absent, or moved aside as unusable: `read`)."""
    saved = read(run_path(cfg), run_key_text(cfg))
    return None if saved is None else run_from(saved)


def train_seconds(path) -> float:
    """How long the saved run at `path` took to train, as it recorded it (no model is built,
    and the read does not count as a use for `make prune`)."""
    return torch.load(path, map_location="cpu", weights_only=True)["train_seconds"]


def atomic_save(obj, path) -> None:
    """torch.save (or, for bytes, the bytes themselves) under a temporary name, then rename: a
    reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # unique: two processes may write the same file
    if isinstance(obj, bytes):
        tmp.write_bytes(obj)
    else:
        torch.save(obj, tmp)
    os.replace(tmp, path)


def run_state(run: Run) -> dict:
    """What the cache holds of a finished run (`save` writes it, `run_from` reads it)."""
    return {"key": run_key_text(run.config), "config": run.config.to_dict(), "state_dict": run.model.state_dict(),
            "history": run.history, "train_seconds": run.train_seconds, "snapshots": run.snapshots}


def save(run: Run, path) -> None:
    atomic_save(run_state(run), path)


def check_writable(folder: Path) -> None:
    """Before any training: `folder` is, or can be made, a folder that takes a file."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as error:
        raise OSError(f"the cache folder {folder} cannot be written ({error.strerror or error}); "
                      "set BAR_RUNS_DIR to a writable folder") from None


@contextlib.contextmanager
def run_lock(cfg: RunConfig):
    """Hold the run's lock (an advisory lock on a file beside the cache, which the system
    releases when its holder dies): two trainers of one run never train it twice."""
    path = paths.RUNS / ".locks" / f"{run_path(cfg).stem}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # waits while another process trains this run
        yield


def refuse_if_cache_only(path) -> None:
    """With BAR_CACHE_ONLY=1 (the check that the committed book equals what the code computes
    from the shipped cache), a missing result is an error naming it, never hours of computing."""
    if os.environ.get("BAR_CACHE_ONLY") == "1":
        raise FileNotFoundError(f"{Path(path).name} is not in the cache {paths.RUNS} and BAR_CACHE_ONLY=1")


def get_or_train(cfg: RunConfig, progress: bool = True) -> Run:
    """The cached run for `cfg`, training (and caching) it first if there is none. A second
    trainer of the same run, here or in another process, waits for the first and reads its result."""
    run = read_run(cfg)
    if run is None:
        refuse_if_cache_only(run_path(cfg))
        check_writable(paths.RUNS)
        with run_lock(cfg):
            run = read_run(cfg)  # finished by another trainer while this one waited
            if run is None:
                checkpoint = checkpoint_path(cfg)
                run = train(cfg, progress=progress, checkpoint=checkpoint)
                save(run, run_path(cfg))
                checkpoint.unlink(missing_ok=True)
    return run


def checkpoint_path(cfg: RunConfig) -> Path:
    """Where an unfinished run keeps its state (lib.train.train), beside the cache and never
    mistaken for a finished run: another folder, another suffix, ignored by git. A run longer
    than one working session travels to the next in a commit (`git add -f` of its checkpoint);
    the file goes when the run finishes."""
    return paths.RUNS / "checkpoints" / f"{run_path(cfg).stem}.checkpoint.pt"


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, where the platform has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


ATTEMPTS = 3  # a run that fails this often (its exception, or its worker's death) stops `make train`
MIRROR_SECONDS = 60.0  # how often the client copies the workers' newest checkpoints to its disk


class TrainingFailed(RuntimeError):
    """A run failed ATTEMPTS times: `make train` stops with this one line."""


def run_resources(profile: str, scheduler: str | None, device: torch.device) -> dict[str, int]:
    """What one run asks of a Dask worker (workers advertise it with `dask worker --resources`;
    `local_cluster` does it for you). On a cluster (`scheduler`): one GPU per run of the paper
    profile, one CPU thread per run of the others. On this machine's own cluster: what the
    machine has, one GPU where it trains on CUDA, else one thread."""
    if scheduler:
        return {"GPU": 1} if profile == "paper" else {"thread": 1}
    return {"GPU": 1} if device.type == "cuda" else {"thread": 1}


def slots(client, resources: dict[str, int]) -> int:
    """How many runs, each asking `resources`, the cluster's workers can train at once."""
    offered = [worker.get("resources", {}) for worker in client.scheduler_info(n_workers=-1)["workers"].values()]
    return sum(min(have.get(name, 0) // amount for name, amount in resources.items()) for have in offered)


def check_offered(client, resources: dict[str, int]) -> None:
    """Stop with one line if no worker of the cluster offers `resources`: its runs would wait forever."""
    if not slots(client, resources):
        wanted = ",".join(f"{name}={amount}" for name, amount in resources.items())
        raise TrainingFailed(f"train: no worker of the cluster at {client.scheduler.address} offers {wanted}; "
                             f"start workers with `dask worker ... --resources \"{wanted}\"`")


@contextlib.contextmanager
def local_cluster(workers: int, device: torch.device):
    """A Dask cluster on this machine: one single-threaded worker process per core (one on a GPU),
    each under a nanny, closed on the way out (Ctrl-C, SIGTERM, an error): no worker outlives it."""
    import dask  # imported here: only training needs Dask
    from distributed import LocalCluster
    workers = 1 if device.type == "cuda" else workers
    with dask.config.set({"distributed.scheduler.allowed-failures": ATTEMPTS - 1}), \
         LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      resources=run_resources("default", None, device),
                      dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def train_missing(cfgs: list[RunConfig], workers: int | None = None, longest_first: bool = True,
                  scheduler: str | None = None, profile: str = "default", checkpoint_seconds: float | None = None) -> None:
    """Train the runs of `cfgs` that are not in the cache on a Dask cluster, longest first (which
    ends soonest), or shortest first (which caches finished runs soonest, for work that spans
    sessions). `scheduler`: the address of a running cluster (default: BAR_SCHEDULER, else a
    `local_cluster` of `workers` one-thread processes, one per usable core). Each run asks for
    `run_resources(profile, ...)`. Finished runs travel back here and are saved here, and so are
    checkpoints (`_mirror_checkpoints`): the workers need no shared filesystem. A run trained on a
    worker is the run trained here, bit for bit."""
    from distributed import Client, wait
    check_writable(paths.RUNS)
    missing = training_order({run_path(cfg): cfg for cfg in cfgs if not cached(cfg)}.values())
    if not missing:
        return
    if not longest_first:
        missing.reverse()
    device = default_device()
    scheduler = scheduler or os.environ.get("BAR_SCHEDULER")
    with contextlib.ExitStack() as stack:
        for cfg in sorted(missing, key=run_key):  # one order for every trainer: no deadlock
            stack.enter_context(run_lock(cfg))  # waits while another trainer trains this run
        missing = [cfg for cfg in missing if not cached(cfg)]  # finished by another trainer meanwhile
        address = scheduler or stack.enter_context(local_cluster(workers or usable_cores(), device))
        client = stack.enter_context(Client(address))
        resources = run_resources(profile, scheduler, device)
        check_offered(client, resources)
        print(f"training {len(missing)} runs on {address}, {'longest' if longest_first else 'shortest'} first", flush=True)
        queue, futures, pending, mirrored = list(missing), {}, set(), {}

        def start_next():
            cfg = queue.pop(0)
            if (state := checkpoint_path(cfg)).exists():  # a restarted `make train`: its workers resume from it
                state = state.read_bytes()
                client.set_metadata(checkpoint_name(cfg), state)
                mirrored[cfg] = hashlib.sha256(state).digest()  # already here: neither copied back nor reported
                print(f"  {described(cfg)}: resumes at step {checkpoint_step(state):,}", flush=True)
            future = client.submit(_train_on_worker, cfg, checkpoint_seconds, key=f"train-{cfg.label}-{run_key(cfg)}",
                                   resources=resources, retries=ATTEMPTS - 1, pure=False)
            futures[future] = cfg
            pending.add(future)

        while queue or pending:
            # A run is handed out only when a worker is free to start it, so runs start in order.
            # (Dask binds every submitted run to a worker at once, and each worker then works through
            # its own share: a short run could start while a longer one waited behind another.)
            while queue and len(pending) < max(1, slots(client, resources)):
                start_next()
            try:
                done, pending = wait(pending, timeout=MIRROR_SECONDS, return_when="FIRST_COMPLETED")
            except TimeoutError:  # Dask's wait raises where concurrent.futures' returns: nothing finished yet
                done = set()
            _mirror_checkpoints(client, [futures[f] for f in pending], mirrored)
            for future in done:
                cfg = futures[future]
                if future.status != "finished":
                    reason = (str(future.exception()).splitlines() or [""])[0]
                    raise TrainingFailed(f"train: run {cfg.label} failed {ATTEMPTS} times: {reason}")
                saved = future.result()
                atomic_save(saved, run_path(cfg))
                checkpoint_path(cfg).unlink(missing_ok=True)
                client.set_metadata(checkpoint_name(cfg), None)
                print(f"  {described(cfg)}: trained in {saved['train_seconds'] / 60:.1f} min", flush=True)


def checkpoint_name(cfg: RunConfig) -> list[str]:
    """Where the scheduler holds a run's newest checkpoint (its bytes) among its metadata."""
    return ["checkpoint", run_path(cfg).stem]


def _mirror_checkpoints(client, cfgs: list[RunConfig], mirrored: dict) -> None:
    """Copy the newest published checkpoint of each run to this machine's checkpoint folder, so
    that a restarted `make train` resumes them even on a new cluster, and say how far the run has
    got. `mirrored` ({cfg: digest}) remembers what was copied, so an unchanged one is not copied again."""
    for cfg in cfgs:
        state = client.get_metadata(checkpoint_name(cfg), None)  # None: nothing published yet
        if state is None or mirrored.get(cfg) == (digest := hashlib.sha256(state).digest()):
            continue
        atomic_save(state, checkpoint_path(cfg))
        mirrored[cfg] = digest
        step = checkpoint_step(state)
        print(f"  {described(cfg)}: at step {step:,} ({step / cfg.train.steps:.0%}), checkpointed", flush=True)


def checkpoint_step(state: bytes) -> int:
    """The step a checkpoint's bytes were saved at."""
    return torch.load(io.BytesIO(state), map_location="cpu", weights_only=True)["step"]


def described(cfg: RunConfig) -> str:
    """A run's label with what tells apart runs of one label (the ladder's rungs)."""
    return f"{cfg.label} (d{cfg.model.d_model} x {cfg.model.n_layers}, {cfg.train.steps:,} steps)"


def _train_on_worker(cfg: RunConfig, checkpoint_seconds: float | None) -> dict:
    """On a Dask worker: train `cfg` on one thread, resuming from the newest checkpoint published
    for it (by an earlier attempt that died), publishing each new one; return what `save` writes."""
    from distributed import get_client, get_worker
    torch.set_num_threads(1)
    client = get_client()
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = Path(folder) / "checkpoint.pt"
        if (state := client.get_metadata(checkpoint_name(cfg), None)) is not None:
            checkpoint.write_bytes(state)
            step = torch.load(checkpoint, map_location="cpu", weights_only=True)["step"]
            get_worker().log_event("train", f"{cfg.label} resumed at step {step}")
        run = train(cfg, progress=False, checkpoint=checkpoint, checkpoint_seconds=checkpoint_seconds,
                    on_checkpoint=lambda path: client.set_metadata(checkpoint_name(cfg), path.read_bytes()))
    return run_state(run)


def get_or_train_all(groups: dict[str, list[RunConfig]], workers: int | None = None) -> dict[str, list[Run]]:
    """The cached runs of every group ({name: [RunConfig, ...]}, as the profiles give them),
    training the missing ones first (`train_missing`)."""
    train_missing([cfg for group in groups.values() for cfg in group], workers)
    return {name: [get_or_train(cfg) for cfg in group] for name, group in groups.items()}


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


# Generic content-keyed artifacts (e.g. activations of a pretrained LM): the key hashes a
# canonical JSON description of what was computed plus the VERSION of each lib module that
# computed it. Same atomic writes as runs; nothing here changes how trained runs are keyed.

def module_versions(modules: tuple[str, ...]) -> dict[str, int]:
    """{module: its VERSION} for lib modules named like "geometry" or "llm.runs". A module inside
    a package is keyed with "_" for ".": "llm.runs" as "llm_runs", the name it had before
    lib/llm/ became a package, so that the results computed then keep their keys."""
    versions = {}
    for name in modules:
        module = importlib.import_module(f"lib.{name}")
        if not isinstance(getattr(module, "VERSION", None), int):
            raise AttributeError(f"lib.{name} has no integer VERSION: a cached result cannot be keyed by it")
        versions[name.replace(".", "_")] = module.VERSION
    return versions


def artifact_key_text(key: dict, modules: tuple[str, ...]) -> str:
    return json.dumps({"key": key, "code": module_versions(modules)}, sort_keys=True)


def artifact_path(kind: str, key: dict, modules: tuple[str, ...]):
    return paths.RUNS / f"{kind}-{hashlib.sha256(artifact_key_text(key, modules).encode()).hexdigest()[:16]}.pt"


def get_or_compute(kind: str, key: dict, modules: tuple[str, ...], compute) -> dict:
    """The cached result (a dict of tensors and plain values) of `compute()` for `key`,
    computing and saving it first if absent. `modules`: the lib modules whose code produced it
    (their VERSIONs join the key). Used by: 02_hmm, 03_geometry, 05_gradient_laws, 07_llm_geometry."""
    path, key_text = artifact_path(kind, key, modules), artifact_key_text(key, modules)
    saved = read(path, key_text)
    if saved is not None:
        return saved["value"]
    refuse_if_cache_only(path)
    result = compute()
    atomic_save({"key": key_text, "value": result}, path)
    return result


def get_or_compute_on_runs(kind: str, runs: list[Run], key: dict, modules: tuple[str, ...], compute) -> dict:
    """`get_or_compute` for an evaluation of trained runs (scores, ablations, geometry): keyed by
    each run's own cache key (its config and code versions, `run_key`), by `key` (every other
    value that shapes the result: batches, sizes, offsets) and by `modules` (the analysis code),
    so a retrained run or a new version of the analysis can never return an old result."""
    if "runs" in key:
        raise ValueError("get_or_compute_on_runs: 'runs' is the key of the runs themselves; rename it")
    return get_or_compute(kind, {"runs": [run_key(run.config) for run in runs], **key}, modules, compute)


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
