import dataclasses
import json
import re

import pytest

from lib import claims, paths, profiles
from lib.config import ModelConfig
from lib.tasks import HMM, Bijection, Recall


@pytest.mark.parametrize("profile", claims.PROFILES)
def test_c1_mlps_are_parameter_matched_within_one_percent(profile):
    runs = profiles.c1(profile)["runs"]
    target = profiles.count_params(runs["transformer"][0].model, runs["transformer"][0].task)
    for name in ("mlp_flat", "mlp_local"):
        count = profiles.count_params(runs[name][0].model, runs[name][0].task)
        assert abs(count - target) <= 0.01 * target, (name, count, target)


def test_c1_default_profile_has_at_least_three_seeds():
    runs = profiles.c1("default")["runs"]
    assert all(len({r.train.seed for r in runs[name]}) >= 3 for name in ("transformer", "mlp_flat", "mlp_local"))


def test_unknown_profile_is_an_error():
    with pytest.raises(ValueError, match="unknown profile 'laptop'"):
        profiles.c1("laptop")


def values(mae, ratio):
    return {"transformer_mae": mae, "mlp_flat_over_transformer": ratio}


@pytest.mark.parametrize("mae,ratio,expected", [(0.005, 50, "reproduced"), (0.005, 3, "partly reproduced"),
                                                (0.02, 50, "partly reproduced"), (0.02, 3, "not reproduced"),
                                                (0.01, 10, "reproduced")])
def test_verdict_follows_the_registered_conditions(mae, ratio, expected):
    assert claims.verdict(claims.CLAIMS["C1"], values(mae, ratio)) == expected


def test_smoke_records_never_reach_data_claims_and_paper_records_go_beside_default_ones(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CLAIMS", tmp_path / "claims")
    monkeypatch.setattr(paths, "BUILD", tmp_path / "build")
    rec = claims.record("C1", values(0.5, 1), "smoke", seeds=2, ci95=(0.4, 0.6), details={})
    assert not (tmp_path / "claims").exists()
    written = json.loads((tmp_path / "build" / "smoke" / "claims" / "C1.json").read_text())
    assert written == rec and written["verdict"] == "not reproduced" and written["ours"]["profile"] == "smoke"
    claims.record("C1", values(0.005, 20), "default", seeds=3, ci95=(0.004, 0.006), details={})
    assert json.loads((tmp_path / "claims" / "C1.json").read_text())["verdict"] == "reproduced"
    # a paper-profile run adds its record beside the default one instead of replacing it
    claims.record("C1", values(0.5, 1), "paper", seeds=5, ci95=(0.4, 0.6), details={})
    assert json.loads((tmp_path / "claims" / "C1.json").read_text())["ours"]["profile"] == "default"
    assert [r["ours"]["profile"] for r in claims.load_records(tmp_path / "claims" / "paper")] == ["paper"]
    with pytest.raises(ValueError, match="lack"):
        claims.record("C1", {"transformer_mae": 0.1}, "default", seeds=3, ci95=(0, 1), details={})


def test_values_that_differ_past_the_twelfth_digit_write_the_same_record(tmp_path, monkeypatch):
    # two thread counts sum a metric in different orders; the record must not change with them
    monkeypatch.setattr(paths, "CLAIMS", tmp_path / "claims")
    texts, maes = [], (0.0033001938706677726, 0.0033001938706677726 * (1 + 1e-15))
    assert maes[0] != maes[1]
    for mae in maes:
        claims.record("C1", values(mae, 20), "default", seeds=3, ci95=(mae / 2, mae * 2), details={"kl": mae / 9})
        texts.append((tmp_path / "claims" / "C1.json").read_text())
    assert texts[0] == texts[1] and "0.00330019387067," in texts[0]


def test_ledger_groups_by_paper_and_says_in_words_what_failed(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CLAIMS", tmp_path / "claims")
    claims.record("C1", values(0.005, 3), "default", seeds=3, ci95=(0.004, 0.006), details={})
    claims.record("G3", {"slope_over_eta": 1.0}, "default", seeds=1, ci95=(0.98, 1.02), details={})
    page = claims.ledger_markdown(claims.load_records())
    assert page.startswith("2 claims measured: {bdg-success}`reproduced` 1, {bdg-warning}`partly reproduced` 1, "
                           "{bdg-danger}`not reproduced` 0.")
    assert "not yet measured: C2" in page and "{doc}`01_bijection`" in page
    assert page.index("## Paper I") < page.index("| **C1** {bdg-warning}`partly reproduced`") < page.index("## Paper II")
    c1 = next(line for line in page.splitlines() if line.startswith("| **C1**"))
    assert "| <span class=\"cell-label\">paper: </span>0.007 bits |" in c1
    assert "0.005 bits<br><small>(95% CI 0.004 to 0.006; 3 seeds)</small> |" in c1
    assert c1.endswith("</span>the flat MLP's error over the transformer's is 3 (needs ≥ 10) |")
    g3 = next(line for line in page.splitlines() if line.startswith("| **G3**"))
    assert g3.endswith("</span>every condition holds |")
    assert ":::{dropdown} C1: sources, metric and threshold" in page  # the long notes are folded


def test_a_bar_in_a_records_text_does_not_break_its_ledger_row(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CLAIMS", tmp_path / "claims")
    claims.record("C7", {"l0_abs_cos": 0.35, "l0_over_init": 1.2, "l0_over_gaussian": 1.1}, "default", seeds=3,
                  ci95=(0.34, 0.36), details={})
    lines = claims.ledger_markdown(claims.load_records()).splitlines()
    header = next(line for line in lines if line.startswith("| claim |"))
    row = next(line for line in lines if line.startswith("| **C7**"))
    unescaped_bars = lambda line: len(re.findall(r"(?<!\\)\|", line))  # noqa: E731
    assert "|cos|" in claims.CLAIMS["C7"].paper["unit"]
    assert unescaped_bars(row) == unescaped_bars(header) == 5


def test_a_claim_measured_on_several_models_holds_each_models_verdict_and_one_over_them(tmp_path, monkeypatch):
    """Chapter 7's records: one per claim, each model's values, interval and verdict, and the
    claim's verdict over the models; the ledger and the result box show every model."""
    monkeypatch.setattr(paths, "CLAIMS", tmp_path / "claims")
    measured = {"model A": {"values": {"mae_bits": 0.3, "best_constant_minus_model": 0.1, "label_mass_median": 0.9,
                                       "rho_k_entropy": -0.8, "abs_rho_pc1_bayes": 0.7}, "ci95": (0.2, 0.4), "details": {}},
                "model B": {"values": {"mae_bits": 0.9, "best_constant_minus_model": -0.1, "label_mass_median": 0.1,
                                       "rho_k_entropy": 0.8, "abs_rho_pc1_bayes": 0.1}, "ci95": (0.8, 1.0), "details": {}}}
    rec = claims.record_models("L6", measured, "default", seeds=1)
    assert [(m["model"], m["verdict"]) for m in rec["models"]] == [("model A", "reproduced"), ("model B", "not reproduced")]
    assert rec["verdict"] == "partly reproduced" and json.loads((tmp_path / "claims" / "L6.json").read_text()) == rec
    assert claims.verdict_over_models(["reproduced"] * 2) == "reproduced"
    assert claims.verdict_over_models(["not reproduced"] * 2) == "not reproduced"
    assert claims.one_line(rec).startswith("L6 PARTLY REPRODUCED: model A reproduced, ours 0.3 bits (95% CI 0.2 to 0.4, "
                                           "1 seed, default profile); model B not reproduced, ours 0.9 bits")
    row = next(line for line in claims.ledger_markdown([rec]).splitlines() if line.startswith("| **L6**"))
    assert ("model A {bdg-success}`reproduced`: 0.3 bits<br><small>(95% CI 0.2 to 0.4; 1 seed)</small><br>"
            "model B {bdg-danger}`not reproduced`: 0.9 bits") in row
    assert "model A: every condition holds<br>model B: the entropy error on SULA prompts (bits) is 0.9 (needs ≤ 0.44); " \
        "the best constant's error" in row
    (tmp_path / "claims" / "L6.json").unlink()
    assert claims.record_models("L6", measured, "default", seeds=1, write=False) == rec  # a class exploring
    assert not (tmp_path / "claims" / "L6.json").exists()
    box = claims.result_box([rec])
    assert "  - model A: {bdg-success}`reproduced` ours 0.3 bits (95% CI 0.2 to 0.4; 1 seed)." in box
    assert "    - Fails: the entropy error on SULA prompts (bits) is 0.9 (needs ≤ 0.44)" in box


def test_the_result_box_is_computed_from_the_records_it_is_given(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CLAIMS", tmp_path / "claims")
    rec = claims.record("C1", values(0.005, 3), "default", seeds=3, ci95=(0.004, 0.006), details={})
    box = claims.result_box([rec])
    assert box.startswith("```{admonition} Results (default profile)\n:class: result-box\n")
    assert "{bdg-warning}`partly reproduced` **C1**" in box
    assert "Fails: the flat MLP's error over the transformer's is 3 (needs ≥ 10)." in box
    assert "Holds: the transformer's entropy error (bits) is 0.005 (needs ≤ 0.01)." in box
    rec["conditions"][1].update(value=12.0, holds=True)  # a different record gives a different box
    assert "Fails" not in claims.result_box([rec]) and "is 12 (needs ≥ 10)" in claims.result_box([rec])


def test_a_bound_reads_with_four_significant_digits_like_the_value():
    # C3's lower bound is the paper's 0.029 bits over 3; printed whole it read "0.00966667"
    entry = {"condition": "k50_mae >= 0.00966666666667", "words": "the error at K=50 (bits)", "value": 0.0995354955}
    assert claims.condition_words(entry) == "the error at K=50 (bits) is 0.09954 (needs ≥ 0.009667)"


def test_numbers_on_the_page_never_read_minus_zero():
    assert [claims.number(x) for x in (-0.0, -1e-9 * 0, -0.00001, 0.123456, 12.0, -3.2e-7)] == [
        "0", "0", "-1e-05", "0.1235", "12", "-3.2e-07"]
    assert claims.number(-0.00000000001) == "-1e-11"  # small but not zero: its sign stays


def test_every_condition_says_in_words_what_it_measures():
    for claim in claims.CLAIMS.values():
        for condition in claim.conditions:
            assert 10 < len(condition.words) < 90 and not condition.words.endswith("."), condition
            assert condition.quantity not in condition.words  # words, not the variable's name again


def test_runs_by_chapter_gives_every_run_once_to_the_first_chapter_that_uses_it():
    by_chapter = profiles.runs_by_chapter("smoke")
    assert list(by_chapter) == list(range(1, 9))
    every = [cfg for runs in by_chapter.values() for cfg in runs]
    assert len(every) == len(set(every))
    for number, chapter in profiles.CHAPTERS.items():
        assert set(profiles.run_configs(chapter("smoke"))) <= set(every)
    assert {cfg.task.name for cfg in by_chapter[3]} == {"sawtooth"}  # chapters 1 and 2 trained its others
    assert by_chapter[5] == by_chapter[6] == by_chapter[7] == by_chapter[8] == []


@pytest.mark.parametrize("task", [Bijection(V=20, L=19), HMM(K=20, K_max=50), Recall(),
                                  Recall(n_pairs=16, n_keys=64, n_values=64)], ids=lambda t: repr(t))
def test_mamba_and_lstm_can_be_sized_to_a_transformer(task):
    target = profiles.count_params(ModelConfig(d_model=64, n_layers=2, n_heads=4, d_mlp=256), task)
    mamba = profiles.match_params(ModelConfig(arch="mamba", n_layers=2), task, target, mlp_ratio=2, tol=0.05)
    lstm = profiles.match_params(ModelConfig(arch="lstm", n_layers=2), task, target, mlp_ratio=1, tol=0.05)
    for cfg in (mamba, lstm):
        assert abs(profiles.count_params(cfg, task) - target) <= 0.05 * target, cfg


@pytest.fixture(scope="module")
def c4_default():
    return profiles.c4("default")


def test_c4_every_model_is_within_five_percent_of_its_tasks_transformer(c4_default):
    groups = [*c4_default["runs"].values(), *c4_default["sweep"].values()]
    for archs in groups:
        transformer = archs["transformer"][0]
        target = profiles.count_params(transformer.model, transformer.task)
        for name, cfgs in archs.items():
            assert all(cfg.task == transformer.task for cfg in cfgs), name
            count = profiles.count_params(cfgs[0].model, cfgs[0].task)
            assert abs(count - target) <= 0.05 * target, (transformer.task, name, count, target)


def test_c4_reuses_chapter_1_and_2_runs_and_gives_new_ones_their_recipe(c4_default):
    one, two, runs = profiles.c1("default")["runs"], profiles.c2("default")["runs"], c4_default["runs"]
    assert runs["bijection"]["transformer"] == one["transformer"] and runs["bijection"]["mlp_flat"] == one["mlp_flat"]
    assert all(runs["hmm"][name] == two[name] for name in ("transformer", "mlp_flat", "lstm"))
    for task, chapter in (("bijection", one), ("hmm", two)):
        recipe = dataclasses.replace(chapter["transformer"][0].train, snapshots=())
        assert [cfg.train for cfg in runs[task]["mamba"]] == [dataclasses.replace(recipe, seed=cfg.train.seed)
                                                             for cfg in chapter["transformer"]]
    for task in runs:
        assert list(runs[task]) == list(profiles.C4_ARCHS)
        assert all(len({cfg.train.seed for cfg in cfgs}) >= 3 for cfgs in runs[task].values())
        assert {cfg.model.n_layers for cfg in runs[task]["mamba"] + runs[task]["lstm"]} == {2}
        assert {cfg.train for cfg in runs[task]["mamba"]} == {cfg.train for cfg in runs[task]["lstm"]}
    # the sweep's run at the chapter's recall size is the chapter's first seed, trained once
    recall = runs["recall"]["transformer"][0].task
    assert c4_default["sweep"][recall.n_pairs]["mamba"][0] == runs["recall"]["mamba"][0]


@pytest.mark.parametrize("r,cell", [(0.0, "tick"), (0.2, "tick"), (0.2000001, "~"), (0.5, "~"),
                                    (0.5000001, "cross"), (1.0, "cross"), (3.0, "cross")])
def test_primitive_cell_grades_r_at_the_registered_cut_offs(r, cell):
    assert (claims.TICK_MAX_R, claims.PARTIAL_MAX_R) == (0.2, 0.5)
    assert claims.primitive_cell(r) == cell
    assert f"tick if r <= {claims.TICK_MAX_R:g}" in claims.CLAIMS["C11"].metric


def test_primitive_cell_refuses_nan():
    with pytest.raises(ValueError, match="NaN"):
        claims.primitive_cell(float("nan"))


def test_matrix_agreement_on_hand_made_r_values():
    paper = claims.CLAIMS["C11"].paper["others"]["matrix"]
    r = {"transformer": [0.01, 0.12, 0.0], "mamba": [0.05, 0.1, 0.3], "lstm": [0.02, 0.9, 1.0],
         "mlp_flat": [0.6, 0.8, 1.0]}
    ours = claims.primitive_matrix(r)
    assert ours == paper
    assert claims.matrix_agreement(ours, paper) == {"cells_agreeing": 12, "transformer_has_all_three": 1,
                                                    "others_with_all_three": 0}
    r["transformer"][1] = 0.21          # transformer's transport becomes "~"
    r["mamba"][2] = 0.2                 # Mamba's binding becomes a tick: all three
    r["mlp_flat"][0] = 0.15             # the MLP accumulates
    values = claims.matrix_agreement(claims.primitive_matrix(r), paper)
    assert values == {"cells_agreeing": 9, "transformer_has_all_three": 0, "others_with_all_three": 1}
    assert claims.verdict(claims.CLAIMS["C11"], values) == "not reproduced"
    with pytest.raises(ValueError, match="differ in shape"):
        claims.matrix_agreement({"transformer": ["tick"]}, paper)


@pytest.mark.parametrize("acc,expected", [((1.0, 0.978, 0.005), "reproduced"), ((0.9, 0.5, 0.1), "reproduced"),
                                          ((0.95, 0.3, 0.5), "partly reproduced"),
                                          ((0.5, 0.2, 0.5), "not reproduced")])
def test_c14_verdict_follows_its_registered_conditions(acc, expected):
    values = dict(zip(("transformer_accuracy", "mamba_accuracy", "lstm_accuracy"), acc))
    assert claims.verdict(claims.CLAIMS["C14"], values) == expected
    assert list(claims.CLAIMS).index("C14") == list(claims.CLAIMS).index("C13") + 1


def test_the_ladder_climbs_from_the_default_runs_to_32_times_their_compute():
    from lib import train
    for scale in ("smoke", "default"):
        ladder = profiles.ladder(scale)
        assert ladder["bijection"]["default"] == profiles.c1(scale)["runs"]["transformer"]
        assert ladder["hmm"]["default"] == profiles.c2(scale)["runs"]["transformer"]
        for task in ("bijection", "hmm", "mlp"):  # one seed on every rung above the default
            assert all(len(runs) == 1 for name, runs in ladder[task].items() if name != "default")
        if scale == "default":
            for task in ("bijection", "hmm"):
                base = train.training_flops(ladder[task]["default"][0])
                assert max(train.training_flops(r[0]) for r in ladder[task].values()) >= profiles.LADDER_TOP_FACTOR * base
                paper = profiles.C1_SIZES["paper"]["train"] if task == "bijection" else profiles.C2_SIZES["paper"]["train"]
                for name, (cfg, *more) in ladder[task].items():
                    if name != "default":
                        assert not more and (cfg.train.lr, cfg.train.weight_decay) == (paper.lr, paper.weight_decay)
                        assert cfg.train.batch_size == ladder[task]["default"][0].train.batch_size
            assert ladder["bijection"]["d192 x 6, 4,000 steps"][0].model == profiles.C1_SIZES["paper"]["transformer"]
            # the steps axis keeps half-precision snapshots for chapter 6; the whole ladder adds at most 60 MB
            ladder_bytes = 0
            for task, rungs in ladder.items():
                for name, runs in rungs.items():
                    cfg = runs[0]
                    if name != "default":
                        control = task != "mlp" and name == f"{ladder[task]['default'][0].train.steps:,} steps"
                        assert bool(cfg.train.snapshots) == (task != "mlp" and " x " not in name and not control)
                        assert (6 in profiles.rung_chapters(f"{task}: {name}")) == bool(cfg.train.snapshots)
                        assert not cfg.train.snapshots or cfg.train.snapshot_dtype == "float16"
                        floats = profiles.count_params(cfg.model, cfg.task) * (1 + len(cfg.train.snapshots) / 2)
                        ladder_bytes += 4 * floats
            assert 40e6 < ladder_bytes <= 60e6
            for name, (mlp,) in ladder["mlp"].items():
                target = ladder["bijection"][name.split(" at ", 1)[1]][0]
                assert mlp.model.n_layers == 18
                assert abs(profiles.count_params(mlp.model, mlp.task) / profiles.count_params(target.model, target.task) - 1) < 0.01
    with pytest.raises(ValueError, match="unknown scale"):
        profiles.ladder("paper")
