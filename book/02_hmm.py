# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# (ch-hmm)=
# # HMM filtering and length generalisation
#
# ```{glue:md} result_box
# :format: myst
# ```
#
# Download this chapter: {download}`the notebook <02_hmm.ipynb>` (executed) or
# {download}`its Python source <02_hmm.py>` (the same cells as text, paired by jupytext).
#
# ## Overview
#
# The second wind tunnel of Paper I asks for *belief transport*: a belief has to be carried
# forward through a transition and updated by each observation. Every sequence draws a fresh
# hidden Markov model with five states and five symbols, writes its transition matrix $T$ and
# emission matrix $E$ into the prompt, and then shows observations $o_0, o_1, \dots$. At each
# observation the model must output the filtering posterior $p(s_t \mid o_0, \dots, o_t)$ over
# the hidden state. The forward algorithm ({prf:ref}`prop-forward`) gives that posterior
# exactly, so again we can score the model against Bayes, sequence by sequence.
#
# This chapter checks three claims (numbers and sources in `lib/claims.py`, printed below):
#
# - **C2**: the transformer matches the filtering posterior at the training length $K=20$.
#   Threshold, fixed before the run: per-sample entropy error at least ten times below the
#   uniform predictor's, and forward KL at most $10^{-3}$ bits.
# - **C3**: trained at $K=20$, it degrades smoothly at $K=30$ and $K=50$. Threshold: the
#   $K=50$ error within a factor 3 of the paper's 0.029 bits, rising steadily past the
#   training length (Spearman $\ge 0.8$) with no cliff (no single step above a quarter of the
#   total rise).
# - **C4**: the same transformer with attention switched off in its top two layers fits
#   $K=20$ but fails at $K=50$. Threshold: its $K=50$ error at least ten times its $K=20$
#   error.
#
# The paper's two HMM numbers, $7.5\times10^{-5}$ and $0.049$ bits, differ by a factor of
# about 650; we show below how two aggregations of the same errors can differ that much, and
# report ours both ways.

# %% tags=["parameters"]
profile = "default"  # smoke (seconds, for tests) | default (laptop CPU) | paper (GPU sizes)
rung = None  # or a compute-ladder rung, e.g. "hmm: 12,000 steps": its runs replace the default ones
example_seed = 0  # in class: which HMM the chapter shows, and feeds to the trained models below (instant)

# %% [markdown]
# We'll need the following imports.

# %% tags=["hide-input"]
import numpy as np
import torch
from IPython.display import Markdown, display
from myst_nb import glue

from lib import cache, claims, evaluation, metrics, plotting, primitives, profiles, stats, train, validate

setup = profiles.c2(profile, rung)
task = setup["runs"]["transformer"][0].task
print(f"profile={profile}: {task.S} states, {task.O} symbols, trained at K={task.K}, "
      f"built for K up to {task.K_max} ({task.seq_len} tokens); device {train.default_device()}")

# %% [markdown]
# ## The task and its exact posterior
#
# Each row of $T$ and $E$ is drawn from a flat Dirichlet, floored at 0.05, and rounded to
# whole hundredths (the authors' generator; the rounding keeps every entry on a grid of 96
# probability tokens). The prompt is a 53-token header, `[TRANS]` and the 25 entries of $T$,
# `[EMIT]` and the 25 entries of $E$, `[SEP]`, followed by `[OBS]` $o_t$ pairs. The
# prediction for step $t$ is read at the symbol $o_t$. Here is one sequence:

# %%
validate.check_seed("example_seed", example_seed)
example = task.sample(1, torch.Generator().manual_seed(example_seed))
T, E, obs = task.decode(example.tokens)
np.set_printoptions(precision=2, suppress=True)
print("T =\n", T[0].numpy(), "\nE =\n", E[0].numpy())
print("observations:", obs[0].tolist())
for t in (0, 1, task.K - 1):
    post = example.posterior[0, t]
    print(f"t={t:2d}: p(s_t | o_0..o_t) = {post.numpy()}, entropy {metrics.entropy_bits(post).item():.3f} bits")

# %% [markdown]
# The filtering posterior follows the forward recursion, which we run in log space in float64.
#
# ```{prf:proposition} The forward recursion
# :label: prop-forward
# Let $\alpha_t(s) = p(s_t = s \mid o_0, \dots, o_t)$, written as a row vector, for an HMM with
# initial distribution $\pi_0$, transition matrix $T$ (rows: from) and emission matrix $E$. Then
#
# $$ \begin{aligned} \alpha_0 &\propto \pi_0 \odot E_{\cdot, o_0}, \\
#    \alpha_t &\propto (\alpha_{t-1} T) \odot E_{\cdot, o_t}, \end{aligned} $$
#
# each normalised to sum to one.
# ```
#
# ```{prf:proof}
# At $t = 0$ this is Bayes' rule with prior $\pi_0$ and likelihood $E_{s, o_0}$. For $t > 0$,
# the Markov property gives the predictive
# $p(s_t = s \mid o_{<t}) = \sum_r \alpha_{t-1}(r)\, T_{r s} = (\alpha_{t-1} T)_s$, and since
# $o_t$ depends on the past only through $s_t$, Bayes' rule with that prior and likelihood
# $E_{s, o_t}$ gives the second line.
# ```
#
# We take a uniform initial distribution $\pi_0$. Note the convention: the recursion starts with
# an *emission*, not a transition. That is what the authors' code does; one summary of the
# paper writes a transition before the first emission, which differs at $t=0$ because
# $T^\top \pi_0$ is not uniform. `tests/test_hmm.py` checks the recursion against a brute-force
# sum over all hidden paths. The model is trained with soft cross-entropy against $\alpha_t$,
# which equals $\mathrm{KL}(\alpha_t \| q_t) + H(\alpha_t)$ and so is minimised at $q_t = \alpha_t$
# ({prf:ref}`thm-posterior`).
#
# ## Models
#
# The transformer is the model of {numref}`Chapter %s <ch-bijection>` with a five-way read-out. Its
# controls, sized to the same parameter count: a flat MLP over the whole prefix (shared
# 8-dimensional token embeddings flattened over positions; with one-hot inputs its first layer
# alone would exceed the budget), an LSTM, and the C4 variant, the same transformer with no
# attention in its top two blocks.

# %% tags=["hide-input"]
runs_cfg = setup["runs"]
sizes = {name: profiles.count_params(cfgs[0].model, task) for name, cfgs in runs_cfg.items()}
display(Markdown(plotting.markdown_table(
    ["model", "parameters", "width", "layers", "steps", "batch", "seeds"],
    [[plotting.LABELS[name], f"{sizes[name]:,}", cfgs[0].model.d_model, cfgs[0].model.n_layers,
      cfgs[0].train.steps, cfgs[0].train.batch_size, len(cfgs)] for name, cfgs in runs_cfg.items()])))

# %% [markdown]
# These are CPU sizes. The authors' HMM transformer has 9 blocks of width 256 (7.4 million
# parameters) and trains for tens of thousands of steps on a GPU; ours has 4 blocks of width 64
# and 3,000 steps, about a quarter of an hour per seed on one core. The verdicts below are
# judged at this budget, and the learning curves at the end show whether more steps would
# still help. `make reproduce PROFILE=paper` runs the authors' sizes.
#
# ## Training, through the cache

# %% tags=["remove-stderr", "hide-input"]
runs = cache.get_or_train_all(runs_cfg)
for name, rs in runs.items():
    print(f"{plotting.LABELS[name]:34s} {len(rs)} run(s), {np.mean([r.steps_per_second for r in rs]):6.1f} steps/s, "
          f"{np.mean([r.train_seconds for r in rs]) / 60:5.1f} min per run when trained")

# %% [markdown]
# ## At the training length: two aggregations, two numbers
#
# Every model is scored on fresh HMMs from seed streams that no training run used, one stream
# per test length. The primary metric is the per-sample entropy error
# $|H(q_t) - H(\alpha_t)|$ averaged over sequences and positions. The "cancelling" column
# first averages the model's and Bayes' entropies over sequences at each position and then
# takes the difference, so that over- and under-confident sequences cancel.
#
# Besides the uniform predictor, one more reference row helps to read the numbers: the
# *filter that ignores transitions*, the same recursion run with a uniform $T$, so that each
# posterior is just the normalised emission column $E_{\cdot, o_t}$. A model at that level
# has learned to read $E$ but carries no belief from one step to the next.

# %% tags=["hide-input"]
K0, K_max = task.K, max(setup["test_K"])
splits = {f"t<{K0}": slice(0, K0), f"t>={K0}": slice(K0, None)}  # positions seen in training, and the rest
batches = evaluation.test_batches(task, setup["test_K"], setup["eval_size"])  # K -> the test batch
scores = evaluation.scores_by_length(runs, task, batches, splits)  # (model, K) -> per seed; cached in data/runs
mae20 = {name: evaluation.across_seeds(scores[name, K0]) for name in [*runs, "emission_only", "uniform"]}
summary20 = {name: evaluation.mean_summary(scores[name, K0]) for name in mae20}
paper = claims.CLAIMS["C2"].paper
paper_value = {"transformer": f"{paper['value']:g} (cancelling or KL); {paper['others']['transformer per-sample (v3)']} per-sample",
               "mlp_flat": f"{paper['others']['MLP']} (MLP)", "lstm": f"{paper['others']['LSTM (v3)']}"}
display(Markdown(plotting.markdown_table(
    ["model", f"entropy error, K={K0} (bits) [95% CI]", "KL(α‖q)", "TVD", "cancelling aggregator", "paper"],
    [[plotting.LABELS.get(name, name), f"{m['mean']:.4f} [{m['ci95'][0]:.4f}, {m['ci95'][1]:.4f}]",
      f"{summary20[name]['kl']:.5f}", f"{summary20[name]['tvd']:.4f}",
      f"{summary20[name]['entropy_mae_cancelling']:.5f}", paper_value.get(name, "")]
     for name, m in mae20.items()])))

# %% tags=["hide-input"]
tr20 = summary20["transformer"]
glue("c2_mae", mae20["transformer"]["mean"], display=False)
glue("c2_kl", tr20["kl"], display=False)
glue("c2_cancelling", tr20["entropy_mae_cancelling"], display=False)
glue("c2_uniform", mae20["uniform"]["mean"], display=False)
glue("c2_ratio", mae20["uniform"]["mean"] / mae20["transformer"]["mean"], display=False)
glue("c2_gap", mae20["transformer"]["mean"] / tr20["entropy_mae_cancelling"], display=False)

# %% [markdown]
# The transformer's per-sample entropy error at $K=20$ is {glue:text}`c2_mae:.4f` bits,
# {glue:text}`c2_ratio:.1f` times below the uniform predictor ({glue:text}`c2_uniform:.3f`
# bits), with forward KL {glue:text}`c2_kl:.5f` bits. The cancelling aggregator gives
# {glue:text}`c2_cancelling:.5f` bits for the *same* predictions, {glue:text}`c2_gap:.1f`
# times smaller, because over- and under-confident sequences cancel.
#
# The example HMM from the start of the chapter, through the trained models (first seed of
# each): at every fourth observation and the last, the filter's entropy, each model's, and
# the total variation distance between the model's predictive and the filter's
# (`example_seed` in the parameters cell picks another HMM).

# %% tags=["hide-input"]
seen = {name: metrics.score(rs[0].model, example) for name, rs in runs.items()}
display(Markdown(plotting.markdown_table(
    ["t", "filter entropy (bits)", *[f"{plotting.LABELS[name]}: {col}" for name in seen for col in ("entropy", "TVD")]],
    [[t, f"{seen['transformer'].entropy_bayes[0, t]:.3f}",
      *[f"{x:.3f}" for sc in seen.values() for x in (sc.entropy_model[0, t], sc.tvd[0, t])]]
     for t in sorted({*range(0, task.K, 4), task.K - 1})])))

# %% [markdown]
# How much smaller depends on how good the model is. To see it without any training, take
# the exact posteriors of the test sequences, add Gaussian noise of scale $\sigma$ to their
# log-probabilities, and score the result both ways:

# %% tags=["hide-input"]
def noisy_posterior(posterior, sigma, seed=0):
    noise = torch.randn(posterior.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return (posterior.log() + sigma * noise).softmax(-1)


aggregation = {}
for sigma in (1.0, 0.3, 0.1, 0.03, 0.01):
    aggregation[sigma] = metrics.compare(noisy_posterior(batches[K0].posterior, sigma), batches[K0].posterior).summary()
display(Markdown(plotting.markdown_table(
    ["noise σ", "KL(α‖q) (bits)", "per-sample entropy error", "cancelling aggregator", "ratio"],
    [[sigma, f"{a['kl']:.1e}", f"{a['entropy_mae']:.1e}", f"{a['entropy_mae_cancelling']:.1e}",
      f"{a['entropy_mae'] / a['entropy_mae_cancelling']:.0f}"] for sigma, a in aggregation.items()])))

# %% [markdown]
# The per-sample error shrinks like the noise scale, the KL and the cancelling aggregator
# like its square, so the ratio between the two aggregations grows as the model improves. A
# model whose KL is of order $10^{-4}$ bits reads as $10^{-4}$ under the cancelling aggregator
# and an order of magnitude or two more per sample. That is the likely origin of the
# paper's two numbers: $7.5\times10^{-5}$ is of the cancelling kind (or a KL, which the
# authors' evaluation script computes while calling it an MAE), and $0.049$ is a per-sample
# error, from another run. They cannot be put side by side. Only the per-sample error and the
# KL measure how far each prediction is from Bayes, and C2 is judged on those.
#
# ## Length generalisation
#
# The model was trained on 20 observations. At $K=30$ and $K=50$ the first 20 positions are
# in distribution and the rest are new; the paper's $K=50$ number averages over all 50, so we
# report the in-distribution and extrapolated averages separately too
# ({numref}`fig-c3-positions`).

# %% tags=["hide-input"]
rows = []
for name in ["transformer", "transformer_attn_off", "mlp_flat", "lstm", "emission_only", "uniform"]:
    row = [plotting.LABELS.get(name, name)]
    for K in setup["test_K"]:
        row.append(f"{evaluation.across_seeds(scores[name, K])['mean']:.4f}")
    row += [f"{evaluation.across_seeds(scores[name, K_max], part)['mean']:.4f}" for part in splits]
    rows.append(row)
display(Markdown(plotting.markdown_table(
    ["model", *[f"K={K}, all positions" for K in setup["test_K"]],
     f"K={max(setup['test_K'])}, t<{K0}", f"K={max(setup['test_K'])}, t≥{K0}"], rows)))

# %% mystnb={"figure": {"caption": "Per-sample entropy error at each observation of K=50 test sequences, averaged over seeds and sequences. Shaded: the positions seen in training.", "name": "fig-c3-positions"}} tags=["hide-input"]
curve = {name: evaluation.per_position(scores[name, K_max])
         for name in ["transformer", "transformer_attn_off", "mlp_flat", "lstm", "uniform"]}
fig = plotting.error_by_position(np.arange(K_max), {plotting.LABELS.get(n, n): c for n, c in curve.items()},
                                 trained_up_to=K0, ylabel="|H(model) - H(Bayes)| (bits)")
fig

# %% tags=["hide-input"]
shape = stats.degradation_shape(curve["transformer"], start=K0 - 1)
k50 = evaluation.across_seeds(scores["transformer", K_max])
glue("c3_k50", k50["mean"], display=False)
glue("c3_k30", evaluation.across_seeds(scores["transformer", 30])["mean"], display=False)
glue("c3_spearman", float(shape["spearman"]), display=False)
glue("c3_step", shape["largest_step_fraction"], display=False)

# %% [markdown]
# Averaged over all 50 positions the transformer's error at $K=50$ is {glue:text}`c3_k50:.4f`
# bits ({glue:text}`c3_k30:.4f` at $K=30$). Past the training length the error rises with a
# Spearman correlation of {glue:text}`c3_spearman:.2f` with position, and its largest
# single-step increase is {glue:text}`c3_step:.2f` of the total rise, where a smooth rise (C3)
# allows a quarter: part of the rise is a jump at the first unseen positions
# ({numref}`fig-c3-positions`). The next section finds where that jump comes from.
#
# **What the model does at positions it never saw.** Positions are learned absolute
# embeddings, one row per position up to $K=50$. Rows past the training length (token 93
# onwards) never receive a gradient from the loss, and AdamW's decoupled weight decay shrinks
# them by only a few percent over a run. So "extrapolation" means running the model with
# small random position vectors, left from initialisation, at every new position. The norms
# show it:

# %% tags=["hide-input"]
trained_len = task.seq_len - 2 * (task.K_max - task.K)  # tokens in a K=20 sequence
norms = np.array([r.model.pos_embed.weight.detach().norm(dim=-1).numpy() for r in runs["transformer"]])
print(f"position-embedding norm (mean over seeds): trained rows {norms[:, :trained_len].mean():.3f}, "
      f"untrained rows {norms[:, trained_len:].mean():.4f}")

# %% [markdown]
# Two alternatives can be tried on the same trained models without retraining, by rewriting
# the position table through the `hook_pos_embed` hook: set the untrained rows to exactly
# zero, or give every new position the embedding of the last trained `[OBS]`/symbol pair, so
# that the model sees familiar position vectors with the right parity (`lib/evaluation.py`).

# %% tags=["hide-input"]
position_scores = {"as trained (decayed rows)": scores["transformer", K_max],  # scored above, no hook
                   **evaluation.position_handling(runs["transformer"], batches[K_max], trained_len, splits)}
position_table = {label: {"t<20": evaluation.across_seeds(ss, f"t<{K0}")["mean"],
                          "t>=20": evaluation.across_seeds(ss, f"t>={K0}")["mean"]}
                  for label, ss in position_scores.items()}
display(Markdown(plotting.markdown_table(
    ["position handling at K=50", f"t<{K0} (bits)", f"t≥{K0} (bits)"],
    [[label, f"{v['t<20']:.4f}", f"{v['t>=20']:.4f}"] for label, v in position_table.items()])))
for key, label in [("c3_as_trained", "as trained (decayed rows)"), ("c3_zeroed", "untrained rows zeroed"),
                   ("c3_repeated", "last trained pair repeated")]:
    glue(key, position_table[label]["t>=20"], display=False)
glue("c3_k50_early", position_table["as trained (decayed rows)"]["t<20"], display=False)

# %% [markdown]
# Past the training length the error is {glue:text}`c3_as_trained:.4f` bits as trained and
# {glue:text}`c3_zeroed:.4f` bits with the untrained rows zeroed: whether those rows hold
# small random vectors or nothing makes little difference. Reusing the last trained position
# vectors brings it to {glue:text}`c3_repeated:.4f` bits, against {glue:text}`c3_k50_early:.4f`
# bits on the first 20 observations of the same sequences. Most of the jump at the training
# length is therefore a property of the position table, not of carrying the belief further:
# the filtering computation itself transfers to longer sequences once the model is shown
# position vectors it knows.

# %% [markdown]
# ## Without attention at the top (C4)
#
# The variant keeps the bottom blocks' attention and removes it from the top two, leaving
# only MLPs there.

# %% tags=["hide-input"]
off = {K: evaluation.across_seeds(scores["transformer_attn_off", K])["mean"] for K in setup["test_K"]}
glue("c4_k20", off[K0], display=False)
glue("c4_k50", off[K_max], display=False)
glue("c4_ratio", off[K_max] / off[K0], display=False)
print(", ".join(f"K={K}: {v:.4f} bits" for K, v in off.items()))

# %% [markdown]
# Its error is {glue:text}`c4_k20:.4f` bits at $K=20$ and {glue:text}`c4_k50:.4f` bits at
# $K=50$, a ratio of {glue:text}`c4_ratio:.1f`: at our size it extrapolates about as well as
# the full transformer, slightly worse at every length. We do not see the collapse the paper
# reports. Note what the paper's number would mean: 1.79 bits is more than four times the error
# of the uniform predictor ({glue:text}`c2_uniform:.3f` bits), so the paper's variant does not
# merely fail to transport a belief at $K=50$; it is confidently wrong. The authors' code for
# this variant was not released, so we cannot tell which difference matters.
#
# ## Learning curves
#
# {numref}`fig-c2-curves` follows each run's error on one fixed batch of fresh HMMs during
# training; the horizontal lines are the uniform predictor and the filter that ignores
# transitions.

# %% mystnb={"figure": {"caption": "Per-sample entropy error at K=20 during training, one line per run, on a fixed batch of fresh HMMs.", "name": "fig-c2-curves"}} tags=["hide-input"]
curves = {plotting.LABELS[name]: [(np.array([h["step"] for h in r.history]),
                                   np.array([h["entropy_mae"] for h in r.history])) for r in rs]
          for name, rs in runs.items()}
fig = plotting.learning_curves(curves, "entropy error (bits)", {"uniform": mae20["uniform"]["mean"],
                                                                 plotting.LABELS["emission_only"]: mae20["emission_only"]["mean"]})
fig

# %% tags=["hide-input"]
gain = float(np.mean([primitives.late_gain(mae, steps) for steps, mae in curves[plotting.LABELS["transformer"]]]))
glue("c2_late_gain", 100 * gain, display=False)
print(f"transformer: error fell by {100 * gain:.0f}% over the last fifth of training (mean over seeds)")

# %% [markdown]
# The transformer passes the level of the filter that ignores transitions within about a
# thousand steps, so it does carry a belief from one observation to the next, and then levels
# off: over the last fifth of training its error fell by only {glue:text}`c2_late_gain:.0f`%.
# At this width and budget it has settled on an approximate filter, a factor
# {glue:text}`c2_ratio:.1f` better than uniform rather than the factor 10 that C2 asks for.
# The LSTM never leaves the uniform level (its line lies under the uniform one), as in the
# paper; the flat MLP improves on uniform by about a fifth, at every position alike.

# %% [markdown]
# ## Verdicts

# %% tags=["hide-input"]
c2 = claims.record("C2", {"transformer_mae": mae20["transformer"]["mean"],
                          "uniform_over_transformer": mae20["uniform"]["mean"] / mae20["transformer"]["mean"],
                          "transformer_kl": tr20["kl"]},
                   profile, seeds=len(runs["transformer"]), ci95=mae20["transformer"]["ci95"],
                   details={name: {"entropy_mae": m["mean"], "ci95": m["ci95"], "per_seed": m["per_seed"],
                                   **{k: summary20[name][k] for k in ("kl", "tvd", "entropy_mae_cancelling")},
                                   "parameters": sizes.get(name)} for name, m in mae20.items()}, rung=rung)
c3 = claims.record("C3", {"k50_mae": k50["mean"], "extrapolation_spearman": float(shape["spearman"]),
                          "largest_step_fraction": shape["largest_step_fraction"]},
                   profile, seeds=len(runs["transformer"]), ci95=k50["ci95"],
                   details={"by_K": {K: evaluation.across_seeds(scores["transformer", K])["mean"] for K in setup["test_K"]},
                            "k50_in_distribution": float(curve["transformer"][:K0].mean()),
                            "k50_extrapolated": float(curve["transformer"][K0:].mean()),
                            "k50_extrapolated_by_position_handling": {k: v["t>=20"] for k, v in position_table.items()}},
                   rung=rung)
c4 = claims.record("C4", {"attn_off_k50_mae": off[K_max], "attn_off_k50_over_k20": off[K_max] / off[K0]},
                   profile, seeds=len(runs["transformer_attn_off"]),
                   ci95=evaluation.across_seeds(scores["transformer_attn_off", K_max])["ci95"],
                   details={"by_K": off}, rung=rung)
for rec in (c2, c3, c4):
    print(claims.one_line(rec))
glue("result_box", Markdown(claims.result_box([c2, c3, c4])), display=False)

# %% [markdown]
# ## What we found
#
# At the default budget the transformer is a good approximate filter but not a Bayesian one:
# its per-sample entropy error, {glue:text}`c2_mae:.4f` bits at $K=20$, is
# {glue:text}`c2_ratio:.1f` times below the uniform predictor's where C2 asks for ten, and
# its KL to the posterior is {glue:text}`c2_kl:.4f` bits where C2 asks for 0.001. It carries
# that approximation to $K=50$ ({glue:text}`c3_k50:.4f` bits, above C3's band around the
# paper's 0.029), rising steadily with position but with a jump at the first positions it
# never saw, whose embeddings were never trained. Without attention in its top two blocks it
# extrapolates about as well (C4 does not reproduce). Whether more compute closes the gap to
# Bayes is measured on the compute ladder ({numref}`Chapter %s <ch-ladder>`).
#
# ## Exercises
#
# Each exercise says what kind it is (derive, compute or discuss) and about how long it takes;
# one that retrains something says so and for how long. Solutions are folded.
#
# ````{exercise}
# :label: ex-hmm-1
# **Derive, about 15 minutes.** The cancelling aggregator can be zero for a model that is wrong on every sequence.
# Construct two sequences at one position where that happens.
# ````
#
# ````{solution} ex-hmm-1
# :class: dropdown
# Take one position $t$ and two sequences whose filtering posteriors have entropies
# $H(\alpha^{(1)}_t) = 1$ and $H(\alpha^{(2)}_t) = 2$ bits. A model that predicts entropies of
# 2 and 1 bits (unsure where Bayes is sure, sure where it is unsure) has per-sample errors
# $|2 - 1| = |1 - 2| = 1$ bit on both, so its per-sample entropy error is 1 bit; but the
# means over the two sequences are both 1.5 bits, so the cancelling aggregator
# $|\bar H_\text{model} - \bar H_\text{Bayes}|$ is 0. It cannot tell a calibrated model from
# one whose over- and under-confidence balance, which is why the chapter judges C2 on the
# per-sample error and the KL.
# ````
#
# ````{exercise}
# :label: ex-hmm-2
# **Discuss, about 10 minutes.** Replace the learned position table by no position embedding at all (causal attention can
# still count tokens). Which of C2 and C3 would you expect to change, and why?
# Answer before trying it: trying it retrains the three transformers, about 30 minutes on two cores.
# ````
#
# ````{solution} ex-hmm-2
# :class: dropdown
# C3 first. The jump at the first unseen positions comes from position rows that were never
# trained; with no position table there is nothing untrained to read at $K = 50$, so the
# error past the training length should rise more smoothly (a counting mechanism learned
# with causal attention extends to longer sequences if it does not depend on absolute
# indices). C2, at $K = 20$, depends on the model finding each observation's place after the
# header; the filter itself needs only the order of the observations, which causal attention
# gives, so C2 need not get worse, but the model must learn to locate the header's matrices
# without absolute positions, which can cost training steps.
# ````
#
# ````{exercise}
# :label: ex-hmm-3
# **Discuss, about 10 minutes.** The flat MLP sees every token the transformer sees. Why might HMM filtering be harder
# for it than bijection elimination was in {numref}`Chapter %s <ch-bijection>`?
# ````
#
# ````{solution} ex-hmm-3
# :class: dropdown
# On the bijection the posterior depends on the context only through the *set* of values
# seen: a sum of per-(position, token) embeddings can count them in one linear map. The HMM
# posterior is a product of matrices, $\alpha_t \propto \alpha_{t-1} T \operatorname{diag}(E_{\cdot, o_t})$,
# whose entries come from the header: the model must combine numbers read at some positions
# with tokens at others, multiplicatively and in order. A first layer that adds
# per-position embeddings cannot form those products; deeper layers must build them for every
# position separately, since the MLP has no weight sharing across positions.
# ````
