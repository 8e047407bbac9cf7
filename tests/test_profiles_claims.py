import json

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


def test_ledger_counts_and_lists_every_record(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CLAIMS", tmp_path / "claims")
    claims.record("C1", values(0.005, 3), "default", seeds=3, ci95=(0.004, 0.006), details={})
    page = claims.ledger_markdown(claims.load_records())
    assert page.startswith("1 claims measured: 0 reproduced, 1 partly reproduced, 0 not reproduced.")
    assert "not yet measured: C2" in page and "| C1 |" in page and "**partly reproduced**" in page
    assert "0.005 bits" in page and "{doc}`01_bijection`" in page


@pytest.mark.parametrize("task", [Bijection(V=20, L=19), HMM(K=20, K_max=50), Recall(),
                                  Recall(n_pairs=16, n_keys=64, n_values=64)], ids=lambda t: repr(t))
def test_mamba_and_lstm_can_be_sized_to_a_transformer(task):
    target = profiles.count_params(ModelConfig(d_model=64, n_layers=2, n_heads=4, d_mlp=256), task)
    mamba = profiles.match_params(ModelConfig(arch="mamba", n_layers=2), task, target, mlp_ratio=2, tol=0.05)
    lstm = profiles.match_params(ModelConfig(arch="lstm", n_layers=2), task, target, mlp_ratio=1, tol=0.05)
    for cfg in (mamba, lstm):
        assert abs(profiles.count_params(cfg, task) - target) <= 0.05 * target, cfg
