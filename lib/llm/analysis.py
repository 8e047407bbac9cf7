"""Chapter 7's measurements, one function per group of claims, each returning the claim values
(the quantities registered in lib.claims), an interval for the headline and the details.

Used by: 07_llm_geometry (L1-L9); Paper III §4-§7, spec paper2_3.md §3.4-§3.11.
"""
import math

import torch

from lib import cache, geometry, llm, stats, sula
from lib.llm import geometry as llm_geometry
from lib.llm import interventions as llm_interventions
from lib.llm import prompts
from lib.llm import runs as llm_runs

# The version of the numbers this module computes: it keys their cache entries (lib/cache.py).
# Bump it when a change alters them; a comment or a refactor keeps it.
VERSION = 1

# The analyses below are cached (lib.cache) under these sources, keyed by their inputs' contents.
MODULES = ("llm.analysis", "llm.geometry", "geometry", "llm", "llm.interventions", "sula", "metrics", "stats")


def prompt_sets(pool: list[dict], entropy: torch.Tensor, length: torch.Tensor, cfg: dict) -> dict:
    """Index sets into `pool`: entropy-stratified mixed and per-domain sets, an un-stratified
    random set, and length-matched mixed and math sets (token lengths inside the band of
    quantiles `cfg['length_band']` of the math domain's lengths)."""
    gen = torch.Generator().manual_seed(cfg["seed"])
    everything = torch.arange(len(pool))
    domain = {d: torch.tensor([i for i, p in enumerate(pool) if p["domain"] == d]) for d in prompts.DOMAINS}
    q = cfg["per_quintile"]
    sets = {"mixed": prompts.stratified(everything, entropy, q, gen),
            "random": prompts.random_subset(everything, 5 * q, gen)}
    for d, idx in domain.items():
        sets[d] = prompts.stratified(idx, entropy, q, gen)
    lo, hi = torch.quantile(length[domain["math"]].double(), torch.tensor(cfg["length_band"], dtype=torch.float64))
    band = (length >= lo) & (length <= hi)
    sets["mixed_len"] = prompts.stratified(everything[band], entropy, q, gen)
    sets["math_len"] = prompts.stratified(domain["math"][band[domain["math"]]], entropy, q, gen)
    return sets


def abs_interval(ci: tuple[float, float]) -> tuple[float, float]:
    lo, hi = ci
    return (lo, hi) if lo >= 0 else (-hi, -lo) if hi <= 0 else (0.0, max(-lo, hi))


def last_layer_values(pool_run: dict, cfg: dict) -> torch.Tensor:
    """The values at the single (last) layer [n, d], from a pass read at `cfg["layers_multi"]`."""
    return pool_run["values"][:, cfg["layers_multi"].index(cfg["layers_single"][0])]


def value_geometry(models: llm_runs.Models, texts: list[str], pool_run: dict, sets: dict, cfg: dict) -> dict:
    """L1-L3 from the last layer's values of the trained model (read from its pass over the pool
    `texts`) and of its random-initialisation control (a pass of its own over the mixed and math
    sets), against next-token entropy; cached."""
    values = {name: last_layer_values(pool_run, cfg)[idx] for name, idx in sets.items()}
    init_values = {name: llm_runs.last_token_pass(models.init, models.init_id, [texts[i] for i in sets[name]],
                                                  layers=cfg["layers_single"])["values"][:, 0]
                   for name in ("mixed", "math")}
    entropy = pool_run["entropy"]
    key = {"inputs": cache.digest([values, entropy, sets, init_values]), "cfg": cfg}
    return cache.get_or_compute("llm-value-geometry", key, MODULES,
                                lambda: _value_geometry(values, entropy, sets, init_values, cfg))


@llm_geometry.one_thread()
def _value_geometry(values: dict, entropy: torch.Tensor, sets: dict, init_values: dict, cfg: dict) -> dict:
    gen = torch.Generator().manual_seed(cfg["seed"])
    s = {name: llm_geometry.summary(values[name], entropy[idx], gen, cfg["boot"], cfg["null_reps"])
         for name, idx in sets.items()}
    init = {name: llm_geometry.summary(v, entropy[sets[name]], gen, cfg["boot"], cfg["null_reps"])
            for name, v in init_values.items()}
    mixed, math_ = s["mixed"], s["math"]
    rho_ci = mixed["spearman_ci"]
    l1 = {"abs_spearman_mixed": abs(mixed["spearman"]), "abs_spearman_math": abs(math_["spearman"]),
          "spearman_ci_excludes_zero": float(rho_ci[0] > 0 or rho_ci[1] < 0),
          "trained_minus_random_abs_spearman": abs(mixed["spearman"]) - abs(init["mixed"]["spearman"])}
    l2 = {"pc1_mixed": mixed["pc1"], "pc1_over_permutation_null": mixed["pc1"] / mixed["permutation_null"]["pc1"],
          "pc1_loo_min": mixed["loo_min"], "pc1_trained_minus_random": mixed["pc1"] - init["mixed"]["pc1"]}
    l3 = {"pc12_math": math_["pc12"], "pc12_gain_math": math_["pc12"] - mixed["pc12"],
          "pc12_gain_length_matched": s["math_len"]["pc12"] - s["mixed_len"]["pc12"]}
    return {"summaries": s, "init": init, "L1": (l1, abs_interval(rho_ci)),
            "L2": (l2, mixed["jackknife"]["pc1"]), "L3": (l3, math_["jackknife"]["pc12"])}


def key_orthogonality(models: llm_runs.Models, cfg: dict) -> dict:
    """L4 of the trained and untrained models (`models.trained()`, `models.init()`), loaded only
    if the result is not cached: see `_key_orthogonality`."""
    key = {"models": [models.trained_id, models.init_id], "n_tokens": cfg["key_tokens"], "seed": cfg["seed"]}
    return cache.get_or_compute("llm-keys", key, MODULES, lambda: _key_orthogonality(
        models.trained()[0], models.init()[0], cfg["key_tokens"], cfg["seed"]))


@llm_geometry.one_thread()
def _key_orthogonality(model, init_model, n_tokens: int, seed: int) -> dict:
    """L4: the paper's W_K-column metric per layer and key head, and Paper I's token keys at
    layer 0 for a seeded vocabulary sample, in the trained and the random-initialisation model,
    with the analytic value for random directions."""
    lay = llm.layout(model)
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randperm(model.config.vocab_size, generator=gen)[:n_tokens]

    def abs_cos(v):  # float64: thousands of small Gram matrices, summed
        return geometry.mean_abs_cos(v.double()).item()

    def measure(m):
        wk = torch.tensor([[abs_cos(head) for head in llm.key_weight_columns(m, layer)]
                           for layer in range(lay.n_layers)])                      # [n_layers, n_kv_heads]
        shuffled = torch.tensor([[abs_cos(llm_geometry.shuffled_within_vectors(h, gen))
                                  for h in llm.key_weight_columns(m, layer)] for layer in (0, lay.n_layers - 1)])
        keys = llm.token_keys_layer0(m, tokens)                                     # [n_tokens, n_kv, head_dim]
        tok = [abs_cos(keys[:, h]) for h in range(lay.n_kv_heads)]
        tok_c = [abs_cos(keys[:, h].double() - keys[:, h].double().mean(0)) for h in range(lay.n_kv_heads)]
        return {"wk": wk, "wk_shuffled": shuffled.mean().item(), "token": sum(tok) / len(tok),
                "token_centred": sum(tok_c) / len(tok_c)}

    trained, init = measure(model), measure(init_model)
    per_layer = trained["wk"].mean(1)
    values = {"wk_mean_abs_cos": trained["wk"].mean().item(),
              "frac_layers_below_0p2": (per_layer < 0.2).double().mean().item(),
              "wk_over_init": trained["wk"].mean().item() / init["wk"].mean().item(),
              "token_keys_over_init": trained["token"] / init["token"]}
    details = {"per_layer": per_layer.tolist(), "init_per_layer": init["wk"].mean(1).tolist(),
               "analytic_d_model": geometry.gaussian_abs_cos(lay.d_model),
               "analytic_head_dim": geometry.gaussian_abs_cos(lay.head_dim),
               "wk_shuffled_within_columns": trained["wk_shuffled"], "token_keys": trained["token"],
               "token_keys_centred": trained["token_centred"], "init_token_keys": init["token"],
               "init_token_keys_centred": init["token_centred"], "n_tokens": n_tokens}
    return {"values": values, "ci": stats.bootstrap_ci(trained["wk"].flatten()), "details": details}


def focusing(models: llm_runs.Models, texts: list[str], cfg: dict) -> dict:
    """L5 on the prompts `texts` (the mixed set): `_focusing` of their final-query attention
    entropies (a cached pass of the trained model)."""
    run = llm_runs.last_token_pass(models.trained, models.trained_id, texts, attention=True)
    return _focusing(run["attn_entropy"], run["attn_entropy_no_sink"], cfg)


@llm_geometry.one_thread()
def _focusing(attn: torch.Tensor, attn_no_sink: torch.Tensor, cfg: dict) -> dict:
    """Per-layer mean (over heads, then prompts) of the normalised final-query attention entropy
    [n_prompts, n_layers, n_heads], and the first-to-last-layer reduction."""
    raw, ns = attn.double().mean(-1), attn_no_sink.double().mean(-1)            # [n, n_layers]

    def reduction(h, idx=slice(None)):
        m = h[idx].mean(0)
        return ((m[0] - m[-1]) / m[0]).item()

    gen = torch.Generator().manual_seed(cfg["seed"])
    ci = llm_geometry.bootstrap_statistic(lambda i: reduction(raw, i), len(raw), cfg["boot"], gen)
    values = {"reduction": reduction(raw), "reduction_no_sink": reduction(ns), "reduction_ci_low": ci[0]}
    details = {"per_layer": raw.mean(0).tolist(), "per_layer_no_sink": ns.mean(0).tolist(),
               "per_layer_max_head": attn.double().mean(0).max(-1).values.tolist(),
               "per_layer_min_head": attn.double().mean(0).min(-1).values.tolist(), "n_prompts": len(raw)}
    return {"values": values, "ci": ci, "details": details}


def sula_conditions(models: llm_runs.Models, cfg: dict) -> dict:
    """SULA prompts of every condition through the trained model (its passes cached): scores per
    prompt and last-layer values."""
    task, out = sula.Evidence(), {}
    for c, condition in enumerate(sula.LABELS):
        gen = torch.Generator().manual_seed(cfg["seed"] + 100 + c)
        ps = task.prompts(condition, cfg["ks"], cfg["sula_per_k"], gen)
        label_ids = llm_runs.label_ids(models.trained, models.trained_id, condition)
        run = llm_runs.last_token_pass(models.trained, models.trained_id, [p["text"] for p in ps],
                                       layers=cfg["layers_single"], label_ids=tuple(label_ids))
        full = torch.full((len(ps), max(label_ids) + 1), -math.inf, dtype=torch.float64)
        full[:, label_ids] = run["label_logprobs"]
        out[condition] = {"prompts": ps, "score": sula.score(full, label_ids, ps), "values": run["values"][:, 0]}
    return out


def decline(h: torch.Tensor, k: torch.Tensor, reps: int, gen: torch.Generator) -> tuple[float, tuple[float, float]]:
    """Mean entropy at the smallest k minus at the largest k, with a bootstrap interval
    (resampling prompts within each group)."""
    a, b = h[k == k.min()], h[k == k.max()]
    ia, ib = torch.randint(len(a), (reps, len(a)), generator=gen), torch.randint(len(b), (reps, len(b)), generator=gen)
    boot = a[ia].mean(1) - b[ib].mean(1)
    return (a.mean() - b.mean()).item(), (boot.quantile(0.025).item(), boot.quantile(0.975).item())


@llm_geometry.one_thread()
def sula_claims(runs: dict, cfg: dict) -> dict:
    """L6 (calibration, baselines, mass, axis) and L7 (controls) from `sula_conditions`."""
    main = runs["main"]["score"]
    base = sula.constant_baselines(main["h_bayes"])
    scores, _ = llm_geometry.pc1_scores(runs["main"]["values"])
    mae = main["abs_error"].mean().item()
    l6 = {"mae_bits": mae, "best_constant_minus_model": base["best_constant"] - mae,
          "label_mass_median": main["mass"].median().item(),
          "rho_k_entropy": llm_geometry.spearman(main["k"].double(), main["h_model"]),
          "abs_rho_pc1_bayes": abs(llm_geometry.spearman(scores, main["h_bayes"]))}
    gen = torch.Generator().manual_seed(cfg["seed"])
    declines = {c: decline(r["score"]["h_model"], r["score"]["k"], cfg["boot"], gen) for c, r in runs.items()}
    bayes_declines = {c: decline(r["score"]["h_bayes"], r["score"]["k"], cfg["boot"], gen)[0] for c, r in runs.items()}
    l7 = {f"{c}_decline_bits": d[0] for c, d in declines.items()}
    by_k = {c: {int(k): {"h_model": r["score"]["h_model"][r["score"]["k"] == k].mean().item(),
                         "h_bayes": r["score"]["h_bayes"][r["score"]["k"] == k].mean().item(),
                         "mass": r["score"]["mass"][r["score"]["k"] == k].median().item()} for k in cfg["ks"]}
            for c, r in runs.items()}
    details6 = {"constant_baselines": base, "rho_k_pc1": llm_geometry.spearman(main["k"].double(), scores),
                "by_k": by_k["main"], "n_prompts": len(main["k"])}
    details7 = {"by_k": by_k, "bayes_declines": bayes_declines, "ci": {c: d[1] for c, d in declines.items()}}
    return {"L6": (l6, stats.bootstrap_ci(main["abs_error"]), details6),
            "L7": (l7, declines["main"][1], details7), "by_k": by_k}


def axes_from_pool(pool_values: torch.Tensor, entropy: torch.Tensor, layers: tuple, estimate: torch.Tensor) -> dict:
    """u_ent and its spread at each layer, from the estimation prompts only."""
    return {layer: llm_interventions.entropy_axis(pool_values[estimate, i], entropy[estimate])
            for i, layer in enumerate(layers)}


def percentile(true: float, null: list[float]) -> float:
    """Fraction of the null strictly below `true`."""
    return sum(x < true for x in null) / len(null)


def single_layer(behaviour, axis, spread: float, layer: int, heldout_values: torch.Tensor,
                 heldout_entropy: torch.Tensor, cfg: dict) -> dict:
    """L8 at one layer: held-out axis correlation; +-1 sigma shifts and a cut along u_ent,
    each against `n_random` random unit axes moved by the same amount."""
    gen = torch.Generator().manual_seed(cfg["seed"] + layer)
    corr = llm_interventions.pearson(heldout_values @ axis, heldout_entropy)
    with llm_geometry.one_thread():
        idx_ci = llm_geometry.bootstrap_statistic(
            lambda i: llm_interventions.pearson(heldout_values[i] @ axis, heldout_entropy[i]), len(heldout_values),
            cfg["boot"], gen)

    def shift_effect(u):
        up = behaviour.measure(llm_interventions.shift({layer: u}, {layer: spread}))
        down = behaviour.measure(llm_interventions.shift({layer: u}, {layer: -spread}))
        return up["d_entropy"] - down["d_entropy"], up, down

    true_eff, up, down = shift_effect(axis)
    randoms = llm_interventions.random_axes(len(axis), cfg["n_random"], gen)
    random_eff = [abs(shift_effect(u)[0]) for u in randoms]
    cut_true = behaviour.measure(llm_interventions.cut({layer: axis}), layers=(layer,))
    cut_random = [behaviour.measure(llm_interventions.cut({layer: u}))["kl_bits"] for u in randoms]
    after = cut_true["values"][:behaviour.n_natural, 0] @ axis       # what the edited tensor holds along u_ent
    readback = {"corr": llm_interventions.pearson(after, behaviour.base["entropy"]),
                "std_over_heldout_std": (after.std() / (heldout_values @ axis).std()).item()}
    values = {"heldout_axis_corr": corr, "shift_effect_percentile": percentile(true_eff, random_eff),
              "shift_directional": float(true_eff > 0)}
    details = {"layer": layer, "spread": spread, "shift_effect_bits": true_eff, "up_d_entropy": up["d_entropy"],
               "down_d_entropy": down["d_entropy"], "up_kl_bits": up["kl_bits"], "down_kl_bits": down["kl_bits"],
               "up_d_sula_mae": up["d_sula_mae"], "down_d_sula_mae": down["d_sula_mae"],
               "random_shift_effects": random_eff, "cut_kl_bits": cut_true["kl_bits"],
               "cut_kl_percentile": percentile(cut_true["kl_bits"], cut_random), "random_cut_kl_bits": cut_random,
               "cut_d_sula_mae": cut_true["d_sula_mae"], "cut_readback_corr": readback}
    return {"values": values, "ci": idx_ci, "details": details}


def multi_layer(behaviour, axes: dict, cfg: dict) -> dict:
    """L9: the entropy axis cut at every layer of `axes` at once, against random unit axes."""
    gen = torch.Generator().manual_seed(cfg["seed"] + 999)
    u = {layer: a for layer, (a, _) in axes.items()}
    true = behaviour.measure(llm_interventions.cut(u))
    d = len(next(iter(u.values())))
    randoms = [behaviour.measure(llm_interventions.cut({layer: llm_interventions.random_axes(d, 1, gen)[0]
                                                        for layer in u})) for _ in range(cfg["n_random_multi"])]
    base_err, cut_err = behaviour.base["sula"]["abs_error"], true["sula_abs_error"]
    rel = lambda i: abs(cut_err[i].mean() - base_err[i].mean()).item() / base_err[i].mean().item()  # noqa: E731
    with llm_geometry.one_thread():
        ci = llm_geometry.bootstrap_statistic(rel, len(base_err), cfg["boot"], gen)
    rand_d = torch.tensor([r["d_sula_mae"] for r in randoms])
    values = {"sula_mae_rel_change": rel(slice(None)), "random_cut_mae_change_median": rand_d.median().item()}
    details = {"layers": list(u), "base_sula_mae": base_err.mean().item(), "cut_sula_mae": true["sula_mae"],
               "cut_kl_bits": true["kl_bits"], "cut_d_entropy": true["d_entropy"],
               "random_kl_bits": [r["kl_bits"] for r in randoms], "random_d_sula_mae": rand_d.tolist(),
               "cut_kl_percentile": percentile(true["kl_bits"], [r["kl_bits"] for r in randoms]),
               "cut_sula_mass": true["sula_mass"], "base_sula_mass": behaviour.base["sula"]["mass"].median().item()}
    return {"values": values, "ci": ci, "details": details}


def interventions(models: llm_runs.Models, texts: list[str], pool_run: dict, cfg: dict) -> dict:
    """L8 (`single_layer` at the last layer) and L9 (`multi_layer` over every layer of
    `cfg["layers_multi"]`) on the trained model. The entropy axis of each layer is estimated on
    the pool `texts` (from their pass `pool_run`) but `cfg["heldout"]` prompts drawn at random;
    behaviour is measured on some of those held-out prompts and on fresh SULA prompts:
    {"single": ..., "multi": ...}. Cached, keyed by the model and every input's content; the
    model is loaded only to compute."""
    order = torch.randperm(len(texts), generator=torch.Generator().manual_seed(cfg["seed"]))
    heldout, estimate = order[:cfg["heldout"]], order[cfg["heldout"]:]
    axes = axes_from_pool(pool_run["values"], pool_run["entropy"], cfg["layers_multi"], estimate)
    eval_sula = sula.Evidence().prompts("main", cfg["ks"], cfg["eval_sula_per_k"],
                                        torch.Generator().manual_seed(cfg["seed"] + 7))
    eval_texts = [texts[i] for i in heldout[:cfg["eval_natural"]]]
    label_ids = llm_runs.label_ids(models.trained, models.trained_id, "main")
    last = cfg["layers_single"][0]
    heldout_values, heldout_entropy = last_layer_values(pool_run, cfg)[heldout], pool_run["entropy"][heldout]

    def compute():
        model, tokenizer = models.trained()
        single = single_layer(
            llm_interventions.Behaviour(model, tokenizer, eval_texts, eval_sula, label_ids, start=last),
            *axes[last], last, heldout_values, heldout_entropy, cfg)
        multi = multi_layer(
            llm_interventions.Behaviour(model, tokenizer, eval_texts, eval_sula, label_ids, start=min(axes)),
            axes, cfg)
        return {"single": single, "multi": multi}

    key = {"model": models.trained_id, "last": last, "cfg": cfg, "inputs": cache.digest(
        [eval_texts, eval_sula, label_ids, {str(layer): a for layer, a in axes.items()}, heldout_values,
         heldout_entropy])}
    return cache.get_or_compute("llm-interventions", key, MODULES, compute)


def jsonable(obj):
    """Details for a claim record: tensors to lists, tuples to lists, floats kept."""
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return obj


def set_table_row(summary: dict) -> dict:
    """The numbers of one prompt set's PCA summary that the chapter tabulates and records."""
    keys = ("n", "d", "pc1", "pc12", "participation_ratio", "spearman", "spearman_p", "loo_min", "loo_max")
    return {**{k: summary[k] for k in keys}, "raw_pc1": summary["raw"]["pc1"],
            "gaussian_null_pc1": summary["gaussian_null"]["pc1"],
            "permutation_null_pc1": summary["permutation_null"]["pc1"],
            "permutation_null_pc1_q95": summary["permutation_null"]["pc1_q95"],
            "pc1_jackknife_ci": list(summary["jackknife"]["pc1"])}
