"""Figures from measured arrays: restyling a figure never retrains anything.

Each function takes plain arrays or dicts of them and returns a matplotlib Figure.
"""
import matplotlib

matplotlib.use("agg")  # same output with or without a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

STYLE = {"figure.dpi": 110, "savefig.dpi": 110, "axes.spines.top": False, "axes.spines.right": False,
         "axes.grid": True, "grid.alpha": 0.3, "font.size": 10, "legend.frameon": False}
# One name per trained model across the book: the profile's key -> what a reader sees.
LABELS = {"transformer": "transformer", "transformer_sampled": "transformer (sampled labels)",
          "mlp_flat": "flat MLP", "mlp_flat_sampled": "flat MLP (sampled labels)",
          "mlp_local": "per-position MLP", "lstm": "LSTM",
          "transformer_attn_off": "transformer, top-2 attention off"}
COLORS = {"Bayes": "black", "transformer": "C0", "transformer (sampled labels)": "C9",
          "flat MLP": "C1", "flat MLP (sampled labels)": "C3", "per-position MLP": "C2", "LSTM": "C4",
          "transformer, top-2 attention off": "C5", "uniform": "0.5"}


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
    return fig


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
    return fig


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
    return fig


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A Markdown table (rendered by Jupyter and by the book alike)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
