import dataclasses
import math

import pytest
import torch

from lib import cache, train
from lib.config import ModelConfig, RunConfig, TrainConfig
from lib.mamba import DT_MAX, DT_MIN, selective_scan, selective_scan_reference
from lib.model import build_model, skip_block, zero_head, zero_output
from lib.tasks import TASKS, make_task

TASK = make_task("bijection", V=6, L=5)
SMALL_TASKS = {"bijection": {"V": 6, "L": 5}, "hmm": {"K": 6, "K_max": 8}, "sawtooth": {"V": 6, "L": 5},
               "recall": {"n_pairs": 4, "n_filler": 4, "n_keys": 8, "n_values": 8}}
SMALL = {"transformer": ModelConfig(d_model=16, n_layers=2, n_heads=2, d_mlp=32),
         "mlp_flat": ModelConfig(arch="mlp_flat", d_model=16, n_layers=2, d_mlp=32),
         "mlp_local": ModelConfig(arch="mlp_local", d_model=16, n_layers=2, d_mlp=32),
         "lstm": ModelConfig(arch="lstm", d_model=16, n_layers=2),
         "mamba": ModelConfig(arch="mamba", d_model=16, n_layers=2, d_mlp=32)}


def tokens(n=4, seed=0):
    return TASK.sample(n, torch.Generator().manual_seed(seed)).tokens


def model(arch="transformer", seed=0):
    torch.manual_seed(seed)
    return build_model(SMALL[arch], TASK).eval()


def test_hook_points_are_named_and_shaped():
    m = model()
    logits, acts = m.run_with_cache(tokens())
    batch, seq, d_head = 4, TASK.seq_len, 8
    assert logits.shape == (batch, seq, TASK.n_out)
    assert acts["blocks.1.attn.hook_k"].shape == (batch, seq, 2, d_head)
    assert acts["blocks.0.attn.hook_pattern"].shape == (batch, 2, seq, seq)
    assert acts["blocks.0.hook_resid_post"].shape == (batch, seq, 16)
    assert {"hook_embed", "hook_pos_embed", "hook_resid_final", "blocks.1.hook_mlp_out",
            "blocks.1.attn.hook_z", "blocks.0.hook_attn_out"} <= set(acts)
    pattern = acts["blocks.0.attn.hook_pattern"]
    torch.testing.assert_close(pattern.sum(-1), torch.ones(batch, 2, seq))
    assert (pattern.triu(1) == 0).all()  # causal


@pytest.mark.parametrize("arch", list(SMALL))
def test_changing_a_later_token_never_changes_an_earlier_prediction(arch):
    m, x = model(arch), tokens()
    y = x.clone()
    y[:, 6:] = (y[:, 6:] + 1) % TASK.vocab_size
    torch.testing.assert_close(m(x)[:, :6], m(y)[:, :6])
    if arch != "mlp_local":  # the control sees no context; the others must
        assert not torch.allclose(m(x)[:, 6:], m(y)[:, 6:])


@pytest.mark.parametrize("name", sorted(TASKS))
def test_fused_attention_equals_the_explicit_path_with_gradients_for_every_task(name):
    """Training runs the fused kernel (no hook reads the pattern); analysis runs the explicit
    path. Same outputs at every position, same gradients, and the hooks both paths share
    (here every block's hook_z) see the same activations."""
    task = make_task(name, **SMALL_TASKS[name])
    torch.manual_seed(0)
    m = build_model(SMALL["transformer"], task)
    x = task.sample(4, torch.Generator().manual_seed(0)).tokens
    shared = [f"blocks.{i}.attn.hook_z" for i in range(2)]
    patterns = [f"blocks.{i}.attn.hook_pattern" for i in range(2)]

    def forward_backward(names):
        m.zero_grad()
        logits, acts = m.run_with_cache(x, names)
        logits.pow(2).sum().backward()
        return logits, acts, {k: p.grad.clone() for k, p in m.named_parameters()}

    fused, explicit = forward_backward(shared), forward_backward(shared + patterns)
    assert not m.blocks[0].attn.hook_pattern.attached  # run_with_cache removed its hooks
    torch.testing.assert_close(fused[0], explicit[0], rtol=1e-5, atol=1e-6)
    for name in shared:
        torch.testing.assert_close(fused[1][name], explicit[1][name], rtol=1e-5, atol=1e-6)
    for name, grad in fused[2].items():
        torch.testing.assert_close(grad, explicit[2][name], rtol=1e-4, atol=1e-6, msg=name)
    assert not torch.equal(fused[2]["blocks.0.attn.W_Q.weight"], torch.zeros_like(fused[2]["blocks.0.attn.W_Q.weight"]))


def test_a_transformer_without_attention_sees_no_context():
    torch.manual_seed(0)
    m = build_model(ModelConfig(d_model=16, n_layers=2, n_heads=2, d_mlp=32, attention_off_top=2), TASK).eval()
    assert not any("attn" in name for name in m.hook_points)
    x = tokens()
    y = x.clone()
    y[:, :3] = (y[:, :3] + 1) % TASK.vocab_size
    torch.testing.assert_close(m(x)[:, 3:], m(y)[:, 3:])
    torch.manual_seed(0)
    top_off = build_model(ModelConfig(d_model=16, n_layers=2, n_heads=2, d_mlp=32, attention_off_top=1), TASK)
    assert "blocks.0.attn.hook_pattern" in top_off.hook_points and "blocks.1.attn.hook_pattern" not in top_off.hook_points


def test_hooks_are_removed_even_when_the_body_fails():
    m = model()
    with pytest.raises(RuntimeError):
        with m.hooks([zero_output("blocks.0.hook_attn_out")]):
            raise RuntimeError
    assert all(not hp._forward_hooks for hp in m.hook_points.values())
    with pytest.raises(ValueError, match="no hook point"):
        with m.hooks([("blocks.9.hook_attn_out", lambda x, n: x)]):
            pass


def test_zero_head_removes_exactly_that_heads_contribution():
    m, x = model(), tokens()
    _, acts = m.run_with_cache(x, ["blocks.1.attn.hook_z", "blocks.1.hook_attn_out"])
    z = acts["blocks.1.attn.hook_z"].clone()
    z[:, :, 1] = 0
    expected = m.blocks[1].attn.W_O(z.flatten(2))
    captured = {}
    with m.hooks([zero_head(1, 1), ("blocks.1.hook_attn_out", lambda a, n: captured.setdefault("a", a))]):
        m(x)
    torch.testing.assert_close(captured["a"], expected)


def test_skipping_every_block_leaves_embedding_to_unembedding():
    m, x = model(), tokens()
    with m.hooks([h for layer in range(2) for h in skip_block(layer)]):
        skipped = m(x)
    positions = torch.arange(x.shape[1])
    direct = m.unembed(m.norm_final(m.embed(x) + m.pos_embed(positions)))
    torch.testing.assert_close(skipped, direct)


def test_checkpoint_round_trip_is_strict_and_exact(tmp_path):
    cfg = RunConfig(TASK, SMALL["transformer"], TrainConfig(steps=3, batch_size=4, warmup=1, eval_every=3, eval_size=8))
    run = cache.get_or_train(cfg, progress=False)
    loaded = cache.load(cache.run_path(cfg))
    for (name, a), (_, b) in zip(run.model.state_dict().items(), loaded.model.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name)
    saved = torch.load(cache.run_path(cfg), weights_only=True)
    del saved["state_dict"]["unembed.bias"]
    torch.save(saved, tmp_path / "broken.pt")
    with pytest.raises(RuntimeError, match="unembed.bias"):
        cache.load(tmp_path / "broken.pt")


@pytest.mark.parametrize("bad,word", [({"arch": "rnn"}, "arch"), ({"arch": "mamba", "d_mlp": 0}, "positive"), ({"d_model": 10, "n_heads": 4}, "divisible"),
                                      ({"n_layers": 0}, "positive"), ({"attention_off_top": 3}, "attention_off_top"),
                                      ({"arch": "lstm", "attention_off_top": 1}, "attention_off_top")])
def test_model_config_rejects_nonsense(bad, word):
    with pytest.raises(ValueError, match=word):
        ModelConfig(**bad)


@pytest.mark.parametrize("arch", list(SMALL))
def test_every_architecture_is_causal_at_every_position(arch):
    """Changing token t alone never changes the outputs at positions before t (float64)."""
    torch.manual_seed(1)
    cfg = dataclasses.replace(SMALL[arch], d_model=8, d_mlp=16, n_heads=2)
    m = build_model(cfg, TASK).double().eval()
    x = tokens(n=3, seed=1)
    with torch.no_grad():
        base = m(x)
        for t in range(TASK.seq_len):
            y = x.clone()
            y[:, t] = (y[:, t] + 1 + torch.arange(3)) % TASK.vocab_size
            torch.testing.assert_close(m(y)[:, :t], base[:, :t], rtol=0, atol=1e-12)


def random_scan_inputs(batch=3, seq=50, d_inner=5, dtype=torch.float32, seed=0):
    """x, dt, A, B, C with steps dt from 1e-3 to 10, so that exp(dt A) ranges from about 1 (a long
    memory) to about 0 (a reset)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, seq, d_inner, generator=g, dtype=dtype)
    dt = 10 ** (4 * torch.rand(batch, seq, d_inner, generator=g, dtype=dtype) - 3)
    A = -torch.rand(d_inner, 16, generator=g, dtype=dtype) * 16
    B, C = torch.randn(2, batch, seq, 16, generator=g, dtype=dtype)
    return x, dt, A, B, C


def test_the_fast_scan_equals_the_reference_loop_with_gradients():
    inputs = random_scan_inputs()
    grad_y = torch.randn(inputs[0].shape, generator=torch.Generator().manual_seed(1))
    results = []
    for scan in (selective_scan, selective_scan_reference):
        leaves = [v.clone().requires_grad_() for v in inputs]
        y = scan(*leaves)
        y.backward(grad_y)
        results.append([y.detach()] + [v.grad for v in leaves])
    for fast, reference, name in zip(*results, ("y", "x", "dt", "A", "B", "C")):
        torch.testing.assert_close(fast, reference, rtol=1e-5, atol=1e-5, msg=name)
    small = [v.requires_grad_() for v in random_scan_inputs(batch=2, seq=6, d_inner=3, dtype=torch.float64)]
    assert torch.autograd.gradcheck(selective_scan, small)


def test_mamba_keeps_its_ssm_initialisation_and_is_deterministic_given_the_seed():
    task = make_task("recall", n_pairs=8, n_keys=16, n_values=16)
    x = task.sample(2, torch.Generator().manual_seed(0)).tokens
    torch.manual_seed(0)
    m = build_model(SMALL["mamba"], task).eval()
    block = m.blocks[0]
    dt = torch.nn.functional.softplus(block.dt_proj.bias)
    assert DT_MIN <= dt.min() and dt.max() <= DT_MAX and dt.max() / dt.min() > 10  # spread, not softplus(0)
    torch.testing.assert_close(block.A_log, torch.arange(1.0, 17.0).log().expand(32, -1))
    torch.testing.assert_close(block.D, torch.ones(32))
    assert block.dt_proj.weight.abs().max() > 0.2  # uniform in +-dt_rank^-1/2 = +-1, not N(0, 0.02)
    out = m(x)
    assert out.isfinite().all()
    torch.manual_seed(0)
    torch.testing.assert_close(build_model(SMALL["mamba"], task).eval()(x), out, rtol=0, atol=0)
    torch.manual_seed(1)
    assert not torch.allclose(build_model(SMALL["mamba"], task).eval()(x), out)


def test_a_few_steps_of_training_teach_a_tiny_mamba():
    cfg = RunConfig(TASK, SMALL["mamba"], TrainConfig(steps=150, batch_size=32, lr=1e-2, warmup=10,
                                                      eval_every=150, eval_size=256))
    untrained = train.train(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, lr=1e-12)),
                            progress=False).history[-1]
    trained = train.train(cfg, progress=False).history[-1]
    assert trained["kl"] < 0.5 * untrained["kl"], (trained["kl"], untrained["kl"])
    assert math.isfinite(trained["loss"]) and trained["entropy_mae"] < untrained["entropy_mae"]
