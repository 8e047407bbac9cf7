"""Training speed and peak memory of every model the book trains, on this machine, and what a
reproduction from an empty cache would spend training them, chapter by chapter; printed and
written to data/bench/PROFILE.json (the claims ledger's execution report shows it).

    python scripts/bench.py [--profile default] [--seconds 20] [--workers 2]

Each distinct model, task and batch size is timed in its own one-thread process (its peak
resident memory is its own), `--workers` of them at once, as `make reproduce` trains: two
one-thread workers on a 2-core machine. Seeds do not change the speed, so a model is timed once.
"""
import argparse
import dataclasses
import datetime
import json
import os
import platform
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import torch

from lib import cache, paths, profiles
from lib.model import build_model, n_params
from lib.plotting import markdown_table
from lib.train import default_device, loss_fn


def machine() -> dict:
    with open("/proc/cpuinfo") as f:
        names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    return {"cpus": os.cpu_count(), "cpu": names[0] if names else platform.processor(), "torch": torch.__version__}


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


WORKERS = (2, 4, 8)  # cores: this machine, and larger laptops


def speed_key(cfg):
    """What the speed depends on: the run without its seed and snapshot schedule."""
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=0, snapshots=()))


def describe(cfg) -> str:
    """The run's label without its seed, plus what tells it apart from a run of the same label."""
    extra = [f"attention off in the top {cfg.model.attention_off_top}"] if cfg.model.attention_off_top else []
    if cfg.task.name == "recall":
        extra += [f"{cfg.task.n_pairs} pairs"] + (["read at the PAD"] if cfg.task.read_at == "pad" else [])
    return ", ".join([cfg.label.rsplit("-s", 1)[0], *extra])


def report(result: dict) -> str:
    """Markdown: where a cold reproduction's training time goes, by model and by chapter."""
    m = result["machine"]
    text = (f"Measured by `make bench` ({result['finished'].replace('T', ' ')} UTC, {m['cpus']} CPUs, {m['cpu']}): "
            f"each model's training step timed on one thread for {result['seconds']:.0f} s, {result['workers']} "
            "models at a time; a run's minutes are its steps at that speed (its periodic evaluations and "
            "snapshots not counted).\n\n")
    by_cost = sorted(result["models"], key=lambda r: -r["runs"] * r["minutes_per_run"])
    text += markdown_table(["run", "parameters", "steps/s", "minutes per run", "runs", "worker-minutes", "peak MB"],
                           [[r["run"], f"{r['params']:,}", f"{r['steps_per_s']:.1f}", f"{r['minutes_per_run']:.1f}",
                             r["runs"], f"{r['runs'] * r['minutes_per_run']:.0f}", r["peak_rss_mb"]] for r in by_cost])
    chapters = result["chapters"]
    rows = [[c["chapter"], c["runs"], f"{c['worker_minutes']:.0f}"] for c in chapters]
    rows.append(["**all**", sum(c["runs"] for c in chapters), f"**{sum(c['worker_minutes'] for c in chapters):.0f}**"])
    runs = sorted((r["minutes_per_run"] for r in result["models"] for _ in range(r["runs"])), reverse=True)
    walls = ", ".join(f"{cache.wall_minutes(runs, w):.0f} minutes on {w} cores" for w in WORKERS)
    return (text + "\n\n" + markdown_table(["chapter", "runs it needs first", "worker-minutes"], rows)
            + f"\n\n`make train` trains them all at once, longest first, one worker per core: {walls} "
            f"(the last two if every core ran a worker as fast as these did, {result['workers']} at a time).\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="default", choices=("smoke", "default", "paper"))
    parser.add_argument("--seconds", type=float, default=20.0, help="timed seconds per model")
    parser.add_argument("--workers", type=int, default=2, help="models timed at once")
    args = parser.parse_args()
    by_chapter = {n: cache.training_order(cfgs) for n, cfgs in profiles.runs_by_chapter(args.profile).items() if cfgs}
    every = [speed_key(cfg) for cfgs in by_chapter.values() for cfg in cfgs]
    distinct = list(dict.fromkeys(every))
    print(f"timing {len(distinct)} models, {args.workers} at a time, {args.seconds:.0f} s each", flush=True)
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn"), max_tasks_per_child=1) as pool:
        speeds = dict(zip(distinct, pool.map(bench_config, distinct, [args.seconds] * len(distinct))))
    chapters = []
    for number, cfgs in by_chapter.items():
        minutes = [speeds[speed_key(cfg)]["minutes_per_run"] for cfg in cfgs]
        chapters.append({"chapter": number, "runs": len(cfgs), "worker_minutes": round(sum(minutes), 1)})
    result = {"profile": args.profile, "workers": args.workers, "seconds": args.seconds, "machine": machine(),
              "finished": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M"),
              "models": [{"run": describe(cfg), "batch": cfg.train.batch_size, "positions": cfg.task.seq_len,
                          "runs": every.count(cfg), **s} for cfg, s in speeds.items()],
              "chapters": chapters}
    out = paths.DATA / "bench" / f"{args.profile}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(report(result), f"wrote {out.relative_to(paths.ROOT)}", sep="\n")


if __name__ == "__main__":
    main()
