"""The timing record of a reproduction: which files were new, and whose chapter trained them."""
import importlib.util
import json
import sys

import torch

from lib import cache, paths, profiles


def load_script(name: str):
    if str(paths.ROOT / "scripts") not in sys.path:  # as when run as a script: the scripts import each other
        sys.path.insert(0, str(paths.ROOT / "scripts"))
    spec = importlib.util.spec_from_file_location(name, paths.ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_record_gives_each_new_run_to_its_chapter_and_counts_the_other_files(tmp_path):
    timed = load_script("timed_reproduce")
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    by_chapter = profiles.runs_by_chapter("default")
    old_run, new_run, hmm_run = by_chapter[1][0], by_chapter[1][1], by_chapter[2][0]
    for cfg, seconds in ((old_run, 60), (new_run, 120), (hmm_run, 300)):
        torch.save({"train_seconds": seconds}, runs_dir / cache.run_path(cfg).name)
    for name in ("scores-old.pt", "scores-new.pt"):
        (runs_dir / name).write_bytes(b"")
    before = {cache.run_path(old_run).name, "scores-old.pt"}

    claims_before = timed.measured()
    changed = next(iter(claims_before))
    claims_before[changed] = ("another value", "reproduced")
    rec = timed.record("test", runs_dir, before, seconds=600, claims_before=claims_before)
    assert rec["claims_changed"] == [changed] and rec["claims_compared"] == len(claims_before)
    assert rec["cache_before"] == {"trained runs": 1, "other files": 1}
    assert rec["computed"] == {"trained runs": 2, "other files": 1}
    chapters = {c["chapter"][:2]: c for c in rec["chapters"]}
    assert (chapters["01"]["runs_trained"], chapters["01"]["training_worker_minutes"]) == (1, 2.0)
    assert (chapters["02"]["runs_trained"], chapters["02"]["training_worker_minutes"]) == (1, 5.0)
    assert chapters["07"]["runs_trained"] == 0 and rec["minutes"] == 10.0
    assert len(rec["chapters"]) == len(profiles.CHAPTERS)

    ledger = load_script("build_ledger")
    section = ledger.timing_section(json.loads(json.dumps(rec)))
    assert "**10 minutes** end to end" in section and "trained 2 runs and computed 1 other files" in section
    assert f"came out different: {changed}" in section
    assert "match the ones it started from" in ledger.timing_section({**rec, "claims_changed": []})
    assert "training (`make train`)" not in section  # the chapters trained their own runs
    with_training = timed.record("test", runs_dir, before, seconds=600, claims_before=claims_before, training_seconds=240)
    assert with_training["training_minutes"] == 4.0
    assert "| training (`make train`), every missing run | 4.0 |" in ledger.timing_section(with_training)


def test_bench_report_orders_models_by_their_total_cost_and_sums_the_chapters():
    bench = load_script("bench")
    model = {"params": 10, "first_step_extra_s": 0.0, "peak_rss_mb": 1}
    result = {"machine": {"cpus": 2, "cpu": "x", "torch": "t"}, "finished": "2026-01-01T00:00", "seconds": 20,
              "models": [{"run": "cheap", "steps_per_s": 50.0, "minutes_per_run": 1.0, "runs": 3, **model},
                         {"run": "dear", "steps_per_s": 2.0, "minutes_per_run": 20.0, "runs": 1, **model}],
              "chapters": [{"chapter": 1, "runs": 3, "worker_minutes": 3.0},
                           {"chapter": 4, "runs": 1, "worker_minutes": 20.0}]}
    text = bench.report(result)
    assert text.index("| dear |") < text.index("| cheap |")
    assert "| **all** | 4 | **23** |" in text
    assert "20 minutes on 2 cores" in text  # the 20-minute run on one worker, the three 1-minute runs on the other
    result["baseline"] = {"rev": "abc123"}
    result["models"][0]["baseline"] = {"steps_per_s": 25.0, "minutes_per_run": 2.0}
    result["models"][1]["baseline"] = {"steps_per_s": 1.0, "minutes_per_run": 40.0}
    text = bench.report(result)
    assert "| dear | 10 | 2.0 | 1.0 | **2.00x** |" in text
    assert "baseline's code (abc123, timed beside ours): 40 minutes on 2 cores" in text
    result["models"][1] |= {"matmul_share": 0.52, "attention_share": 0.31, "matmul_gflops": 49.6}
    assert "| 52% / 31% | 50 |" in bench.report(result)


def test_the_bench_breakdown_finds_the_products_and_the_attention():
    bench = load_script("bench")
    a, q = torch.randn(256, 256), torch.randn(4, 2, 64, 16)
    products = bench.breakdown(lambda _: a @ a @ a, [None] * 3)
    assert products["matmul_share"] > 0.9 and products["attention_share"] == 0 and products["matmul_gflops"] > 0
    attention = bench.breakdown(lambda _: torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True),
                                [None] * 3)
    assert attention["attention_share"] > 0.5 and attention["matmul_share"] < 0.5


def test_alternating_bench_times_ours_and_the_baselines_one_after_the_other_and_keeps_each_median(monkeypatch):
    bench, order = load_script("bench"), []
    speeds = {None: iter([9.0, 5.0, 7.0]), "base": iter([1.0, 3.0, 2.0])}

    def timed(cfg, seconds, root):
        order.append(root)
        return {"steps_per_s": next(speeds[root])}
    monkeypatch.setattr(bench, "time_in_process", timed)
    ours, theirs = bench.side_by_side("cfg", 1.0, "base", 3, pool=None)
    assert order == [None, "base"] * 3  # never both at once: no pool is needed
    assert (ours["steps_per_s"], theirs["steps_per_s"]) == (7.0, 2.0)


def test_make_train_asks_for_every_run_of_the_chosen_chapters(monkeypatch):
    trainer, asked = load_script("train"), []
    monkeypatch.setattr(trainer.cache, "train_missing", lambda cfgs, profile: asked.append((cfgs, profile)))
    monkeypatch.setattr(sys, "argv", ["train.py", "--profile", "smoke", "book/03_geometry.py", "book/05_gradient_laws.py"])
    trainer.main()
    expected = [*profiles.run_configs(profiles.c3("smoke")), *profiles.run_configs(profiles.c5("smoke"))]
    (cfgs, profile), = asked
    assert cfgs == expected and profile == "smoke" and {cfg.task.name for cfg in cfgs} == {"bijection", "sawtooth", "hmm"}
