"""The compute ladder read back: for each wind-tunnel claim, its quantities on every rung
against the rung's training compute, a trend per decade of compute, and where that trend
would cross the registered threshold.

A rung is measured by the chapters' own code (`make ladder`, scripts/measure_ladder.py), which
writes claim records under data/claims/ladder/<rung>/; the default rung is the chapters' own
record. Nothing here measures a model: it only reads records and the ladder's configs.

Used by: lib.claims (the `ladder` and `trend` fields of C1-C10), the ladder chapter.
"""
import json
import math
import textwrap

import numpy as np
import scipy.stats
import torch

from lib import claims, profiles, stats, train
from lib.plotting import markdown_table

# The conditions each claim is judged on at a rung of each task; the first is the one plotted
# and fitted. A rung of the bijection changes the bijection's quantities only (and likewise for
# the HMM); the deep MLPs change C1's MLP ratio. C4 (the attention-off variant) and C9's
# sawtooth conditions have no runs on the ladder.
CONDITIONS = {
    "C1": {"bijection": ["transformer_mae"], "mlp": ["mlp_flat_over_transformer"]},
    "C2": {"hmm": ["transformer_kl", "uniform_over_transformer"]},
    "C3": {"hmm": ["k50_mae", "extrapolation_spearman", "largest_step_fraction"]},
    "C5": {"bijection": ["bijection_min_skip_ratio"], "hmm": ["hmm_min_skip_ratio"]},
    "C6": {"bijection": ["top_over_second", "top_head_ratio", "frame_head_is_top"]},
    "C7": {"bijection": ["l0_abs_cos", "l0_over_init", "l0_over_gaussian"]},
    "C8": {"bijection": ["bijection_reduction"], "hmm": ["hmm_reduction"]},
    "C9": {"hmm": ["hmm_pc1_share", "hmm_abs_within_position_r"]},
    "C10": {"bijection": ["bijection_mae_ratio_at_frame", "bijection_step_ratio"],
            "hmm": ["hmm_mae_ratio_at_frame", "hmm_step_ratio"]},
}
# Quantities fitted on a log scale: errors and ratios that move by orders of magnitude.
LOG_SCALE = {"transformer_mae", "transformer_kl", "k50_mae", "mlp_flat_over_transformer", "bijection_min_skip_ratio",
             "hmm_min_skip_ratio", "top_over_second", "bijection_mae_ratio_at_frame", "hmm_mae_ratio_at_frame"}
# The chapter measuring C10 needs snapshots, which only the steps axis keeps.
NEEDS_SNAPSHOTS = {"C10"}


def rungs(task: str, scale: str = "default") -> dict[str, list]:
    """{rung name: [RunConfig]} of `task`: "bijection" and "hmm" from their default rung (the
    chapters' runs) up; "mlp": the deep MLPs only (the chapters' own MLP is two layers deep)."""
    return profiles.ladder(scale)[task]


def control(task: str, scale: str = "default") -> str:
    """The name of `task`'s schedule-control rung: the default's model and length on the paper's
    schedule (lib.profiles.ladder)."""
    return f"{rungs(task, scale)['default'][0].train.steps:,} steps"


def flops(runs: list) -> float:
    """The training compute of one run of a rung (every seed trains the same)."""
    return train.training_flops(runs[0])


def read_rung(claim_id: str, task: str, rung: str, profile: str = "default") -> dict | None:
    """The record a chapter wrote for `claim_id` on a rung (None if not measured yet)."""
    path = claims.claims_dir(profile, f"{task}: {rung}") / f"{claim_id}.json"
    return json.loads(path.read_text()) if path.exists() else None


def quantities(rec: dict) -> dict[str, float]:
    """{quantity: measured value} of a claim record's conditions."""
    return {c["condition"].rsplit(" ", 2)[0]: c["value"] for c in rec["conditions"]}


def point(rec: dict, claim_id: str, task: str, seeds: int) -> dict:
    """One rung's entry: the plotted quantity's value and 95% interval over the rung's `seeds`
    (None with one seed), and the verdict over the conditions this task's rungs judge."""
    names = CONDITIONS[claim_id][task]
    values = quantities(rec)
    quantity = names[0]
    per_seed = rec["details"].get("per_seed", {}).get(quantity) if isinstance(rec["details"], dict) else None
    if seeds < 2:
        interval = None
    elif quantity == claims.CLAIMS[claim_id].headline:
        interval = list(rec["ours"]["ci95"])
    else:
        interval = list(stats.bootstrap_ci(torch.tensor(per_seed, dtype=torch.float64))) if per_seed else None
    claim = claims.CLAIMS[claim_id]
    verdict = claims.verdict(claim, values, [c for c in claim.conditions if c.quantity in names])
    return {"value": values[quantity], "interval": interval, "seeds": seeds, "verdict": verdict}


def series(claim_id: str, default: dict, profile: str = "default") -> dict[str, list[dict]]:
    """{task: [entry per measured rung]} for `claim_id`, from its `default` record (the one being
    written) and the rung records on disk; each entry adds the rung's name and training FLOPs."""
    out = {}
    for task in CONDITIONS.get(claim_id, {}):
        entries = []
        for name, runs in rungs(task, profile).items():
            if claim_id in NEEDS_SNAPSHOTS and name != "default" and not runs[0].train.snapshots:
                continue
            rec = default if name == "default" else read_rung(claim_id, task, name, profile)
            if rec is not None:
                entries.append({"rung": name, "flops": flops(runs), **point(rec, claim_id, task, len(runs))})
        out[task] = entries
    return out


def judged_condition(claim_id: str, quantity: str, value: float):
    """The registered condition on `quantity` a trend is read against: of a band (C3's error
    between two bounds), the edge `value` fails, else the first."""
    conditions = [c for c in claims.CLAIMS[claim_id].conditions if c.quantity == quantity]
    return next((c for c in conditions if not c.holds({quantity: value})), conditions[0])


def trend(entries: list[dict], claim_id: str, task: str) -> dict | None:
    """Least-squares slope of the plotted quantity (log10 for LOG_SCALE ones) per decade of
    training FLOPs over the rungs, with a 95% t interval; the direction relative to the
    registered threshold ("toward the paper", "flat": the interval holds 0, or "away"); and
    where it would cross the threshold, an extrapolation, when it moves toward it. None with
    fewer than three rungs."""
    if len(entries) < 3:
        return None
    quantity = CONDITIONS[claim_id][task][0]
    condition = judged_condition(claim_id, quantity, top(entries)["value"])
    log = quantity in LOG_SCALE
    x = np.log10([e["flops"] for e in entries])
    y = np.array([e["value"] for e in entries], dtype=float)
    if log and (y <= 0).any():
        return None
    y = np.log10(y) if log else y
    fit = scipy.stats.linregress(x, y)
    half = scipy.stats.t.ppf(0.975, len(x) - 2) * fit.stderr
    interval = [fit.slope - half, fit.slope + half]
    better = 1 if condition.op == ">=" else -1  # the sign of a change toward the threshold
    direction = "flat" if interval[0] <= 0 <= interval[1] else (
        "toward the paper" if math.copysign(1, fit.slope) == better else "away")
    crossing = None
    if direction == "toward the paper":
        target = math.log10(condition.bound) if log else condition.bound
        crossing = 10 ** ((target - fit.intercept) / fit.slope)
    return {"quantity": quantity, "scale": "log10" if log else "linear", "slope": fit.slope,
            "intercept": fit.intercept, "interval": interval, "direction": direction, "crossing_flops": crossing,
            "rungs": len(entries)}


def top(entries: list[dict]) -> dict | None:
    """The rung entry with the most training compute (of equals, the first: the default before its
    schedule control); None for no entries."""
    return max(entries, key=lambda e: e["flops"], default=None)


def fitted(entries: list[dict]) -> list[dict]:
    """The rungs a trend is fitted on: all but the default rung, which alone trains on the default
    schedule (the steps axis's first rung, its control, has the default's model and length on
    the paper's schedule)."""
    return [e for e in entries if e["rung"] != "default"]


def fields(claim_id: str, default: dict, profile: str = "default") -> dict:
    """The `ladder` and `trend` fields of a record of C1-C10 on a profile with a ladder (smoke,
    default); {} otherwise."""
    if claim_id not in CONDITIONS or profile not in profiles.LADDER_STEPS:
        return {}
    ladder = series(claim_id, default, profile)
    return {"ladder": ladder, "trend": {task: trend(fitted(entries), claim_id, task) for task, entries in ladder.items()}}


def paper_flops(task: str) -> float:
    """The training compute of the paper's own run of `task` (the paper profile's transformer)."""
    chapter = {"bijection": profiles.c1, "hmm": profiles.c2, "mlp": profiles.c1}[task]("paper")["runs"]
    return train.training_flops(chapter["mlp_flat" if task == "mlp" else "transformer"][0])


def axis(rung: str) -> str:
    """Which axis of the ladder a rung climbs: "default", "steps" or "width" (the deep MLPs
    follow the width rungs they are sized to)."""
    return "default" if rung == "default" else "steps" if " x " not in rung and "at default" not in rung else "width"


def panels(rec: dict) -> dict[str, dict]:
    """What plotting.compute_ladder draws for one claim record with ladder fields: per task, the
    rungs, the trend over the range from the first rung to the paper's compute, the threshold,
    the paper's value where it is in the plotted quantity's unit, and the paper's compute."""
    out = {}
    for task, entries in rec["ladder"].items():
        quantity = CONDITIONS[rec["id"]][task][0]
        highest_rung = top(entries)
        condition = judged_condition(rec["id"], quantity, highest_rung["value"] if highest_rung else float("nan"))
        headline = quantity == claims.CLAIMS[rec["id"]].headline
        lowest = min((e["flops"] for e in fitted(entries)), default=paper_flops(task))
        highest = max((e["flops"] for e in fitted(entries)), default=paper_flops(task))
        out[textwrap.fill(f"{rec['id']}, {task}: {condition.words}", 56)] = {
            "points": [{**e, "axis": axis(e["rung"])} for e in entries], "trend": rec["trend"][task],
            "fit_range": [lowest, highest, max(highest, paper_flops(task))], "threshold": condition.bound,
            "paper": rec["paper"]["value"] if headline else None, "paper_flops": paper_flops(task),
            "log": quantity in LOG_SCALE}
    return out


def summary(claim_id: str, profile: str = "default") -> dict:
    """The default record of `claim_id` with its ladder fields, or, before the claim's chapter
    has written one, a record with no rung measured (so the ladder chapter always executes)."""
    path = claims.claims_dir(profile) / f"{claim_id}.json"
    if path.exists():
        rec = json.loads(path.read_text())
        if "ladder" in rec:
            return rec
    return {"id": claim_id, "verdict": None, "paper": claims.CLAIMS[claim_id].paper,
            "ladder": {task: [] for task in CONDITIONS[claim_id]}, "trend": {task: None for task in CONDITIONS[claim_id]}}


def result_box(records: list[dict], profile: str) -> str:
    """The ladder chapter's opening box, from the records: per claim its default verdict, and per
    task its top measured rung's verdict and the trend."""
    lines = []
    for rec in records:
        verdict = claims.badge(rec["verdict"]) if rec["verdict"] else "not measured yet"
        beyond = "".join(f"; {line}" for line in claims.ladder_lines(rec))
        lines.append(f"- **{rec['id']}** {verdict} at the default budget" + (beyond or "; no rung above it measured yet"))
    return (f"```{{admonition}} The ladder so far ({profile} profile)\n:class: result-box\n\n" + "\n".join(lines)
            + "\n```\n")


def answers(records) -> dict[str, list[str]]:
    """{short answer: ["C1 (bijection)", ...]}: which claim and task get each of ANSWERS, in
    that order, from records with ladder fields (those with no rung above the default: none)."""
    given = {}
    for rec in records:
        for task in rec.get("ladder", {}):
            if (read := reading(rec, task)) is not None:
                given.setdefault(read[0], []).append(f"{rec['id']} ({task})")
    return {answer: given[answer] for answer in ANSWERS if answer in given}


def answers_table(records) -> str:
    """`answers` as a Markdown table, "budget or claim?" against the claims given each answer."""
    given = answers(records)
    if not given:
        return "No rung above the default is measured yet."
    return markdown_table(["budget or claim?", "claims (task)"], [[a, ", ".join(c)] for a, c in given.items()])


def reach(records) -> dict[str, float]:
    """{task: the most training compute a measured rung has, as a multiple of the task's first rung}."""
    out = {}
    for rec in records:
        for task, entries in rec.get("ladder", {}).items():
            if len(entries) > 1:
                out[task] = max(out.get(task, 0.0), top(entries)["flops"] / entries[0]["flops"])
    return out


ANSWERS = ("holds at the default budget", "the default budget was too small", "likely the budget, not settled",
           "the claim, at these budgets", "too few rungs to say")  # `reading`'s short answers, in this order


def reading(rec: dict, task: str) -> tuple[str, str] | None:
    """The ladder's answer for one claim on one task, from its record, as (one of ANSWERS, a
    sentence): reached on a rung above the default (the default budget was too small), still out
    of reach with a trend toward the paper (a budget effect not settled here), or out of reach
    with a flat or adverse trend (the claim, at these sizes). The base is the task's first rung
    (the default; for the deep MLPs, the one at the default's size). None before a rung above it
    is measured."""
    entries, fit = rec["ladder"][task], rec["trend"][task]
    if len(entries) < 2:
        return None
    base, above = entries[0], entries[1:]
    highest = top(above)
    span = f"up to {highest['flops'] / base['flops']:.0f}x its compute"
    reached = [e for e in above if e["verdict"] == "reproduced"]
    start = f"{base['verdict']} at the default budget" + ("; " if base["rung"] == "default" else f" ({base['rung']}); ")
    if highest["flops"] <= base["flops"]:
        return ANSWERS[4], start + (f"{highest['verdict']} on the schedule control (the paper's schedule at the "
                                    f"default's length); no longer or wider rung measured yet")
    if base["verdict"] == "reproduced":
        return ANSWERS[0], start + f"reproduced on {len(reached)} of the {len(above)} rungs above it, {span}"
    if reached:
        first = min(reached, key=lambda e: e["flops"])
        return ANSWERS[1], start + (f"reproduced from the {first['rung']} rung on ({first['flops'] / base['flops']:.0f}x "
                                    f"its compute): the default budget was too small")
    # A claim not reproduced at the default may come nearer higher up: say where, since "reproduced on no rung" hides it.
    partly = [e["rung"] for e in above if e["verdict"] == "partly reproduced"] if base["verdict"] == "not reproduced" else []
    nowhere = f"reproduced on no rung {span}" + (
        f" (partly reproduced on the {claims.listed(partly)} rung{'s' if len(partly) > 1 else ''})" if partly else "")
    if fit is None:
        return ANSWERS[4], start + f"{nowhere}; {len(above)} rungs measured, too few for a trend"
    if fit["direction"] == "toward the paper":
        return ANSWERS[2], start + (f"{nowhere}, but the trend moves toward the paper and would meet the threshold near "
                                    f"{fit['crossing_flops']:.2g} FLOPs (the paper trained on {paper_flops(task):.2g}): "
                                    "budget is the likelier explanation, not settled here")
    return ANSWERS[3], start + (f"{nowhere}, and the trend is " + (
        "flat (its interval holds zero): these budgets show no steady move toward the paper" if fit["direction"] == "flat"
        else "away: more training compute moves it away from the paper at these sizes"))
