"""`make reproduce`, timed: what the cache held before, how long training the missing runs took
(`make train`, before the chapters), each chapter's time (papermill's), the runs each chapter
needed first and the other artifacts computed, and which claim records came out different
(value, interval or verdict), written to data/timings/LABEL.json for the execution report
(scripts/build_ledger.py).

    python scripts/timed_reproduce.py LABEL [--cold]      (or: make timed-reproduce LABEL=...)

--cold starts from an empty cache (BAR_RUNS_DIR = a new folder under _build/): everything is
trained and computed, as on a machine that never ran the book; the runs stay in that folder.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this repository's lib, whatever is installed

from bench import machine  # noqa: E402
from lib import cache, claims, paths, profiles  # noqa: E402


def listing(runs_dir) -> set[str]:
    return {f.name for f in runs_dir.iterdir()} if runs_dir.exists() else set()


def measured() -> dict[str, tuple]:
    """Each default claim record's measurement and verdict (per model, for a claim measured on several)."""
    return {r["id"]: ([(model, e["ours"], e["verdict"]) for model, e in claims.judged_entries(r)], r["verdict"])
            for r in claims.load_records()}


def record(label: str, runs_dir, before: set[str], seconds: float, claims_before: dict[str, tuple],
           training_seconds: float | None = None) -> dict:
    """The timing of the `make reproduce` that just ran on `runs_dir`, which held `before`,
    starting from the claim records `claims_before` (`measured()`); `training_seconds`: how
    long its training step took (None: the chapters trained their runs as they executed)."""
    new = listing(runs_dir) - before
    chapter_of = {cache.run_path(cfg).name: n for n, cfgs in profiles.runs_by_chapter("default").items() for cfg in cfgs}
    chapters = []
    for notebook in sorted((paths.ROOT / "book").glob("[0-9][0-9]_*.ipynb")):
        number, meta = int(notebook.stem[:2]), json.loads(notebook.read_text())["metadata"]["papermill"]
        trained = sorted(name for name in new if chapter_of.get(name) == number)
        worker_seconds = sum(cache.train_seconds(runs_dir / name) for name in trained)
        chapters.append({"chapter": notebook.stem, "minutes": round(meta["duration"] / 60, 2),
                         "runs_trained": len(trained), "training_worker_minutes": round(worker_seconds / 60, 1)})
    return {"label": label, "finished": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M"),
            "machine": machine(),
            "cache_before": {"trained runs": sum(n in chapter_of for n in before),
                             "other files": sum(n not in chapter_of for n in before)},
            "computed": {"trained runs": sum(n in chapter_of for n in new),
                         "other files": sum(n not in chapter_of for n in new)},
            "claims_compared": len(claims_before),
            "claims_changed": sorted(cid for cid, m in measured().items() if claims_before.get(cid) != m),
            "minutes": round(seconds / 60, 1),
            "training_minutes": None if training_seconds is None else round(training_seconds / 60, 1),
            "chapters": chapters}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("label", help="the file name under data/timings/, e.g. cold-2cpu")
    parser.add_argument("--cold", action="store_true", help="start from an empty cache")
    args = parser.parse_args()
    runs_dir = paths.BUILD / f"cold-runs-{args.label}" if args.cold else paths.RUNS
    env = {**os.environ, "BAR_RUNS_DIR": str(runs_dir)}
    before, claims_before, start = listing(runs_dir), measured(), time.perf_counter()
    subprocess.run(["make", "train"], cwd=paths.ROOT, env=env, check=True)
    trained = time.perf_counter()
    subprocess.run(["make", "reproduce"], cwd=paths.ROOT, env=env, check=True)  # its own training step: a no-op
    out = paths.DATA / "timings" / f"{args.label}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(record(args.label, runs_dir, before, time.perf_counter() - start, claims_before,
                                        training_seconds=trained - start), indent=2) + "\n")
    print(f"wrote {out.relative_to(paths.ROOT)}")


if __name__ == "__main__":
    main()
