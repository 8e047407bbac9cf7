"""Mamba (Gu & Dao 2023, "Mamba-1"), written here in PyTorch: no mamba_ssm or mambapy,
because it must run on a CPU and be readable in one sitting. Sizes the paper fixes are module
constants, so ModelConfig needs no new fields; d_inner is ModelConfig.d_mlp.

The selective scan is defined by `selective_scan_reference` (a loop over positions that
autograd differentiates); training runs the same maths as a C++ extension, lib/csrc/
selective_scan.cpp, compiled on first use (about 30 s, once per machine, then loaded in
0.1 s). On one thread its forward and backward take 1/3.5 of autograd's through the
reference and 1/5 of the hand-written PyTorch backward it replaced, which halves a Mamba
training step. Without a compiler it falls back, with one warning, to the reference.

It lives in its own module, with its own VERSION (which keys Mamba runs only, lib/cache.py),
because its scan is the code most likely to change for speed: bump Mamba.VERSION when a change
to the scan, here or in lib/csrc/, alters its numbers.

Used by: 04_architectures (C11-C15), through lib.model's registry.
"""
import functools
import math
import os
import shutil
import sysconfig
import warnings
from pathlib import Path

import torch
from torch import nn

from lib.config import ModelConfig
from lib.hooks import Hooked, HookPoint

D_STATE = 16                # N: state size per channel
D_CONV = 4                  # causal depthwise convolution kernel
DT_MIN, DT_MAX = 1e-3, 1e-1  # initial step sizes, log-uniform in this range (the paper's init)
SCAN_SOURCE = Path(__file__).parent / "csrc" / "selective_scan.cpp"
SCAN_CFLAGS = ["-O3", "-fno-trapping-math"]  # no FP traps, so the clamps in vexp vectorise (torch never traps)


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


@functools.cache
def scan_extension():
    """The C++ selective scan (lib/csrc/selective_scan.cpp), compiled on first use by torch's
    JIT loader with the system compiler and cached in torch's extension directory (a later
    process only loads it); None, with one warning, if it cannot be built or loaded."""
    try:
        from torch.utils import cpp_extension
        scripts = sysconfig.get_path("scripts")  # where pip puts ninja, off PATH in a venv not activated
        if shutil.which("ninja") is None and shutil.which("ninja", path=scripts):
            os.environ["PATH"] = scripts + os.pathsep + os.environ.get("PATH", "")
        return cpp_extension.load(name="mamba_selective_scan", sources=[str(SCAN_SOURCE)],
                                  extra_cflags=SCAN_CFLAGS, verbose=False)
    except Exception as error:  # no compiler, no ninja, a build error: the reference scan still works
        lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [""]
        reason = next((line for line in lines if "error:" in line), lines[0])  # a compiler's own message first
        warnings.warn(f"Mamba's C++ selective scan is unavailable ({type(error).__name__}: {reason[:200]}); "
                      "using the slower PyTorch reference scan", RuntimeWarning, stacklevel=2)
        return None


class SelectiveScan(torch.autograd.Function):
    """`selective_scan_reference` through the C++ extension: a fused loop over (batch, channel,
    time, state) for the forward, and one for the backward, which recomputes the states instead
    of saving them (see lib/csrc/selective_scan.cpp)."""

    @staticmethod
    def forward(ctx, x, dt, A, B, C):
        inputs = [v.contiguous() for v in (x, dt, A, B, C)]
        ctx.save_for_backward(*inputs)
        return scan_extension().forward(*inputs)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_y):
        return tuple(scan_extension().backward(*ctx.saved_tensors, grad_y.contiguous()))


def selective_scan(x, dt, A, B, C) -> torch.Tensor:
    """`selective_scan_reference`, fast: the C++ scan on the CPU (float32 or float64, state size
    D_STATE); elsewhere, or if the extension cannot be built, the reference itself."""
    supported = (x.device.type == "cpu" and A.shape[-1] == D_STATE and x.dtype in (torch.float32, torch.float64)
                 and all(v.dtype == x.dtype for v in (dt, A, B, C)))
    if supported and scan_extension() is not None:
        return SelectiveScan.apply(x, dt, A, B, C)
    return selective_scan_reference(x, dt, A, B, C)


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
        x = x.contiguous()  # copied once here rather than by x_proj and again by the scan
        dt, B, C = self.x_proj(x).split([self.dt_rank, D_STATE, D_STATE], dim=-1)   # B, C: [batch, pos, N]
        dt = nn.functional.softplus(self.dt_proj(dt))                               # [batch, pos, d_inner]
        y = selective_scan(x, dt, -torch.exp(self.A_log), B, C) + self.D * x         # [batch, pos, d_inner]
        return self.hook_resid_post(resid + self.out_proj(y * nn.functional.silu(z)))


class Mamba(Hooked):
    """Token embeddings (no position embeddings: the scan is ordered), n_layers Mamba blocks
    of width d_inner = d_mlp, final RMSNorm, linear read-out."""

    VERSION = 2  # keys Mamba runs (lib/cache.py); version 2: the C++ scan

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
