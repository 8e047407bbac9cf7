"""Figures from measured arrays: restyling a figure never retrains anything.

Each function takes plain arrays or dicts of them and returns a matplotlib Figure, drawn at the
width of the book's text column in seaborn's style, with no text too small to read there.
"""
import itertools
import re
import sys

import matplotlib.pyplot as plt  # headless runs fall back to the agg backend by themselves
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.cm import ScalarMappable
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.text import Text
from matplotlib.ticker import FuncFormatter, NullFormatter

DPI = 110
# The book's text column is 672 CSS px wide (1280 px window). A notebook shows a figure as a PNG
# of what is drawn plus savefig.pad_inches (0.1 in) each side, at DPI px per inch, and the column
# shrinks a wider PNG to fit. A 6 in figure makes a PNG of at most 682 px, shown at >= 98.5%.
COLUMN_PX = 672
COLUMN_INCHES = 6.0
# A text of s pt is s * DPI / 72 * min(1, COLUMN_PX / PNG width in px) CSS px high in the book
# (rendered_text_px): 8 pt is 12 px here, a third above the 9 px we want at the least.
MIN_TEXT_PT = 8
# seaborn's look and its "notebook" sizes (text 11-12 pt), only inside `with plt.style.context`:
# importing this module restyles nobody else's figures.
STYLE = {**sns.axes_style("whitegrid"), **sns.plotting_context("notebook"), "figure.dpi": DPI, "savefig.dpi": DPI,
         "axes.spines.top": False, "axes.spines.right": False, "legend.frameon": False,
         "legend.columnspacing": 1.0}  # half the default: two columns of long labels fit the column
# One name per trained model across the book: the profile's key -> what a reader sees.
LABELS = {"transformer": "transformer", "transformer_sampled": "transformer (sampled labels)",
          "mlp_flat": "flat MLP", "mlp_flat_sampled": "flat MLP (sampled labels)",
          "mlp_local": "per-position MLP", "lstm": "LSTM", "mamba": "Mamba",
          "transformer_attn_off": "transformer, top-2 attention off",
          "emission_only": "filter ignoring transitions"}
COLORS = {"Bayes": "black", "transformer": "C0", "transformer (sampled labels)": "C9",
          "flat MLP": "C1", "flat MLP (sampled labels)": "C3", "per-position MLP": "C2", "LSTM": "C4", "Mamba": "C6",
          "transformer, top-2 attention off": "C5", "uniform": "0.5",
          "filter ignoring transitions": "0.3"}


def _column(n_panels: int, panel_height: float, ncols: int = 1, own_legends: bool = False,
            **subplots) -> tuple[plt.Figure, list[plt.Axes]]:
    """A column-wide figure of n panels in rows of ncols, each row panel_height inches tall, and
    its axes in reading order. Constrained layout makes room for what sits outside the axes
    (labels, colour bars, legends below). With own_legends each panel is a subfigure of its own,
    so that _legend_below(ax.get_figure(root=False)) can put a legend below every panel."""
    nrows = -(-n_panels // ncols)
    fig = plt.figure(figsize=(COLUMN_INCHES, panel_height * nrows), layout="constrained")
    if own_legends:
        return fig, [sub.subplots(**subplots) for sub in fig.subfigures(n_panels, 1, squeeze=False).flat]
    axes = fig.subplots(nrows, ncols, squeeze=False, **subplots).flatten()
    for ax in axes[n_panels:]:  # an incomplete last row
        ax.remove()
    return fig, list(axes[:n_panels])


def _legend_below(fig, ncols: int = 2, labels=None, **legend):
    """One legend for the axes of fig (a figure or a subfigure), one entry per label (or only
    `labels`), below the axes, where it covers no data."""
    entries = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    shown = [label for label in entries if labels is None or label in labels]
    return fig.legend([entries[label] for label in shown], shown,
                      **{"loc": "outside lower center", "ncols": ncols, **legend})


def _texts(fig: plt.Figure) -> list[Text]:
    """Every text a reader sees: tick labels, axis labels, titles, legends, annotations, colour bars."""
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def rendered_text_px(fig: plt.Figure, column_px: int = COLUMN_PX) -> float:
    """CSS px height of the figure's smallest text in the book's column (see MIN_TEXT_PT)."""
    fig.draw_without_rendering()  # lays the figure out, so that its drawn extent is final
    png_px = (fig.get_tightbbox().width + 2 * plt.rcParams["savefig.pad_inches"]) * fig.dpi
    return min(t.get_fontsize() for t in _texts(fig)) * fig.dpi / 72 * min(1, column_px / png_px)


def _detached(fig: plt.Figure) -> plt.Figure:
    """The finishing step of every figure. Check that it fits the column, draws nothing outside
    itself and has no text below MIN_TEXT_PT (ValueError naming the figure's function otherwise).
    Then unregister it from pyplot, so that a notebook shows it once, when a cell returns it, and
    not a second time through the inline backend."""
    plt.close(fig)
    name = sys._getframe(1).f_code.co_name  # the plotting function that made the figure
    fig.draw_without_rendering()  # lays the figure out, so that its drawn extent is final
    drawn, (width, height) = fig.get_tightbbox(), fig.get_size_inches()
    if width > COLUMN_INCHES + 1e-9:
        raise ValueError(f"{name}: the figure is {width:.2f} in wide, more than the column's {COLUMN_INCHES} in")
    pixel = 1 / fig.dpi
    if drawn.x0 < -pixel or drawn.y0 < -pixel or drawn.x1 > width + pixel or drawn.y1 > height + pixel:
        raise ValueError(f"{name}: something is drawn outside the {width:.2f} x {height:.2f} in figure: "
                         f"extent {drawn.x0:.2f}..{drawn.x1:.2f} x {drawn.y0:.2f}..{drawn.y1:.2f} in")
    small = [t for t in _texts(fig) if t.get_fontsize() < MIN_TEXT_PT]
    if small:
        raise ValueError(f"{name}: text smaller than {MIN_TEXT_PT} pt: "
                         + ", ".join(f"{t.get_text()!r} ({t.get_fontsize():g} pt)" for t in small))
    return fig


def _color(label: str):
    return COLORS.get(label)


def entropy_by_position(position: np.ndarray, bayes: np.ndarray, model_entropy: dict[str, np.ndarray],
                        model_error: dict[str, np.ndarray], xlabel: str) -> plt.Figure:
    """Top: each model's mean predictive entropy beside the Bayes entropy, per position.
    Bottom: per-sample entropy error per position (log scale)."""
    with plt.style.context(STYLE):
        fig, (top, bottom) = _column(2, 2.8, sharex=True)
        top.plot(position, bayes, "k--", lw=2, label="Bayes", zorder=5)
        for label, h in model_entropy.items():
            top.plot(position, h, "o-", ms=3, color=_color(label), label=label)
        top.set(ylabel="entropy (bits)", title="Entropy of the prediction")
        for label, err in model_error.items():
            bottom.semilogy(position, err, "o-", ms=3, color=_color(label), label=label)
        bottom.set(xlabel=xlabel, ylabel="|H(model) - H(Bayes)|", title="Per-sample entropy error (bits)")
        _legend_below(fig)
    return _detached(fig)


def error_by_position(position: np.ndarray, errors: dict[str, np.ndarray], trained_up_to: int,
                      ylabel: str, title: str = "") -> plt.Figure:
    """Per-position error curves (log scale), with the positions seen in training shaded."""
    with plt.style.context(STYLE):
        fig, (ax,) = _column(1, 4.3)
        ax.axvspan(position[0] - 0.5, trained_up_to - 0.5, color="0.92", label="trained lengths")
        for label, err in errors.items():
            ax.semilogy(position, err, "o-", ms=3, color=_color(label), label=label)
        ax.set(xlabel="observation t", ylabel=ylabel, title=title)
        _legend_below(fig)
    return _detached(fig)


def _level_labels(ax: plt.Axes, levels: dict[str, float]):
    """Dotted horizontal levels, each named at the left or right edge, just above or just below
    its line: of all such placements, the one where no two names cover each other and the drawn
    curves cross the names least (never above a line near the top, where the name would run off
    the axes). Call after all data is drawn."""
    curves = list(ax.get_lines())  # the data, and any level drawn before (e.g. a baseline at 1)
    for level in levels.values():
        ax.axhline(level, ls=":", color="0.4")
    ax.autoscale_view()  # the final limits, which place the names
    to_axes = ax.transData + ax.transAxes.inverted()
    # each curve's height in axes fractions at 200 points across the axes (nan outside its steps);
    # through each line's own transform, since a level's x is already in axes fractions
    grid = np.linspace(0, 1, 200)
    heights = []
    for line in curves:
        xy = line.get_xydata()
        xy = (line.get_transform() - ax.transAxes).transform(xy[np.isfinite(xy).all(axis=1)])
        if len(xy):
            heights.append(np.interp(grid, xy[:, 0], xy[:, 1], left=np.nan, right=np.nan))

    def crossings(side, low, high):
        across = (grid < 0.35) if side == 0 else (grid > 0.65)
        return sum(int(np.sum(across & (h > low) & (h < high))) for h in heights)

    spots = []  # per name: every (side, above, low, high, crossings), its box in axes fractions
    for level in levels.values():
        y = to_axes.transform((ax.get_xlim()[0], level))[1]
        boxes = [(side, up, *((y, y + 0.09) if up else (y - 0.09, y))) for side in (0, 1)
                 for up in (True, False) if not (up and y > 0.9)]
        spots.append([(*box, crossings(box[0], *box[2:])) for box in boxes])

    def cost(choice):  # the curves' crossings, and any two names covering each other above all
        covered = sum(a[0] == b[0] and a[2] < b[3] and b[2] < a[3] for i, a in enumerate(choice) for b in choice[i + 1:])
        return 10_000 * covered + sum(spot[4] for spot in choice)

    best = min(itertools.product(*spots), key=cost)  # ties: the first, every name left above
    for (text, level), (side, up, *_) in zip(levels.items(), best):
        ax.annotate(text, (side, level), xycoords=("axes fraction", "data"), textcoords="offset points",
                    xytext=(4 if side == 0 else -4, 3 if up else -3), va="bottom" if up else "top",
                    ha="left" if side == 0 else "right", fontsize="small", color="0.3")


def learning_curves(curves: dict[str, list[tuple[np.ndarray, np.ndarray]]], ylabel: str,
                    reference: dict[str, float] | None = None) -> plt.Figure:
    """One line per (model, seed) against training step, log scale; dotted reference levels."""
    with plt.style.context(STYLE):
        fig, (ax,) = _column(1, 3.6)
        for label, runs in curves.items():
            for i, (step, value) in enumerate(runs):
                ax.semilogy(step, value, color=_color(label), alpha=0.8, label=label if i == 0 else None)
        _level_labels(ax, reference or {})
        ax.set(xlabel="training step", ylabel=ylabel)
        _legend_below(fig)
    return _detached(fig)


# A number that rounded to zero but kept its minus sign: "-0", "-0.00", "-0%".
MINUS_ZERO = re.compile(r"(?<![\w.])-(?=0(?:\.0+)?(?![\d.]))")


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A Markdown table (rendered by Jupyter and by the book alike). A "|" inside a cell, as in
    |cos|, is escaped: bare, it would end the cell and break the table. A number formatted to
    zero loses its minus sign ("-0.00" reads as a sign that is not there)."""
    cell = lambda c: MINUS_ZERO.sub("", str(c)).replace("|", "\\|")  # noqa: E731
    row = lambda cells: "| " + " | ".join(map(cell, cells)) + " |"  # noqa: E731
    return "\n".join([row(header), "|" + "---|" * len(header), *map(row, rows)])


# Chapter 5 (Paper II): the positive-feedback regression and the EM-vs-SGD loss curves.
ARM_COLORS = {"sgd": "C3", "em_like": "C0", "uniform": "C2", "w_o": "C1", "prototype": "C4"}


def positive_feedback(regressor: np.ndarray, response: np.ndarray, eta: float, etas: np.ndarray,
                      slope: np.ndarray, ci: np.ndarray, band: tuple[float, float]) -> plt.Figure:
    """Top: change in advantage (per unit eta) against a_ij |u_i|^2, both row-demeaned, with the
    self-term prediction (slope 1) and the fitted slope. Bottom: fitted slope / eta against eta,
    with its 95% interval and the claim's band."""
    with plt.style.context(STYLE):
        fig, (top, bottom) = _column(2, 3.3, own_legends=True)
        keep = np.random.default_rng(0).permutation(len(regressor))[:4000]
        top.scatter(regressor[keep], response[keep] / eta, s=3, alpha=0.3, color="0.4", label="(query, value) pairs")
        xs = np.linspace(regressor.min(), regressor.max(), 2)
        top.plot(xs, xs, "k--", label="self term only: slope 1")
        top.plot(xs, slope[0] * xs, color="C3", label=f"fitted: slope {slope[0]:.2f}")
        top.set(xlabel=r"$a_{ij}\,\|u_i\|^2$ (row-demeaned)", ylabel=r"$\Delta A_{ij} / \eta$ (row-demeaned)",
                title=fr"One value step, $\eta$ = {eta:g}")
        bottom.axhspan(*band, color="C2", alpha=0.15, label=f"claim band [{band[0]:g}, {band[1]:g}]")
        bottom.errorbar(etas, slope, yerr=np.abs(ci.T - slope), fmt="o-", color="C3", capsize=3,
                        label="fitted slope / eta")
        bottom.axhline(1.0, ls="--", color="k", lw=1)
        bottom.set(xscale="log", xlabel=r"step size $\eta$", ylabel=r"slope / $\eta$", title="Slope against step size")
        _legend_below(top.get_figure(root=False), markerscale=3)  # the scatter's dots, large enough to see
        _legend_below(bottom.get_figure(root=False))
    return _detached(fig)


def em_curves(budget: dict[str, np.ndarray], long: dict, labels: dict[str, str], floor: float, start: float,
              threshold: float, long_floor: np.ndarray, long_test_floor: np.ndarray) -> plt.Figure:
    """Top: training loss of every arm over the paper's budget, mean over seeds (band: min to
    max), with the Bayes floor, the uniform predictor and the official threshold. Bottom: the
    long runs (`lib.em_vs_sgd.Curves`) minus their Bayes floor, training sequence (solid) and
    held-out sequence (dotted), on a symmetric log scale (below zero: below the floor)."""
    with plt.style.context(STYLE):
        fig, (top, bottom) = _column(2, 3.4, own_legends=True)
        for name, losses in budget.items():
            steps = np.arange(losses.shape[1])
            top.plot(steps, losses.mean(0), color=ARM_COLORS[name], label=labels[name])
            top.fill_between(steps, losses.min(0), losses.max(0), color=ARM_COLORS[name], alpha=0.15, lw=0)
        for level, text, style in ((start, "uniform predictor (ln 8)", ":"), (floor, "Bayes floor", "--"),
                                   (threshold, "official threshold (mean final SGD loss)", "-.")):
            top.axhline(level, ls=style, color="0.3", lw=1, label=text)  # names on the plot collide: levels are close
        top.set(xlabel="full-batch step", ylabel="training loss (nats)", title="The paper's budget")
        for name, curves in long.items():
            loss, test = curves.loss.numpy(), curves.test_loss.numpy()
            for i in range(loss.shape[0]):
                bottom.plot(np.arange(loss.shape[1]), loss[i] - long_floor[i], color=ARM_COLORS[name],
                            label=labels[name] if i == 0 else None)
                bottom.plot(curves.eval_every * np.arange(test.shape[1]), test[i] - long_test_floor[i], ":",
                            color=ARM_COLORS[name])
        bottom.plot([], [], ":", color="0.3", label="dotted: held-out sequence")  # one key for every arm's dotted line
        bottom.axhline(0, color="k", lw=1)
        bottom.axvline(budget[next(iter(budget))].shape[1] - 1, ls=":", color="0.3", lw=1)
        bottom.set_yscale("symlog", linthresh=0.01)
        bottom.set(xlabel="full-batch step", ylabel="loss - Bayes floor (nats)", title="A longer budget")
        for ax in (top, bottom):
            _legend_below(ax.get_figure(root=False))
    return _detached(fig)


# Chapter 3 (geometry): the value manifold, attention focusing and ablations.

def value_manifold(panels: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], max_points: int = 4000) -> plt.Figure:
    """One scatter per panel title: (pc [n, 2] scores, entropy [n] bits, explained variance
    ratios), points on PC1-PC2 coloured by the Bayes entropy."""
    with plt.style.context(STYLE):
        fig, axes = _column(len(panels), 2.4)
        for ax, (title, (pc, entropy, explained)) in zip(axes, panels.items()):
            keep = np.random.default_rng(0).permutation(len(pc))[:max_points]
            points = ax.scatter(pc[keep, 0], pc[keep, 1], c=entropy[keep], s=4, cmap="viridis", alpha=0.7)
            ax.set(xlabel=f"PC1 ({explained[0]:.0%})", ylabel=f"PC2 ({explained[1]:.0%})", title=title)
            fig.colorbar(points, ax=ax, label="H_Bayes (bits)")
    return _detached(fig)


def focusing_heatmap(panels: dict[str, np.ndarray], xlabel: dict[str, str]) -> plt.Figure:
    """One heat-map per panel title: normalised attention entropy [layer, head, query],
    rows = (layer, head), columns = prediction position; one colour bar for all (same 0-1 scale)."""
    with plt.style.context(STYLE | {"axes.grid": False}):
        fig, axes = _column(len(panels), 2.6)
        # below the panels, the long label fits the width whatever their height
        fig.colorbar(ScalarMappable(Normalize(0, 1), "magma"), ax=axes, location="bottom", aspect=40,
                     label="attention entropy / log2(visible positions)")
        for ax, title in zip(axes, panels):
            ax.set(title=title, xlabel=xlabel[title])
        fig.draw_without_rendering()  # the panels' final size, to which seaborn thins the tick labels
        for ax, (title, entropy) in zip(axes, panels.items()):
            n_layers, n_heads, n_positions = entropy.shape
            rows = pd.DataFrame(entropy.reshape(n_layers * n_heads, n_positions),
                                index=[f"L{l}H{h}" for l in range(n_layers) for h in range(n_heads)],
                                columns=pd.RangeIndex(n_positions, name=xlabel[title]))  # seaborn's x label
            sns.heatmap(rows, ax=ax, cmap="magma", vmin=0, vmax=1, cbar=False)
            ax.tick_params(axis="y", rotation=0)
            ax.hlines(np.arange(1, n_layers) * n_heads, 0, n_positions, color="white", lw=1)  # between layers
    return _detached(fig)


def ablation_bars(panels: dict[str, dict[str, np.ndarray]], threshold: float) -> plt.Figure:
    """One bar chart per panel title: {condition: per-seed MAE ratios} as the mean over seeds
    (horizontal bars, log scale) with the seeds as dots, and the claim's threshold dotted."""
    with plt.style.context(STYLE):
        heights = [0.6 + 0.3 * len(ratios) for ratios in panels.values()]  # room for every bar's label
        fig, axes = _column(len(panels), np.mean(heights), height_ratios=heights)
        for ax, (title, ratios) in zip(axes, panels.items()):
            y = np.arange(len(ratios))
            ax.barh(y, [r.mean() for r in ratios.values()], color="C0", alpha=0.6)
            for i, r in enumerate(ratios.values()):
                ax.plot(r, np.full(len(r), i), "k.", ms=5)
            ax.axvline(threshold, ls=":", color="C3", label=f"claim's threshold: {threshold:g}x")
            ax.axvline(1, color="0.4", lw=1, label="intact model: 1x")
            ax.set_xscale("log")
            ax.set_yticks(y, list(ratios))
            ax.set(ylim=(len(ratios) - 0.5, -0.5), xlabel="MAE ablated / MAE intact", title=title)
        _legend_below(fig)
    return _detached(fig)


# Chapter 7 (Paper III): a pretrained LLM's value geometry, keys, focusing, SULA, interventions.

def value_pc1_scatter(panels: dict[str, tuple[np.ndarray, np.ndarray, float, float]]) -> plt.Figure:
    """One panel per prompt set: next-token entropy against the prompt's standardised PC1
    score; the title gives the PC1 share and Spearman rho. panels: name -> (pc1, entropy, share, rho)."""
    with plt.style.context(STYLE):
        fig, axes = _column(len(panels), 2.6)
        for ax, (name, (pc1, entropy, share, rho)) in zip(axes, panels.items()):
            ax.scatter(pc1, entropy, s=14, alpha=0.7)
            ax.set(xlabel="PC1 score (standardised values)", ylabel="next-token entropy (bits)",
                   title=f"{name}: PC1 {share:.1%}, Spearman {rho:+.2f}")
    return _detached(fig)


def layer_profiles(key_cos: dict[str, dict[str, np.ndarray]], key_reference: dict[str, float],
                   attention: dict[str, dict[str, np.ndarray]]) -> plt.Figure:
    """Per model (one colour each; its variants in line styles), against relative depth (0 the
    first layer, 1 the last), so that models of different depths share an axis. Top: mean |cos|
    between W_K columns per layer ({model: {"trained": [n_layers], ...}}) with reference levels.
    Bottom: normalised final-query attention entropy per layer ({model: {"all keys": ..., ...}})."""
    with plt.style.context(STYLE):
        fig, (top, bottom) = _column(2, 3.6, own_legends=True)
        for ax, series in ((top, key_cos), (bottom, attention)):
            for i, (model, variants) in enumerate(series.items()):
                for (variant, y), style in zip(variants.items(), ("-", "--")):
                    ax.plot(np.linspace(0, 1, len(y)), y, "o", ls=style, ms=3, color=f"C{i}", label=f"{model}, {variant}")
        for (label, level), style in zip(key_reference.items(), (":", "-.", (0, (1, 3)))):
            top.axhline(level, color="0.4", ls=style, lw=1, label=label)
        top.set(xlabel="relative depth (0: first layer, 1: last)", ylabel="mean |cos|",
                title="Key orthogonality: |cos| between W_K columns")
        bottom.set(xlabel="relative depth (0: first layer, 1: last)", ylabel="entropy / log2 T",
                   title="Final-query attention entropy", ylim=(0, 1))
        for ax in (top, bottom):
            _legend_below(ax.get_figure(root=False), ncols=1)
    return _detached(fig)


def sula_by_k(by_model: dict[str, dict[str, dict[int, dict]]]) -> plt.Figure:
    """A column per model ({model: {condition: {k: {"h_model", "h_bayes", "mass"}}}}). Top: mean
    model entropy over the two labels per k and condition, with the Bayes entropy. Bottom: median
    probability mass the model puts on the two labels."""
    with plt.style.context(STYLE):
        fig, axes = _column(2 * len(by_model), 3.0, ncols=len(by_model), sharex=True)
        top, bottom = axes[:len(by_model)], axes[len(by_model):]
        for t, b, (model, by_k) in zip(top, bottom, by_model.items()):
            for i, (condition, rows) in enumerate(by_k.items()):
                ks, color = sorted(rows), f"C{i}"  # one colour per condition: model solid, Bayes dashed
                t.plot(ks, [rows[k]["h_model"] for k in ks], "o-", color=color, label=f"model, {condition}")
                t.plot(ks, [rows[k]["h_bayes"] for k in ks], "x--", color=color, alpha=0.6, label=f"Bayes, {condition}")
                b.plot(ks, [rows[k]["mass"] for k in ks], "o-", color=color)
            t.set(ylabel="entropy (bits)", title=model, ylim=(0, 1.05))
            b.set(xlabel="k (labelled examples)", ylabel="mass on the labels", ylim=(0, 1))
        _legend_below(fig, ncols=3)
    return _detached(fig)


def axis_vs_random(panels: dict[str, tuple[np.ndarray, float, str]]) -> plt.Figure:
    """One panel per intervention: the random axes' effects (histogram) and the entropy axis's
    (vertical line). panels: title -> (random effects, true effect, x label)."""
    with plt.style.context(STYLE):
        fig, axes = _column(len(panels), 2.7)
        for ax, (title, (random, true, xlabel)) in zip(axes, panels.items()):
            ax.hist(random, bins=min(20, max(5, len(random))), color="0.6", label="random axes")
            ax.axvline(true, color="C3", lw=2, label="entropy axis")
            ax.set(xlabel=xlabel, ylabel="count", title=title)
        _legend_below(fig)
    return _detached(fig)


# Chapter 6 (training dynamics): the frame settles, the precision keeps improving.

FRAME_COLORS = {"attention similarity": "C0", "key subspace overlap": "C9", "key orthogonality": "C2",
                "gradient ratio": "C4"}
PRECISION_COLORS = {"entropy MAE": "C3", "KL": "C1", "PC1 share": "C5", "|Spearman(PC1, H)|": "C6",
                    "low-entropy resolution": "C8"}


def frame_precision(panels: dict[str, dict], level: float = 0.9) -> plt.Figure:
    """One panel per title: {"steps": [n], "progress": {metric: [seed, n]}, "frame_step": [seed],
    "precision_step": [seed]}. Each metric's progress from its initial (0) to its final value
    (1) on a log-step axis, mean over seeds with the seeds' range shaded; frame metrics solid,
    precision metrics dashed; dotted lines at the settling steps (median over seeds)."""
    with plt.style.context(STYLE):
        fig, axes = _column(len(panels), 3.5, sharey=True)
        for ax, (title, p) in zip(axes, panels.items()):
            steps = p["steps"][1:]  # step 0 (initialisation) has progress 0 by definition and no log position
            for name, curves in p["progress"].items():
                frame = name in FRAME_COLORS
                color = FRAME_COLORS[name] if frame else PRECISION_COLORS[name]
                ax.plot(steps, curves[:, 1:].mean(0), color=color, ls="-" if frame else "--", lw=1.8, label=name)
                ax.fill_between(steps, curves[:, 1:].min(0), curves[:, 1:].max(0), color=color, alpha=0.12, lw=0)
            for key, color in (("frame_step", "C0"), ("precision_step", "C3")):
                ax.axvline(np.median(p[key]), color=color, ls=":", lw=1.2)
            ax.axhline(level, color="0.5", lw=0.8)
            ax.set(xscale="log", title=title, xlabel="training step (log)", ylim=(-0.6, 1.3))
        fig.supylabel("progress: 0 at initialisation, 1 at the end", fontsize="medium")
        # the two families side by side below the panels, each in a legend of its own
        _legend_below(fig, ncols=1, labels=FRAME_COLORS, loc="outside lower left", title="frame (solid)")
        _legend_below(fig, ncols=1, labels=PRECISION_COLORS, loc="outside lower right", title="precision (dashed)")
    return _detached(fig)


def unfurling(panels: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]], title: str,
              max_points: int = 3000) -> plt.Figure:
    """Small multiples of the value manifold over training, one per step in rows of three: (pc
    [n, 2], entropy [n], explained variance ratios), PC1-PC2 of that checkpoint's own PCA,
    coloured by H_Bayes on one scale for all panels."""
    with plt.style.context(STYLE):
        fig, axes = _column(len(panels), 2.3, ncols=3)
        norm = Normalize(min(e.min() for _, e, _ in panels.values()), max(e.max() for _, e, _ in panels.values()))
        for ax, (step, (pc, entropy, explained)) in zip(axes, panels.items()):
            keep = np.random.default_rng(0).permutation(len(pc))[:max_points]
            points = ax.scatter(pc[keep, 0], pc[keep, 1], c=entropy[keep], s=3, cmap="viridis", norm=norm, alpha=0.7)
            ax.set(title=f"step {step}", xlabel=f"PC1 ({explained[0]:.0%})", ylabel=f"PC2 ({explained[1]:.0%})",
                   xticks=[], yticks=[])
        fig.colorbar(points, ax=axes, label="H_Bayes (bits)", location="bottom", shrink=0.6, aspect=30)
        fig.suptitle(title, fontsize="medium")
    return _detached(fig)


# Chapter 4 (architectures): the primitives matrix, learning curves per task, recall scaling.
CELL_COLORS = {"tick": "#4c9a2a", "~": "#e6a700", "cross": "#c0392b"}
CELL_SYMBOLS = {"tick": "\u2713", "~": "~", "cross": "\u2717"}


def primitive_matrices(ours: dict[str, list[str]], r: dict[str, list[float]], paper: dict[str, list[str]],
                       columns: list[str], row_labels: dict[str, str]) -> plt.Figure:
    """Top: our architecture x primitive matrix, each cell coloured by its grade with r
    written in it; a heavy border marks a cell that differs from the paper's. Bottom: the
    paper's matrix."""
    rows, grades = list(paper), list(CELL_COLORS)
    with plt.style.context(STYLE | {"axes.grid": False}):
        fig, axes = _column(2, 0.7 + 0.45 * len(rows))
        for ax, (title, cells) in zip(axes, (("ours", ours), ("paper (v3)", paper))):
            text = [[CELL_SYMBOLS[cell] + (f"   r = {r[arch][j]:.2g}" if cells is ours else "")
                     for j, cell in enumerate(cells[arch])] for arch in rows]
            sns.heatmap([[grades.index(cell) for cell in cells[arch]] for arch in rows], ax=ax,
                        cmap=ListedColormap(list(CELL_COLORS.values())), vmin=-0.5, vmax=len(grades) - 0.5,
                        alpha=0.75, cbar=False, linewidths=2, annot=np.array(text), fmt="",
                        annot_kws={"color": "black"}, xticklabels=columns, yticklabels=[row_labels[a] for a in rows])
            for i, arch in enumerate(rows):
                for j, cell in enumerate(cells[arch]):
                    if cells is ours and cell != paper[arch][j]:
                        ax.add_patch(plt.Rectangle((j + 0.04, i + 0.08), 0.92, 0.84, fill=False, lw=2.5, ec="black"))
            ax.set_title(title)
            ax.tick_params(length=0, rotation=0)
    return _detached(fig)


def learning_curves_by_task(panels: dict[str, dict[str, list[tuple[np.ndarray, np.ndarray]]]],
                            levels: dict[str, float], ylabel: str) -> plt.Figure:
    """One panel per task: one line per (model, seed) against training step, log scale, with
    dotted horizontal levels (e.g. the grading cut-offs) and r = 1 (the baseline) solid."""
    with plt.style.context(STYLE):
        fig, axes = _column(len(panels), 2.5)
        for ax, (title, curves) in zip(axes, panels.items()):
            for label, runs in curves.items():
                for i, (step, value) in enumerate(runs):
                    ax.semilogy(step, value, color=_color(label), alpha=0.8, label=label if i == 0 else None)
            ax.axhline(1.0, color="0.4", lw=1)
            _level_labels(ax, levels)
            ax.set(xlabel="training step", title=title)
        fig.supylabel(ylabel, fontsize="medium")
        _legend_below(fig, ncols=4)
    return _detached(fig)


def recall_scaling(n_pairs: np.ndarray, accuracy: dict[str, np.ndarray], chance: float) -> plt.Figure:
    """Top-1 recall accuracy against the number of stored pairs, one line per model, with
    chance (1 / n_values) dotted and 1 / n_pairs dashed (a model that knows which values were
    stored but not which key each was bound to)."""
    with plt.style.context(STYLE):
        fig, (ax,) = _column(1, 3.6)
        for label, acc in accuracy.items():
            ax.plot(n_pairs, acc, "o-", color=_color(label), label=label)
        ax.axhline(chance, ls=":", color="0.4", label=f"chance (1/{round(1 / chance)})")
        ax.plot(n_pairs, 1 / n_pairs, "--", color="0.6", label="1 / stored pairs")
        ax.set_xscale("log", base=2)
        ax.set_xticks(n_pairs, [str(n) for n in n_pairs])
        ax.set(xlabel="stored key-value pairs", ylabel="top-1 accuracy", ylim=(0, 1.05))
        _legend_below(fig)
    return _detached(fig)


def state_clusters(panels: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], max_points: int = 4000) -> plt.Figure:
    """One scatter per panel title: (pc [n, 2] scores, state [n] most probable hidden state,
    explained variance ratios), points on PC1-PC2 coloured by the state."""
    with plt.style.context(STYLE):
        fig, axes = _column(len(panels), 2.7)
        for ax, (title, (pc, state, explained)) in zip(axes, panels.items()):
            keep = np.random.default_rng(0).permutation(len(pc))[:max_points]
            for s in np.unique(state):
                here = keep[state[keep] == s]
                ax.scatter(pc[here, 0], pc[here, 1], s=4, alpha=0.6, color=f"C{s}", label=f"state {s}")
            ax.set(xlabel=f"PC1 ({explained[0]:.0%})", ylabel=f"PC2 ({explained[1]:.0%})", title=title)
        _legend_below(fig, ncols=5, markerscale=3)
    return _detached(fig)


# Chapter 8 (the compute ladder): one claim's quantity against training compute.
AXIS_MARKERS = {"default": "*", "steps": "o", "width": "s"}  # the default runs, and the ladder's two axes


def compute_ladder(panels: dict[str, dict]) -> plt.Figure:
    """One panel per task of a claim (lib.ladder.panels, titled with the quantity in words): each
    rung's value against its training
    FLOPs (log axis), with its 95% interval over seeds where it has more than one seed (hollow:
    one seed); the fitted trend, dashed beyond the rungs as an extrapolation to the paper's
    compute; the registered threshold (dotted red), the paper's value (dashed grey) and the
    paper's own training compute (vertical)."""
    with plt.style.context(STYLE):
        fig, axes = _column(len(panels), 2.9)
        for ax, (title, p) in zip(axes, panels.items()):
            for e in p["points"]:
                marker, one = AXIS_MARKERS[e["axis"]], e["interval"] is None
                if not one:
                    ax.plot([e["flops"]] * 2, e["interval"], color="C0", lw=1.5)
                ax.plot(e["flops"], e["value"], marker, ms=11 if marker == "*" else 7, color="C0",
                        mfc="white" if one else "C0", label=f"{e['axis']} rung" + (", one seed" if one else ""))
            if p["trend"]:
                fit, xs = p["trend"], np.array(p["fit_range"])
                ys = fit["intercept"] + fit["slope"] * np.log10(xs)
                ys = 10 ** ys if fit["scale"] == "log10" else ys
                ax.plot(xs[:2], ys[:2], color="C1", lw=1.5, label=f"trend: {fit['direction']}")
                ax.plot(xs[1:], ys[1:], color="C1", lw=1.5, ls="--", label="trend, extrapolated")
            ax.axhline(p["threshold"], color="C3", ls=":", lw=1.5, label="registered threshold")
            if p["paper"] is not None:
                ax.axhline(p["paper"], color="0.4", ls="--", lw=1, label="paper's value")
            ax.axvline(p["paper_flops"], color="0.4", lw=1, label="paper's training compute")
            ax.set(xscale="log", yscale="log" if p["log"] else "linear", title=title)
            if p["log"]:  # plain numbers (0.01, 2, 10) rather than powers of ten on the value axis
                ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                ax.yaxis.set_minor_formatter(NullFormatter())
        axes[-1].set_xlabel("training compute (FLOPs, 6 x parameters x tokens)")
        _legend_below(fig)
    return _detached(fig)
