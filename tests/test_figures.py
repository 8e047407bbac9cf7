"""Every figure of lib/plotting.py fits the book's column with readable text and legends off the
data: each public figure function called with small synthetic inputs shaped as its chapter
passes them (labels as long as the book's)."""
import inspect

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.legend import Legend

from lib import em_vs_sgd, plotting
from lib.plotting import LABELS

rng = np.random.default_rng(0)


def _curves(n_seeds=2, n=30):
    """[(steps, values)] per seed: a falling learning curve."""
    steps = np.arange(0, 30 * n, 30)
    return [(steps, np.exp(-steps / 300) + 0.01 * (s + 1)) for s in range(n_seeds)]


def _cloud(n=300):
    """(pc [n, 2], entropy [n], explained ratios) of a value manifold."""
    entropy = rng.uniform(0, 4.2, n)
    return np.c_[entropy + rng.normal(0, 0.3, n), rng.normal(0, 1, n)], entropy, np.array([0.41, 0.12, 0.05])


def _progress(names, n_seeds=2, n=12):
    """frame_precision's panel: progress curves from 0 to 1 on a log-step grid."""
    steps = np.r_[0, np.geomspace(10, 3000, n - 1)].astype(int)
    rise = lambda rate: 1 - np.exp(-steps / rate)  # noqa: E731
    return {"steps": steps, "progress": {m: np.stack([rise(100 * (i + 1) * (s + 1)) for s in range(n_seeds)])
                                         for i, m in enumerate(names)},
            "frame_step": [100, 150], "precision_step": [1500, 2000]}


def _em_curves():
    arms = em_vs_sgd.arms(10.0)
    budget = {name: np.log(8) * np.exp(-np.arange(101) / 40)[None] + 0.5 + 0.01 * np.arange(3)[:, None]
              for name in arms}
    loss = torch.tensor(0.6 + np.exp(-np.arange(401) / 80)[None].repeat(2, 0))
    long = {name: em_vs_sgd.Curves(loss, loss, loss, loss[:, ::100] + 0.05, eval_every=100)
            for name in ("sgd", "em_like")}
    return plotting.em_curves(budget, long, {name: a.label for name, a in arms.items()}, 0.55, np.log(8), 0.6,
                              np.full(2, 0.6), np.full(2, 0.6))


ETAS = np.array([0.01, 0.03, 0.1, 0.3])
PAPER_MATRIX = {"transformer": ["tick", "tick", "tick"], "mamba": ["tick", "tick", "~"],
                "lstm": ["tick", "~", "cross"], "mlp_flat": ["cross", "cross", "cross"]}
FRAME = [*plotting.FRAME_COLORS]
PRECISION = [*plotting.PRECISION_COLORS]

# name -> a call as its chapter makes it
CASES = {
    "entropy_by_position": lambda: plotting.entropy_by_position(
        np.arange(19), np.log2(20 - np.arange(19)),
        {LABELS[n]: np.log2(20 - np.arange(19)) * 0.95 for n in ("transformer", "transformer_sampled", "mlp_flat",
                                                                  "mlp_flat_sampled", "mlp_local")},
        {LABELS[n]: np.geomspace(0.3, 0.001, 19) * (i + 1) for i, n in enumerate(
            ("transformer", "transformer_sampled", "mlp_flat", "mlp_flat_sampled", "mlp_local"))},
        xlabel="query position t (pairs observed)"),
    "error_by_position": lambda: plotting.error_by_position(
        np.arange(50), {LABELS.get(n, n): np.geomspace(0.01, 0.5, 50) * (i + 1) for i, n in enumerate(
            ("transformer", "transformer_attn_off", "mlp_flat", "lstm", "uniform"))},
        trained_up_to=20, ylabel="|H(model) - H(Bayes)| (bits)"),
    "learning_curves": lambda: plotting.learning_curves(
        {LABELS[n]: _curves() for n in ("transformer", "transformer_sampled", "mlp_flat", "mlp_flat_sampled")},
        "entropy error (bits)", {"uniform": 1.2, "C1 threshold": 0.01}),
    "positive_feedback": lambda: plotting.positive_feedback(
        rng.normal(0, 1, 500), rng.normal(0, 0.01, 500), 0.01, ETAS, np.array([1.3, 1.25, 1.2, 1.1]),
        np.array([[1.2, 1.4], [1.15, 1.35], [1.1, 1.3], [1.0, 1.2]]), (0.5, 2.0)),
    "em_curves": _em_curves,
    "value_manifold": lambda: plotting.value_manifold(
        {"bijection (canonical)": _cloud(), "bijection with replacement (sawtooth)": _cloud(), "HMM (K=20)": _cloud()}),
    "focusing_heatmap": lambda: plotting.focusing_heatmap(
        {"bijection (canonical)": rng.uniform(0, 1, (2, 4, 19)), "HMM (K=20)": rng.uniform(0, 1, (4, 4, 20))},
        {"bijection (canonical)": "query position t (pairs observed)", "HMM (K=20)": "observation t"}),
    "ablation_bars": lambda: plotting.ablation_bars(
        {task: {f"{mode}, layer {layer}": rng.uniform(1, 300, 3)
                for mode in ("skip block", "zero attention", "zero MLP") for layer in range(n_layers)}
         for task, n_layers in (("bijection (canonical)", 2), ("HMM (K=20)", 4))},
        threshold=10),
    "value_pc1_scatter": lambda: plotting.value_pc1_scatter(
        {name: (rng.normal(0, 1, 60), rng.uniform(0, 6, 60), 0.366, rho)
         for name, rho in (("mixed", 0.59), ("math", -0.51))}),
    "layer_profiles": lambda: plotting.layer_profiles(
        {"SmolLM2-135M-Instruct": {"trained": rng.uniform(0.05, 0.3, 30), "random init": rng.uniform(0.02, 0.05, 30)},
         "Gemma-3-270M": {"trained": rng.uniform(0.05, 0.3, 18), "random init": rng.uniform(0.02, 0.05, 18)}},
        {"random directions in R^576": 0.033, "random directions in R^640": 0.032, "paper's 'random' level (0.35)": 0.35},
        {"SmolLM2-135M-Instruct": {"all keys": np.linspace(0.9, 0.3, 30), "first key removed": np.linspace(0.95, 0.6, 30)},
         "Gemma-3-270M": {"all keys": np.linspace(0.9, 0.4, 18), "first key removed": np.linspace(0.95, 0.7, 18)}}),
    "sula_by_k": lambda: plotting.sula_by_k(
        {model: {c: {k: {"h_model": 1 / (k + 1.5), "h_bayes": 1 / (k + 1), "mass": 0.9} for k in (0, 1, 2, 4, 8)}
                 for c in ("main", "remap", "shuffled")} for model in ("SmolLM2-135M-Instruct", "Gemma-3-270M")}),
    "axis_vs_random": lambda: plotting.axis_vs_random(
        {"shift at the last layer": (rng.normal(0, 0.02, 50), 0.12, "entropy change, +1 sigma minus -1 sigma (bits)"),
         "cut at five layers": (rng.normal(0, 0.01, 50), 0.004, "change of SULA MAE (bits)")}),
    "frame_precision": lambda: plotting.frame_precision(
        {"bijection elimination": _progress(FRAME + PRECISION),
         "HMM filtering (K=20)": _progress(FRAME + PRECISION[:4])}),
    "unfurling": lambda: plotting.unfurling(
        {step: _cloud() for step in (0, 30, 100, 300, 1000, 3000)},
        "bijection, seed 0: final-layer value vectors over training"),
    "primitive_matrices": lambda: plotting.primitive_matrices(
        {**PAPER_MATRIX, "lstm": ["tick", "tick", "cross"]}, {a: [0.012, 0.34, 0.97] for a in PAPER_MATRIX},
        PAPER_MATRIX, ["accumulation", "transport", "binding"], {a: LABELS[a] for a in PAPER_MATRIX}),
    "learning_curves_by_task": lambda: plotting.learning_curves_by_task(
        {task: {LABELS[a]: _curves() for a in PAPER_MATRIX}
         for task in ("accumulation (bijection)", "transport (HMM, K=20)", "binding (recall)")},
        {"tick: r ≤ 0.1": 0.1, "~: r ≤ 0.5": 0.5}, "r = error / context-blind error"),
    "recall_scaling": lambda: plotting.recall_scaling(
        np.array([8, 16, 32, 64]), {LABELS[a]: np.array([0.2, 0.9, 0.95, 0.6]) for a in ("transformer", "mamba")},
        chance=1 / 64),
    "compute_ladder": lambda: plotting.compute_ladder({
        "C7, bijection: the layer-0 keys' mean |cos|": {
            "points": [{"flops": f, "value": v, "interval": iv, "axis": a} for f, v, iv, a in (
                (9e12, 0.35, [0.34, 0.36], "default"), (1.8e13, 0.5, None, "steps"), (7e13, 0.45, None, "steps"),
                (3e14, 0.3, None, "width"))],
            "trend": {"slope": -0.05, "intercept": 1.0, "scale": "linear", "direction": "toward the paper"},
            "fit_range": [9e12, 3e14, 7.6e15], "threshold": 0.1, "paper": 0.052, "paper_flops": 7.6e15, "log": False},
        "C1, mlp: the flat MLP's error over the transformer's": {
            "points": [{"flops": 9e12, "value": 1.3, "interval": None, "axis": "width"}], "trend": None,
            "fit_range": [9e12, 9e12, 7.6e15], "threshold": 10, "paper": None, "paper_flops": 7.6e15, "log": True}}),
    "state_clusters": lambda: plotting.state_clusters(
        {LABELS[a]: (rng.normal(0, 1, (300, 2)), rng.integers(0, 5, 300), np.array([0.3, 0.2]))
         for a in ("mamba", "lstm")}),
}


@pytest.fixture(scope="module")
def figures():
    return {name: make() for name, make in CASES.items()}


def test_every_figure_function_has_a_case():
    public = {name for name, f in inspect.getmembers(plotting, inspect.isfunction)
              if not name.startswith("_") and f.__module__ == plotting.__name__
              and inspect.signature(f).return_annotation is plt.Figure}
    assert public == set(CASES)


@pytest.mark.parametrize("name", CASES)
def test_fits_the_column_with_readable_text(figures, name):
    fig = figures[name]
    assert isinstance(fig, plt.Figure)
    assert fig.get_figwidth() <= plotting.COLUMN_INCHES
    assert plotting.rendered_text_px(fig) >= 9


@pytest.mark.parametrize("name", CASES)
def test_legends_cover_no_axes(figures, name):
    """Every legend of every figure sits outside all axes (panels and colour bars); the figures come
    laid out (the finishing step draws them)."""
    fig = figures[name]
    for legend in fig.findobj(Legend):
        box = legend.get_window_extent()
        for ax in fig.axes:
            overlap = matplotlib.transforms.Bbox.intersection(box, ax.get_window_extent())
            assert overlap is None or overlap.width * overlap.height < 1, (legend.texts[0].get_text(), ax.get_title())


def test_heatmap_row_labels_do_not_collide():
    """At the paper profile's size (9 layers x 8 heads) the row labels are thinned, not piled up."""
    fig = plotting.focusing_heatmap({"HMM": rng.uniform(0, 1, (9, 8, 20))}, {"HMM": "observation t"})
    fig.draw_without_rendering()
    boxes = sorted((t.get_window_extent() for t in fig.axes[0].get_yticklabels() if t.get_text()), key=lambda b: b.y0)
    assert len(boxes) > 3
    assert all(lower.y1 <= upper.y0 for lower, upper in zip(boxes, boxes[1:]))


def test_the_style_stays_inside_the_figures():
    """Importing lib.plotting sets no global theme, and making a figure leaves rcParams as they were."""
    assert plt.rcParams["font.size"] == matplotlib.rcParamsDefault["font.size"] != plotting.STYLE["font.size"]
    before = dict(plt.rcParams)
    CASES["recall_scaling"]()
    assert dict(plt.rcParams) == before


def _annotated(fontsize: float, width: float = plotting.COLUMN_INCHES) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(width, 3), dpi=plotting.DPI)
    ax.annotate("tiny note", (0.5, 0.5), fontsize=fontsize)
    return fig


def test_finishing_step_rejects_small_text():
    with pytest.raises(ValueError, match="'tiny note' \\(6 pt\\)"):
        plotting._detached(_annotated(6))


def test_finishing_step_rejects_a_figure_wider_than_the_column():
    with pytest.raises(ValueError, match="wide"):
        plotting._detached(_annotated(10, width=plotting.COLUMN_INCHES + 1))


def test_finishing_step_passes_a_readable_figure():
    fig = _annotated(10)
    assert plotting._detached(fig) is fig
    assert plotting.rendered_text_px(fig) == pytest.approx(10 * plotting.DPI / 72)


def test_a_table_never_shows_minus_zero_but_keeps_real_signs():
    table = plotting.markdown_table(["a", "b"], [["-0.00", "-0.0001"], ["-0%", "+0.43"], [-0.0, "-0.5 | -0"]])
    assert table.splitlines()[2:] == ["| 0.00 | -0.0001 |", "| 0% | +0.43 |", "| 0.0 | -0.5 \\| 0 |"]


def test_level_names_sit_where_no_curve_crosses_them():
    """A reference level's name goes to the edge and side of its line that the curves and the other
    names leave free: here every curve falls from the uniform level at the left, and one lies on it
    throughout."""
    steps = np.arange(250, 3001, 250)
    curves = {LABELS["transformer"]: [(steps, 0.41 * np.exp(-steps / 600) + 0.085)],
              LABELS["lstm"]: [(steps, np.full(len(steps), 0.41))]}
    fig = plotting.learning_curves(curves, "entropy error (bits)", {"uniform": 0.405, "threshold": 0.2,
                                                                    "a level close by": 0.21})
    names = {t.get_text(): t for t in fig.axes[0].texts}
    assert names["uniform"].xy[0] == 1 and names["uniform"].get_va() == "top"  # right, below: the LSTM lies above
    assert names["threshold"].xy[0] == 1  # the transformer crosses 0.2 on the left
    fig.draw_without_rendering()
    boxes = [t.get_window_extent() for t in names.values()]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    plt.close(fig)
