"""Golden numerics: the cache keys a run by its config and the VERSIONs of its code
(lib/cache.py), never by the code's text, so a change that alters the numbers must bump a
VERSION. Each architecture x task trains a few steps from a fixed seed here; the digest of its
weights must equal the one recorded for the current versions in tests/golden_numerics.json.

- The digest differs, the versions did not change: you changed numbers without bumping a
  VERSION (lib/train.py, lib/metrics.py, the architecture's class, the task's class).
- The versions differ from the record: you bumped one; record the new digests with
  `make golden` and commit tests/golden_numerics.json.

Digests are exact, so they are recorded for one platform (torch version and CPU capability:
matrix kernels round differently on AVX2 and AVX512); elsewhere these tests skip.
"""
import dataclasses
import json
import sys
from pathlib import Path

import pytest
import torch

from lib import cache, train
from lib.config import ARCHS, ModelConfig, RunConfig, TrainConfig
from lib.tasks import TASKS, make_task

RECORD = Path(__file__).with_name("golden_numerics.json")
TASK_PARAMS = {"bijection": {"V": 6, "L": 5}, "sawtooth": {"V": 6, "L": 5}, "hmm": {"K": 6, "K_max": 8},
               "recall": {"n_pairs": 4, "n_filler": 4, "n_keys": 8, "n_values": 8}}
CASES = [(arch, task) for arch in ARCHS for task in sorted(TASKS)]


def platform() -> str:
    return f"torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()}"


def golden_config(arch: str, task: str) -> RunConfig:
    model = ModelConfig(arch=arch, d_model=16, n_layers=2, n_heads=2, d_mlp=32)
    return RunConfig(make_task(task, **TASK_PARAMS[task]), model,
                     TrainConfig(steps=6, batch_size=8, lr=1e-2, warmup=2, eval_every=3, eval_size=8))


def weights_digest(cfg: RunConfig) -> str:
    return cache.digest(train.train(cfg, progress=False, compile=False).model.state_dict())


@pytest.mark.parametrize("arch,task", CASES)
def test_numbers_change_only_with_a_version_bump(arch, task):
    record = json.loads(RECORD.read_text())
    if record["platform"] != platform():
        pytest.skip(f"digests recorded on {record['platform']}, this is {platform()}")
    cfg, recorded = golden_config(arch, task), record["runs"][f"{arch}-{task}"]
    assert cache.code_versions(cfg) == recorded["code"], (
        f"code versions {cache.code_versions(cfg)} are not the recorded {recorded['code']}: run `make golden`")
    assert weights_digest(cfg) == recorded["digest"], (
        f"{arch} on {task} trains to other numbers at the same code versions {recorded['code']}: "
        "bump the VERSION of what you changed (the loop, the metrics, the architecture or the task)")


def test_the_golden_configs_really_train():
    """A digest of weights that never moved would pass whatever the code did."""
    cfg = golden_config("transformer", "bijection")
    start = train.train(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, steps=1, warmup=1)),
                        progress=False)
    assert weights_digest(cfg) != cache.digest(start.model.state_dict())


def record() -> None:
    runs = {f"{arch}-{task}": {"code": cache.code_versions(golden_config(arch, task)),
                               "digest": weights_digest(golden_config(arch, task))} for arch, task in CASES}
    RECORD.write_text(json.dumps({"platform": platform(), "runs": runs}, indent=1) + "\n")
    print(f"recorded {len(runs)} digests for {platform()} in {RECORD}")


if __name__ == "__main__":
    sys.exit(record())
