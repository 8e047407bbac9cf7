"""Measure the compute ladder: execute chapters 1, 2, 3 and 6 on every trained rung
(lib.profiles.rung_chapters), with the chapter's own code, so a rung is measured exactly as
the default runs are. Each execution writes its claim records under data/claims/ladder/<rung>/
(lib.claims.claims_dir) and its notebook under _build/ladder/<rung>/; the analyses it computes
are cached in data/runs like the chapters'. A rung whose runs are not all trained yet is
listed and skipped (`make train PROFILE=ladder` trains them).

    python scripts/measure_ladder.py [--profile default] [--rung "hmm: 12,000 steps" ...]
"""
import argparse
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this repository's lib, whatever is installed

from lib import cache, claims, paths, profiles  # noqa: E402


def trained(rung: str, scale: str) -> bool:
    task, name = rung.split(": ", 1)
    return all(map(cache.cached, profiles.ladder(scale)[task][name]))


def execute(rung: str, chapter: Path, profile: str) -> str:
    """Run one chapter on one rung in a fresh kernel of one thread (two execute at once)."""
    out = paths.BUILD / "ladder" / profile / claims.rung_folder(rung) / f"{chapter.stem}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **paths.RECORD_CPU, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(paths.ROOT)}
    subprocess.run(["jupytext", "--to", "ipynb", "-q", "-o", str(out), str(chapter)], check=True, env=env)
    done = subprocess.run(["papermill", "--cwd", str(paths.ROOT / "book"), "-p", "profile", profile, "-p", "rung", rung,
                           str(out), str(out)], capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(f"{chapter.name} on rung {rung!r} failed; see {out.relative_to(paths.ROOT)}")
    return f"  {rung}: {chapter.stem} measured"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="default", choices=("smoke", "default"))
    parser.add_argument("--rung", action="append", help="only these rungs (default: every trained rung)")
    args = parser.parse_args()
    rungs = args.rung or profiles.ladder_rungs(args.profile)
    for rung in rungs:
        profiles.rung_runs(rung, args.profile, "bijection")  # an unknown rung is a one-line error here
    ready = [rung for rung in rungs if trained(rung, args.profile)]
    for rung in sorted(set(rungs) - set(ready), key=rungs.index):
        print(f"  {rung}: not trained yet, skipped")
    paths.BUILD.mkdir(exist_ok=True)
    (paths.BUILD / "ladder.stamp").touch()  # what this measurement reads is newer: `make prune` keeps it
    book = {int(p.name[:2]): p for p in (paths.ROOT / "book").glob("[0-9][0-9]_*.py")}
    jobs = [(rung, book[n]) for rung in ready for n in profiles.rung_chapters(rung, args.profile)]
    print(f"measuring {len(ready)} rungs: {len(jobs)} chapter executions, two at a time", flush=True)
    with ThreadPoolExecutor(2) as pool:
        for line in pool.map(lambda job: execute(*job, args.profile), jobs):
            print(line, flush=True)


if __name__ == "__main__":
    try:
        main()
    except (ValueError, RuntimeError) as error:
        sys.exit(f"measure_ladder: {error}")
