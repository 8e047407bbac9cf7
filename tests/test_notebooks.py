"""Every chapter (and every draft chapter in book/drafts) executes on the smoke profile and
writes a well-formed claim record; every published chapter's .py/.ipynb pair is in sync and
its notebook was executed on the default profile; every figure is numbered and referred to."""
import json
import re

import jupytext
import papermill
import pytest

from lib import claims, paths

CHAPTERS = sorted((paths.ROOT / "book").glob("[0-9][0-9]_*.py"))
DRAFTS = sorted((paths.ROOT / "book" / "drafts").glob("[0-9][0-9]_*.py"))
CLAIM_IDS = {"01_bijection": ["C1"], "02_hmm": ["C2", "C3", "C4"], "03_geometry": ["C5", "C6", "C7", "C8", "C9"],
             "04_architectures": ["C11", "C12", "C13", "C14", "C15"],
             "05_gradient_laws": ["G1", "G2", "G3", "G6"], "06_frame_precision": ["C10"],
             "07_llm_geometry": ["L1", "L2", "L3", "L4", "L5", "L6", "L7", "L8", "L9"], "08_ladder": []}


def test_every_chapter_is_listed_here():
    assert {c.stem for c in CHAPTERS + DRAFTS} == set(CLAIM_IDS)


@pytest.mark.parametrize("chapter", CHAPTERS + DRAFTS, ids=lambda p: p.stem)
def test_chapter_executes_on_smoke_and_records_its_claims(chapter, tmp_path):
    records = [paths.BUILD / "smoke" / "claims" / f"{cid}.json" for cid in CLAIM_IDS[chapter.stem]]
    for rec in records:
        rec.unlink(missing_ok=True)
    source = tmp_path / f"{chapter.stem}.ipynb"
    jupytext.write(jupytext.read(chapter), source)
    executed = tmp_path / f"{chapter.stem}.out.ipynb"
    papermill.execute_notebook(source, executed, parameters={"profile": "smoke"},
                               cwd=chapter.parent, kernel_name="python3", progress_bar=False)
    outputs = "".join("".join(o.get("text", "")) for cell in json.loads(executed.read_text())["cells"]
                      for o in cell.get("outputs", []))
    for rec_path in records:
        rec = json.loads(rec_path.read_text())
        assert rec["ours"]["profile"] == "smoke"
        entries = [entry for _, entry in claims.judged_entries(rec)]  # one per model for a claim measured on several
        for entry in entries:
            assert entry["ours"]["profile"] == "smoke"
            assert entry["verdict"] == claims.verdict(claims.CLAIMS[rec["id"]], {
                c["condition"].split()[0]: c["value"] for c in entry["conditions"]})
            lo, hi = entry["ours"]["ci95"]
            assert lo <= entry["ours"]["value"] <= hi
        assert rec["verdict"] in claims.VERDICTS
        assert rec["verdict"] == claims.verdict_over_models([e["verdict"] for e in entries])
        assert rec["paper"]["source"] and rec["threshold"]
        assert claims.one_line(rec) in outputs  # the notebook prints the verdict it recorded


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_py_and_ipynb_are_paired_and_in_sync(chapter):
    notebook = chapter.with_suffix(".ipynb")
    assert notebook.exists(), f"{notebook.name} missing: run `jupytext --sync {chapter}`"
    text = lambda nb: [(c.cell_type, c.source.strip()) for c in nb.cells]  # noqa: E731
    assert text(jupytext.read(chapter)) == text(jupytext.read(notebook)), \
        f"{chapter.name} and {notebook.name} differ: run `jupytext --sync {chapter}`"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_committed_notebook_ran_on_the_default_profile_without_errors(chapter):
    nb = json.loads(chapter.with_suffix(".ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in code), "a code cell was never executed"
    assert not [o for c in code for o in c.get("outputs", []) if o["output_type"] == "error"]
    figures = [c for c in code if "figure" in c["metadata"].get("mystnb", {})]
    assert all(any("image/png" in o.get("data", {}) for o in c["outputs"]) for c in figures), \
        "a figure cell has no image output"
    params = next(c for c in code if "parameters" in c["metadata"].get("tags", []))
    assert re.search(r'profile\s*=\s*"default"', "".join(params["source"]))


FIGURE_NAME = re.compile(r'"name": "(fig-[\w-]+)"|^# :name: (fig-[\w-]+)', re.M)  # cell metadata, glue:figure
NUMREF = re.compile(r"\{numref\}`(?:[^`<]*<)?([\w-]+)>?`")


@pytest.mark.parametrize("chapter", CHAPTERS + DRAFTS, ids=lambda p: p.stem)
def test_every_figure_is_named_and_referred_to_in_the_text(chapter):
    text = chapter.read_text()
    named = [a or b for a, b in FIGURE_NAME.findall(text)]
    figure_cells = re.findall(r'^# %%.*"figure":|^# ```\{glue:figure\}', text, re.M)
    assert len(named) == len(figure_cells), "a figure without a :name: gets no number to refer to"
    referred = {target for target in NUMREF.findall(text) if not target.startswith("ch-")}  # chapters are no figures
    assert not set(named) - referred, f"figures never referred to with {{numref}}: {set(named) - referred}"
    assert not referred - set(named), f"{{numref}} to figures this chapter does not have: {referred - set(named)}"


def test_a_ladder_rung_is_measured_by_the_chapters_own_code():
    """`make ladder` on one smoke rung: chapter 1 executed with the rung's deep MLP and
    transformer writes C1's record into the rung's folder, naming the rung, and leaves the
    default record alone; an untrained rung is skipped, an unknown one is a one-line error."""
    import subprocess
    import sys

    from lib import cache, profiles
    rung = "mlp: 18 layers at default"
    folder = claims.claims_dir("smoke", rung)
    (folder / "C1.json").unlink(missing_ok=True)
    script = [sys.executable, str(paths.ROOT / "scripts" / "measure_ladder.py"), "--profile", "smoke", "--rung", rung]
    skipped = subprocess.run(script, capture_output=True, text=True, timeout=300)
    assert skipped.returncode == 0 and f"{rung}: not trained yet, skipped" in skipped.stdout
    cache.train_missing(profiles.run_configs(profiles.c1("smoke", rung)), workers=1)
    done = subprocess.run(script, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    rec = json.loads((folder / "C1.json").read_text())
    mlp = profiles.ladder("smoke")["mlp"]["18 layers at default"][0]
    assert rec["ours"]["rung"] == rung and rec["details"]["mlp_flat"]["parameters"] == profiles.count_params(
        mlp.model, mlp.task)
    default = paths.BUILD / "smoke" / "claims" / "C1.json"
    assert not default.exists() or "rung" not in json.loads(default.read_text())["ours"]
    unknown = subprocess.run([*script[:-1], "mlp: 3 layers"], capture_output=True, text=True, timeout=300)
    assert unknown.returncode == 1 and unknown.stderr.startswith("measure_ladder: unknown ladder rung 'mlp: 3 layers'")


def test_the_record_cpu_pins_take_effect():
    """paths.RECORD_CPU is only environment variables: a misspelt one would be ignored without a
    word, and the committed book would again depend on the CPU that executed it. Each library
    says which code path it took: PyTorch its capability, MKL its reproducibility branch, oneDNN
    its instruction set (through GELU, which it computes), NumPy its CPU features."""
    import os
    import subprocess
    import sys
    probe = ("import torch; x = torch.randn(8, 16, 32, requires_grad=True); "
             "torch.nn.functional.gelu(torch.nn.Linear(32, 32)(x)).sum().backward(); "
             "print('capability', torch.backends.cpu.get_cpu_capability()); "
             "from numpy._core._multiarray_umath import __cpu_features__ as numpy_has; "
             "print('numpy AVX-512', any(numpy_has[f] for f in ('X86_V4', 'AVX512_ICL', 'AVX512_SPR')))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                          env=os.environ | paths.RECORD_CPU | {"MKL_VERBOSE": "1", "ONEDNN_VERBOSE": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "capability AVX2" in done.stdout
    assert "CNR:COMPATIBLE" in done.stdout and "CNR:OFF" not in done.stdout and "CNR:AUTO" not in done.stdout
    assert "isa:Intel AVX2\n" in done.stdout and "jit:avx512" not in done.stdout
    assert "numpy AVX-512 False" in done.stdout


def test_the_committed_book_is_what_the_code_computes():
    """Every committed chapter re-executed from the shipped cache (BAR_CACHE_ONLY=1: nothing
    trains or computes anew) gives the outputs the committed notebook holds, cell by cell
    (nbval; figures aside, timings sanitised by tests/nbval_sanitize.cfg), on the CPU code paths
    the record was executed with."""
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k != "BAR_RUNS_DIR"} | paths.RECORD_CPU | {
        "BAR_CACHE_ONLY": "1", "PYTHONPATH": str(paths.ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval", "--nbval-current-env",
         "--nbval-sanitize-with", str(paths.ROOT / "tests" / "nbval_sanitize.cfg"), "--rootdir", str(paths.ROOT),
         *map(str, sorted((paths.ROOT / "book").glob("[0-9][0-9]_*.ipynb")))],
        cwd=paths.ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-6000:]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_every_exercise_has_a_kind_a_time_and_a_folded_solution(chapter):
    """The teaching contract: at least three exercises per chapter, each opening with its kind
    and expected time, each with a solution folded below it."""
    text = chapter.read_text()
    labels = re.findall(r"^# :label: (ex-[\w-]+)\n# \*\*(Derive|Compute|Discuss), about \d+ minutes\.\*\*", text, re.M)
    assert len(labels) == text.count("{exercise}") >= 3, "an exercise without its kind and time"
    solved = re.findall(r"^# `{4}\{solution\} (ex-[\w-]+)\n# :class: dropdown", text, re.M)
    assert sorted(solved) == sorted(label for label, _ in labels)
