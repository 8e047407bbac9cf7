"""Every location the project reads or writes, resolved from the repository root."""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
CLAIMS = DATA / "claims"
BUILD = ROOT / "_build"

# The CPU code paths every committed chapter is executed with (make reproduce, the ladder's
# measurements) and re-executed with (the committed-book test). PyTorch's kernels, MKL's,
# oneDNN's and NumPy's each pick their code for the CPU at run time (AVX2 or AVX-512, Intel or
# AMD) and round differently, so a chapter's printed digits would depend on the machine. MKL's
# COMPATIBLE branch is the one it computes alike on every vendor's x86-64 CPU (on AMD it treats
# any other branch as AUTO); the AVX2 paths exist on every x86-64 CPU of the last decade.
RECORD_CPU = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "COMPATIBLE", "ONEDNN_MAX_CPU_ISA": "AVX2",
              "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR"}


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
