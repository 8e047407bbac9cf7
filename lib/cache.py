"""The one artifact cache: trained runs under data/runs, keyed by content.

The key hashes the run's canonical config and the source of every module that shapes
training, so a changed config or changed training code can never return an old result.
Writes are atomic (temporary name, then rename): an interrupted run leaves nothing behind,
and a restarted `make reproduce` redoes only what is missing.

Used by: every chapter that trains.
"""
import hashlib
import json
import os

import torch

from lib import paths
from lib.config import RunConfig
from lib.model import build_model
from lib.train import Run, train

# The code a trained run depends on. Analysis-only modules are left out on purpose.
TRAINING_SOURCES = ("config.py", "model.py", "train.py", "metrics.py", "tasks")


def code_hash() -> str:
    lib = paths.ROOT / "lib"
    files = sorted(f for name in TRAINING_SOURCES for f in
                   ((lib / name).rglob("*.py") if (lib / name).is_dir() else [lib / name]))
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.relative_to(lib).as_posix().encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()


def run_key(cfg: RunConfig) -> str:
    blob = json.dumps(cfg.to_dict(), sort_keys=True) + code_hash()
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def run_path(cfg: RunConfig):
    return paths.RUNS / f"{cfg.label}-{run_key(cfg)}.pt"


def load(path) -> Run:
    saved = torch.load(path, map_location="cpu", weights_only=True)
    cfg = RunConfig.from_dict(saved["config"])
    model = build_model(cfg.model, cfg.task)
    model.load_state_dict(saved["state_dict"], strict=True)
    return Run(cfg, model.eval(), saved["history"], saved["train_seconds"])


def save(run: Run, path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"config": run.config.to_dict(), "state_dict": run.model.state_dict(),
                "history": run.history, "train_seconds": run.train_seconds}, tmp)
    os.replace(tmp, path)


def get_or_train(cfg: RunConfig, progress: bool = True) -> Run:
    """The cached run for `cfg`, training (and caching) it first if there is none."""
    path = run_path(cfg)
    if path.exists():
        return load(path)
    run = train(cfg, progress=progress)
    save(run, path)
    return run
