"""Train every run the given chapters need that is not in the cache, all of them at once before
any chapter executes: longest first, on a Dask cluster (lib.cache.train_missing): by default one
one-thread worker process per core of this machine, or the cluster at BAR_SCHEDULER (make train SCHEDULER=...).
Run by `make reproduce` (as `make train`); the chapters then find their runs in the cache.
Packing every chapter's runs together keeps all the cores busy until the last run ends.

    python scripts/train.py [--profile default] book/01_bijection.py book/04_architectures.py ...

`--profile ladder` trains the compute ladder instead (lib.profiles.ladder: chapter 1's and 2's
transformers at more steps and widths, and the deep flat MLPs), whatever the chapters; its long
runs train shortest first, checkpoint every ten minutes and resume when `make train
PROFILE=ladder` runs again.
"""
import argparse
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this repository's lib, whatever is installed

from lib import cache, paths, profiles  # noqa: E402


def main():
    # SIGTERM unwinds like Ctrl-C: queued runs are cancelled and the local cluster's workers closed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("train: stopped by SIGTERM"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="default", choices=(*profiles.PROFILES, "ladder"))
    parser.add_argument("chapters", nargs="+", help="chapter sources, e.g. book/01_bijection.py")
    args = parser.parse_args()
    book = sorted((paths.ROOT / "book").glob("[0-9][0-9]_*.py"))
    unknown = [chapter for chapter in args.chapters if (paths.ROOT / chapter).resolve() not in book]
    if unknown:
        parser.error(f"no chapter {' '.join(unknown)}; the chapters are "
                     + " ".join(p.relative_to(paths.ROOT).as_posix() for p in book))
    try:
        if args.profile == "ladder":
            # shortest first: each session that trains the ladder commits the rungs it finished
            cache.train_missing(list(profiles.run_configs(profiles.ladder())), longest_first=False)
            return
        numbers = [int(Path(chapter).name[:2]) for chapter in args.chapters]
        cfgs = [cfg for n in numbers for cfg in profiles.run_configs(profiles.CHAPTERS[n](args.profile))]
        cache.train_missing(cfgs, profile=args.profile)
    except cache.TrainingFailed as error:
        sys.exit(str(error))


if __name__ == "__main__":
    main()
