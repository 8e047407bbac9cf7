"""Every location the project reads or writes, resolved from the repository root."""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
CLAIMS = DATA / "claims"
BUILD = ROOT / "_build"


def runs_dir() -> Path:
    """The artifact cache: data/runs (committed, small), or BAR_RUNS_DIR, resolved once to an
    absolute path so that every process, whatever its working folder, uses the same one. Tests
    point it elsewhere so that a smoke run never lands beside the committed default-profile runs."""
    value = os.environ.get("BAR_RUNS_DIR")
    if value is None:
        return DATA / "runs"
    if not value.strip():
        raise ValueError("BAR_RUNS_DIR is empty: unset it (the cache is then data/runs) or name a folder")
    return Path(value).expanduser().resolve()


RUNS = runs_dir()
