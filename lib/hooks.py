"""Named hook points, TransformerLens style: every model of the family is a `Hooked`.

Every hook is an identity module applied exactly once; `Hooked.hooks(...)` adds functions to
them inside a context manager that always removes them, and `run_with_cache` records
activations by name.

Used by: lib/model.py and lib/mamba.py (every model), and every chapter that reads or edits
activations.
"""
from contextlib import contextmanager
from typing import Callable

import torch
from torch import nn

HookFn = Callable[[torch.Tensor, str], torch.Tensor | None]


class HookPoint(nn.Module):
    """Identity; a named place to read or replace an activation."""

    def __init__(self):
        super().__init__()
        self.name = ""  # set by Hooked.setup_hooks to the module path, e.g. "blocks.0.attn.hook_k"

    @property
    def attached(self) -> bool:
        """Whether a hook function is attached here now (a model may then take a slower path
        that computes this activation at all, e.g. attention's pattern)."""
        return bool(self._forward_hooks)

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
