"""Training speed and peak memory of each model the training chapters run, on this machine.

    python scripts/bench.py [--profile default] [--steps 200] [--chapter c1 c2]

Each model is timed in its own process, so the peak resident memory is its own.
"""
import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from lib import profiles
from lib.model import build_model, n_params
from lib.train import default_device, loss_fn


CHAPTERS = {"c1": profiles.c1, "c2": profiles.c2}  # chapter 1 (bijection), chapter 2 (HMM)


def bench_one(profile: str, chapter: str, name: str, steps: int) -> dict:
    cfg = CHAPTERS[chapter](profile)["runs"][name][0]
    return {"chapter": chapter, "model": name, **bench_config(cfg, steps)}


def bench_config(cfg, steps: int) -> dict:
    """Time `steps` training steps of one RunConfig (any task and architecture)."""
    device = default_device()
    task, tc = cfg.task, cfg.train
    model = build_model(cfg.model, task).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr)
    gen = torch.Generator(device).manual_seed(0)
    t0 = time.perf_counter()
    for _ in range(steps):
        task.sample(tc.batch_size, gen)
    sample_ms = (time.perf_counter() - t0) / steps * 1e3
    for step in range(steps + 10):  # 10 warm-up steps
        if step == 10:
            t0 = time.perf_counter()
        batch = task.sample(tc.batch_size, gen)
        loss = loss_fn(model(batch.tokens), batch, tc.target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - t0
    return {"params": n_params(model), "device": str(device), "threads": torch.get_num_threads(),
            "batch": tc.batch_size, "steps_per_s": round(steps / seconds, 1),
            "sample_ms_per_batch": round(sample_ms, 2),
            "minutes_for_profile_steps": round(tc.steps / (steps / seconds) / 60, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="default", choices=("smoke", "default", "paper"))
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--chapter", nargs="+", default=list(CHAPTERS), choices=list(CHAPTERS))
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(bench_one(args.profile, *args.one, args.steps)))
        return
    for chapter in args.chapter:
        for name in CHAPTERS[chapter](args.profile)["runs"]:
            out = subprocess.run([sys.executable, __file__, "--profile", args.profile, "--steps", str(args.steps),
                                  "--one", chapter, name], capture_output=True, text=True, check=True)
            print(out.stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
