"""Cached forward passes of a pretrained LM over prompt sets (through lib.cache's content-keyed
artifacts): what chapter 7 measures, computed once and reused on re-execution.

A model is described by a small dict (`model_id`): the GGUF file it came from (name and size,
from lib.llm.registry) or, for the untrained control, that and the random-initialisation
seed, so a different model can never return another's activations. `Models` loads a model
(half a minute to a minute) only when something has to be computed: a chapter re-executed
from the cache never loads it.

Used by: 07_llm_geometry (L1-L9).
"""
import functools
import hashlib

import torch

from lib import cache, llm, sula
from lib.llm import registry

# The version of the numbers this module computes: it keys their cache entries (lib/cache.py).
# Bump it when a change alters them; a comment or a refactor keeps it.
VERSION = 1

MODULES = ("llm", "llm.runs")


class Models:
    """A registered model with its tokenizer (`trained()`) and the same architecture at random
    initialisation (`init()`), each loaded on first call; their identities in the cache keys
    (`trained_id`, `init_id`) and the trained model's layout (cached) need no loading."""

    def __init__(self, name: str, init_seed: int):
        self.name, self.entry, self.init_seed = name, registry.get(name), init_seed
        self.trained_id = registry.model_id(name)
        self.init_id = {**self.trained_id, "random_init_seed": init_seed}

    @functools.cache
    def trained(self) -> tuple:
        """(model, tokenizer) of `registry.load`."""
        return registry.load(self.name)

    @functools.cache
    def init(self) -> tuple:
        """(untrained model, tokenizer): `registry.random_init_like` of the trained model, `init_seed`."""
        model, tokenizer = self.trained()
        return registry.random_init_like(model, self.init_seed), tokenizer

    @functools.cached_property
    def layout(self) -> llm.Layout:
        return layout(self.trained, self.trained_id)


def _texts_hash(texts: list[str]) -> str:
    return hashlib.sha256("\0".join(texts).encode()).hexdigest()


def layout(load, model_id: dict) -> llm.Layout:
    """`llm.layout` of the model `load()` returns (as `Models.trained`); cached."""
    return llm.Layout(**cache.get_or_compute("llm-layout", {"model": model_id}, MODULES,
                                             lambda: vars(llm.layout(load()[0]))))


def label_ids(load, model_id: dict, condition: str) -> list[int]:
    """`sula.label_token_ids` of the tokenizer `load()` returns; cached."""
    return cache.get_or_compute("llm-labels", {"model": model_id, "condition": condition}, (*MODULES, "sula"),
                                lambda: {"ids": sula.label_token_ids(load()[1], condition)})["ids"]


def last_token_pass(load, model_id: dict, texts: list[str], layers=(), attention: bool = False,
                    batch_size: int = 32, label_ids: tuple[int, ...] = ()) -> dict:
    """Per prompt: next-token entropy (bits), prompt length and last token id, values at `layers`
    (last token), and with `attention` the normalised final-query attention entropies; with
    `label_ids` the log-probabilities of those tokens. Cached under data/runs; `load()` returns
    (model, tokenizer) and is called only when the pass is not cached."""
    key = {"model": model_id, "texts": _texts_hash(texts), "n": len(texts), "layers": list(layers),
           "attention": attention, "labels": list(label_ids)}

    def compute():
        from lib import metrics
        model, tokenizer = load()
        ids = llm.tokenize(tokenizer, texts)
        out = llm.forward_last(model, ids, layers=layers, attention=attention, batch_size=batch_size,
                               pad_id=tokenizer.pad_token_id)
        res = {"entropy": metrics.entropy_bits(out["logprobs"].exp()), "length": torch.tensor(list(map(len, ids))),
               "last_token": torch.tensor([seq[-1] for seq in ids]), "label_logprobs": out["logprobs"][:, list(label_ids)]}
        if layers:
            res["values"] = out["values"]
        if attention:
            res["attn_entropy"], res["attn_entropy_no_sink"] = out["attn_entropy"].float(), out["attn_entropy_no_sink"].float()
        return res

    return cache.get_or_compute("llm-pass", key, MODULES, compute)
