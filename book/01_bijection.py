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
# (ch-bijection)=
# # Bijection elimination
#
# ```{glue:md} result_box
# :format: myst
# ```
#
# Download this chapter: {download}`the notebook <01_bijection.ipynb>` (executed) or
# {download}`its Python source <01_bijection.py>` (the same cells as text, paired by jupytext).
#
# ## Overview
#
# Paper I's first wind tunnel asks a model to learn a secret one-to-one map $\pi$ from
# $V=20$ keys to $V=20$ values, a fresh map for every sequence, and to say, at every key it
# reads, what the key's value is. It cannot know the value: it can only rule out the values it
# has already seen attached to other keys. After $t$ observed pairs the right answer is a
# uniform distribution over the $V-t$ values still possible, with entropy
# $\log_2(V-t)$ bits. Because that posterior is exact, we can measure how far a trained
# model's predictive distribution is from Bayes, sequence by sequence and position by position.
#
# **Claim C1.** A small transformer matches the Bayesian posterior to about $10^{-3}$ bits of
# entropy error, while a capacity-matched MLP fails. The paper's numbers, with their sources,
# are in the claim registry (`lib/claims.py`) and printed below next to ours. The threshold
# was written before any run: the transformer's per-sample entropy error must be at most
# 0.01 bits, and the flat MLP's at least ten times larger.
#
# This chapter builds the pieces every later chapter reuses: the task and its posterior
# (`lib/tasks`), the model with named hook points (`lib/model.py`), the training loop
# (`lib/train.py`), the metrics (`lib/metrics.py`), the run cache (`lib/cache.py`) and the
# claim record (`lib/claims.py`).

# %% tags=["parameters"]
profile = "default"  # smoke (seconds, for tests) | default (laptop CPU) | paper (GPU sizes)
rung = None  # or a compute-ladder rung, e.g. "bijection: 12,000 steps": its runs replace the default ones
example_seed = 0  # in class: which sequence the chapter shows, and feeds to the trained models below (instant)

# %% [markdown]
# We'll need the following imports.

# %% tags=["hide-input"]
import numpy as np
import torch
from IPython.display import Markdown, display
from myst_nb import glue

from lib import cache, claims, metrics, plotting, profiles, stats, train, validate
from lib.model import n_params

setup = profiles.c1(profile, rung)
task = setup["runs"]["transformer"][0].task
print(f"profile={profile}: V={task.V}, L={task.L}, sequence length {task.seq_len}, "
      f"device {train.default_device()}")

# %% [markdown]
# ## The task and its exact posterior
#
# A sequence shows $L=19$ distinct keys, each followed by its value:
# $k_1, \pi(k_1), k_2, \pi(k_2), \dots, k_{19}$. Keys use token ids $0..19$ and values
# $20..39$, so a value token says "value" by its id. There is no separate query token: every
# key position is a query, supervised with the value that follows it (the next-token
# convention of the authors' production model; spec §2.1). Here is one sequence, with the
# support of the posterior at the first and last query.

# %%
validate.check_seed("example_seed", example_seed)
example = task.sample(1, torch.Generator().manual_seed(example_seed))
keys, values = example.tokens[0, 0::2].tolist(), (example.tokens[0, 1::2] - task.V).tolist()
print("pairs seen:", ", ".join(f"{k}->{v}" for k, v in zip(keys, values)), f"| last key {keys[-1]} -> ?")
for t in (0, task.L - 1):
    support = example.posterior[0, t].nonzero().flatten().tolist()
    print(f"query {t:2d} (key {keys[t]:2d}): possible values {support}, each with p = 1/{len(support)}")

# %% [markdown]
# With $t$ pairs observed, $p(\pi(k_{t+1}) = y \mid \text{context}) = 1/(V-t)$ for every
# value $y$ not yet seen and $0$ otherwise, so
#
# $$ H_\text{Bayes}(t) = \log_2 (V - t), \qquad t = 0, \dots, L-1, $$
#
# from $\log_2 20 = 4.32$ bits at the first key down to $1$ bit at the last, where two values
# remain. `tests/test_tasks.py` checks this formula against brute-force enumeration of all
# $V!$ bijections for small $V$.
#
# Why does training on this task target that posterior at all?
#
# ```{prf:theorem} The cross-entropy minimiser is the posterior predictive (Paper I's Theorem 1)
# :label: thm-posterior
# Let the context $c$ and the outcome $y$ be drawn from the task's generative process. Among
# all predictives $q(\cdot \mid c)$, the expected cross-entropy $\mathbb{E}_{c,y}[-\log q(y \mid c)]$
# is smallest exactly when $q$ is the Bayesian posterior predictive
# $p(y \mid c) = \int p(y \mid \theta)\, p(\theta \mid c)\, d\theta$, for almost every $c$.
# ```
#
# ```{prf:proof}
# The expected cross-entropy splits as
#
# $$ \mathbb{E}_{c,y}[-\log q(y \mid c)]
#    = \mathbb{E}_c\big[H(p(\cdot \mid c))\big] + \mathbb{E}_c\big[\mathrm{KL}(p(\cdot \mid c)\,\|\,q(\cdot \mid c))\big]. $$
#
# The first term does not depend on $q$, and the second is non-negative and zero only when
# $q(\cdot \mid c) = p(\cdot \mid c)$ for almost every $c$.
# ```
#
# So a model that reaches the minimum *is* Bayesian on this task, and its distance from the
# minimum is what we measure.
#
# The same split says something practical. Training against a sampled label $y$ and training
# against the whole posterior $p(\cdot \mid c)$ as a soft target have the same expected loss up
# to a constant, hence the same minimiser and the same expected gradient; only the gradient
# noise differs. On a CPU budget the soft target converges much faster, so our `default`
# profile uses it and says so; the paper's objective (sampled labels) is run beside it at
# the same size, and the `paper` profile uses sampled labels throughout.

# %% [markdown]
# ## Three models of equal size
#
# - a **transformer**: learned token and position embeddings, pre-norm blocks of causal
#   multi-head attention and an MLP, a final norm and a linear read-out over the 20 values;
# - a **flat MLP** that sees the whole prefix: at position $t$ its input is the flattened,
#   zero-padded one-hot prefix plus an indicator of $t$ (implemented as a sum of
#   per-(position, token) embeddings), followed by residual LayerNorm MLP blocks; it has
#   every piece of information the transformer has, but no attention;
# - a **per-position MLP** with the same body that sees only its own token and position: a
#   control that cannot do better than the uniform predictor.
#
# Both MLPs are sized to the transformer's parameter count within 1%.

# %% tags=["hide-input"]
runs_cfg = setup["runs"]
sizes = {name: profiles.count_params(cfgs[0].model, task) for name, cfgs in runs_cfg.items()}
display(Markdown(plotting.markdown_table(
    ["model", "parameters", "width", "layers", "training target", "steps", "batch", "seeds"],
    [[plotting.LABELS[name], f"{sizes[name]:,}", cfgs[0].model.d_model, cfgs[0].model.n_layers,
      cfgs[0].train.target, cfgs[0].train.steps, cfgs[0].train.batch_size, len(cfgs)]
     for name, cfgs in runs_cfg.items()])))

# %% [markdown]
# ## Training, through the cache
#
# Every run trains with AdamW, linear warm-up then cosine decay, gradient clipping at 1, and a
# fresh batch of sequences each step. A run is stored under `data/runs/` keyed by a hash of
# its configuration and of the versions of the code that trains it, so re-executing this
# chapter with nothing changed loads the runs in seconds, and a new configuration or code
# version retrains. Missing runs train one per CPU core, one thread each.

# %% tags=["remove-stderr", "hide-input"]
runs = cache.get_or_train_all(runs_cfg)
for name, rs in runs.items():
    speed = np.mean([r.steps_per_second for r in rs])
    print(f"{plotting.LABELS[name]:30s} {len(rs)} run(s), {speed:6.1f} steps/s, "
          f"{np.mean([r.train_seconds for r in rs]) / 60:5.1f} min per run when trained")

# %% [markdown]
# ## How close to Bayes?
#
# We score every run on one evaluation batch of fresh sequences drawn from a seed stream
# that no training run used. The primary metric is the **per-sample entropy error**
# $|H(q) - H(p)|$ averaged over sequences and the 19 query positions (bits). Entropy alone
# cannot see mass put on the wrong values, so we also report the forward KL divergence
# $\mathrm{KL}(p\,\|\,q)$, the total variation distance, the mass on values already ruled
# out, and the expected top-1 accuracy next to the Bayes ceiling. Intervals are 95% bootstrap
# intervals that resample seeds and, within them, sequences (never positions, which are
# correlated within a sequence); here the seeds, not the sequences, set their width. The
# "cancelling" column averages entropies over sequences *before* taking the difference, so
# over- and under-confident errors cancel: it is shown only because one of the paper's
# numbers is of that kind (chapter on HMM filtering), and it is not an error measure.

# %% tags=["hide-input"]
batch = train.eval_batch(task, setup["eval_size"], torch.device("cpu"), offset=1)
scores = {name: [metrics.score(r.model, batch) for r in rs] for name, rs in runs.items()}
uniform = metrics.uniform_scores(batch)
mae = {name: stats.across_seeds(s) for name, s in scores.items()}
mae["uniform"] = stats.across_seeds([uniform])
summaries = {name: {k: np.mean([s.summary()[k] for s in ss]) for k in uniform.summary()}
             for name, ss in scores.items()} | {"uniform": uniform.summary()}
paper = claims.CLAIMS["C1"].paper
paper_value = {"transformer": f"{paper['value']} (v1: {paper['others']['transformer (v1)']})",
               "mlp_flat": f"{paper['others']['MLP']} (MLP)"}
display(Markdown(plotting.markdown_table(
    ["model", "entropy error (bits) [95% CI]", "per seed", "KL(p‖q)", "TVD", "ruled-out mass",
     "accuracy / ceiling", "cancelling", "paper"],
    [[plotting.LABELS.get(name, name), f"{m['mean']:.4f} [{m['ci95'][0]:.4f}, {m['ci95'][1]:.4f}]",
      ", ".join(f"{v:.4f}" for v in m["per_seed"]), f"{summaries[name]['kl']:.4f}",
      f"{summaries[name]['tvd']:.4f}", f"{summaries[name]['invalid_mass']:.4f}",
      f"{summaries[name]['accuracy']:.3f} / {summaries[name]['bayes_accuracy']:.3f}",
      f"{summaries[name]['entropy_mae_cancelling']:.4f}", paper_value.get(name, "")]
     for name, m in mae.items()])))

# %% tags=["hide-input"]
for name in ("transformer", "mlp_flat", "mlp_local", "transformer_sampled", "mlp_flat_sampled"):
    glue(f"c1_{name}_mae", mae[name]["mean"], display=False)
glue("c1_uniform_mae", mae["uniform"]["mean"], display=False)
glue("c1_flat_ratio", mae["mlp_flat"]["mean"] / mae["transformer"]["mean"], display=False)
glue("c1_transformer_kl", float(summaries["transformer"]["kl"]), display=False)

# %% [markdown]
# The transformer's per-sample entropy error is {glue:text}`c1_transformer_mae:.4f` bits
# (forward KL {glue:text}`c1_transformer_kl:.4f` bits), against
# {glue:text}`c1_uniform_mae:.3f` bits for the uniform predictor. The flat MLP, with the same
# number of parameters and the whole prefix as input, sits at
# {glue:text}`c1_mlp_flat_mae:.4f` bits, {glue:text}`c1_flat_ratio:.1f` times the
# transformer's error, and the per-position MLP lands where a model without context must:
# on the uniform predictor ({glue:text}`c1_mlp_local_mae:.3f` bits).
#
# **On the MLP.** The paper's claim that a capacity-matched MLP fails (1.85 bits, worse than
# the uniform predictor) does not survive a flat MLP that sees the prefix. The reason is in
# the task: the posterior depends on the context only through the *set* of values already
# seen, and the first layer of a flat MLP over a one-hot prefix is a sum of
# per-(position, token) embeddings, which can hold the count of each value seen, exactly that
# sufficient statistic, in one linear map. Nothing about this task needs content-based
# routing, so the bijection cannot separate the architectures; the HMM chapter, where the
# posterior needs the header's matrices combined with every observation in order, is a
# harder test. We do not know how the paper's MLP was built (its code is not released), but a
# predictor worse than uniform is over-confident, which points to a training or evaluation
# problem rather than to a limit of MLPs.
#
# The example sequence from the start of the chapter, through the trained models (first seed
# of each): at every fourth query and the last, the exact posterior's entropy, each model's, and the probability
# each model puts on values already seen, which the posterior rules out. Change `example_seed`
# in the parameters cell to follow another sequence.

# %% tags=["hide-input"]
seen = {name: metrics.score(rs[0].model, example) for name, rs in runs.items() if name in ("transformer", "mlp_flat")}
display(Markdown(plotting.markdown_table(
    ["query", "values still possible", "Bayes entropy (bits)",
     *[f"{plotting.LABELS[name]}: {col}" for name in seen for col in ("entropy", "ruled-out mass")]],
    [[t, int((example.posterior[0, t] > 0).sum()), f"{seen['transformer'].entropy_bayes[0, t]:.3f}",
      *[f"{x:.3f}" for sc in seen.values() for x in (sc.entropy_model[0, t], sc.invalid_mass[0, t])]]
     for t in sorted({*range(0, task.L, 4), task.L - 1})])))

# %% [markdown]
# {numref}`fig-c1-positions` shows where the errors sit along the sequence.

# %% mystnb={"figure": {"caption": "Top: mean predictive entropy of each model (one seed shown per model, the first) and the Bayes entropy log2(V - t) at each query position t. Bottom: per-sample entropy error per position, averaged over seeds and sequences.", "name": "fig-c1-positions"}} tags=["hide-input"]
position = np.arange(task.L)
per_position = {name: [s.per_position() for s in ss] for name, ss in scores.items()}
fig = plotting.entropy_by_position(
    position, uniform.per_position()["entropy_bayes"].numpy(),
    {plotting.LABELS[n]: pp[0]["entropy_model"].numpy() for n, pp in per_position.items()},
    {plotting.LABELS[n]: np.mean([p["entropy_error"].numpy() for p in pp], 0) for n, pp in per_position.items()},
    xlabel="query position t (pairs observed)")
fig

# %% [markdown]
# The prototype that preceded this book found that its transformer never learned the last
# query position, where only two values remain. An average over 19 positions can hide one
# bad position, so here it is on its own:

# %% tags=["hide-input"]
last = {name: np.mean([p["entropy_error"][-1].item() for p in pp]) for name, pp in per_position.items()}
print("entropy error at the last query (t = L-1, H_Bayes = 1 bit):",
      ", ".join(f"{plotting.LABELS[n]} {v:.4f}" for n, v in last.items()))

# %% [markdown]
# ## Learning curves
#
# Each run records its entropy error on a fixed batch during training
# ({numref}`fig-c1-curves`). Flat curves at the end mean the budget, not the architecture,
# is the limit only if they are still falling.

# %% mystnb={"figure": {"caption": "Per-sample entropy error during training, one line per run (evaluated on a fixed batch of fresh sequences). Dotted: the uniform predictor and the claim's 0.01-bit threshold.", "name": "fig-c1-curves"}} tags=["hide-input"]
curves = {plotting.LABELS[name]: [(np.array([h["step"] for h in r.history]),
                                   np.array([h["entropy_mae"] for h in r.history])) for r in rs]
          for name, rs in runs.items()}
fig = plotting.learning_curves(curves, "entropy error (bits)",
                               {"uniform": mae["uniform"]["mean"],
                                "C1 threshold": claims.CLAIMS["C1"].conditions[0].bound})
fig

# %% [markdown]
# ## The paper's objective: sampled labels
#
# The models above trained against the exact posterior. The rows marked "(sampled labels)"
# are the same transformer and flat MLP, the same number of steps with twice the batch,
# trained the paper's way, against the observed next token. The transformer then reaches
# {glue:text}`c1_transformer_sampled_mae:.4f` bits and the flat MLP
# {glue:text}`c1_mlp_flat_sampled_mae:.4f` bits: each label carries one draw from the
# posterior, so at this batch size the gradient noise, not the architecture, sets the floor,
# and it does so for both architectures alike. The claim is judged on the soft-target runs, as
# fixed before the run; the sampled-label results are recorded beside them in the claim
# record.

# %% [markdown]
# ## Verdict
#
# The claim check computes the verdict from the registered conditions and writes
# `data/claims/C1.json` (a `smoke` run writes under `_build/smoke/` instead).

# %% tags=["hide-input"]
values = {"transformer_mae": mae["transformer"]["mean"],
          "mlp_flat_over_transformer": mae["mlp_flat"]["mean"] / mae["transformer"]["mean"]}
details = {name: {"entropy_mae": m["mean"], "ci95": m["ci95"], "per_seed": m["per_seed"],
                  "kl": summaries[name]["kl"], "tvd": summaries[name]["tvd"],
                  "invalid_mass": summaries[name]["invalid_mass"],
                  "entropy_mae_cancelling": summaries[name]["entropy_mae_cancelling"],
                  "last_position_error": last.get(name), "parameters": sizes.get(name)}
           for name, m in mae.items()}
record = claims.record("C1", values, profile, seeds=len(runs["transformer"]),
                       ci95=mae["transformer"]["ci95"], details=details, rung=rung)
print(claims.one_line(record))
glue("result_box", Markdown(claims.result_box([record])), display=False)

# %% [markdown]
# ## What we found
#
# The transformer's predictive distribution matches the exact posterior to
# {glue:text}`c1_transformer_mae:.4f` bits of per-sample entropy error, well inside C1's
# 0.01 bits: the first half of C1 reproduces at a CPU budget. The second half does not. A flat
# MLP of the same size that sees the whole prefix is only {glue:text}`c1_flat_ratio:.1f` times
# worse, not ten: on this task the posterior depends on the context only through the set of
# values seen, which one linear layer over the one-hot prefix can count, so the bijection
# cannot separate the architectures ({numref}`Chapter %s <ch-architectures>` compares them
# where it can). Whether the paper's much deeper MLP (18 layers) fails where ours does not is
# measured on the compute ladder ({numref}`Chapter %s <ch-ladder>`).
#
# ## Exercises
#
# Each exercise says what kind it is (derive, compute or discuss) and about how long it takes;
# one that retrains something says so and for how long. Solutions are folded.
#
# ````{exercise}
# :label: ex-bijection-1
# **Discuss, about 10 minutes.** The flat MLP sees exactly what the transformer sees. Which computation does attention
# make cheap here that an MLP must spell out weight by weight? (Hint: how does the set of
# seen values enter each architecture's input?)
# ````
#
# ````{solution} ex-bijection-1
# :class: dropdown
# The posterior at a query depends on the context only through the set of values already
# seen. Attention gets that set by content: a head whose query matches "a value token" puts
# weight on every value token of the prefix and averages them, with the same weights at every
# position, so one head computes the set for any length. The flat MLP receives the prefix as
# one-hot vectors laid side by side, one slot per position; to know "value $v$ was seen" it
# must add up the evidence for $v$ from every slot, with a separate weight per slot that
# training has to make equal. One linear layer can do exactly that sum, which is why our flat
# MLP is only {glue:text}`c1_flat_ratio:.1f` times worse than the transformer here rather
# than failing. The computation attention makes cheap is the position-independent pooling;
# the MLP can spell it out on this task because the set of seen values is all it needs.
# ````
#
# ````{exercise}
# :label: ex-bijection-2
# **Compute, about 20 minutes.** Train the transformer with `target="sampled"` and four times the batch size. How does the
# error at the end of training scale with the batch size?
# It retrains one transformer at batch 512: about 15 minutes on one core (`make bench`: 7.1 minutes at batch 256).
# ````
#
# ````{solution} ex-bijection-2
# :class: dropdown
# A sampled label $y$ drawn from the posterior $p$ gives the cross-entropy gradient of the
# exact target $p$ on average, plus noise: the label's own randomness, whose variance over a
# batch of $B$ sequences falls as $1/B$. Training on the exact posterior is therefore the limit
# $B 	o \infty$ of training on sampled labels (same steps, same expected gradient, no label
# noise). The chapter's two runs bracket your answer: sampled labels at twice the default batch
# reach {glue:text}`c1_transformer_sampled_mae:.4f` bits, the exact target
# {glue:text}`c1_transformer_mae:.4f` bits. At batch 512 expect the sampled-label error to fall
# between them, closer to the exact target than the batch-256 run; if it does not, the
# remaining error is not label noise but the budget of steps, which the compute ladder
# ({numref}`Chapter %s <ch-ladder>`) varies.
# ````
#
# ````{exercise}
# :label: ex-bijection-3
# **Derive, about 10 minutes.** Why is a per-sample entropy error of zero not enough to call a predictive Bayesian?
# Construct a predictive with zero entropy error and infinite KL.
# ````
#
# ````{solution} ex-bijection-3
# :class: dropdown
# At a query with $t$ pairs seen, put probability $1/(V-t)$ on $V-t$ values chosen to include
# every value already seen (possible while $t \le V - t$). The entropy is $\log_2(V-t)$,
# exactly the Bayes entropy, yet it puts mass on values the posterior rules out, so the
# forward KL is infinite (and the table's ruled-out mass is large).
# `tests/test_metrics.py::test_uniform_over_the_wrong_values_has_bayes_entropy_but_not_bayes_kl`
# checks this case.
# ````
