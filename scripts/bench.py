"""Training speed and peak memory of every model the book trains, on this machine, beside the
same models under a baseline commit's code, and what a reproduction from an empty cache would
spend training them, chapter by chapter; printed and written to data/bench/PROFILE.json (the
claims ledger's execution report shows it).

    python scripts/bench.py [--profile default] [--seconds 20] [--baseline REV]

Each distinct model, task and batch size is timed in its own one-thread process (so its peak
resident memory is its own), as `make train` trains: one one-thread worker per core. With
--baseline, the baseline's process (its lib/ extracted from git) runs at the same time as
ours on the other core, model by model, so both see the same machine. A model's step is
`lib.train.training_step` (compiled where `train` compiles, so the first step's extra time is
the compilation); seeds do not change the speed, so a model is timed once.

    python scripts/bench.py --baseline REV --only lstm --alternate 3

times only the models whose label contains "lstm", ours and the baseline's one after the other
(3 times each, the median kept) on an otherwise idle machine: for a model whose speed-up moves
with what runs on the other core. Such a partial bench is printed, not written.

    python scripts/bench.py --dispatch REV [--repeats 3]

times `make train` itself instead: every chapter's smoke runs trained from an empty cache by
our Dask dispatch and by REV's (the last commit with the home-made process pool), one after the
other, written to data/bench/dispatch.json.
"""
import argparse
import dataclasses
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKERS = (2, 4, 8)  # cores: this machine, and larger laptops


def machine() -> dict:
    import torch
    with open("/proc/cpuinfo") as f:
        names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    return {"cpus": os.cpu_count(), "cpu": names[0] if names else platform.processor(), "torch": torch.__version__,
            "matmul_gflops_1024": large_matmul_gflops()}


def large_matmul_gflops(n: int = 1024, repeats: int = 20) -> float:
    """One thread's float32 speed on a large square product: the most a training step's
    products could reach on this core."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    seconds = time.perf_counter() - start
    torch.set_num_threads(threads)
    return round(2 * n**3 * repeats / seconds / 1e9, 1)


def time_steps(cfg_dict: dict, seconds: float) -> dict:
    """Steps per second of one run's training step, timed for about `seconds` after 5 warm-up
    steps, the extra seconds its first step took (compilation, where there is one), and the
    process's peak memory. Runs under whichever `lib` this process imports: ours or a
    baseline's, whose train.py may predate `training_step` (then its loop, as it was)."""
    import torch
    from lib import train
    from lib.config import RunConfig
    from lib.model import build_model, n_params
    torch.set_num_threads(1)
    cfg = RunConfig.from_dict(cfg_dict)
    task, tc = cfg.task, cfg.train
    model = build_model(cfg.model, task)
    if hasattr(train, "training_step"):
        step = train.training_step(model, train.optimiser(model, tc), tc, train.compiles(cfg))
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=tc.lr)

        def step(batch):
            loss = train.loss_fn(model(batch.tokens), batch, tc.target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            opt.step()
    gen = torch.Generator().manual_seed(0)
    durations, start = [], time.perf_counter()
    while len(durations) < 7 or time.perf_counter() - start < seconds + sum(durations[:5]):
        batch = task.sample(tc.batch_size, gen)
        t = time.perf_counter()
        step(batch)
        durations.append(time.perf_counter() - t)
    timed = durations[5:]
    step_seconds = sum(timed) / len(timed)
    return {"params": n_params(model), "steps_per_s": round(1 / step_seconds, 2),
            **breakdown(step, [task.sample(tc.batch_size, gen) for _ in range(5)]),
            "first_step_extra_s": round(durations[0] - step_seconds, 1),
            "minutes_per_run": round((tc.steps * step_seconds + max(0.0, durations[0] - step_seconds)) / 60, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


MATMULS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")


def breakdown(step, batches) -> dict:
    """Where a training step's time goes, from the profiler's self times over a few steps: the
    share in matrix products and in attention kernels (the fused or the explicit softmax), and
    the speed of the matrix products in GFLOP/s (what bounds a step that is mostly products)."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        for batch in batches:
            step(batch)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    matmul = [e for e in events if e.key in MATMULS]
    attention = [e for e in events if "scaled_dot_product" in e.key or "softmax" in e.key]
    matmul_us = sum(e.self_cpu_time_total for e in matmul)
    return {"matmul_share": round(matmul_us / total, 2),
            "attention_share": round(sum(e.self_cpu_time_total for e in attention) / total, 2),
            "matmul_gflops": round(sum(e.flops for e in matmul) / max(matmul_us, 1) / 1e3, 1)}


def time_in_process(cfg, seconds: float, lib_root: Path | None) -> dict:
    """`time_steps` in a fresh one-thread Python process importing `lib` from lib_root
    (default: ours)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if lib_root is not None:
        env["PYTHONPATH"] = str(lib_root)
    done = subprocess.run([sys.executable, __file__, "--time-one", json.dumps(cfg.to_dict()), "--seconds", str(seconds)],
                          env=env, cwd=lib_root or ROOT, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"timing {cfg.label} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def extract(rev: str, into: Path, folders=("lib",)) -> Path:
    """These folders of the commit `rev` (lib/: its code, with the C++ sources), extracted from
    git into `into`."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, *folders], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def dispatch_seconds(root: Path, runs: Path) -> dict:
    """How long `make train` (scripts/train.py under the code at `root`) takes to train every
    chapter's smoke-profile runs from the empty cache `runs`, on one worker per core. Smoke runs
    last seconds, so what dispatching costs (starting workers, shipping configs and results)
    weighs more here than in any real profile."""
    chapters = sorted(p.relative_to(root).as_posix() for p in (root / "book").glob("[0-9][0-9]_*.py"))
    env = {**os.environ, "BAR_RUNS_DIR": str(runs), "PYTHONPATH": str(root)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "scripts/train.py", "--profile", "smoke", *chapters],
                          cwd=root, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"make train under {root} failed:\n{done.stderr[-2000:]}")
    return {"seconds": round(time.perf_counter() - start, 1), "runs": len(list(runs.glob("*.pt")))}


def compare_dispatch(rev: str, repeats: int) -> dict:
    """`dispatch_seconds` of ours and of `rev`'s, alternately `repeats` times each (never at the
    same time: each takes every core), each from an empty cache."""
    import statistics
    with tempfile.TemporaryDirectory() as tmp:
        roots = {"ours": ROOT, rev: extract(rev, Path(tmp) / "tree", ("lib", "scripts", "book"))}
        times = {name: [] for name in roots}
        for attempt in range(repeats):
            for name, root in roots.items():
                timed = dispatch_seconds(root, Path(tmp) / f"runs-{name}-{attempt}")
                print(f"  {name}: {timed['runs']} runs in {timed['seconds']} s", flush=True)
                times[name].append(timed)
    counts = {t["runs"] for name in times for t in times[name]}
    if len(counts) != 1:
        raise RuntimeError(f"the two trained different numbers of runs: {sorted(counts)}")
    from lib import cache
    return {"rev": rev, "runs": counts.pop(), "workers": cache.usable_cores(),
            **{name: {"median_s": statistics.median(t["seconds"] for t in ts), "seconds": [t["seconds"] for t in ts]}
               for name, ts in (("ours", times["ours"]), ("rev", times[rev]))}}


def side_by_side(cfg, seconds: float, base: Path, alternate: int, pool) -> tuple[dict, dict]:
    """Our timing of one model and the baseline's: at the same time on two cores, or with
    `alternate` > 0, one after the other that many times each (the median run of each)."""
    if not alternate:
        return tuple(pool.map(lambda root: time_in_process(cfg, seconds, root), [None, base]))
    timings = {None: [], base: []}
    for _ in range(alternate):
        for root, timed in timings.items():
            timed.append(time_in_process(cfg, seconds, root))
    return tuple(sorted(timed, key=lambda t: t["steps_per_s"])[(alternate - 1) // 2] for timed in timings.values())


def speed_key(cfg):
    """What the speed depends on: the run without its seed and snapshot schedule."""
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=0, snapshots=()))


def describe(cfg) -> str:
    """The run's label without its seed, plus what tells it apart from a run of the same label."""
    extra = [f"attention off in the top {cfg.model.attention_off_top}"] if cfg.model.attention_off_top else []
    if cfg.task.name == "recall":
        extra += [f"{cfg.task.n_pairs} pairs"] + (["read at the PAD"] if cfg.task.read_at == "pad" else [])
    return ", ".join([cfg.label.rsplit("-s", 1)[0], *extra])


def cold_training(models: list[dict], field: str = "minutes_per_run") -> str:
    runs = sorted((r[field] for r in models for _ in range(r["runs"])), reverse=True)
    from lib import cache
    return ", ".join(f"{cache.wall_minutes(runs, w):.0f} minutes on {w} cores" for w in WORKERS)


def report(result: dict) -> str:
    """Markdown: where a cold reproduction's training time goes, by model and by chapter, and
    against the baseline where one was timed."""
    from lib.plotting import markdown_table
    m = result["machine"]
    text = (f"Measured by `make bench` ({result['finished'].replace('T', ' ')} UTC, {m['cpus']} CPUs, {m['cpu']}): "
            f"each model's training step timed on one thread for {result['seconds']:.0f} s; a run's minutes are "
            "its steps at that speed plus its compilation, where it has one (its periodic evaluations and "
            "snapshots not counted). The last two columns profile a few steps: the share of a step's time "
            "in matrix products and in attention kernels, and how fast the products run"
            + (f" (one thread does {m['matmul_gflops_1024']:.0f} GFLOP/s on a 1024 x 1024 product)"
               if "matmul_gflops_1024" in m else "") + ".\n\n")
    by_cost = sorted(result["models"], key=lambda r: -r["runs"] * r["minutes_per_run"])
    baseline = result.get("baseline")
    header = ["run", "parameters", "steps/s", "compile seconds", "minutes per run", "runs", "worker-minutes", "peak MB",
              "time in products / attention", "products GFLOP/s"]
    rows = [[r["run"], f"{r['params']:,}", f"{r['steps_per_s']:.1f}", f"{r['first_step_extra_s']:.0f}",
             f"{r['minutes_per_run']:.1f}", r["runs"], f"{r['runs'] * r['minutes_per_run']:.0f}", r["peak_rss_mb"],
             f"{r['matmul_share']:.0%} / {r['attention_share']:.0%}" if "matmul_share" in r else "",
             f"{r['matmul_gflops']:.0f}" if "matmul_gflops" in r else ""]
            for r in by_cost]
    if baseline:
        header[3:3] = [f"steps/s at {baseline['rev']}", "speed-up"]
        for row, r in zip(rows, by_cost):
            row[3:3] = [f"{r['baseline']['steps_per_s']:.1f}", f"**{r['steps_per_s'] / r['baseline']['steps_per_s']:.2f}x**"]
    text += markdown_table(header, rows)
    chapters = result["chapters"]
    rows = [[c["chapter"], c["runs"], f"{c['worker_minutes']:.0f}"] for c in chapters]
    rows.append(["**all**", sum(c["runs"] for c in chapters), f"**{sum(c['worker_minutes'] for c in chapters):.0f}**"])
    text += ("\n\n" + markdown_table(["chapter", "runs it needs first", "worker-minutes"], rows)
             + f"\n\n`make train` trains them all at once, longest first, one worker per core: "
             f"{cold_training(result['models'])} (the last two if every core ran a worker as fast as these did).")
    if baseline:
        before = [{"runs": r["runs"], "minutes": r["baseline"]["minutes_per_run"]} for r in result["models"]]
        text += (f" Under the baseline's code ({baseline['rev']}, timed beside ours): "
                 f"{cold_training(before, 'minutes')}.")
    return text + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="default", choices=("smoke", "default", "paper"))
    parser.add_argument("--seconds", type=float, default=20.0, help="timed seconds per model")
    parser.add_argument("--baseline", help="a git revision whose code is timed beside ours, model by model")
    parser.add_argument("--only", metavar="TEXT", help="time only the models whose label contains TEXT (printed, not written)")
    parser.add_argument("--alternate", type=int, default=0, metavar="R",
                        help="with --baseline: ours and the baseline's one after the other, R times each (default: at once)")
    parser.add_argument("--dispatch", metavar="REV",
                        help="instead: time make train on the smoke runs, ours against REV's (alternately)")
    parser.add_argument("--repeats", type=int, default=3, help="with --dispatch: timings of each")
    parser.add_argument("--time-one", help=argparse.SUPPRESS)  # a worker: time one run config (JSON)
    args = parser.parse_args()
    if args.alternate < 0 or (args.alternate and not args.baseline):
        parser.error("--alternate takes a whole number of repeats, and a --baseline to alternate with")
    if args.time_one:
        print(json.dumps(time_steps(json.loads(args.time_one), args.seconds)))
        return
    if args.dispatch:
        from lib import paths
        result = {"finished": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M"), "machine": machine(),
                  **compare_dispatch(args.dispatch, args.repeats)}
        out = paths.DATA / "bench" / "dispatch.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"make train, {result['runs']} smoke runs from an empty cache on {result['workers']} workers "
              f"(median of {args.repeats}): {result['ours']['median_s']} s now, {result['rev']['median_s']} s at "
              f"{args.dispatch}; wrote {out.relative_to(paths.ROOT)}")
        return
    from lib import cache, paths, profiles
    by_chapter = {n: cache.training_order(cfgs) for n, cfgs in profiles.runs_by_chapter(args.profile).items() if cfgs}
    every = [speed_key(cfg) for cfgs in by_chapter.values() for cfg in cfgs]
    distinct = [cfg for cfg in dict.fromkeys(every) if args.only is None or args.only in describe(cfg)]
    if not distinct:
        parser.error(f"--only {args.only!r}: no model's label contains it")
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(2) as pool:
        base = extract(args.baseline, Path(tmp)) if args.baseline else None
        print(f"timing {len(distinct)} models for {args.seconds:.0f} s each"
              + (f", beside the same under {args.baseline}" if base else ", two at a time")
              + (f", one after the other, {args.alternate} times each" if args.alternate else ""), flush=True)
        speeds = {}
        if base:  # ours and the baseline's, model by model
            for cfg in distinct:
                ours, theirs = side_by_side(cfg, args.seconds, base, args.alternate, pool)
                speeds[cfg] = {**ours, "baseline": theirs}
                print(f"  {describe(cfg)}: {ours['steps_per_s']} steps/s, baseline {theirs['steps_per_s']} "
                      f"({ours['steps_per_s'] / theirs['steps_per_s']:.2f}x)", flush=True)
        else:
            speeds = dict(zip(distinct, pool.map(lambda cfg: time_in_process(cfg, args.seconds, None), distinct)))
    if args.only is not None:  # a partial bench: the chapters' costs need every model
        return
    chapters = []
    for number, cfgs in by_chapter.items():
        minutes = [speeds[speed_key(cfg)]["minutes_per_run"] for cfg in cfgs]
        chapters.append({"chapter": number, "runs": len(cfgs), "worker_minutes": round(sum(minutes), 1)})
    result = {"profile": args.profile, "seconds": args.seconds, "machine": machine(),
              "finished": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M"),
              **({"baseline": {"rev": args.baseline}} if args.baseline else {}),
              "models": [{"run": describe(cfg), "batch": cfg.train.batch_size, "positions": cfg.task.seq_len,
                          "runs": every.count(cfg), **s} for cfg, s in speeds.items()],
              "chapters": chapters}
    out = paths.DATA / "bench" / f"{args.profile}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(report(result), f"wrote {out.relative_to(paths.ROOT)}", sep="\n")


if __name__ == "__main__":
    main()
