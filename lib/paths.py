"""Every location the project reads or writes, resolved from the repository root."""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
CLAIMS = DATA / "claims"
BUILD = ROOT / "_build"
# Trained runs live under data/runs (committed, small). Tests point this elsewhere so
# that a smoke run never lands beside the committed default-profile runs.
RUNS = Path(os.environ["BAR_RUNS_DIR"]) if "BAR_RUNS_DIR" in os.environ else DATA / "runs"
