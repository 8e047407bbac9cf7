import math

import torch

from lib import metrics
from lib.tasks import make_task


def test_entropy_bits_hand_computed():
    p = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.25] * 4, [1.0, 0, 0, 0], [0.5, 0.25, 0.25, 0]], dtype=torch.float64)
    torch.testing.assert_close(metrics.entropy_bits(p), torch.tensor([1.0, 2.0, 0.0, 1.5], dtype=torch.float64))


def test_compare_hand_computed():
    p = torch.tensor([[[0.5, 0.5, 0.0]]], dtype=torch.float64)
    q = torch.tensor([[[0.25, 0.5, 0.25]]], dtype=torch.float64)
    s = metrics.compare(q, p)
    torch.testing.assert_close(s.kl.item(), 0.5 * math.log2(0.5 / 0.25) + 0.5 * math.log2(0.5 / 0.5))
    torch.testing.assert_close(s.tvd.item(), 0.25)
    torch.testing.assert_close(s.invalid_mass.item(), 0.25)
    torch.testing.assert_close(s.entropy_error.item(), 1.5 - 1.0)
    torch.testing.assert_close(s.accuracy.item(), 0.5)
    torch.testing.assert_close(s.bayes_accuracy.item(), 0.5)


def test_uniform_over_the_wrong_values_has_bayes_entropy_but_not_bayes_kl():
    """Why entropy alone is not enough: a predictive uniform over the ruled-out values."""
    p = torch.tensor([[[0.5, 0.5, 0.0, 0.0]]], dtype=torch.float64)
    q = torch.tensor([[[0.0, 0.0, 0.5, 0.5]]], dtype=torch.float64)
    s = metrics.compare(q, p)
    assert s.entropy_error.item() == 0
    assert s.tvd.item() == 1 and s.invalid_mass.item() == 1 and s.kl.item() > 100


def test_cancelling_aggregator_hides_errors_that_per_sample_mae_sees():
    # two sequences at one position, posterior H = 1 bit; one model answer is 1 bit too
    # confident (H = 0), the other 1 bit too unsure (H = 2)
    p = torch.tensor([[[0.5, 0.5, 0, 0]], [[0.5, 0.5, 0, 0]]], dtype=torch.float64)
    q = torch.tensor([[[1.0, 0, 0, 0]], [[0.25, 0.25, 0.25, 0.25]]], dtype=torch.float64)
    s = metrics.compare(q, p).summary()
    assert s["entropy_mae"] == 1.0
    assert s["entropy_mae_cancelling"] == 0.0


def test_uniform_baseline_on_the_bijection_is_the_analytic_value():
    task = make_task("bijection", V=20, L=19)
    batch = task.sample(64, torch.Generator().manual_seed(0))
    analytic = sum(math.log2(20) - math.log2(20 - t) for t in range(19)) / 19
    torch.testing.assert_close(metrics.uniform_scores(batch).summary()["entropy_mae"], analytic)


def test_markdown_table_escapes_a_bar_inside_a_cell():
    from lib.plotting import markdown_table
    table = markdown_table(["step", "|cos|"], [[1, "|x|"]])
    assert table.splitlines() == ["| step | \\|cos\\| |", "|---|---|", "| 1 | \\|x\\| |"]
