"""Figures from measured arrays: restyling a figure never retrains anything.

Each function takes plain arrays or dicts of them and returns a matplotlib Figure.
"""
import matplotlib.pyplot as plt  # headless runs fall back to the agg backend by themselves
import numpy as np

STYLE = {"figure.dpi": 110, "savefig.dpi": 110, "axes.spines.top": False, "axes.spines.right": False,
         "axes.grid": True, "grid.alpha": 0.3, "font.size": 10, "legend.frameon": False}
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


def _detached(fig: plt.Figure) -> plt.Figure:
    """Unregister the figure from pyplot, so that a notebook shows it once, when a cell
    returns it, and not a second time through the inline backend."""
    plt.close(fig)
    return fig


def _color(label: str):
    return COLORS.get(label)


def entropy_by_position(position: np.ndarray, bayes: np.ndarray, model_entropy: dict[str, np.ndarray],
                        model_error: dict[str, np.ndarray], xlabel: str) -> plt.Figure:
    """Left: each model's mean predictive entropy beside the Bayes entropy, per position.
    Right: per-sample entropy error per position (log scale)."""
    with plt.style.context(STYLE):
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
        left.plot(position, bayes, "k--", lw=2, label="Bayes", zorder=5)
        for label, h in model_entropy.items():
            left.plot(position, h, "o-", ms=3, color=_color(label), label=label)
        left.set(xlabel=xlabel, ylabel="predictive entropy (bits)", title="Entropy of the prediction")
        left.legend()
        for label, err in model_error.items():
            right.semilogy(position, err, "o-", ms=3, color=_color(label), label=label)
        right.set(xlabel=xlabel, ylabel="|H(model) - H(Bayes)| (bits)", title="Per-sample entropy error")
        right.legend()
        fig.tight_layout()
    return _detached(fig)


def error_by_position(position: np.ndarray, errors: dict[str, np.ndarray], trained_up_to: int,
                      ylabel: str, title: str = "") -> plt.Figure:
    """Per-position error curves (log scale), with the positions seen in training shaded."""
    with plt.style.context(STYLE):
        fig, ax = plt.subplots(figsize=(7, 3.8))
        ax.axvspan(position[0] - 0.5, trained_up_to - 0.5, color="0.92", label="trained lengths")
        for label, err in errors.items():
            ax.semilogy(position, err, "o-", ms=3, color=_color(label), label=label)
        ax.set(xlabel="observation t", ylabel=ylabel, title=title)
        ax.legend()
        fig.tight_layout()
    return _detached(fig)


def learning_curves(curves: dict[str, list[tuple[np.ndarray, np.ndarray]]], ylabel: str,
                    reference: dict[str, float] | None = None) -> plt.Figure:
    """One line per (model, seed) against training step, log scale; dotted reference levels."""
    with plt.style.context(STYLE):
        fig, ax = plt.subplots(figsize=(6.5, 3.8))
        for label, runs in curves.items():
            for i, (step, value) in enumerate(runs):
                ax.semilogy(step, value, color=_color(label), alpha=0.8, label=label if i == 0 else None)
        for label, level in (reference or {}).items():
            ax.axhline(level, ls=":", color="0.4")
            ax.annotate(label, (ax.get_xlim()[0], level), textcoords="offset points", xytext=(4, 3),
                        fontsize=8, color="0.3")
        ax.set(xlabel="training step", ylabel=ylabel)
        ax.legend()
        fig.tight_layout()
    return _detached(fig)


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A Markdown table (rendered by Jupyter and by the book alike). A "|" inside a cell, as in
    |cos|, is escaped: bare, it would end the cell and break the table."""
    row = lambda cells: "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"  # noqa: E731
    return "\n".join([row(header), "|" + "---|" * len(header), *map(row, rows)])


# Chapter 5 (Paper II): the positive-feedback regression and the EM-vs-SGD loss curves.
ARM_COLORS = {"sgd": "C3", "em_like": "C0", "uniform": "C2", "w_o": "C1", "prototype": "C4"}


def positive_feedback(regressor: np.ndarray, response: np.ndarray, eta: float, etas: np.ndarray,
                      slope: np.ndarray, ci: np.ndarray, band: tuple[float, float]) -> plt.Figure:
    """Left: change in advantage (per unit eta) against a_ij |u_i|^2, both row-demeaned, with the
    self-term prediction (slope 1) and the fitted slope. Right: fitted slope / eta against eta,
    with its 95% interval and the claim's band."""
    with plt.style.context(STYLE):
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
        keep = np.random.default_rng(0).permutation(len(regressor))[:4000]
        left.scatter(regressor[keep], response[keep] / eta, s=3, alpha=0.3, color="0.4", label="(query, value) pairs")
        xs = np.linspace(regressor.min(), regressor.max(), 2)
        left.plot(xs, xs, "k--", label="self term only: slope 1")
        left.plot(xs, slope[0] * xs, color="C3", label=f"fitted: slope {slope[0]:.2f}")
        left.set(xlabel=r"$a_{ij}\,\|u_i\|^2$ (row-demeaned)", ylabel=r"$\Delta A_{ij} / \eta$ (row-demeaned)",
                 title=fr"One value step, $\eta$ = {eta:g}")
        left.legend()
        right.axhspan(*band, color="C2", alpha=0.15, label=f"claim band [{band[0]:g}, {band[1]:g}]")
        right.errorbar(etas, slope, yerr=np.abs(ci.T - slope), fmt="o-", color="C3", capsize=3, label="fitted slope / eta")
        right.axhline(1.0, ls="--", color="k", lw=1)
        right.set(xscale="log", xlabel=r"step size $\eta$", ylabel=r"slope / $\eta$", title="Slope against step size")
        right.legend()
        fig.tight_layout()
    return _detached(fig)


def em_curves(budget: dict[str, np.ndarray], long: dict, labels: dict[str, str], floor: float, start: float,
              threshold: float, long_floor: np.ndarray, long_test_floor: np.ndarray) -> plt.Figure:
    """Left: training loss of every arm over the paper's budget, mean over seeds (band: min to
    max), with the Bayes floor, the uniform predictor and the official threshold. Right: the
    long runs (`lib.em_vs_sgd.Curves`) minus their Bayes floor, training sequence (solid) and
    held-out sequence (dotted), on a symmetric log scale (below zero: below the floor)."""
    with plt.style.context(STYLE):
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
        for name, losses in budget.items():
            steps = np.arange(losses.shape[1])
            left.plot(steps, losses.mean(0), color=ARM_COLORS[name], label=labels[name])
            left.fill_between(steps, losses.min(0), losses.max(0), color=ARM_COLORS[name], alpha=0.15, lw=0)
        for level, text, style in ((start, "uniform predictor (ln 8)", ":"), (floor, "Bayes floor", "--"),
                                   (threshold, "official threshold (mean final SGD loss)", "-.")):
            left.axhline(level, ls=style, color="0.3", lw=1)
            left.annotate(text, (0, level), textcoords="offset points", xytext=(4, 3), fontsize=8, color="0.3")
        left.set(xlabel="full-batch step", ylabel="training loss (nats)", title="The paper's budget")
        left.legend(fontsize=8, loc="center right")
        for name, curves in long.items():
            loss, test = curves.loss.numpy(), curves.test_loss.numpy()
            for i in range(loss.shape[0]):
                label = labels[name] if i == 0 else None
                right.plot(np.arange(loss.shape[1]), loss[i] - long_floor[i], color=ARM_COLORS[name], label=label)
                right.plot(curves.eval_every * np.arange(test.shape[1]), test[i] - long_test_floor[i], ":",
                           color=ARM_COLORS[name], label=f"{label}, held out" if label else None)
        right.axhline(0, color="k", lw=1)
        right.axvline(budget[next(iter(budget))].shape[1] - 1, ls=":", color="0.3", lw=1)
        right.set_yscale("symlog", linthresh=0.01)
        right.set(xlabel="full-batch step", ylabel="loss - Bayes floor (nats)", title="A longer budget")
        right.legend(fontsize=8)
        fig.tight_layout()
    return _detached(fig)


# Chapter 3 (geometry): the value manifold, attention focusing and ablations.

def value_manifold(panels: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], max_points: int = 4000) -> plt.Figure:
    """One scatter per panel title: (pc [n, 2] scores, entropy [n] bits, explained variance
    ratios), points on PC1-PC2 coloured by the Bayes entropy."""
    with plt.style.context(STYLE):
        fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False)
        for ax, (title, (pc, entropy, explained)) in zip(axes[0], panels.items()):
            keep = np.random.default_rng(0).permutation(len(pc))[:max_points]
            points = ax.scatter(pc[keep, 0], pc[keep, 1], c=entropy[keep], s=4, cmap="viridis", alpha=0.7)
            ax.set(xlabel=f"PC1 ({explained[0]:.0%})", ylabel=f"PC2 ({explained[1]:.0%})", title=title)
            fig.colorbar(points, ax=ax, label="H_Bayes (bits)")
        fig.tight_layout()
    return _detached(fig)


def focusing_heatmap(panels: dict[str, np.ndarray], xlabel: dict[str, str]) -> plt.Figure:
    """One heat-map per panel title: normalised attention entropy [layer, head, query],
    rows = (layer, head), columns = prediction position."""
    with plt.style.context(STYLE | {"axes.grid": False}):
        fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False)
        for ax, (title, entropy) in zip(axes[0], panels.items()):
            n_layers, n_heads, _ = entropy.shape
            image = ax.imshow(entropy.reshape(n_layers * n_heads, -1), aspect="auto", cmap="magma", vmin=0, vmax=1,
                              interpolation="nearest")
            ax.set_yticks(range(n_layers * n_heads), [f"L{l}H{h}" for l in range(n_layers) for h in range(n_heads)],
                          fontsize=7)
            for boundary in range(1, n_layers):
                ax.axhline(boundary * n_heads - 0.5, color="white", lw=1)
            ax.set(xlabel=xlabel[title], title=title)
            fig.colorbar(image, ax=ax, label="attention entropy / log2(visible positions)")
        fig.tight_layout()
    return _detached(fig)


def ablation_bars(panels: dict[str, dict[str, np.ndarray]], threshold: float) -> plt.Figure:
    """One bar chart per panel title: {condition: per-seed MAE ratios} as the mean over seeds
    (bars, log scale) with the seeds as dots, and the claim's threshold dotted."""
    with plt.style.context(STYLE):
        fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False)
        for ax, (title, ratios) in zip(axes[0], panels.items()):
            x = np.arange(len(ratios))
            ax.bar(x, [r.mean() for r in ratios.values()], color="C0", alpha=0.6)
            for i, r in enumerate(ratios.values()):
                ax.plot(np.full(len(r), i), r, "k.", ms=4)
            ax.axhline(threshold, ls=":", color="C3", label=f"{threshold:g}x")
            ax.axhline(1, color="0.4", lw=1)
            ax.set_yscale("log")
            ax.set_xticks(x, list(ratios), rotation=60, ha="right", fontsize=8)
            ax.set(ylabel="MAE ablated / MAE intact", title=title)
            ax.legend()
        fig.tight_layout()
    return _detached(fig)


# Chapter 7 (Paper III): a pretrained LLM's value geometry, keys, focusing, SULA, interventions.

def value_pc1_scatter(panels: dict[str, tuple[np.ndarray, np.ndarray, float, float]]) -> plt.Figure:
    """One panel per prompt set: next-token entropy against the prompt's standardised PC1
    score; the title gives the PC1 share and Spearman rho. panels: name -> (pc1, entropy, share, rho)."""
    with plt.style.context(STYLE):
        fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
        for ax, (name, (pc1, entropy, share, rho)) in zip(axes[0], panels.items()):
            ax.scatter(pc1, entropy, s=14, alpha=0.7)
            ax.set(xlabel="PC1 score (standardised values)", ylabel="next-token entropy (bits)",
                   title=f"{name}: PC1 {share:.1%}, Spearman {rho:+.2f}")
        fig.tight_layout()
    return _detached(fig)


def layer_profiles(key_cos: dict[str, np.ndarray], key_reference: dict[str, float],
                   attention: dict[str, np.ndarray]) -> plt.Figure:
    """Left: mean |cos| between W_K columns per layer (trained, random init) with reference
    levels. Right: normalised final-query attention entropy per layer (with and without the
    first key)."""
    with plt.style.context(STYLE):
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
        for label, y in key_cos.items():
            left.plot(np.arange(len(y)), y, "o-", ms=3, label=label)
        for (label, level), style in zip(key_reference.items(), (":", "--", "-.")):
            left.axhline(level, color="0.4", ls=style, lw=1, label=label)
        left.set(xlabel="layer", ylabel="mean |cos| of W_K columns", title="Key orthogonality")
        left.legend(fontsize=8)
        for label, y in attention.items():
            right.plot(np.arange(len(y)), y, "o-", ms=3, label=label)
        right.set(xlabel="layer", ylabel="attention entropy / log2 T", title="Final-query attention entropy",
                  ylim=(0, 1))
        right.legend(fontsize=8)
        fig.tight_layout()
    return _detached(fig)


def sula_by_k(by_k: dict[str, dict[int, dict]]) -> plt.Figure:
    """Left: mean model entropy over the two labels per k and condition, with the Bayes entropy.
    Right: median probability mass the model puts on the two labels."""
    with plt.style.context(STYLE):
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
        for i, (condition, rows) in enumerate(by_k.items()):
            ks, color = sorted(rows), f"C{i}"  # one colour per condition: model solid, Bayes dashed
            left.plot(ks, [rows[k]["h_model"] for k in ks], "o-", color=color, label=f"model, {condition}")
            left.plot(ks, [rows[k]["h_bayes"] for k in ks], "x--", color=color, alpha=0.6, label=f"Bayes, {condition}")
            right.plot(ks, [rows[k]["mass"] for k in ks], "o-", color=color, label=condition)
        left.set(xlabel="k (labelled examples)", ylabel="entropy over the two labels (bits)", title="SULA")
        left.legend(fontsize=7)
        right.set(xlabel="k (labelled examples)", ylabel="median p(label 1) + p(label 2)", ylim=(0, 1),
                  title="Mass on the two labels")
        right.legend(fontsize=8)
        fig.tight_layout()
    return _detached(fig)


def axis_vs_random(panels: dict[str, tuple[np.ndarray, float, str]]) -> plt.Figure:
    """One panel per intervention: the random axes' effects (histogram) and the entropy axis's
    (vertical line). panels: title -> (random effects, true effect, x label)."""
    with plt.style.context(STYLE):
        fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
        for ax, (title, (random, true, xlabel)) in zip(axes[0], panels.items()):
            ax.hist(random, bins=min(20, max(5, len(random))), color="0.6", label="random axes")
            ax.axvline(true, color="C3", lw=2, label="entropy axis")
            ax.set(xlabel=xlabel, ylabel="count", title=title)
            ax.legend(fontsize=8)
        fig.tight_layout()
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
        fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.2), squeeze=False, sharey=True)
        for ax, (title, p) in zip(axes[0], panels.items()):
            steps = p["steps"][1:]  # step 0 (initialisation) has progress 0 by definition and no log position
            for name, curves in p["progress"].items():
                frame = name in FRAME_COLORS
                color = FRAME_COLORS[name] if frame else PRECISION_COLORS[name]
                ax.plot(steps, curves[:, 1:].mean(0), color=color, ls="-" if frame else "--", lw=1.8,
                        label=f"{name} ({'frame' if frame else 'precision'})")
                ax.fill_between(steps, curves[:, 1:].min(0), curves[:, 1:].max(0), color=color, alpha=0.12, lw=0)
            for key, color in (("frame_step", "C0"), ("precision_step", "C3")):
                ax.axvline(np.median(p[key]), color=color, ls=":", lw=1.2)
            ax.axhline(level, color="0.5", lw=0.8)
            ax.set(xscale="log", title=title, xlabel="training step (log)", ylim=(-0.6, 1.3))
        axes[0][0].set_ylabel("progress: 0 at initialisation, 1 at the end")
        axes[0][-1].legend(fontsize=8, loc="lower right")
        fig.tight_layout()
    return _detached(fig)


def unfurling(panels: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]], title: str,
              max_points: int = 3000) -> plt.Figure:
    """Small multiples of the value manifold over training, one per step: (pc [n, 2], entropy [n],
    explained variance ratios), PC1-PC2 of that checkpoint's own PCA, coloured by H_Bayes."""
    with plt.style.context(STYLE):
        fig, axes = plt.subplots(1, len(panels), figsize=(2.7 * len(panels), 3.0), squeeze=False)
        for ax, (step, (pc, entropy, explained)) in zip(axes[0], panels.items()):
            keep = np.random.default_rng(0).permutation(len(pc))[:max_points]
            points = ax.scatter(pc[keep, 0], pc[keep, 1], c=entropy[keep], s=3, cmap="viridis", alpha=0.7)
            ax.set(title=f"step {step}", xlabel=f"PC1 ({explained[0]:.0%})", ylabel=f"PC2 ({explained[1]:.0%})",
                   xticks=[], yticks=[])
        fig.colorbar(points, ax=axes[0].tolist(), label="H_Bayes (bits)", fraction=0.02)
        fig.suptitle(title, y=1.02)
    return _detached(fig)


# Chapter 4 (architectures): the primitives matrix, learning curves per task, recall scaling.
CELL_COLORS = {"tick": "#4c9a2a", "~": "#e6a700", "cross": "#c0392b"}
CELL_SYMBOLS = {"tick": "\u2713", "~": "~", "cross": "\u2717"}


def primitive_matrices(ours: dict[str, list[str]], r: dict[str, list[float]], paper: dict[str, list[str]],
                       columns: list[str], row_labels: dict[str, str]) -> plt.Figure:
    """Left: our architecture x primitive matrix, each cell coloured by its grade with r
    written in it; a heavy border marks a cell that differs from the paper's. Right: the
    paper's matrix."""
    rows = list(paper)
    with plt.style.context(STYLE | {"axes.grid": False}):
        fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.4))
        for ax, (title, cells) in zip(axes, (("ours", ours), ("paper (v3)", paper))):
            for i, arch in enumerate(rows):
                for j, cell in enumerate(cells[arch]):
                    differs = cells is ours and cell != paper[arch][j]
                    ax.add_patch(plt.Rectangle((j, i), 1, 1, color=CELL_COLORS[cell], alpha=0.75))
                    if differs:
                        ax.add_patch(plt.Rectangle((j + 0.04, i + 0.04), 0.92, 0.92, fill=False, lw=2.5, ec="black"))
                    text = CELL_SYMBOLS[cell] + (f"\nr = {r[arch][j]:.2g}" if cells is ours else "")
                    ax.text(j + 0.5, i + 0.5, text, ha="center", va="center", fontsize=11 if cells is ours else 16)
            ax.set(xlim=(0, len(columns)), ylim=(len(rows), 0), title=title)
            ax.set_xticks(np.arange(len(columns)) + 0.5, columns)
            ax.set_yticks(np.arange(len(rows)) + 0.5, [row_labels[a] for a in rows])
            ax.tick_params(length=0)
        fig.tight_layout()
    return _detached(fig)


def learning_curves_by_task(panels: dict[str, dict[str, list[tuple[np.ndarray, np.ndarray]]]],
                            levels: dict[str, float], ylabel: str) -> plt.Figure:
    """One panel per task: one line per (model, seed) against training step, log scale, with
    dotted horizontal levels (e.g. the grading cut-offs) and r = 1 (the baseline) solid."""
    with plt.style.context(STYLE):
        fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 3.8), squeeze=False)
        for ax, (title, curves) in zip(axes[0], panels.items()):
            for label, runs in curves.items():
                for i, (step, value) in enumerate(runs):
                    ax.semilogy(step, value, color=_color(label), alpha=0.8, label=label if i == 0 else None)
            ax.axhline(1.0, color="0.4", lw=1)
            for text, level in levels.items():
                ax.axhline(level, ls=":", color="0.4")
                ax.annotate(text, (0, level), xycoords=("axes fraction", "data"), textcoords="offset points",
                            xytext=(4, 3), fontsize=8, color="0.3")
            ax.set(xlabel="training step", title=title)
        axes[0][0].set_ylabel(ylabel)
        axes[0][-1].legend(fontsize=8)
        fig.tight_layout()
    return _detached(fig)


def recall_scaling(n_pairs: np.ndarray, accuracy: dict[str, np.ndarray], chance: float) -> plt.Figure:
    """Top-1 recall accuracy against the number of stored pairs, one line per model, with
    chance (1 / n_values) dotted and 1 / n_pairs dashed (a model that knows which values were
    stored but not which key each was bound to)."""
    with plt.style.context(STYLE):
        fig, ax = plt.subplots(figsize=(6.5, 3.8))
        for label, acc in accuracy.items():
            ax.plot(n_pairs, acc, "o-", color=_color(label), label=label)
        ax.axhline(chance, ls=":", color="0.4", label=f"chance (1/{round(1 / chance)})")
        ax.plot(n_pairs, 1 / n_pairs, "--", color="0.6", label="1 / stored pairs")
        ax.set_xscale("log", base=2)
        ax.set_xticks(n_pairs, [str(n) for n in n_pairs])
        ax.set(xlabel="stored key-value pairs", ylabel="top-1 accuracy", ylim=(0, 1.05))
        ax.legend(fontsize=8)
        fig.tight_layout()
    return _detached(fig)


def state_clusters(panels: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], max_points: int = 4000) -> plt.Figure:
    """One scatter per panel title: (pc [n, 2] scores, state [n] most probable hidden state,
    explained variance ratios), points on PC1-PC2 coloured by the state."""
    with plt.style.context(STYLE):
        fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 3.8), squeeze=False)
        for ax, (title, (pc, state, explained)) in zip(axes[0], panels.items()):
            keep = np.random.default_rng(0).permutation(len(pc))[:max_points]
            for s in np.unique(state):
                here = keep[state[keep] == s]
                ax.scatter(pc[here, 0], pc[here, 1], s=4, alpha=0.6, color=f"C{s}", label=f"state {s}")
            ax.set(xlabel=f"PC1 ({explained[0]:.0%})", ylabel=f"PC2 ({explained[1]:.0%})", title=title)
        axes[0][-1].legend(fontsize=8, markerscale=3)
        fig.tight_layout()
    return _detached(fig)
