"""The one model family: a small GPT with named hook points (lib/hooks.py), its two MLP
controls, and two recurrent baselines (an LSTM here, a small Mamba in lib/mamba.py).

Hook names follow TransformerLens wherever a counterpart exists, so analysis code reads
`blocks.0.attn.hook_pattern` here and on a real LLM alike.

Used by: every chapter. 01_bijection (C1) trains the transformer and the MLPs; the LSTM and
Mamba are Paper I's architecture comparison (C11-C15, spec paper1.md §3.1).
"""
import functools
import math

import torch
from torch import nn

from lib.config import ModelConfig
from lib.hooks import HookFn, Hooked, HookPoint
from lib.mamba import Mamba, MambaBlock


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads, self.d_head = cfg.n_heads, cfg.d_model // cfg.n_heads
        self.W_Q = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.W_K = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.W_V = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.W_O = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.hook_q = HookPoint()            # [batch, pos, head, d_head]
        self.hook_k = HookPoint()            # [batch, pos, head, d_head]
        self.hook_v = HookPoint()            # [batch, pos, head, d_head]
        self.hook_attn_scores = HookPoint()  # [batch, head, query_pos, key_pos], before the mask
        self.hook_pattern = HookPoint()      # [batch, head, query_pos, key_pos]
        self.hook_z = HookPoint()            # [batch, pos, head, d_head], pattern-weighted values

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq, d_model = x.shape
        split = lambda t: t.view(batch, seq, self.n_heads, self.d_head)  # noqa: E731
        q = self.hook_q(split(self.W_Q(x)))
        k = self.hook_k(split(self.W_K(x)))
        v = self.hook_v(split(self.W_V(x)))
        if self.hook_attn_scores.attached or self.hook_pattern.attached:
            z = self.explicit_attention(q, k, v)
        else:  # nothing reads the [batch, head, pos, pos] tensors: the fused kernel never builds them
            z = nn.functional.scaled_dot_product_attention(
                q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True).transpose(1, 2)
        return self.W_O(self.hook_z(z).reshape(batch, seq, d_model))

    def explicit_attention(self, q, k, v) -> torch.Tensor:
        """Attention written out, through its score and pattern hook points; what the fused
        kernel computes, up to float rounding (tests/test_model.py)."""
        seq = q.shape[1]
        scores = self.hook_attn_scores(torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(self.d_head))
        causal = torch.ones(seq, seq, dtype=torch.bool, device=q.device).tril()
        pattern = self.hook_pattern(scores.masked_fill(~causal, float("-inf")).softmax(dim=-1))
        return torch.einsum("bhqk,bkhd->bqhd", pattern, v)  # [batch, pos, head, d_head]


class MLP(nn.Sequential):
    def __init__(self, d_model: int, d_mlp: int):
        super().__init__(nn.Linear(d_model, d_mlp), nn.GELU(), nn.Linear(d_mlp, d_model))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then + mlp(norm(x)).
    Without attention (Paper I's C4 variant) it is x + mlp(norm(x))."""

    def __init__(self, cfg: ModelConfig, attention: bool = True):
        super().__init__()
        self.norm_mlp, self.mlp = nn.RMSNorm(cfg.d_model), MLP(cfg.d_model, cfg.d_mlp)
        self.norm_attn = nn.RMSNorm(cfg.d_model) if attention else None
        self.attn = Attention(cfg) if attention else None
        self.hook_resid_pre = HookPoint()   # [batch, pos, d_model]
        self.hook_attn_out = HookPoint() if attention else None  # [batch, pos, d_model]
        self.hook_resid_mid = HookPoint()   # [batch, pos, d_model]
        self.hook_mlp_out = HookPoint()     # [batch, pos, d_model]
        self.hook_resid_post = HookPoint()  # [batch, pos, d_model]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.hook_resid_pre(x)
        if self.attn is not None:
            x = x + self.hook_attn_out(self.attn(self.norm_attn(x)))
        x = self.hook_resid_mid(x)
        return self.hook_resid_post(x + self.hook_mlp_out(self.mlp(self.norm_mlp(x))))


class Transformer(Hooked):
    """Token + learned absolute position embeddings, pre-norm blocks, final RMSNorm, linear
    read-out over the task's outcomes (e.g. the V value tokens of the bijection)."""

    # Each architecture's VERSION keys its runs (lib/cache.py): bump it when a change alters
    # the numbers it computes, here or in what it shares (Attention, Block, MLP, build_model);
    # tests/test_golden_numerics.py fails until you do. Version 2: fused attention, and
    # compiled training (lib/train.py).
    VERSION = 2

    def __init__(self, cfg: ModelConfig, vocab_size: int, seq_len: int, n_out: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, cfg.d_model)
        self.pos_embed = nn.Embedding(seq_len, cfg.d_model)
        first_without = cfg.n_layers - cfg.attention_off_top
        self.blocks = nn.ModuleList(Block(cfg, attention=i < first_without) for i in range(cfg.n_layers))
        self.norm_final = nn.RMSNorm(cfg.d_model)
        self.unembed = nn.Linear(cfg.d_model, n_out)
        self.hook_embed = HookPoint()        # [batch, pos, d_model]
        self.hook_pos_embed = HookPoint()    # [pos, d_model]
        self.hook_resid_final = HookPoint()  # [batch, pos, d_model], after the final norm
        self.setup_hooks()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.hook_embed(self.embed(tokens)) + self.hook_pos_embed(self.pos_embed(positions))
        for block in self.blocks:
            x = block(x)
        return self.unembed(self.hook_resid_final(self.norm_final(x)))  # [batch, pos, n_out]


class ResidualMLP(Hooked):
    """The MLP controls. At position t the input is a linear map of the flattened, zero-padded
    prefix (`mlp_flat`) or of token t alone (`mlp_local`, which cannot see the context), plus
    an embedding of t; then residual pre-norm MLP blocks. The linear map is a sum over
    positions j of a per-position map of token j: of its one-hot vector (a table row per
    (position, token), d_embed=0) or of a shared d_embed-dimensional token embedding."""

    VERSION = 1

    def __init__(self, cfg: ModelConfig, vocab_size: int, seq_len: int, n_out: int):
        super().__init__()
        self.sees_prefix = cfg.arch == "mlp_flat"
        self.vocab_size = vocab_size
        if cfg.d_embed:
            self.token_embed = nn.Embedding(vocab_size, cfg.d_embed)
            self.position_maps = nn.Parameter(torch.empty(seq_len, cfg.d_embed, cfg.d_model))  # one map per position
        else:
            self.embed = nn.Embedding(seq_len * vocab_size, cfg.d_model)  # one row per (position, token)
        self.query_embed = nn.Embedding(seq_len, cfg.d_model)         # which position is asking
        self.norms = nn.ModuleList(nn.LayerNorm(cfg.d_model) for _ in range(cfg.n_layers))
        self.mlps = nn.ModuleList(MLP(cfg.d_model, cfg.d_mlp) for _ in range(cfg.n_layers))
        self.norm_final = nn.LayerNorm(cfg.d_model)
        self.unembed = nn.Linear(cfg.d_model, n_out)
        self.hook_resid_final = HookPoint()  # [batch, pos, d_model], after the final norm
        self.setup_hooks()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        seq = tokens.shape[1]
        positions = torch.arange(seq, device=tokens.device)
        if hasattr(self, "position_maps"):
            x = torch.einsum("bpe,ped->bpd", self.token_embed(tokens), self.position_maps[:seq])
        else:
            x = self.embed(positions * self.vocab_size + tokens)  # [batch, pos, d_model]
        if self.sees_prefix:
            x = x.cumsum(dim=1)
        x = x + self.query_embed(positions)
        for norm, mlp in zip(self.norms, self.mlps):
            x = x + mlp(norm(x))
        return self.unembed(self.hook_resid_final(self.norm_final(x)))  # [batch, pos, n_out]


class LSTM(Hooked):
    """A recurrent baseline: token embeddings, stacked LSTM layers (position is implicit in the
    recurrence), final LayerNorm, linear read-out."""

    VERSION = 1

    def __init__(self, cfg: ModelConfig, vocab_size: int, seq_len: int, n_out: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, cfg.d_model)
        self.lstm = nn.LSTM(cfg.d_model, cfg.d_model, num_layers=cfg.n_layers, batch_first=True)
        self.norm_final = nn.LayerNorm(cfg.d_model)
        self.unembed = nn.Linear(cfg.d_model, n_out)
        self.hook_resid_final = HookPoint()  # [batch, pos, d_model], after the final norm
        self.setup_hooks()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x, _ = self.lstm(self.embed(tokens))
        return self.unembed(self.hook_resid_final(self.norm_final(x)))  # [batch, pos, n_out]


ARCHITECTURES = {"transformer": Transformer, "mlp_flat": ResidualMLP, "mlp_local": ResidualMLP, "lstm": LSTM,
                 "mamba": Mamba}


def build_model(cfg: ModelConfig, task) -> Hooked:
    """The model `cfg` describes, sized for `task`'s vocabulary, length and outcomes."""
    cls = ARCHITECTURES[cfg.arch]
    model = cls(cfg, task.vocab_size, task.seq_len, task.n_out)
    for module in model.modules():  # GPT-2 initialisation: small weights, zero biases
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, ResidualMLP) and hasattr(module, "position_maps"):
            nn.init.normal_(module.position_maps, std=0.02)
    for module in model.modules():
        # The loop above just set dt_proj to weight N(0, 0.02), bias 0: every channel's step
        # would start at softplus(0) = 0.69, not spread over Mamba's [DT_MIN, DT_MAX] as its
        # memory timescales need. Restore the SSM's own initialisation.
        if isinstance(module, MambaBlock):
            module.reset_ssm_parameters()
    return model


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@functools.cache  # configs and tasks are frozen: sizing searches (lib.profiles) ask for the same ones often
def count_params(cfg: ModelConfig, task) -> int:
    """The parameter count of the model `cfg` describes for `task`, without building its weights."""
    with torch.device("meta"):  # shapes only, no memory or initialisation
        return n_params(build_model(cfg, task))


# Ablations as hooks, so that every chapter ablates the same way.

def zero_head(layer: int, head: int) -> tuple[str, HookFn]:
    """Remove one head's contribution: zero its pattern-weighted values before W_O."""
    def fn(z, name):
        z = z.clone()
        z[:, :, head] = 0
        return z
    return f"blocks.{layer}.attn.hook_z", fn


def zero_output(name: str) -> tuple[str, HookFn]:
    """Zero the activation at a hook, e.g. "blocks.1.hook_attn_out" (attention off)."""
    return name, lambda x, _: torch.zeros_like(x)


def skip_block(layer: int) -> list[tuple[str, HookFn]]:
    """The block becomes the identity on the residual stream."""
    return [zero_output(f"blocks.{layer}.hook_attn_out"), zero_output(f"blocks.{layer}.hook_mlp_out")]
