"""Mamba (Gu & Dao 2023, "Mamba-1"), written here in plain PyTorch: no mamba_ssm or mambapy,
because it must run on a CPU and be readable in one sitting. Sizes the paper fixes are module
constants, so ModelConfig needs no new fields; d_inner is ModelConfig.d_mlp.

It lives in its own module because its scan is the code most likely to change (for speed):
only Mamba runs hash this file into their cache key (lib/cache.py), so such a change never
retrains the other architectures.

Used by: 04_architectures (C11-C15), through lib.model's registry.
"""
import math

import torch
from torch import nn

from lib.config import ModelConfig
from lib.hooks import Hooked, HookPoint

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
