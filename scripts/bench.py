"""Training speed and peak memory of every model the book trains, on this machine, and what a
reproduction from an empty cache would spend training them, chapter by chapter.

    python scripts/bench.py [--profile default] [--seconds 20] [--workers 2] [--chapter 1 4]

Each distinct model, task and batch size is timed in its own one-thread process (its peak
resident memory is its own), `--workers` of them at once, as `make reproduce` trains: two
one-thread workers on a 2-core machine. Seeds do not change the speed, so a model is timed once.
"""
import argparse
import dataclasses
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import torch

from lib import cache, profiles
from lib.model import build_model, n_params
from lib.plotting import markdown_table
from lib.train import default_device, loss_fn


def bench_config(cfg, seconds: float) -> dict:
    """Steps per second of one RunConfig's training step (after 5 warm-up steps), timed for
    about `seconds`, and the process's peak memory."""
    torch.set_num_threads(1)
    device = default_device()
    task, tc = cfg.task, cfg.train
    model = build_model(cfg.model, task).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr)
    gen = torch.Generator(device).manual_seed(0)
    steps, start = -5, None
    while start is None or time.perf_counter() - start < seconds:
        batch = task.sample(tc.batch_size, gen)
        loss = loss_fn(model(batch.tokens), batch, tc.target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps += 1
        if steps == 0:
            start = time.perf_counter()
    steps_per_s = steps / (time.perf_counter() - start)
    return {"params": n_params(model), "steps_per_s": round(steps_per_s, 2),
            "minutes_per_run": round(tc.steps / steps_per_s / 60, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def speed_key(cfg):
    """What the speed depends on: the run without its seed and snapshot schedule."""
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=0, snapshots=()))


def describe(cfg) -> str:
    """The run's label without its seed, plus what tells it apart from a run of the same label."""
    extra = [f"attention off in the top {cfg.model.attention_off_top}"] if cfg.model.attention_off_top else []
    if cfg.task.name == "recall":
        extra += [f"{cfg.task.n_pairs} pairs"] + (["read at the PAD"] if cfg.task.read_at == "pad" else [])
    return ", ".join([cfg.label.rsplit("-s", 1)[0], *extra])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="default", choices=("smoke", "default", "paper"))
    parser.add_argument("--seconds", type=float, default=20.0, help="timed seconds per model")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chapter", type=int, nargs="+", default=list(profiles.CHAPTERS), choices=list(profiles.CHAPTERS))
    args = parser.parse_args()
    by_chapter = {n: cache.training_order(cfgs) for n, cfgs in profiles.runs_by_chapter(args.profile).items()
                  if n in args.chapter and cfgs}
    distinct = list(dict.fromkeys(speed_key(cfg) for cfgs in by_chapter.values() for cfg in cfgs))
    print(f"timing {len(distinct)} models, {args.workers} at a time, {args.seconds:.0f} s each", flush=True)
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn"), max_tasks_per_child=1) as pool:
        speeds = dict(zip(distinct, pool.map(bench_config, distinct, [args.seconds] * len(distinct))))
    models = [[describe(cfg), s["params"], cfg.train.batch_size, cfg.task.seq_len, s["steps_per_s"],
               s["minutes_per_run"], s["peak_rss_mb"]] for cfg, s in speeds.items()]
    print(markdown_table(["run", "parameters", "batch", "positions", "steps/s (1 thread)", "minutes per run",
                          "peak MB"], models))
    rows, total = [], [0, 0.0, 0.0]
    for number, cfgs in by_chapter.items():
        minutes = [speeds[speed_key(cfg)]["minutes_per_run"] for cfg in cfgs]
        row = [len(cfgs), sum(minutes), cache.wall_minutes(minutes, args.workers)]
        total = [t + r for t, r in zip(total, row)]
        rows.append([number, row[0], f"{row[1]:.0f}", f"{row[2]:.0f}"])
    rows.append(["all", total[0], f"{total[1]:.0f}", f"{total[2]:.0f}"])
    print(markdown_table(["chapter", "runs it trains first", "worker-minutes",
                          f"minutes on {args.workers} workers"], rows))


if __name__ == "__main__":
    main()
