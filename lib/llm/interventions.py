"""Paper III's causal probes, measured on behaviour: an entropy-aligned axis u_ent in value
space (estimated on one prompt set), edits of the value vectors along it (cut: remove the
component; shift: add a multiple of its spread), each against matched random axes, and what
the edited model then does on other prompts (next-token entropy, KL to the unedited model,
SULA calibration and mass on the labels).

Reading the correlation back from the edited tensor is reported too, but it is tautological
for a cut (spec paper2_3.md §1 item 4): only behaviour is evidence.

Used by: 07_llm_geometry (L8, L9); Paper III §6.2, §7.1, spec paper2_3.md §3.11.
"""
import torch

from lib import llm, metrics, sula

# The version of the numbers this module computes: it keys their cache entries (lib/cache.py).
# Bump it when a change alters them; a comment or a refactor keeps it.
VERSION = 1


def entropy_axis(values: torch.Tensor, entropy: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Unit direction of the covariance of value vectors with entropy (oriented so that the
    projection grows with entropy), and the spread (std) of the projection: values [n, d]."""
    v = values.double() - values.double().mean(0)
    h = entropy.double() - entropy.double().mean()
    u = (v * h[:, None]).sum(0)
    u = u / u.norm()
    return u.float(), (values.double() @ u.double()).std().item()


def random_axes(d: int, n: int, generator: torch.Generator) -> torch.Tensor:
    a = torch.randn(n, d, generator=generator)
    return a / a.norm(dim=-1, keepdim=True)


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    return torch.corrcoef(torch.stack([a.double(), b.double()]))[0, 1].item()


def cut(axes: dict[int, torch.Tensor]) -> dict:
    """Edits removing, at each layer, the component of every position's value along its axis."""
    def edit(layer, which, v):                       # v [B, T, n_kv_heads, head_dim]
        u = axes[layer].to(v.dtype)
        flat = v.flatten(-2)
        return (flat - (flat @ u)[..., None] * u).view(v.shape)
    return {f"blocks.{layer}.attn.hook_v": edit for layer in axes}


def shift(axes: dict[int, torch.Tensor], amount: dict[int, float]) -> dict:
    """Edits adding amount[layer] * axis to every position's value."""
    def edit(layer, which, v):
        return (v.flatten(-2) + amount[layer] * axes[layer].to(v.dtype)).view(v.shape)
    return {f"blocks.{layer}.attn.hook_v": edit for layer in axes}


class Behaviour:
    """What a (possibly edited) model does on fixed evaluation prompts: natural prompts
    (next-token entropy, KL to the unedited model) and SULA prompts (calibration, mass)."""

    def __init__(self, model, tokenizer, natural: list[str], sula_prompts: list[dict], label_ids: list[int],
                 start: int, batch_size: int = 32):
        self.model, self.start, self.n_natural = model, start, len(natural)
        self.sula_prompts, self.label_ids = sula_prompts, label_ids
        self.ids = llm.tokenize(tokenizer, natural + [p["text"] for p in sula_prompts])
        self.prefix = llm.prefix(model, self.ids, start, batch_size=batch_size, pad_id=tokenizer.pad_token_id)
        self.base = self._run(None)

    def _run(self, edits, layers=()):
        out = llm.forward_last(self.model, self.ids, layers=layers, edits=edits, start=(self.start, self.prefix))
        lp = out["logprobs"]
        nat, sul = lp[:self.n_natural], lp[self.n_natural:]
        res = {"logprobs": nat, "entropy": metrics.entropy_bits(nat.exp()),
               "sula": sula.score(sul, self.label_ids, self.sula_prompts)}
        if layers:
            res["values"] = out["values"]
        return res

    def measure(self, edits, layers=()) -> dict:
        """Changes against the unedited model: mean next-token entropy change (bits), mean
        KL(unedited || edited) (bits), SULA MAE (bits) and its change, SULA mass on the labels."""
        run = self._run(edits, layers)
        kl = (self.base["logprobs"].exp() * (self.base["logprobs"] - run["logprobs"])).sum(-1) / torch.log(
            torch.tensor(2.0, dtype=torch.float64))
        s, s0 = run["sula"], self.base["sula"]
        out = {"d_entropy": (run["entropy"] - self.base["entropy"]).mean().item(), "kl_bits": kl.mean().item(),
               "sula_mae": s["abs_error"].mean().item(),
               "d_sula_mae": (s["abs_error"].mean() - s0["abs_error"].mean()).item(),
               "sula_mass": s["mass"].median().item(), "sula_abs_error": s["abs_error"]}
        if layers:
            out["values"] = run["values"]
        return out
