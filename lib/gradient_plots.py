"""Figures for the gradient-laws chapter, from measured arrays (the shared style of lib/plotting).

Used by: 05_gradient_laws (G3, G6).
"""
import numpy as np

from lib.plotting import STYLE, plt

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
    return fig


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
    return fig
