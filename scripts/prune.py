"""`make prune`: delete the cached artifacts under the run cache that the last full default
`make reproduce` did not read (every read marks an artifact used, lib/cache.py mark_used, so
what it read is newer than its stamp, _build/reproduce.stamp).

Never deleted: the compute ladder's trained runs (`make reproduce` does not read them; `make
train PROFILE=ladder` trained them for hours), what the last `make ladder` read (newer than
_build/ladder.stamp), unfinished runs' checkpoints and the run locks. Refused while a
reproduction runs, without a full reproduction on record, or if that one read another cache.
"""
import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this repository's lib, whatever is installed

from lib import cache, paths, profiles  # noqa: E402

KEPT_FOLDERS = ("checkpoints", ".locks")


def running_reproduction(build: Path) -> int | None:
    """The process id of a `make reproduce` still running (its _build/reproduce.started.PID)."""
    for marker in build.glob("reproduce.started.*"):
        pid = int(marker.suffix[1:])
        try:
            os.kill(pid, 0)
            return pid
        except ProcessLookupError:
            continue
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", type=Path, default=paths.BUILD, help="the _build folder holding the stamps")
    build = parser.parse_args().build
    if (pid := running_reproduction(build)) is not None:
        sys.exit(f"prune: a reproduction is running (process {pid}); prune after it ends")
    stamp = build / "reproduce.stamp"
    if not stamp.exists():
        sys.exit("prune: no full default reproduction on record; run make reproduce")
    if stamp.read_text().strip() != str(paths.RUNS):
        sys.exit(f"prune: the last full reproduction read {stamp.read_text().strip()}, not {paths.RUNS}")
    since = [stamp.stat().st_mtime]
    if (ladder_stamp := build / "ladder.stamp").exists():
        since.append(ladder_stamp.stat().st_mtime)
    ladder_runs = {cache.run_path(cfg).name for cfg in profiles.run_configs(profiles.ladder())}
    for path in sorted(paths.RUNS.rglob("*")):
        relative = path.relative_to(paths.RUNS)
        if (path.is_file() and relative.parts[0] not in KEPT_FOLDERS and path.name not in ladder_runs
                and all(path.stat().st_mtime <= t for t in since)):
            print(path)
            path.unlink()


if __name__ == "__main__":
    main()
