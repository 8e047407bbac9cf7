"""The one model family: a small GPT with named hook points, its two MLP controls, and two
recurrent baselines (an LSTM and a small Mamba).

Hook names follow TransformerLens wherever a counterpart exists, so analysis code reads
`blocks.0.attn.hook_pattern` here and on a real LLM alike. Every hook is an identity module
applied exactly once; `Hooked.hooks(...)` adds functions to them inside a context manager
that always removes them, and `run_with_cache` records activations by name.

Used by: every chapter. 01_bijection (C1) trains the transformer and the MLPs; the LSTM and
Mamba are Paper I's architecture comparison (C11-C15, spec paper1.md §3.1).
"""
import math
from contextlib import contextmanager
from typing import Callable

import torch
from torch import nn

from lib.config import ModelConfig

HookFn = Callable[[torch.Tensor, str], torch.Tensor | None]


class HookPoint(nn.Module):
    """Identity; a named place to read or replace an activation."""

    def __init__(self):
        super().__init__()
        self.name = ""  # set by Hooked.setup_hooks to the module path, e.g. "blocks.0.attn.hook_k"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Hooked(nn.Module):
    def setup_hooks(self):
        self.hook_points = {}
        for name, module in self.named_modules():
            if isinstance(module, HookPoint):
                module.name = name
                self.hook_points[name] = module

    @contextmanager
    def hooks(self, fwd_hooks: list[tuple[str, HookFn]]):
        """Run the body with `fn(activation, name)` attached at each named hook point.

        A hook returns a replacement activation, or None to leave it unchanged.
        """
        handles = []
        try:
            for name, fn in fwd_hooks:
                if name not in self.hook_points:
                    raise ValueError(f"no hook point {name!r}; see model.hook_points")
                handles.append(self.hook_points[name].register_forward_hook(
                    lambda module, inputs, output, fn=fn: fn(output, module.name)))
            yield self
        finally:
            for handle in handles:
                handle.remove()

    def run_with_cache(self, tokens: torch.Tensor, names: list[str] | None = None):
        """Forward pass that also returns {hook name: activation} (all hooks if names is None)."""
        cache = {}

        def save(x, name):
            cache[name] = x.detach()

        with self.hooks([(name, save) for name in (names or self.hook_points)]):
            logits = self(tokens)
        return logits, cache


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
        scores = self.hook_attn_scores(torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(self.d_head))
        causal = torch.ones(seq, seq, dtype=torch.bool, device=x.device).tril()
        pattern = self.hook_pattern(scores.masked_fill(~causal, float("-inf")).softmax(dim=-1))
        z = self.hook_z(torch.einsum("bhqk,bkhd->bqhd", pattern, v))
        return self.W_O(z.reshape(batch, seq, d_model))


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


# Mamba (Gu & Dao 2023, "Mamba-1"), written here in plain PyTorch: no mamba_ssm or mambapy,
# because it must run on a CPU and be readable in one sitting. Sizes the paper fixes are
# module constants, so ModelConfig needs no new fields; d_inner is ModelConfig.d_mlp.
D_STATE = 16                # N: state size per channel
D_CONV = 4                  # causal depthwise convolution kernel
DT_MIN, DT_MAX = 1e-3, 1e-1  # initial step sizes, log-uniform in this range (the paper's init)


def selective_scan_reference(x, dt, A, B, C) -> torch.Tensor:
    """Mamba's selective scan by its definition, one position at a time (autograd differentiates
    it): h_t = exp(dt_t A) h_{t-1} + dt_t x_t B_t with h_{-1} = 0, and y_t = h_t C_t.

    x, dt: [batch, pos, d_inner]; A: [d_inner, N]; B, C: [batch, pos, N] -> y [batch, pos, d_inner].
    """
    h, ys = x.new_zeros(x.shape[0], x.shape[2], A.shape[1]), []               # h: [batch, d_inner, N]
    for x_t, dt_t, B_t, C_t in zip(x.unbind(1), dt.unbind(1), B.unbind(1), C.unbind(1)):
        h = torch.exp(dt_t[:, :, None] * A) * h + (dt_t * x_t)[:, :, None] * B_t[:, None, :]
        ys.append((h * C_t[:, None, :]).sum(-1))
    return torch.stack(ys, 1)


class SelectiveScan(torch.autograd.Function):
    """`selective_scan_reference` with a hand-written backward, for speed on a CPU.

    Every per-position operation touches one [batch, d_inner, N] state, which stays in cache;
    nothing of size [batch, pos, d_inner, N] is built except the saved states H. The backward
    runs the recurrence in reverse, g_t = dL/dh_t = C_t dL/dy_t + exp(dt_{t+1} A) g_{t+1},
    and reads every gradient off g_t. Measured on one CPU thread (batch 64, 37-137 positions,
    forward + backward): 1.3-1.4x faster than autograd through the reference loop, and about
    3x faster than building the [batch, pos, d_inner, N] decays and inputs at once and
    scanning them, which is what chunked parallel scans (log-space cumulative sums within
    chunks, doubling) do: those are memory-bound, and were slower still.
    """

    @staticmethod
    def forward(ctx, x, dt, A, B, C):
        x, dt, B, C = (v.transpose(0, 1).contiguous() for v in (x, dt, B, C))  # time-major: [pos, batch, ...]
        seq, batch, d_inner = x.shape
        H = x.new_empty(seq, batch, d_inner, A.shape[1])                         # every state h_t
        y = x.new_empty(seq, batch, d_inner, 1)
        h = x.new_zeros(batch, d_inner, A.shape[1])
        dtx = dt * x
        for t in range(seq):
            decay = torch.exp(dt[t, :, :, None] * A)
            h = torch.addcmul(dtx[t, :, :, None] * B[t, :, None, :], decay, h, out=H[t])
            torch.bmm(h, C[t, :, :, None], out=y[t])
        ctx.save_for_backward(x, dt, A, B, C, H)
        return y.squeeze(-1).transpose(0, 1)

    @staticmethod
    def backward(ctx, grad_y):
        x, dt, A, B, C, H = ctx.saved_tensors
        grad_y = grad_y.transpose(0, 1).contiguous()                             # [pos, batch, d_inner]
        grad_x, grad_dt, grad_B, grad_C = (torch.empty_like(v) for v in (x, dt, B, C))
        grad_A = torch.zeros_like(A)
        dtx = dt * x
        g = torch.zeros_like(H[0])                                               # dL/dh_t, [batch, d_inner, N]
        for t in range(x.shape[0] - 1, -1, -1):
            g = torch.addcmul(g, grad_y[t, :, :, None], C[t, :, None, :])
            torch.bmm(grad_y[t, :, None, :], H[t], out=grad_C[t, :, None, :])
            torch.bmm(dtx[t, :, None, :], g, out=grad_B[t, :, None, :])
            grad_dtx = torch.bmm(g, B[t, :, :, None]).squeeze(-1)                # [batch, d_inner]
            torch.mul(grad_dtx, dt[t], out=grad_x[t])
            torch.mul(grad_dtx, x[t], out=grad_dt[t])
            decay = torch.exp(dt[t, :, :, None] * A)
            if t > 0:                                                            # h_{-1} = 0: no decay gradient at t = 0
                grad_exponent = g * H[t - 1] * decay                             # dL/d(dt_t A)
                grad_dt[t] += (grad_exponent * A).sum(-1)
                grad_A += torch.einsum("bdn,bd->dn", grad_exponent, dt[t])
            g = g * decay                                                        # carried to h_{t-1}
        time_major = lambda v: v.transpose(0, 1)  # noqa: E731
        return time_major(grad_x), time_major(grad_dt), grad_A, time_major(grad_B), time_major(grad_C)


def selective_scan(x, dt, A, B, C) -> torch.Tensor:
    """The fast path of `selective_scan_reference`; same arguments and result."""
    return SelectiveScan.apply(x, dt, A, B, C)


class MambaBlock(nn.Module):
    """Pre-norm residual block x + mixer(norm(x)); the mixer is Mamba's selective SSM:
    in_proj to a stream x and a gate z, causal depthwise conv + SiLU on x, input-dependent
    step dt and matrices B, C, the scan h_t = exp(dt A) h_{t-1} + dt B x_t, y = C h + D x,
    gated by SiLU(z), out_proj."""

    def __init__(self, d_model: int, d_inner: int):
        super().__init__()
        self.dt_rank = math.ceil(d_model / 16)
        self.norm = nn.RMSNorm(d_model)
        self.in_proj = nn.Linear(d_model, 2 * d_inner, bias=False)
        self.conv = nn.Conv1d(d_inner, d_inner, D_CONV, groups=d_inner, padding=D_CONV - 1)
        self.x_proj = nn.Linear(d_inner, self.dt_rank + 2 * D_STATE, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, d_inner)
        self.A_log = nn.Parameter(torch.empty(d_inner, D_STATE))  # A = -exp(A_log) < 0: a decay
        self.D = nn.Parameter(torch.empty(d_inner))               # skip connection around the scan
        self.out_proj = nn.Linear(d_inner, d_model, bias=False)
        self.hook_resid_post = HookPoint()  # [batch, pos, d_model]
        self.reset_ssm_parameters()

    @torch.no_grad()
    def reset_ssm_parameters(self):
        """Mamba's own initialisation of the SSM: A_log = log(1..N) per channel (S4D-real),
        D = 1, and dt_proj such that softplus(bias) = dt, log-uniform in [DT_MIN, DT_MAX],
        with weights uniform in +-dt_rank^-1/2."""
        d_inner, device = self.D.shape[0], self.D.device
        self.A_log.copy_(torch.arange(1, D_STATE + 1, dtype=torch.float32, device=device).log().expand(d_inner, -1))
        self.D.fill_(1.0)
        nn.init.uniform_(self.dt_proj.weight, -self.dt_rank ** -0.5, self.dt_rank ** -0.5)
        dt = torch.exp(torch.rand(d_inner, device=device) * (math.log(DT_MAX) - math.log(DT_MIN)) + math.log(DT_MIN))
        self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # the inverse of softplus

    def forward(self, resid: torch.Tensor) -> torch.Tensor:
        seq = resid.shape[1]
        x, z = self.in_proj(self.norm(resid)).chunk(2, dim=-1)                      # [batch, pos, d_inner] each
        x = nn.functional.silu(self.conv(x.transpose(1, 2))[..., :seq].transpose(1, 2))  # causal: drop the right pad
        dt, B, C = self.x_proj(x).split([self.dt_rank, D_STATE, D_STATE], dim=-1)   # B, C: [batch, pos, N]
        dt = nn.functional.softplus(self.dt_proj(dt))                               # [batch, pos, d_inner]
        y = selective_scan(x, dt, -torch.exp(self.A_log), B, C) + self.D * x         # [batch, pos, d_inner]
        return self.hook_resid_post(resid + self.out_proj(y * nn.functional.silu(z)))


class Mamba(Hooked):
    """Token embeddings (no position embeddings: the scan is ordered), n_layers Mamba blocks
    of width d_inner = d_mlp, final RMSNorm, linear read-out."""

    def __init__(self, cfg: ModelConfig, vocab_size: int, seq_len: int, n_out: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(MambaBlock(cfg.d_model, cfg.d_mlp) for _ in range(cfg.n_layers))
        self.norm_final = nn.RMSNorm(cfg.d_model)
        self.unembed = nn.Linear(cfg.d_model, n_out)
        self.hook_resid_final = HookPoint()  # [batch, pos, d_model], after the final norm
        self.setup_hooks()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x)
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
        # would start at softplus(0) = 0.69, not spread over [DT_MIN, DT_MAX] as Mamba's
        # memory timescales need. Restore the SSM's own initialisation.
        if isinstance(module, MambaBlock):
            module.reset_ssm_parameters()
    return model


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


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
