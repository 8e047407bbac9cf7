import torch

from lib import stats


def test_bootstrap_ci_covers_the_mean_and_shrinks_with_more_sequences():
    gen = torch.Generator().manual_seed(0)
    values = torch.randn(400, generator=gen, dtype=torch.float64) * 0.1 + 1.0
    lo, hi = stats.bootstrap_ci(values)
    assert lo < values.mean().item() < hi
    lo4, hi4 = stats.bootstrap_ci(torch.cat([values] * 4))
    torch.testing.assert_close(hi4 - lo4, (hi - lo) / 2, rtol=0.2, atol=0)  # 4x the data, half the width


def test_bootstrap_ci_widens_with_seed_to_seed_spread():
    gen = torch.Generator().manual_seed(1)
    noise = torch.randn(3, 400, generator=gen, dtype=torch.float64) * 0.01
    agreeing = 1.0 + noise
    disagreeing = agreeing + torch.tensor([[0.0], [0.1], [0.2]], dtype=torch.float64)
    lo, hi = stats.bootstrap_ci(agreeing)
    lo_d, hi_d = stats.bootstrap_ci(disagreeing)
    assert hi_d - lo_d > 5 * (hi - lo)
    assert lo_d < disagreeing.mean().item() < hi_d
    assert lo_d >= disagreeing.mean(1).min().item() - 0.01 and hi_d <= disagreeing.mean(1).max().item() + 0.01


def test_degradation_shape_tells_a_ramp_from_a_cliff():
    ramp = [0.0] * 5 + [0.01 * i for i in range(1, 31)]
    cliff = [0.0] * 20 + [0.3] * 15
    r, c = stats.degradation_shape(ramp, 4), stats.degradation_shape(cliff, 4)
    assert abs(r["spearman"] - 1) < 1e-12 and abs(r["largest_step_fraction"] - 1 / 30) < 1e-9
    assert c["largest_step_fraction"] == 1.0 and c["spearman"] < 0.9
