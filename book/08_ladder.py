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
# (ch-ladder)=
# # Budget or claim? The compute ladder
#
# ```{glue:md} result_box
# :format: myst
# ```
#
# Download this chapter: {download}`the notebook <08_ladder.ipynb>` (executed) or
# {download}`its Python source <08_ladder.py>` (the same cells as text, paired by jupytext).
#
# ## Overview
#
# Most wind-tunnel claims of Paper I are "partly" or "not reproduced" at the default budget,
# and that budget is small: the default bijection transformer trains on about 1/850 of the
# paper's training compute, the HMM transformer on about 1/600. A reader cannot tell from one
# budget whether a claim fails or the budget is too small. This chapter measures it.
#
# Training compute is counted the usual way, $C = 6\,N\,D$ FLOPs for a model of $N$ parameters
# trained on $D$ tokens (a forward and a backward pass over every token), and recorded for
# every run. From the default runs (the **default rung**, three seeds), the ladder climbs two
# axes (`lib/profiles.py`, `ladder`):
#
# - **steps**: the default width trained for 6,000, 12,000, 25,000 and 50,000 steps (the
#   paper's length), with the paper profile's optimiser and schedule (AdamW at $3\times10^{-4}$,
#   2,000 warm-up steps, cosine to zero);
# - **width and depth**: up to the paper's bijection transformer ($d = 192$, 6 layers, 6 heads)
#   and a $d = 128$, 4-layer HMM transformer, at step counts that fit this machine.
#
# C1's second half ("a capacity-matched MLP fails") gets a ladder of its own: the paper's deep
# flat MLP (18 residual LayerNorm layers) sized to each width rung's transformer. Each rung
# above the default has **one seed**, shown hollow in the figures, without an interval.
#
# Every rung is measured by the chapters' own code: `make ladder` executes chapters 1, 2, 3 and
# 6 with the rung as their `rung` parameter, and each writes its claim records into the rung's
# folder (`data/claims/ladder/`). The thresholds are the registered ones; a claim that meets
# them on a rung is "reproduced at that rung", never passed by loosening anything. The trend
# per claim is a least-squares line of its quantity (on a log scale for errors and ratios)
# against $\log_{10} C$: its slope per decade of compute with a 95% interval, read as
# "toward the paper", "flat" (the interval holds zero) or "away". Where it moves toward the
# paper, the compute at which the line would cross the threshold is given, as an
# extrapolation, beside the paper's own training compute.

# %% tags=["parameters"]
profile = "default"  # smoke (seconds, for tests) | default (laptop CPU); the paper profile has no ladder

# %% [markdown]
# We'll need the following imports.

# %% tags=["hide-input"]
from IPython.display import Markdown, display
from myst_nb import glue

from lib import cache, claims, ladder, plotting

rungs = {task: ladder.rungs(task, profile) for task in ("bijection", "hmm", "mlp")}
records = {cid: ladder.summary(cid, profile) for cid in ladder.CONDITIONS}

# %% [markdown]
# ## The rungs
#
# Each rung with its model, its length, its training compute as a multiple of its task's
# default rung, and the training time it took on one thread of this machine's CPU (blank: not
# trained yet, `make train PROFILE=ladder` trains it, resumably).

# %% tags=["hide-input"]
rows, trained, measured = [], 0, 0
for task, named in rungs.items():
    base = ladder.flops(rungs[task if task != "mlp" else "bijection"]["default"])
    for name, runs in named.items():
        cfg = runs[0]
        paths_ = [cache.run_path(r) for r in runs]
        done = all(p.exists() for p in paths_)
        minutes = sum(cache.train_seconds(p) for p in paths_) / 60 if done else None
        seen = name == "default" or any(ladder.read_rung(cid, task, name, profile) for cid in ladder.CONDITIONS)
        trained, measured = trained + (done and name != "default"), measured + (seen and name != "default")
        rows.append([task, name, ladder.axis(name), f"d{cfg.model.d_model} x {cfg.model.n_layers}",
                     f"{cfg.train.steps:,}", f"{ladder.flops(runs):.2g}", f"{ladder.flops(runs) / base:.1f}",
                     len(runs), "" if minutes is None else f"{minutes:.0f}", "yes" if seen else ""])
display(Markdown(plotting.markdown_table(
    ["task", "rung", "axis", "model", "steps", "FLOPs", "x default", "seeds", "training, min", "measured"], rows)))
total = sum(len(named) - ("default" in named) for named in rungs.values())
glue("ladder_rungs", total, display=False)
glue("ladder_trained", trained, display=False)
glue("ladder_measured", measured, display=False)

# %% [markdown]
# Of the {glue:text}`ladder_rungs` rungs above the default, {glue:text}`ladder_trained` are
# trained and {glue:text}`ladder_measured` are measured in this execution of the book.
#
# ## Claim by claim
#
# Each figure shows one claim's quantity on every measured rung against its training compute.
# The star is the default rung (three seeds, with its interval), circles are the steps axis,
# squares the width axis; the dotted red line is the registered threshold, the dashed grey
# line the paper's value (where it is the same quantity) and the vertical line the paper's own
# training compute. C4 (the attention-off variant) and C9's with-replacement conditions have
# no runs on the ladder.

# %% mystnb={"figure": {"caption": "C1: the transformer's entropy error on the bijection, and the deep flat MLP's error over its transformer's.", "name": "fig-ladder-c1"}} tags=["hide-input"]
plotting.compute_ladder(ladder.panels(records["C1"]))

# %% mystnb={"figure": {"caption": "C2: the transformer's KL to the filtering posterior on the HMM at K=20.", "name": "fig-ladder-c2"}} tags=["hide-input"]
plotting.compute_ladder(ladder.panels(records["C2"]))

# %% mystnb={"figure": {"caption": "C3: the transformer's entropy error at K=50 (the registered band is 1/3 to 3 times the paper's 0.029 bits; its upper edge is drawn).", "name": "fig-ladder-c3"}} tags=["hide-input"]
plotting.compute_ladder(ladder.panels(records["C3"]))

# %% mystnb={"figure": {"caption": "C5: the smallest rise of the entropy error from skipping one layer, per task.", "name": "fig-ladder-c5"}} tags=["hide-input"]
plotting.compute_ladder(ladder.panels(records["C5"]))

# %% mystnb={"figure": {"caption": "C6: the top layer-0 head's damage over the second head's, on the bijection.", "name": "fig-ladder-c6"}} tags=["hide-input"]
plotting.compute_ladder(ladder.panels(records["C6"]))

# %% mystnb={"figure": {"caption": "C7: the mean |cos| of the layer-0 keys of the hypothesis tokens, on the bijection.", "name": "fig-ladder-c7"}} tags=["hide-input"]
plotting.compute_ladder(ladder.panels(records["C7"]))

# %% mystnb={"figure": {"caption": "C8: the fall in attention entropy from layer 0 to the last, per task.", "name": "fig-ladder-c8"}} tags=["hide-input"]
plotting.compute_ladder(ladder.panels(records["C8"]))

# %% mystnb={"figure": {"caption": "C9: PC1's share of the final layer's value variance on the HMM.", "name": "fig-ladder-c9"}} tags=["hide-input"]
plotting.compute_ladder(ladder.panels(records["C9"]))

# %% mystnb={"figure": {"caption": "C10: the entropy error when the frame settled over the final error, per task (the steps axis only: the width rungs keep no snapshots).", "name": "fig-ladder-c10"}} tags=["hide-input"]
plotting.compute_ladder(ladder.panels(records["C10"]))

# %% [markdown]
# The figures in order: {numref}`fig-ladder-c1`, {numref}`fig-ladder-c2`,
# {numref}`fig-ladder-c3`, {numref}`fig-ladder-c5`, {numref}`fig-ladder-c6`,
# {numref}`fig-ladder-c7`, {numref}`fig-ladder-c8`, {numref}`fig-ladder-c9` and
# {numref}`fig-ladder-c10`.
#
# ## Trends
#
# The fitted slope per decade of training compute (in the quantity's units, or in decades of
# it for errors and ratios), its 95% interval, the reading, and where a trend toward the paper
# would cross the threshold. A trend needs at least three measured rungs.

# %% tags=["hide-input"]
rows = []
for cid, rec in records.items():
    for task, entries in rec["ladder"].items():
        fit, top = rec["trend"][task], max(entries, key=lambda e: e["flops"], default=None)
        rows.append([cid, task, len(entries), "" if top is None else f"{top['rung']}: {top['verdict']}",
                     "" if fit is None else f"{claims.number(fit['slope'])} [{claims.number(fit['interval'][0])}, "
                                            f"{claims.number(fit['interval'][1])}] ({fit['scale']})",
                     "too few rungs" if fit is None else fit["direction"],
                     "" if fit is None or fit["crossing_flops"] is None else f"{fit['crossing_flops']:.2g}"])
display(Markdown(plotting.markdown_table(
    ["claim", "task", "rungs", "top rung: verdict", "slope per decade [95%]", "reading",
     "threshold crossed at (FLOPs, extrapolated)"], rows)))
glue("result_box", Markdown(ladder.result_box(list(records.values()), profile)), display=False)

# %% [markdown]
# ## What we found
#
# The ladder trains across several sessions of this machine (about 15 CPU-hours), and this
# chapter reports what has been measured so far; the numbers above are computed from the
# records at every execution. A claim's reading changes only when a new rung is measured.
#
# ## Exercises
#
# ````{exercise}
# :label: ex-ladder-1
# **Discuss, about 10 minutes.** The steps axis changes two things at once: the number of
# steps and the learning-rate schedule (the paper's, with a 2,000-step warm-up), which the
# default rung does not share. How could you tell a schedule effect from a length effect with
# one more rung?
# ````
#
# ````{exercise}
# :label: ex-ladder-2
# **Compute, about 5 minutes.** Check the compute column: for the bijection's 50,000-step rung,
# multiply 6, its parameter count and its trained tokens (50,000 steps of 128 sequences of 37
# tokens), and compare with the table. It reads the ladder's configs: nothing trains.
# ````
#
# ````{solution} ex-ladder-2
# :class: dropdown
# `lib.train.training_flops` does exactly this product; with the default transformer's
# parameters it gives the table's FLOPs column.
# ````
#
# ````{exercise}
# :label: ex-ladder-3
# **Discuss, about 10 minutes.** A trend fitted through four one-seed rungs and a three-seed
# default rung is extrapolated by up to three decades. What would make you trust, or distrust,
# a crossing point read from it?
# ````
