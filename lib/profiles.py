"""The sizes each chapter runs at: `smoke` (seconds, for tests), `default` (a laptop CPU,
where claims are judged) and `paper` (the papers' own sizes, for a GPU).

A chapter asks for its runs by profile name, e.g. `profiles.c1("default")`; an unknown
profile or override is an error, never a silent default.
"""
import dataclasses
import math


from lib.claims import PROFILES
from lib.config import ModelConfig, RunConfig, TrainConfig
from lib.em_vs_sgd import EMConfig, StickyChain
from lib.llm import at_depths
from lib.model import count_params
from lib.tasks import HMM, Bijection, Recall, Sawtooth


def check_profile(profile: str) -> None:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose from {PROFILES}")


def _largest_at_most(count, target: int, hi: int = 1 << 16) -> int:
    """Largest integer n >= 1 with count(n) <= target, for count increasing in n."""
    lo = 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if count(mid) <= target else (lo, mid - 1)
    return lo


def match_params(cfg: ModelConfig, task, target: int, mlp_ratio: int, tol: float = 0.01) -> ModelConfig:
    """`cfg` resized to `target` parameters: the largest d_model that fits with
    d_mlp = mlp_ratio * d_model, then (for models that have one) d_mlp fine-tuned to the
    closest count. An error if that count is not within `tol` of `target`."""
    width = _largest_at_most(lambda w: count_params(
        dataclasses.replace(cfg, d_model=w, d_mlp=mlp_ratio * w), task), target)
    sized = lambda d_mlp: dataclasses.replace(cfg, d_model=width, d_mlp=d_mlp)  # noqa: E731
    candidates = [sized(mlp_ratio * width), dataclasses.replace(cfg, d_model=width + 1, d_mlp=mlp_ratio * (width + 1))]
    if count_params(sized(1), task) != count_params(sized(2), task):  # d_mlp matters: fine-tune it
        d_mlp = _largest_at_most(lambda m: count_params(sized(m), task), target)
        candidates += [sized(d_mlp), sized(d_mlp + 1)]
    best = min(candidates, key=lambda c: abs(count_params(c, task) - target))
    if abs(count_params(best, task) - target) > tol * target:
        raise ValueError(f"no size of {cfg.arch} comes within {tol:.0%} of {target} parameters")
    return best


def snapshot_schedule(steps: int, first: int, per_decade=(1, 1.5, 2, 3, 5, 7)) -> tuple[int, ...]:
    """Snapshot steps from `first` to before `steps`, dense early: the multiples `per_decade` of
    each power of ten (the final weights are the run's own). E.g. (3000, 10) -> 10, 15, 20, 30,
    50, ..., 2000."""
    grid = (m * 10**e for e in range(int(math.log10(steps)) + 1) for m in per_decade)
    return tuple(sorted({int(s) for s in grid if first <= s < steps}))


def with_snapshots(runs: list[RunConfig], first: int, per_decade=(1, 1.5, 2, 3, 5, 7),
                   dtype: str = "float32") -> list[RunConfig]:
    """The same runs, keeping weight snapshots from step `first` on (dense early, see
    `snapshot_schedule`), for the frame-precision chapter: one training serves both."""
    return [dataclasses.replace(cfg, train=dataclasses.replace(
        cfg.train, snapshots=snapshot_schedule(cfg.train.steps, first, per_decade), snapshot_dtype=dtype))
        for cfg in runs]


# Per profile: transformer size, MLP depth, training recipe, seeds, evaluation size, and the
# first weight snapshot the transformer keeps.
C1_SIZES = {
    "smoke": dict(transformer=ModelConfig(d_model=16, n_layers=1, n_heads=2, d_mlp=32), mlp_layers=1,
                  train=TrainConfig(steps=40, batch_size=32, lr=3e-3, warmup=5, eval_every=20, eval_size=64),
                  seeds=(0, 1), eval_size=128, first_snapshot=2),
    "default": dict(transformer=ModelConfig(d_model=64, n_layers=2, n_heads=4, d_mlp=256), mlp_layers=2,
                    train=TrainConfig(steps=3000, batch_size=128, lr=3e-3, warmup=150, eval_every=250),
                    seeds=(0, 1, 2), eval_size=4096, first_snapshot=10),
    # The authors' recipe as reconstructed in the spec (paper1.md §3.2): jlens / train_v256_ddp.
    "paper": dict(transformer=ModelConfig(d_model=192, n_layers=6, n_heads=6, d_mlp=768), mlp_layers=18,
                  train=TrainConfig(steps=50_000, batch_size=256, lr=3e-4, weight_decay=0.1, warmup=2000,
                                    target="sampled", eval_every=1000),
                  seeds=(0, 1, 2, 3, 4), eval_size=4096, first_snapshot=100),
}


def c1(profile: str, rung: str | None = None) -> dict:
    """Runs for chapter 1: {model name: [RunConfig per seed]}, plus the evaluation size. On a
    compute-ladder `rung` (see `rung_runs`) its models replace the default ones.

    The CPU profiles train on the exact posterior as a soft target (same minimiser as the
    paper's sampled labels, far less gradient noise); `transformer_sampled` and
    `mlp_flat_sampled` use the paper's objective, same models and steps with twice the batch,
    reported beside them.
    """
    check_profile(profile)
    size, task = C1_SIZES[profile], Bijection(V=20, L=19)
    transformer = size["transformer"]
    mlp = match_params(ModelConfig(arch="mlp_flat", n_layers=size["mlp_layers"]), task,
                      count_params(transformer, task), mlp_ratio=2)
    models = {"transformer": transformer, "mlp_flat": mlp,
              "mlp_local": dataclasses.replace(mlp, arch="mlp_local")}
    runs = {name: [RunConfig(task, m, dataclasses.replace(size["train"], seed=s)) for s in size["seeds"]]
            for name, m in models.items()}
    runs["transformer"] = with_snapshots(runs["transformer"], size["first_snapshot"])
    if size["train"].target == "soft":
        sampled = dataclasses.replace(size["train"], seed=size["seeds"][0], target="sampled",
                                      batch_size=2 * size["train"].batch_size)
        runs["transformer_sampled"] = [RunConfig(task, transformer, sampled)]
        runs["mlp_flat_sampled"] = [RunConfig(task, mlp, sampled)]
    return {"runs": runs | rung_runs(rung, profile, "bijection"), "eval_size": size["eval_size"]}


# Chapter 2: the HMM wind tunnel, trained at K=20 and built for K up to 50.
C2_SIZES = {
    "smoke": dict(transformer=ModelConfig(d_model=16, n_layers=2, n_heads=2, d_mlp=32), mlp_layers=1,
                  train=TrainConfig(steps=40, batch_size=16, lr=3e-3, warmup=5, eval_every=20, eval_size=32),
                  seeds=(0, 1), eval_size=64, first_snapshot=2),
    # Sized to the 15-minute-per-seed CPU budget: 3,000 steps at about 0.23 s per step on one
    # thread. (Six blocks learn faster per step, 0.132 vs 0.156 bits at 1,500 steps, but cost
    # half as much again per step.)
    "default": dict(transformer=ModelConfig(d_model=64, n_layers=4, n_heads=4, d_mlp=256), mlp_layers=2,
                    train=TrainConfig(steps=3000, batch_size=64, lr=2e-3, weight_decay=0.01, warmup=300,
                                      eval_every=250),
                    seeds=(0, 1, 2), eval_size=2048, first_snapshot=50),
    # GPTMini of the authors' code (spec paper1.md §3.1-3.2): 9 layers, 8 heads, d=256, ff 1024.
    "paper": dict(transformer=ModelConfig(d_model=256, n_layers=9, n_heads=8, d_mlp=1024), mlp_layers=18,
                  train=TrainConfig(steps=50_000, batch_size=64, lr=3e-4, weight_decay=0.01, warmup=1000,
                                    eval_every=1000),
                  seeds=(0, 1, 2, 3, 4), eval_size=4096, first_snapshot=500),
}
C2_TEST_K = (20, 30, 50)


def c2(profile: str, rung: str | None = None) -> dict:
    """Runs for chapter 2: {model name: [RunConfig per seed]}, the test lengths and evaluation
    size; on a compute-ladder `rung` (see `rung_runs`) its transformer replaces the default one.

    `transformer_attn_off` is Paper I's C4 variant: the same transformer with no attention in
    its top two blocks. The flat MLP (8-dim token embeddings, flattened: a one-hot prefix of
    153 x 105 inputs would spend its whole budget on the first layer) and the LSTM are sized
    to the transformer's parameter count (the LSTM as closely as its width allows)."""
    check_profile(profile)
    size, task = C2_SIZES[profile], HMM(K=20, K_max=max(C2_TEST_K))
    transformer = size["transformer"]
    target = count_params(transformer, task)
    models = {
        "transformer": transformer,
        "transformer_attn_off": dataclasses.replace(transformer, attention_off_top=2),
        "mlp_flat": match_params(ModelConfig(arch="mlp_flat", n_layers=size["mlp_layers"], d_embed=8), task,
                                 target, mlp_ratio=2),
        "lstm": match_params(ModelConfig(arch="lstm", n_layers=2), task, target, mlp_ratio=1, tol=0.05),
    }
    runs = {name: [RunConfig(task, m, dataclasses.replace(size["train"], seed=s)) for s in size["seeds"]]
            for name, m in models.items()}
    runs["transformer"] = with_snapshots(runs["transformer"], size["first_snapshot"])
    return {"runs": runs | rung_runs(rung, profile, "hmm"), "test_K": C2_TEST_K, "eval_size": size["eval_size"]}


# Chapter 3 (geometry): chapters 1 and 2's transformers, and chapter 1's recipe on the
# with-replacement bijection. Evaluation sizes in sequences (per task for the ablation sweeps:
# an HMM sequence is 2.5x longer and its model twice as deep), and permutation-null draws.
C3_SIZES = {
    "smoke": dict(eval_size={"bijection": 64, "sawtooth": 64, "hmm": 32}, manifold_size=64, n_permutations=20),
    "default": dict(eval_size={"bijection": 1024, "sawtooth": 1024, "hmm": 512}, manifold_size=1024,
                    n_permutations=1000),
    "paper": dict(eval_size={"bijection": 4096, "sawtooth": 4096, "hmm": 2048}, manifold_size=2048,
                  n_permutations=1000),
}


def c3(profile: str, rung: str | None = None) -> dict:
    """Chapter 3: {"runs": {"bijection", "sawtooth", "hmm": [RunConfig per seed]}} plus the
    evaluation sizes. The bijection and HMM runs are chapter 1's and 2's transformers (loaded
    from the cache, never a second training; a ladder `rung` replaces one of them); the
    sawtooth runs are chapter 1's default transformer recipe trained on the with-replacement task."""
    check_profile(profile)
    sawtooth = [dataclasses.replace(cfg, task=Sawtooth(V=cfg.task.V, L=cfg.task.L),
                                    train=dataclasses.replace(cfg.train, snapshots=()))
                for cfg in c1(profile)["runs"]["transformer"]]
    return {"runs": {"bijection": c1(profile, rung)["runs"]["transformer"], "sawtooth": sawtooth,
                     "hmm": c2(profile, rung)["runs"]["transformer"]}, **C3_SIZES[profile]}


# Chapter 5 (Paper II, gradient laws): chapter 1's transformer is checked through its hooks;
# the other pieces are small random heads and the EM-vs-SGD experiment.

C5_RANDOM_HEAD = dict(n=16, T=12, d_x=6, d_k=4, d_v=5, n_out=3)  # the spec's float64 check (paper2_3.md §2.5)
# G3: the registered instances (random heads, unit weight scale), the step sizes, and the weight
# scales explored afterwards to explain the result.
C5_FEEDBACK = dict(head=dict(T=16, d_x=8, d_k=4, d_v=6, n_out=5, scale=1.0), etas=(1e-4, 1e-3, 1e-2, 1e-1, 1.0),
                   scales=(0.1, 0.3, 1.0, 3.0))
C5_SIZES = {
    "smoke": dict(check_batch=16, feedback_heads=20,
                  em=EMConfig(chain=StickyChain(seq_len=200), steps=30, long_steps=60,
                              long_arms=("sgd", "em_like"), long_seeds=1, seeds=(42, 2024), eval_every=10)),
    # The paper's task, model, learning rates, budget and seeds; the long budget on the first seed.
    "default": dict(check_batch=256, feedback_heads=200,
                    em=EMConfig(steps=1000, long_steps=8000, long_arms=("sgd", "em_like"), long_seeds=1)),
    "paper": dict(check_batch=1024, feedback_heads=1000,
                  em=EMConfig(steps=1000, long_steps=20_000, long_arms=("sgd", "em_like", "w_o"), long_seeds=5)),
}


def c5(profile: str) -> dict:
    """Chapter 5: chapter 1's first transformer run (`transformer`, trained through the cache if
    missing), the random float64 heads (`random_head`), the positive-feedback instances
    (`feedback`, with `feedback_heads` heads), the number of sequences for the in-model check
    (`check_batch`) and the EM-vs-SGD experiment (`em`)."""
    check_profile(profile)
    size = C5_SIZES[profile]
    return {"transformer": c1(profile)["runs"]["transformer"][0], "random_head": C5_RANDOM_HEAD,
            "feedback": C5_FEEDBACK, **size}


# Chapter 6 (frame-precision dissociation): chapters 1 and 2's transformers, which keep weight
# snapshots; each is measured on one fixed probe batch of this many sequences.
C6_SIZES = {
    "smoke": dict(probe_size={"bijection": 64, "hmm": 32}),
    "default": dict(probe_size={"bijection": 512, "hmm": 256}),
    "paper": dict(probe_size={"bijection": 1024, "hmm": 512}),
}


def c6(profile: str, rung: str | None = None) -> dict:
    """Chapter 6: {"runs": {"bijection", "hmm": [RunConfig per seed]}} (chapter 1's and 2's
    transformers, with their snapshots; a ladder `rung` of the steps axis replaces one) and the
    probe batch sizes."""
    check_profile(profile)
    return {"runs": {"bijection": c1(profile, rung)["runs"]["transformer"],
                     "hmm": c2(profile, rung)["runs"]["transformer"]}, **C6_SIZES[profile]}


# Chapter 7 (Paper III, LLMs): every registered model (lib/llm/registry.py) side by side; the
# profiles differ in how many prompts, resamples and random axes they use. Layers are named by
# relative depth (lib.llm.at_depths: 0 the first layer, 1 the last) and resolved per model: the
# paper's Pythia-410M layers of 0..23, single-layer 23 and multi-layer {8, 12, 16, 20, 23}, as
# fractions of 23. SmolLM2 (30 layers): 29 and {10, 15, 20, 25, 29}; Gemma-3 (18): 17 and
# {6, 9, 12, 15, 17}.
C7_DEPTHS = {"layers_single": (23 / 23,), "layers_multi": tuple(layer / 23 for layer in (8, 12, 16, 20, 23))}
C7_SIZES = {
    "smoke": dict(pool_per_domain=12, per_quintile=2, sula_per_k=1, boot=20, null_reps=3, heldout=20,
                  eval_natural=4, eval_sula_per_k=1, n_random=2, n_random_multi=2, length_band=(0.0, 1.0), key_tokens=100),
    "default": dict(pool_per_domain=None, per_quintile=15, sula_per_k=24, boot=1000, null_reps=50, heldout=200,
                    eval_natural=32, eval_sula_per_k=8, n_random=20, n_random_multi=10, length_band=(0.25, 0.75),
                    key_tokens=1000),
    "paper": dict(pool_per_domain=None, per_quintile=15, sula_per_k=100, boot=2000, null_reps=200, heldout=200,
                  eval_natural=100, eval_sula_per_k=20, n_random=100, n_random_multi=50, length_band=(0.25, 0.75),
                  key_tokens=1000),
}


def c7(profile: str) -> dict:
    """Chapter 7: prompt counts (`pool_per_domain`: None = the whole committed pool), the
    stratification (`per_quintile` per entropy quintile), SULA prompts per k, bootstrap and
    null sizes, the held-out and behaviour-evaluation sets of the interventions, their random
    axes, the layers' relative depths, and the token-length band (quantiles of the math
    domain's lengths) of the length-matched sets."""
    check_profile(profile)
    return {**C7_SIZES[profile], "ks": (0, 1, 2, 4, 8), "depths": C7_DEPTHS, "seed": 0, "init_seed": 0}


def c7_model(cfg: dict, n_layers: int) -> dict:
    """Chapter 7's `cfg` for a model of `n_layers` layers: the depths resolved to its layers
    (`layers_single`, `layers_multi`), the single layer being the last and one of the multi-layer
    set (checked). What the model's cached analyses are keyed by."""
    layers = {name: at_depths(depths, n_layers) for name, depths in cfg["depths"].items()}
    if layers["layers_single"] != (n_layers - 1,) or layers["layers_single"][0] not in layers["layers_multi"]:
        raise ValueError(f"chapter 7's single layer must be the last, {n_layers - 1}, and in the multi-layer set: {layers}")
    return {**{k: v for k, v in cfg.items() if k != "depths"}, **layers}


# Chapter 4 (architectures, C11-C15): which architectures have which inference primitive.
# Accumulation reuses chapter 1's transformer and flat MLP, transport chapter 2's transformer,
# flat MLP and LSTM (loaded from the cache, never trained twice); the new runs are each task's
# missing recurrent models and the whole binding (associative recall) task. Every new model is
# parameter-matched within 5% to its task's transformer and trained with that transformer's
# recipe, budget and seeds. Recurrent models: `recurrent_layers` blocks (Mamba with
# d_inner = 2 * d_model, the paper's expand 2; LSTM hidden width = d_model).
C4_SIZES = {
    "smoke": dict(recurrent_layers={"bijection": 2, "hmm": 2, "recall": 2},
                  recall_task=Recall(n_pairs=4, n_queries=2, n_filler=0, n_keys=8, n_values=8),
                  recall_transformer=ModelConfig(d_model=16, n_layers=1, n_heads=2, d_mlp=32), recall_mlp_layers=1,
                  recall_train=TrainConfig(steps=40, batch_size=16, lr=3e-3, warmup=5, eval_every=20, eval_size=32),
                  recall_seeds=(0, 1), recall_eval_size=64, sweep_pairs=(2, 4), sweep_seeds=(0,),
                  geometry_size=32),
    # Recall size: 4 stored pairs of 16 keys / 16 values, every pair queried, no filler (28
    # tokens). Probes of this transformer and recipe (seed 0, answer read at the key) learnt 4
    # pairs in under 1,000 of the 3,000 steps and stayed at 1/8 with 8 pairs, at learning
    # rates 2e-3 to 1e-2; the sweep shows that edge.
    "default": dict(recurrent_layers={"bijection": 2, "hmm": 2, "recall": 2},
                    recall_task=Recall(n_pairs=4, n_queries=4, n_filler=0, n_keys=16, n_values=16),
                    recall_transformer=ModelConfig(d_model=64, n_layers=2, n_heads=4, d_mlp=256), recall_mlp_layers=2,
                    recall_train=TrainConfig(steps=3000, batch_size=64, lr=2e-3, weight_decay=0.1, warmup=200,
                                             eval_every=250),
                    recall_seeds=(0, 1, 2), recall_eval_size=2048, sweep_pairs=(2, 4, 8), sweep_seeds=(0,),
                    geometry_size=512),
    # The authors' recall generator at its defaults (spec paper1.md §2.3: 64 pairs, 3 queries,
    # 32 fillers, 256 keys and values) with chapter 1's paper-size transformer and recipe;
    # recurrent depth as the authors' LSTM / Mamba (6 layers on the bijection, 9 on the HMM).
    "paper": dict(recurrent_layers={"bijection": 6, "hmm": 9, "recall": 6},
                  recall_task=Recall(),
                  recall_transformer=ModelConfig(d_model=192, n_layers=6, n_heads=6, d_mlp=768), recall_mlp_layers=18,
                  recall_train=TrainConfig(steps=50_000, batch_size=256, lr=3e-4, weight_decay=0.1, warmup=2000,
                                           eval_every=1000),
                  recall_seeds=(0, 1, 2, 3, 4), recall_eval_size=4096, sweep_pairs=(16, 32, 64, 128),
                  sweep_seeds=(0,), geometry_size=2048),
}
C4_ARCHS = ("transformer", "mamba", "lstm", "mlp_flat")  # the rows of the primitives matrix
C4_REUSED = {"bijection": ("transformer", "mlp_flat"), "hmm": ("transformer", "mlp_flat", "lstm")}  # from c1, c2
C4_GEOMETRY_OFFSET = 115  # C15's HMM evaluation stream; chapter 1 scores on offset 1, chapter 2 on K = 20, 30, 50
C4_SWEEP_ARCHS = ("transformer", "mamba")


def _recurrent(arch: str, n_layers: int, task, target: int) -> ModelConfig:
    """A Mamba (expand 2) or LSTM of `n_layers` blocks sized to `target` parameters within 5%."""
    ratio = {"mamba": 2, "lstm": 1}[arch]
    return match_params(ModelConfig(arch=arch, n_layers=n_layers), task, target, mlp_ratio=ratio, tol=0.05)


def _recall_models(size: dict, task, archs=C4_ARCHS) -> dict[str, ModelConfig]:
    """The recall architectures `archs` for `task`, sized to its transformer. The flat MLP uses
    8-dimensional token embeddings flattened over positions, as chapter 2's (a one-hot prefix
    would spend the budget on its first layer)."""
    transformer, layers = size["recall_transformer"], size["recurrent_layers"]["recall"]
    target = count_params(transformer, task)
    build = {"transformer": lambda: transformer,
             "mamba": lambda: _recurrent("mamba", layers, task, target),
             "lstm": lambda: _recurrent("lstm", layers, task, target),
             "mlp_flat": lambda: match_params(ModelConfig(arch="mlp_flat", n_layers=size["recall_mlp_layers"],
                                                          d_embed=8), task, target, mlp_ratio=2, tol=0.05)}
    return {arch: build[arch]() for arch in archs}


def c4_sweep_task(base: Recall, n_pairs: int) -> Recall:
    """The recall task of the stored-pairs sweep: `base` with `n_pairs` pairs (and no more
    queries than pairs)."""
    return dataclasses.replace(base, n_pairs=n_pairs, n_queries=min(base.n_queries, n_pairs))


def c4(profile: str) -> dict:
    """Chapter 4: {"runs": {task: {arch: [RunConfig per seed]}}} for the tasks "bijection"
    (accumulation), "hmm" (transport) and "recall" (binding), each with the architectures of
    `C4_ARCHS`; "sweep": {n_pairs: {arch: [RunConfig]}} (recall with more or fewer stored
    pairs, transformer and Mamba); "pad_convention": [RunConfig] (the recall transformer with
    the answer read at the PAD, as the authors' generator attaches it); the evaluation sizes
    ("eval_size" per task, "geometry_size" in HMM sequences for C15, "test_K" for the HMM);
    C15's evaluation stream ("geometry_offset"); and which runs are chapter 1's and 2's
    ("reused").

    Chapter 1's transformer and flat MLP and chapter 2's transformer, flat MLP and LSTM are
    the very RunConfigs of `c1` and `c2`, so the cache returns their runs."""
    check_profile(profile)
    size, one, two = C4_SIZES[profile], c1(profile), c2(profile)
    layers = size["recurrent_layers"]

    def new_runs(model: ModelConfig, train: TrainConfig, seeds, task) -> list[RunConfig]:
        return [RunConfig(task, model, dataclasses.replace(train, seed=s, snapshots=())) for s in seeds]

    runs = {}
    for name, chapter, sizes in (("bijection", one, C1_SIZES[profile]), ("hmm", two, C2_SIZES[profile])):
        transformer = chapter["runs"]["transformer"]
        task, target = transformer[0].task, count_params(transformer[0].model, transformer[0].task)
        runs[name] = {arch: chapter["runs"][arch] for arch in C4_REUSED[name]}
        for arch in set(C4_ARCHS) - set(C4_REUSED[name]):
            runs[name][arch] = new_runs(_recurrent(arch, layers[name], task, target), sizes["train"], sizes["seeds"],
                                        task)
        runs[name] = {arch: runs[name][arch] for arch in C4_ARCHS}  # matrix order
    recall = size["recall_task"]
    runs["recall"] = {arch: new_runs(m, size["recall_train"], size["recall_seeds"], recall)
                      for arch, m in _recall_models(size, recall).items()}
    sweep = {}
    for n_pairs in size["sweep_pairs"]:
        task = c4_sweep_task(recall, n_pairs)
        sweep[n_pairs] = {arch: new_runs(m, size["recall_train"], size["sweep_seeds"], task)
                          for arch, m in _recall_models(size, task, C4_SWEEP_ARCHS).items()}
    pad_task = dataclasses.replace(recall, read_at="pad")
    pad_convention = new_runs(_recall_models(size, pad_task, ("transformer",))["transformer"], size["recall_train"],
                              size["sweep_seeds"], pad_task)
    return {"runs": runs, "sweep": sweep, "pad_convention": pad_convention, "test_K": C2_TEST_K, "reused": C4_REUSED,
            "geometry_offset": C4_GEOMETRY_OFFSET,
            "eval_size": {"bijection": one["eval_size"], "hmm": two["eval_size"], "recall": size["recall_eval_size"]},
            "geometry_size": size["geometry_size"]}


def c8(profile: str) -> dict:
    """Chapter 8 (the compute ladder) trains nothing of its own: it reads the records that
    `make ladder` measured on the ladder's runs (`ladder`, trained by `make train PROFILE=ladder`)."""
    check_profile(profile)
    return {}


CHAPTERS = {1: c1, 2: c2, 3: c3, 4: c4, 5: c5, 6: c6, 7: c7, 8: c8}  # chapter number -> its runs and sizes


# The compute ladder: is a claim that fails at the default budget a fact about the paper or
# about our budget? Chapter 1's and 2's transformers climb two axes from the default rung (the
# chapters' own runs, 3 seeds): training length up to the paper's 50,000 steps at the default
# width, and width and depth up to the paper's architecture; every rung above the default has
# one seed. Rungs above the default train with the paper profile's optimiser and schedule
# (AdamW at its learning rate, weight decay and warm-up, cosine to zero) on the default's
# batches. Each task's top rung has at least LADDER_TOP_FACTOR times the default's training
# compute (lib.train.training_flops). Chapter 1's flat MLP climbs the width axis as the paper
# built it: 18 residual LayerNorm layers, sized to each width rung's transformer.
# The first rung of the steps axis is the schedule control: the default's model and length on
# the paper's schedule, so a change from the default rung to it is the schedule's, and the
# trend above it (lib.ladder, fitted on the paper-schedule rungs only) is compute's.
# The longer rungs of the steps axis keep thinned half-precision snapshots for chapter 6's
# frame and precision curves (1, 2, 5 per decade from LADDER_FIRST_SNAPSHOT): the ladder's runs
# may add at most 60 MB to the repository, and every snapshot of the full grid in float32 would
# take 90; the control keeps none, as the width rungs.
LADDER_STEPS = {"smoke": (60, 120), "default": (6_000, 12_000, 25_000, 50_000)}
LADDER_FIRST_SNAPSHOT = {"smoke": 10, "default": 100}
LADDER_WIDTHS = {
    "smoke": {"bijection": [(ModelConfig(d_model=32, n_layers=2, n_heads=2, d_mlp=64), 60)],
              "hmm": [(ModelConfig(d_model=32, n_layers=2, n_heads=2, d_mlp=64), 60)]},
    "default": {"bijection": [(ModelConfig(d_model=128, n_layers=4, n_heads=4, d_mlp=512), 3_000),
                              (C1_SIZES["paper"]["transformer"], 4_000)],
                "hmm": [(ModelConfig(d_model=128, n_layers=4, n_heads=4, d_mlp=512), 6_000),
                        (ModelConfig(d_model=128, n_layers=4, n_heads=4, d_mlp=512), 26_000)]},
}
LADDER_TOP_FACTOR = 32
LADDER_MLP_LAYERS = 18


def ladder(scale: str = "default") -> dict[str, dict[str, list[RunConfig]]]:
    """{task: {rung: [RunConfig per seed]}}: "default" (the chapter's runs), "N steps" rungs
    and "dD x L, N steps" rungs for "bijection" and "hmm", and {"mlp": {rung: [...]}} for the
    deep flat MLPs sized to the bijection's width rungs. `scale`: "default", or "smoke" (tiny
    rungs, for tests)."""
    if scale not in LADDER_STEPS:
        raise ValueError(f"ladder: unknown scale {scale!r}; choose from {sorted(LADDER_STEPS)}")
    chapter_runs = {"bijection": (c1(scale)["runs"]["transformer"], C1_SIZES),
                    "hmm": (c2(scale)["runs"]["transformer"], C2_SIZES)}
    rungs = {}
    for task, (default_runs, sizes) in chapter_runs.items():
        base, paper = default_runs[0], sizes["paper"]["train"]

        def rung(model: ModelConfig, steps: int) -> list[RunConfig]:
            train = dataclasses.replace(base.train, steps=steps, lr=paper.lr, weight_decay=paper.weight_decay,
                                        warmup=min(paper.warmup, steps // 2), eval_every=max(1, steps // 12),
                                        snapshots=(), seed=0)
            return [RunConfig(base.task, model, train)]
        rungs[task] = {"default": default_runs, f"{base.train.steps:,} steps": rung(base.model, base.train.steps), **{
            f"{steps:,} steps": with_snapshots(rung(base.model, steps), LADDER_FIRST_SNAPSHOT[scale], (1, 2, 5),
                                               "float16")
            for steps in LADDER_STEPS[scale]}}
        for model, steps in LADDER_WIDTHS[scale][task]:
            rungs[task][f"d{model.d_model} x {model.n_layers}, {steps:,} steps"] = rung(model, steps)
    rungs["mlp"] = {}
    for name, runs in rungs["bijection"].items():
        if name == "default" or " x " in name:
            cfg = runs[0]
            mlp = match_params(ModelConfig(arch="mlp_flat", n_layers=LADDER_MLP_LAYERS), cfg.task,
                               count_params(cfg.model, cfg.task), mlp_ratio=2)
            rungs["mlp"][f"{LADDER_MLP_LAYERS} layers at {name}"] = [dataclasses.replace(cfg, model=mlp,
                                                                         train=dataclasses.replace(cfg.train, snapshots=()))]
    return rungs


def run_configs(obj):
    """Every RunConfig inside a chapter's nested dicts, lists and tuples."""
    if isinstance(obj, RunConfig):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from run_configs(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from run_configs(value)


def runs_by_chapter(profile: str) -> dict[int, list[RunConfig]]:
    """The runs each chapter trains first, in book order (a run an earlier chapter trained is
    counted there): what a `make reproduce` with an empty cache trains before each chapter."""
    seen, out = set(), {}
    for number, chapter in CHAPTERS.items():
        out[number] = [cfg for cfg in dict.fromkeys(run_configs(chapter(profile))) if cfg not in seen]
        seen.update(out[number])
    return out


def ladder_rungs(scale: str = "default") -> list[str]:
    """Every rung above the default, named "<task>: <rung>" as `rung_runs` takes them, e.g.
    "bijection: 12,000 steps", "hmm: d128 x 4, 26,000 steps", "mlp: 18 layers at default"."""
    return [f"{task}: {name}" for task, rungs in ladder(scale).items() for name in rungs if name != "default"]


def rung_runs(rung: str | None, scale: str, task: str) -> dict[str, list[RunConfig]]:
    """The models a chapter of `task` ("bijection" or "hmm") uses on the ladder rung `rung`
    (None: the default, {}): a transformer rung replaces the chapter's transformer; a deep-MLP
    rung ("mlp: 18 layers at <bijection rung>") replaces chapter 1's flat MLP and its
    transformer by that bijection rung's. A rung of the other task changes nothing."""
    if rung is None:
        return {}
    if scale not in LADDER_STEPS:
        raise ValueError(f"the {scale!r} profile has no compute ladder (smoke and default have one)")
    if rung not in ladder_rungs(scale):
        raise ValueError(f"unknown ladder rung {rung!r}; choose from {ladder_rungs(scale)}")
    rung_task, name = rung.split(": ", 1)
    rungs = ladder(scale)
    if rung_task == "mlp" and task == "bijection":
        return {"mlp_flat": rungs["mlp"][name], "transformer": rungs["bijection"][name.split(" at ", 1)[1]]}
    return {"transformer": rungs[task][name]} if rung_task == task else {}


def rung_chapters(rung: str, scale: str = "default") -> list[int]:
    """The chapters that measure a ladder rung's claims: 1 and 3 (C1, C5-C9) on a bijection
    rung, 2 and 3 (C2, C3, C5, C8, C9) on an HMM rung, and 6 (C10) on the rungs that keep
    snapshots (the steps axis above its control); 1 (C1's MLP ratio) on a deep-MLP rung."""
    task, name = rung.split(": ", 1)
    snapshots = bool(ladder(scale)[task][name][0].train.snapshots)
    return {"bijection": [1, 3] + [6] * snapshots, "hmm": [2, 3] + [6] * snapshots, "mlp": [1]}[task]
