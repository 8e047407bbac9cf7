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
# and that budget is small: the default bijection transformer trains on
# {glue:text}`ladder_default_share_bijection` of the paper's training compute, the HMM
# transformer on {glue:text}`ladder_default_share_hmm`. A reader cannot tell from one
# budget whether a claim fails or the budget is too small. This chapter measures it.
#
# Training compute is counted the usual way, $C = 6\,N\,D$ FLOPs for a model of $N$ parameters
# trained on $D$ tokens (a forward and a backward pass over every token), and recorded for
# every run. From the default runs (the **default rung**, three seeds), the ladder climbs two
# axes (`lib/profiles.py`, `ladder`):
#
# - **steps**: the default width trained for 6,000, 12,000, 25,000 and 50,000 steps (the
#   paper's length), with the paper profile's optimiser and schedule (AdamW at $3\times10^{-4}$
#   with the paper's warm-up, cosine to zero);
# - **width and depth**: up to the paper's bijection transformer ($d = 192$, 6 layers, 6 heads)
#   and a $d = 128$, 4-layer HMM transformer, at step counts that fit this machine.
#
# Every rung above the default trains on the paper's schedule, and the default rung does not:
# its learning rate is ten times higher, with a short warm-up (the table below lists both). So
# the steps axis starts with a **schedule control**, the default's own model and length on the
# paper's schedule. The step from the default rung to the control is the schedule's effect; the
# steps above the control are compute's.
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
# against $\log_{10} C$ through the rungs on the paper's schedule (the default rung is drawn
# but not fitted): its slope per decade of compute with a 95% interval, read as
# "toward the paper", "flat" (the interval holds zero) or "away". Where it moves toward the
# paper, the compute at which the line would cross the threshold is given, as an
# extrapolation, beside the paper's own training compute.

# %% tags=["parameters"]
profile = "default"  # smoke (seconds, for tests) | default (laptop CPU); the paper profile has no ladder
fit_default_rung = False  # True: fit the trends through the default rung too (its other schedule then bends them)

# %% [markdown]
# We'll need the following imports.

# %% tags=["hide-input"]
from IPython.display import Markdown, display
from myst_nb import glue

import math

import numpy as np
import pandas as pd
import torch

from lib import cache, claims, dynamics, geometry, ladder, plotting, profiles, train

rungs = {task: ladder.rungs(task, profile) for task in ("bijection", "hmm", "mlp")}
records = {cid: ladder.summary(cid, profile) for cid in ladder.CONDITIONS}

# %% [markdown]
# ## The rungs
#
# Each rung with its model, its length and schedule (peak learning rate and warm-up steps), its
# training compute as a multiple of its task's default rung, and the training time it took on
# one thread of this machine's CPU (blank: not trained yet, `make train PROFILE=ladder` trains
# it, resumably).

# %% tags=["hide-input"]
rows, trained, measured, hours = [], 0, 0, 0.0
for task, named in rungs.items():
    base = ladder.flops(rungs[task if task != "mlp" else "bijection"]["default"])
    for name, runs in named.items():
        cfg = runs[0]
        paths_ = [cache.run_path(r) for r in runs]
        done = all(p.exists() for p in paths_)
        minutes = sum(cache.train_seconds(p) for p in paths_) / 60 if done else None
        seen = name == "default" or any(ladder.read_rung(cid, task, name, profile) for cid in ladder.CONDITIONS)
        trained, measured = trained + (done and name != "default"), measured + (seen and name != "default")
        hours += (minutes or 0) / 60 if name != "default" else 0
        rows.append([task, name, ladder.axis(name), f"d{cfg.model.d_model} x {cfg.model.n_layers}",
                     f"{cfg.train.steps:,}", f"{cfg.train.lr:g}, {cfg.train.warmup:,}", f"{ladder.flops(runs):.2g}", f"{ladder.flops(runs) / base:.1f}",
                     len(runs), "" if minutes is None else f"{minutes:.0f}", "yes" if seen else ""])
display(Markdown(plotting.markdown_table(
    ["task", "rung", "axis", "model", "steps", "lr, warm-up", "FLOPs", "x default", "seeds", "training, min", "measured"], rows)))
total = sum(len(named) - ("default" in named) for named in rungs.values())
glue("ladder_rungs", total, display=False)
glue("ladder_trained", trained, display=False)
glue("ladder_measured", measured, display=False)
glue("ladder_hours", f"{hours:.1f}", display=False)

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
# would cross the threshold. A trend needs at least three measured rungs. (In class: set
# `fit_default_rung = True` in the parameters cell and re-run this cell to see how much the
# default rung's other schedule would bend each line; nothing is recomputed or written.)

# %% tags=["hide-input"]
rows = []
for cid, rec in records.items():
    for task, entries in rec["ladder"].items():
        fit = ladder.trend(entries, cid, task) if fit_default_rung else rec["trend"][task]
        top = ladder.top(entries)
        rows.append([cid, task, len(entries), "" if top is None else
                     f"{top['rung']} ({'one seed' if top['seeds'] == 1 else str(top['seeds']) + ' seeds'}): {top['verdict']}",
                     "" if fit is None else f"{claims.number(fit['slope'])} [{claims.number(fit['interval'][0])}, "
                                            f"{claims.number(fit['interval'][1])}] ({fit['scale']})",
                     "too few rungs" if fit is None else fit["direction"],
                     "" if fit is None or fit["crossing_flops"] is None else f"{fit['crossing_flops']:.2g}"])
display(Markdown(plotting.markdown_table(
    ["claim", "task", "rungs", "top rung: verdict", "slope per decade [95%]", "reading",
     "threshold crossed at (FLOPs, extrapolated)"], rows)))
glue("result_box", Markdown(ladder.result_box(list(records.values()), profile)), display=False)

# %% [markdown]
# (ch-ladder-control)=
# ## The schedule control
#
# Each claim's quantity on the default rung and on the schedule control (the same model and
# length on the paper's schedule): what the schedule alone does, before any compute is added.

# %% tags=["hide-input"]
rows = []
for cid, rec in records.items():
    for task, entries in rec["ladder"].items():
        by_rung = {e["rung"]: e for e in entries}
        control = ladder.control(task, profile) if task != "mlp" else None
        if "default" in by_rung and control in by_rung:
            base, ctrl = by_rung["default"], by_rung[control]
            quantity = ladder.CONDITIONS[cid][task][0]
            words = claims.CLAIMS[cid].condition(quantity).words
            rows.append([f"{cid}, {task}", words, f"{claims.number(base['value'])} ({base['verdict']})",
                         f"{claims.number(ctrl['value'])} ({ctrl['verdict']})"])
display(Markdown(plotting.markdown_table(["claim", "quantity", "default rung", "schedule control"], rows)
    if rows else "The schedule control is not measured yet."))

# %% [markdown]
# ## What we found
#
# The ladder's answer so far, computed from the records above (a claim is judged on its
# registered thresholds at every rung; `lib.ladder.reading` words it): first in one table, then
# per claim and task.

# %% tags=["hide-input"]
for task in ("bijection", "hmm"):
    top = max(ladder.flops(runs) for runs in rungs[task].values())
    glue(f"ladder_top_share_{task}", f"{top / ladder.paper_flops(task):.0%}", display=False)
    glue(f"ladder_default_share_{task}", f"1/{ladder.paper_flops(task) / ladder.flops(rungs[task]['default']):.0f}",
         display=False)
taken_apart = {("C1", "mlp"): "ch-ladder-mlp", ("C2", "hmm"): "ch-ladder-c2",  # the readings a section below
               ("C7", "bijection"): "ch-ladder-away", ("C9", "hmm"): "ch-ladder-away"}  # takes apart
found = []
for cid, rec in records.items():
    for task in rec["ladder"]:
        if (read := ladder.reading(rec, task)) is not None:
            found.append(f"- **{cid}**, {task}: {read[1]}"
                         + (f"; {{ref}}`{taken_apart[cid, task]}` takes it apart" if (cid, task) in taken_apart else ""))
display(Markdown(ladder.answers_table(records.values())))
display(Markdown("\n".join(found)))

# %% [markdown]
# Three cautions hold for every line above. Each rung above the default has one seed, and the
# default rung's own interval shows how far seeds alone move a quantity; a single rung that
# crosses a threshold by less than that spread is weak evidence. The trend mixes the two axes
# (it is a line in compute, whichever way the compute was spent), so a claim that needs width
# can look flat along a trend dominated by the steps axis: read its width rungs in the figure
# (C7's 20 keys can all be orthogonal only from 20 dimensions on, {prf:ref}`lem-welch`). And the ladder's top rung
# has {glue:text}`ladder_top_share_bijection` of the paper's own training compute on the
# bijection and {glue:text}`ladder_top_share_hmm` on the HMM (the vertical line in each
# figure): "flat" means "not at these budgets", not "never".
#
# The ladder trains across several sessions of this machine: the rungs trained so far took
# {glue:text}`ladder_hours` CPU-hours in all (one thread per run). A claim's reading changes only when a
# new rung is measured, and the chapter rereads the records at every execution.
#
# (ch-ladder-c2)=
# ## C2's late fall
#
# A straight line through the rungs can hide a late phase. C2's KL to the filtering posterior
# on the steps axis, rung by rung:

# %% tags=["hide-input"]
c2_steps = [e for e in records["C2"]["ladder"]["hmm"] if ladder.axis(e["rung"]) == "steps"]  # shortest first
c2_bound = claims.CLAIMS["C2"].condition("transformer_kl").bound
display(Markdown(plotting.markdown_table(
    ["rung", "FLOPs", "KL (bits)", "over the registered bound"],
    [[e["rung"], f"{e['flops']:.2g}", claims.number(e["value"]), claims.number(e["value"] / c2_bound)] for e in c2_steps])))
if len(c2_steps) >= 3:
    first, middle, last = c2_steps[0], c2_steps[len(c2_steps) // 2], c2_steps[-1]
    glue("c2_early", f"{first['value'] / middle['value']:.1f} times lower from {first['rung']} to {middle['rung']}",
         display=False)
    glue("c2_late", f"{middle['value'] / last['value']:.1f} times lower from there to {last['rung']}", display=False)
    glue("c2_last_over_bound", f"{last['value'] / c2_bound:.1f}", display=False)
    late_phase = middle["value"] / last["value"] > 2 * first["value"] / middle["value"]  # most of the fall comes late
else:
    for name in ("c2_early", "c2_late", "c2_last_over_bound"):
        glue(name, "not measured yet", display=False)
    late_phase = False
c2_trend = records["C2"]["trend"]["hmm"] or {}  # None until enough rungs are measured (the smoke profile)
c2_widest = [e for e in records["C2"]["ladder"]["hmm"] if ladder.axis(e["rung"]) == "width"][-1:]
hint = ("C2 is the claim whose failure looks most like a budget effect, but with one seed per rung this is a hint, "
        "not a measurement: a second seed on the longest rungs, or a longer rung, would tell a late phase from one "
        "seed's luck")
if c2_trend.get("direction") == "toward the paper" and c2_widest and c2_trend["crossing_flops"]:
    lowest = c2_widest[0]["value"] == min(e["value"] for e in records["C2"]["ladder"]["hmm"])
    reading = (f"Across every rung, the widest one included ({c2_widest[0]['rung']}: "
               f"{claims.number(c2_widest[0]['value'])} bits, {c2_widest[0]['value'] / c2_bound:.1f} times the bound"
               f"{', the lowest of the ladder' if lowest else ''}), the line in log compute moves toward the paper: "
               f"{c2_trend['slope']:.2f} per decade, interval {c2_trend['interval'][0]:.2f} to "
               f"{c2_trend['interval'][1]:.2f}, crossing the bound at {c2_trend['crossing_flops']:.1e} FLOPs "
               f"(1/{ladder.paper_flops('hmm') / c2_trend['crossing_flops']:.0f} of the paper's training compute) "
               f"if it held, an extrapolation. {hint}")
elif late_phase:
    reading = ("A line in log compute through all of them averages the slow start with the fast end, which is why "
               f"its interval still holds zero. {hint}")
else:
    reading = "The fall is not concentrated at the longest rungs, so the straight line describes it fairly"
glue("c2_reading", Markdown(reading), display=False)
glue("c2_bound", f"{c2_bound:g}", display=False)

# %% [markdown]
# The KL went {glue:text}`c2_early`, then {glue:text}`c2_late`, and the longest rung ends
# {glue:text}`c2_last_over_bound` times above the registered {glue:text}`c2_bound` bits.
# {glue:md}`c2_reading`.
#
# (ch-ladder-mlp)=
# ## C1's deep MLP
#
# The paper's MLP, which fails at {glue:text}`deep_mlp_paper` bits, is deep: 18-20 residual
# LayerNorm layers (spec §3.1). Ours is built that way at each width rung's parameter count and
# trained like that rung's transformer. Its error on the bijection, and its error over the
# transformer's on the same rung:

# %% tags=["hide-input"]
deep_mlp = {name: ladder.quantities(rec) for name in rungs["mlp"]
            if (rec := ladder.read_rung("C1", "mlp", name, profile)) is not None}
error = {name: q["mlp_flat_over_transformer"] * q["transformer_mae"] for name, q in deep_mlp.items()}
display(Markdown(plotting.markdown_table(
    ["deep flat MLP", "FLOPs", "its error (bits)", "over the transformer's", "the transformer's (bits)"],
    [[name, f"{ladder.flops(rungs['mlp'][name]):.2g}", claims.number(error[name]),
      claims.number(q["mlp_flat_over_transformer"]), claims.number(q["transformer_mae"])] for name, q in deep_mlp.items()])
    if deep_mlp else "No deep MLP is measured yet."))
ratios = [q["mlp_flat_over_transformer"] for q in deep_mlp.values()]  # smallest rung first
glue("deep_mlp_worst", claims.number(max(error.values(), default=math.nan)), display=False)
glue("deep_mlp_ratios", f"from {claims.number(ratios[0])} to {claims.number(ratios[-1])}" if ratios else "not measured",
     display=False)
glue("deep_mlp_reading", (records["C1"]["trend"].get("mlp") or {}).get("direction", "too few rungs"), display=False)
uniform = records["C1"].get("details", {}).get("uniform")  # absent before chapter 1 has run on this profile
glue("deep_mlp_uniform", "not measured yet" if uniform is None else claims.number(uniform["entropy_mae"]), display=False)
glue("deep_mlp_paper", claims.number(records["C1"]["paper"]["others"]["MLP"]), display=False)
glue("deep_mlp_bound", f"{claims.CLAIMS['C1'].condition('mlp_flat_over_transformer').bound:g}", display=False)

# %% [markdown]
# No deep MLP comes near failing. The worst is at {glue:text}`deep_mlp_worst` bits, where the
# uniform predictor is at {glue:text}`deep_mlp_uniform` ({ref}`Chapter 1 <ch-bijection>`), and
# from the smallest to the largest its error over the transformer's goes
# {glue:text}`deep_mlp_ratios`, against the registered {glue:text}`deep_mlp_bound` or more: the trend's reading,
# "{glue:text}`deep_mlp_reading`", is the MLP catching up with the transformer. So neither depth
# nor size makes an MLP fail this task. The reason is the task's, as Chapter 1 argues: the
# posterior depends on the prefix only through the set of values already seen, which the first
# linear layer of a flat MLP over the one-hot prefix can count. The paper's
# {glue:text}`deep_mlp_paper` bits, worse than uniform, is a model that is confidently wrong,
# which points to its training or evaluation (the code is not released), not to what MLPs can
# learn.
#
# (ch-ladder-away)=
# ## C7 and C9 taken apart
#
# Along the steps axis, both claims first moved away from the paper as training got longer. Before
# calling that a finding about the claims, we take each quantity apart on every trained rung
# (one forward pass per run, cached).
#
# - **C7** is the mean $|\cos|$ between the layer-0 keys of the 20 hypothesis tokens. A
#   direction that all 20 keys share raises it without making the keys any harder to tell
#   apart. So beside it: the same mean once each head's mean key is removed ("centred"), and the
#   share of the keys' energy that lies in that mean ($|\bar k|^2 / \overline{|k|^2}$).
# - **C9** is PC1's share of the variance of the final layer's value vectors on the HMM. A model
#   whose values hold the whole five-state belief, not only its entropy, spreads them over more
#   directions. So beside it: the participation ratio of the spectrum, and how well a linear
#   read-out recovers each state's posterior probability from the values (held-out $R^2$, split
#   by sequence).

# %% tags=["hide-input"]
def away_measures(task: str, rung_runs: list) -> dict[str, float]:
    """C7's or C9's parts on one rung, averaged over its seeds (cached per run set)."""
    if task == "bijection":
        measure, key = lambda run: geometry.key_sharing(run.model, dynamics.hypothesis_tokens(run.config.task)), {}
    else:
        size = profiles.c3(profile)["manifold_size"]
        batch = train.eval_batch(rung_runs[0].config.task, size, torch.device("cpu"), offset=20)  # chapter 3's stream
        measure, key = (lambda run: geometry.belief_spread(run.model, batch)), {"size": size, "offset": 20}
    return cache.get_or_compute_on_runs(
        f"ladder-away-{task}", rung_runs, key, ("geometry",),
        lambda: {name: float(np.mean(values)) for name, values in
                 pd.DataFrame([measure(run) for run in rung_runs]).items()})


away = {}
for task, columns in (("bijection", ["mean |cos|", "centred mean |cos|", "shared share"]),
                      ("hmm", ["PC1 share", "participation ratio", "posterior R2"])):
    trained = {rung: cfgs for rung, cfgs in rungs[task].items() if all(cache.cached(cfg) for cfg in cfgs)}
    away[task] = pd.DataFrame({rung: away_measures(task, [cache.read_run(cfg) for cfg in cfgs])
                               for rung, cfgs in trained.items()}).T.reindex(columns=columns)
    away[task].insert(0, "FLOPs", [f"{ladder.flops(rungs[task][rung]):.2g}" for rung in away[task].index])
d_heads = {rung: f"{cfgs[0].model.d_model // cfgs[0].model.n_heads}" for rung, cfgs in rungs["bijection"].items()}
away["bijection"].insert(1, "d_head", [d_heads[rung] for rung in away["bijection"].index])
for task, table in away.items():
    display(Markdown(f"**{ {'bijection': 'C7, bijection', 'hmm': 'C9, HMM'}[task] }**\n\n" + plotting.markdown_table(
        ["rung", *(column.replace("R2", "R²") for column in table.columns)], [[rung, *(v if isinstance(v, str) else claims.number(v) for v in row)]
                                   for rung, row in table.iterrows()])))


def steps_axis(task: str) -> pd.DataFrame:
    """The rungs on the paper's schedule at the default width, shortest first."""
    return away[task].loc[[rung for rung in away[task].index if ladder.axis(rung) == "steps"]]


def change(task: str, column: str) -> str:
    """'from X (first rung) to Y (last rung)' along the steps axis."""
    col = steps_axis(task)[column]
    return f"from {claims.number(col.iloc[0])} to {claims.number(col.iloc[-1])}" if len(col) > 1 else "not measured yet"


for task, columns in (("bijection", ["mean |cos|", "centred mean |cos|", "shared share"]),
                      ("hmm", ["PC1 share", "participation ratio", "posterior R2"])):
    for column in columns:
        glue(f"away_{task}_{column.replace(' ', '_').replace('|', '')}", change(task, column), display=False)
    glue(f"away_{task}_rungs", f"{len(steps_axis(task))}", display=False)
for d_head in (16, 32):
    glue(f"away_gaussian_{d_head}", claims.number(geometry.gaussian_abs_cos(d_head)), display=False)
widths = away["bijection"].loc[[rung for rung in away["bijection"].index if ladder.axis(rung) == "width"]]
widest = widths.iloc[-1] if len(widths) else None  # the rungs run from narrow to wide
glue("away_widest", Markdown("no width rung is measured yet" if widest is None else
     f"the widest measured rung ({widths.index[-1]}, heads of {widest['d_head']} dimensions) gives a mean "
     f"\\|cos\\| of **{claims.number(widest['mean |cos|'])}**, **{claims.number(widest['centred mean |cos|'])}** "
     f"centred, with **{claims.number(widest['shared share'])}** of the key energy shared"), display=False)


def rises(task: str, column: str) -> bool:
    col = steps_axis(task)[column]
    return len(col) > 1 and col.iloc[-1] > col.iloc[0]


# The explanations are read off the measurements, each with what would refute it.
centred = steps_axis("bijection")["centred mean |cos|"]
shared_explains = rises("bijection", "shared share") and len(centred) > 1 and np.ptp(centred) < 0.05
glue("away_c7_reading", Markdown("What grows with training is a direction that all the hypothesis keys share, while the keys "
     "stay about as distinguishable as random keys of their dimension" if shared_explains else
     "The shared direction does not account for the rise here (the centred mean moves too, or the share does not grow)"),
     display=False)
pc1_rises = rises("hmm", "PC1 share")
belief_explains = not pc1_rises and rises("hmm", "participation ratio") and rises("hmm", "posterior R2")
glue("away_c9_reading", Markdown(
    "PC1's share rises with training on the longest rungs, together with the read-out of the posterior, yet stays far "
    "below the paper's" if pc1_rises else
    "The value vectors spread over more directions as they come to hold more of the belief, which is "
    "four-dimensional (five probabilities that sum to one), so one component holds less of it" if belief_explains else
    "The spread and the read-out do not rise together on these rungs, so a fuller belief code does not explain the fall"),
    display=False)
glue("away_c9_steps", "though along the steps axis its share now rises" if pc1_rises else
     "and along the steps axis its share falls", display=False)

# %% [markdown]
# Along the steps axis ({glue:text}`away_bijection_rungs` rungs on the paper's schedule), C7's
# mean $|\cos|$ went {glue:text}`away_bijection_mean_cos`, the centred one went
# {glue:text}`away_bijection_centred_mean_cos` (random keys give {glue:text}`away_gaussian_16`
# in 16 dimensions, {glue:text}`away_gaussian_32` in 32), and the shared direction's share of the key energy went
# {glue:text}`away_bijection_shared_share`. {glue:md}`away_c7_reading`. A plausible use for such
# a component is a query that finds all value positions at once, the positions whose tokens it
# must eliminate. The definition we follow (spec §4.1, the authors' layer-0 frame analysis) does
# not centre the keys, so by it a longer-trained model looks less orthogonal: a property of the
# metric on these models more than a frame that degrades. On the width axis,
# {glue:md}`away_widest`: wider heads bring the keys toward random keys of their dimension,
# not below them, and the registered bound of 0.1 stays out of reach, though 20 keys could have a
# far smaller mean $|\cos|$ at either width ({prf:ref}`lem-welch` and the sentence after it).
#
# On the HMM ({glue:text}`away_hmm_rungs` rungs), PC1's share went {glue:text}`away_hmm_PC1_share`,
# the participation ratio went {glue:text}`away_hmm_participation_ratio` and the read-out of the
# posterior went {glue:text}`away_hmm_posterior_R2`. {glue:md}`away_c9_reading`. The paper's
# 84-90% is Paper III's recap; the authors' analysis scripts behind such numbers project the
# residual stream rather than the value vectors (spec §4.3). Our protocol, standardised value
# vectors at every observation of 1,024 fresh sequences, finds no one-dimensional manifold at
# any budget measured so far, {glue:text}`away_c9_steps`.

# ## Exercises
#
# ````{exercise}
# :label: ex-ladder-1
# **Discuss, about 10 minutes.** The steps axis changes two things at once: the number of
# steps and the learning-rate schedule (the paper's, with its long warm-up), which the default
# rung does not share. How could you tell a schedule effect from a length effect with one more
# rung? Nothing trains.
# ````
#
# ````{solution} ex-ladder-1
# :class: dropdown
# Train one rung that changes the schedule and nothing else: the default's model and length on
# the paper's schedule. That is the schedule control this chapter added for this reason (see
# {ref}`the schedule control <ch-ladder-control>`). The difference between the default rung and
# the control is the schedule's effect; the differences between the control and the longer
# rungs are the length's, at one schedule. For C7 on the bijection, for example, the mean
# $|\cos|$ of the layer-0 keys is {glue:text}`ladder_c7_default` on the default rung and
# {glue:text}`ladder_c7_control` on the control. This is also why the trends are fitted
# without the default rung.
# ````
#
# ````{exercise}
# :label: ex-ladder-2
# **Compute, about 5 minutes.** Check the compute column: for the bijection's 50,000-step rung,
# multiply 6, its parameter count and its trained tokens (50,000 steps of 128 sequences of one
# bijection episode each), and compare with the table. It reads the ladder's configs: nothing
# trains.
# ````
#
# ````{solution} ex-ladder-2
# :class: dropdown
# The rung's transformer has {glue:text}`ladder_ex2_params` parameters and an episode is
# {glue:text}`ladder_ex2_tokens` tokens long, so
# $6 \times$ {glue:text}`ladder_ex2_params` $\times$ {glue:text}`ladder_ex2_steps` $\times$
# {glue:text}`ladder_ex2_batch` $\times$ {glue:text}`ladder_ex2_tokens` $=$
# {glue:text}`ladder_ex2_product` FLOPs, the table's {glue:text}`ladder_ex2_table`.
# `lib.train.training_flops` computes exactly this product for every run.
# ````
#
# ````{exercise}
# :label: ex-ladder-3
# **Discuss, about 10 minutes.** A trend fitted through a handful of one-seed rungs is
# extrapolated by up to a decade or more. What would make you trust, or distrust, a crossing
# point read from it? Nothing trains.
# ````
#
# ````{solution} ex-ladder-3
# :class: dropdown
# Trust grows with: rungs spread over more than a decade of compute (the bijection's fitted
# rungs span {glue:text}`ladder_ex3_span` decades); a slope whose interval stays well away from
# zero; a crossing within the range measured or just beyond it; the default rung's seed spread
# small beside the change between rungs; and a mechanism that predicts the direction (for C7,
# the Welch bound, {prf:ref}`lem-welch`, forbids 20 keys from *all* being near-orthogonal in 16
# dimensions and allows it in 32, so the width rungs should help its largest $|\cos|$; it allows
# a small mean $|\cos|$ at either width, so it predicts little for the mean C7 measures). Distrust it when one rung carries the slope, when the axes disagree
# (steps up, width down), or when the quantity lives in a late training phase, as C10's
# frame-then-precision does: such a quantity can change abruptly once a run is long enough, and
# no straight line in log compute foresees that.
# ````

# %% tags=["remove-cell"]
# The numbers of the solutions above, from the ladder's configs and records (nothing trains).
top = max((runs[0] for name, runs in rungs["bijection"].items() if ladder.axis(name) == "steps"),
          key=lambda cfg: cfg.train.steps)  # the 50,000-step rung (on the smoke profile, its tiny stand-in)
tokens = top.task.sample(1, torch.Generator().manual_seed(0)).tokens.shape[1]
params = profiles.count_params(top.model, top.task)
glue("ladder_ex2_params", f"{params:,}", display=False)
glue("ladder_ex2_tokens", tokens, display=False)
glue("ladder_ex2_steps", f"{top.train.steps:,}", display=False)
glue("ladder_ex2_batch", top.train.batch_size, display=False)
glue("ladder_ex2_product", f"{6 * params * top.train.steps * top.train.batch_size * tokens:.3g}", display=False)
glue("ladder_ex2_table", f"{ladder.flops([top]):.2g}", display=False)
span = [e["flops"] for e in ladder.fitted(records["C7"]["ladder"]["bijection"])]
glue("ladder_ex3_span", f"{math.log10(max(span) / min(span)):.1f}" if span else "no", display=False)
c7 = {e["rung"]: e for e in records["C7"]["ladder"]["bijection"]}
for name, rung in (("default", "default"), ("control", ladder.control("bijection", profile))):
    glue(f"ladder_c7_{name}", claims.number(c7[rung]["value"]) if rung in c7 else "(not measured yet)", display=False)
