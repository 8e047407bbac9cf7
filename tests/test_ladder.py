"""The compute ladder read back (lib.ladder): rung records on disk become a series per claim,
a trend per decade of compute with its direction, and fields of the default claim record."""
import math

import pytest

from lib import claims, ladder, paths, profiles, train


@pytest.fixture
def claims_here(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "BUILD", tmp_path / "build")
    monkeypatch.setattr(paths, "CLAIMS", tmp_path / "claims")


def c7(cos: float, profile: str = "smoke", rung=None, seeds: int = 1) -> dict:
    return claims.record("C7", {"l0_abs_cos": cos, "l0_over_init": 0.9, "l0_over_gaussian": 0.8}, profile,
                         seeds=seeds, ci95=(cos - 0.01, cos + 0.01), details={}, rung=rung)


def test_rungs_are_read_back_in_order_of_the_ladder_with_their_compute(claims_here):
    names = [n for n in profiles.ladder("smoke")["bijection"] if n != "default"]
    for i, name in enumerate(names):
        c7(0.3 - 0.1 * i, rung=f"bijection: {name}")
    default = c7(0.35, seeds=2)
    (entries,) = default["ladder"].values()
    assert [e["rung"] for e in entries] == ["default", *names]
    assert entries[0]["interval"] == pytest.approx([0.34, 0.36]) and entries[1]["interval"] is None  # one seed
    assert [e["flops"] for e in entries] == [train.training_flops(r[0]) for r in profiles.ladder("smoke")["bijection"].values()]
    assert [e["verdict"] for e in entries][-1] == "reproduced"  # 0.1 <= 0.1 and both ratios <= 1
    assert entries[0]["verdict"] == "partly reproduced"


def test_a_trend_toward_the_threshold_says_where_it_would_cross(claims_here):
    entries = [{"flops": f, "value": 0.5 - 0.1 * math.log10(f / 1e10)} for f in (1e10, 1e11, 1e12, 1e13)]
    fit = ladder.trend(entries, "C7", "bijection")
    assert fit["direction"] == "toward the paper" and fit["slope"] == pytest.approx(-0.1)
    assert fit["crossing_flops"] == pytest.approx(1e14)  # 0.5 - 0.1 * 4 = 0.1, the threshold
    away = ladder.trend([dict(e, value=1 - e["value"]) for e in entries], "C7", "bijection")
    assert away["direction"] == "away" and away["crossing_flops"] is None
    noisy = [dict(e, value=0.3 + 0.05 * (-1) ** i) for i, e in enumerate(entries)]
    assert ladder.trend(noisy, "C7", "bijection")["direction"] == "flat"
    assert ladder.trend(entries[:2], "C7", "bijection") is None  # two rungs make no trend


def test_errors_are_fitted_per_decade_on_a_log_scale():
    entries = [{"flops": 10.0 ** k, "value": 10.0 ** (10 - k)} for k in (9, 10, 11)]  # C1's error: tenfold down a decade
    fit = ladder.trend(entries, "C1", "bijection")
    assert fit["scale"] == "log10" and fit["slope"] == pytest.approx(-1)
    assert fit["crossing_flops"] == pytest.approx(1e12)  # where the error reaches 0.01 bits


def test_a_deep_mlp_rung_counts_its_own_seeds_not_its_transformers(claims_here):
    values = {"transformer_mae": 0.01, "mlp_flat_over_transformer": 2.0}
    claims.record("C1", values, "smoke", seeds=2, ci95=(0.0, 0.02), details={}, rung="mlp: 18 layers at default")
    default = claims.record("C1", values, "smoke", seeds=2, ci95=(0.0, 0.02), details={})
    (mlp,) = default["ladder"]["mlp"]
    assert mlp["seeds"] == 1 and mlp["interval"] is None  # the record's seeds are its transformer's
    assert default["ladder"]["bijection"][0]["seeds"] == 2


def test_only_claims_c1_to_c10_on_a_ladder_profile_carry_ladder_fields(claims_here):
    assert "ladder" in c7(0.3) and "trend" in c7(0.3)
    assert "ladder" not in c7(0.3, profile="paper")
    assert "ladder" not in c7(0.3, rung="bijection: 60 steps")["ours"] | c7(0.3, rung="bijection: 60 steps")
    g3 = claims.record("G3", {"slope_over_eta": 1.0}, "smoke", seeds=1, ci95=(1, 1), details={})
    assert "ladder" not in g3


def test_the_ledger_shows_the_top_rung_and_the_trend_beside_the_default_verdict(claims_here):
    names = [n for n in profiles.ladder("smoke")["bijection"] if n != "default"]
    assert "top rung" not in claims.ledger_markdown([c7(0.35, seeds=2)])  # no rung measured yet
    for i, name in enumerate(names):
        c7(0.3 - 0.1 * i, rung=f"bijection: {name}")
    row = next(line for line in claims.ledger_markdown([c7(0.35, seeds=2)]).splitlines() if line.startswith("| **C7**"))
    top = max(ladder.series("C7", c7(0.35, seeds=2), "smoke")["bijection"], key=lambda e: e["flops"])
    # partly reproduced at the default, reproduced higher up
    assert f"bijection: **the default budget was too small**; top rung ({top['rung']}, one seed) {top['verdict']}, trend " \
        in row


def test_the_trend_is_fitted_on_the_paper_schedule_rungs_not_on_the_default(claims_here):
    names = [n for n in profiles.ladder("smoke")["bijection"] if n != "default"]
    for i, name in enumerate(names):
        c7(0.3 - 0.05 * i, rung=f"bijection: {name}")
    with_default = c7(0.9, seeds=2)  # far off the rungs' line: the default trains on another schedule
    entries = with_default["ladder"]["bijection"]
    assert with_default["trend"]["bijection"] == ladder.trend(entries[1:], "C7", "bijection")
    assert with_default["trend"]["bijection"] != ladder.trend(entries, "C7", "bijection")


def test_a_band_is_read_against_the_edge_the_top_rung_fails():
    entries = [{"flops": 10.0 ** k, "value": v} for k, v in ((10, 0.14), (11, 0.12), (12, 0.10))]  # falling to 0.087
    fit = ladder.trend(entries, "C3", "hmm")  # C3's K=50 error must lie in [0.0097, 0.087]
    assert fit["direction"] == "toward the paper" and 1e12 < fit["crossing_flops"]


def test_the_ladders_answer_per_claim():
    def rec(*verdicts, direction=None):
        entries = [{"rung": "default" if i == 0 else f"rung {i}", "flops": 10.0 ** (10 + i), "verdict": v}
                   for i, v in enumerate(verdicts)]
        fit = None if direction is None else {"direction": direction, "crossing_flops": 1e15}
        return {"ladder": {"bijection": entries}, "trend": {"bijection": fit}}

    def answer(*verdicts, direction=None):
        return ladder.reading(rec(*verdicts, direction=direction), "bijection")[0]

    assert ladder.reading(rec("partly reproduced"), "bijection") is None  # nothing above the default yet
    assert answer("reproduced", "reproduced", "partly reproduced", direction="flat") == "holds at the default budget"
    assert answer("not reproduced", "partly reproduced", "reproduced", direction="flat") == \
        "the default budget was too small"
    assert answer("not reproduced", "not reproduced", "not reproduced", direction="toward the paper") == \
        "likely the budget, not settled"
    assert answer("not reproduced", "not reproduced", "not reproduced", direction="away") == "the claim, at these budgets"
    assert answer("not reproduced", "not reproduced") == "too few rungs to say"
    nearer = ladder.reading(rec("not reproduced", "partly reproduced", "not reproduced", direction="flat"), "bijection")
    assert nearer[0] == "the claim, at these budgets"
    assert "reproduced on no rung up to 100x its compute (partly reproduced on the rung 1 rung)" in nearer[1]
    assert "(its interval holds zero)" in nearer[1]


def test_the_first_page_counts_verdicts_per_paper_and_groups_claims_by_the_ladders_answer(claims_here):
    names = [n for n in profiles.ladder("smoke")["bijection"] if n != "default"]
    g3 = claims.record("G3", {"slope_over_eta": 1.0}, "smoke", seeds=1, ci95=(1, 1), details={})
    assert "compute ladder" not in claims.findings_markdown([c7(0.35, seeds=2), g3])  # no rung measured yet
    for i, name in enumerate(names):
        c7(0.3 - 0.1 * i, rung=f"bijection: {name}")
    default = c7(0.35, seeds=2)
    text = claims.findings_markdown([default, g3])
    assert text.startswith("|  | Paper I | Paper II |") and "| claims measured | 1 | 1 |" in text
    assert f"| {claims.badge('partly reproduced')} | 1 | " in text and f"| {claims.badge('not reproduced')} | 0 | " in text
    assert "| the default budget was too small | C7 (bijection) |" in text
    entries = default["ladder"]["bijection"]
    assert ladder.reach([default]) == {"bijection": pytest.approx(entries[-1]["flops"] / entries[0]["flops"])}
    assert f"up to {entries[-1]['flops'] / entries[0]['flops']:.0f}x (bijection) the default's compute" in text
    assert f"1/{ladder.paper_flops('bijection') / entries[0]['flops']:.0f} (bijection)" in text


def test_a_list_in_words():
    assert [claims.listed(items) for items in ([], ["a"], ["a", "b"], ["a", "b", "c"])] == ["", "a", "a and b", "a, b and c"]
