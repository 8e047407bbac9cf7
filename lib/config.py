"""Run configuration: frozen dataclasses of plain values, checked when built.

A `RunConfig` (task + model + training) fully determines a trained run; its canonical
JSON, together with the source of the code that trains, is the run's cache key.
"""
import dataclasses
from dataclasses import dataclass

from lib.tasks import make_task
from lib.validate import check_field_types

ARCHS = ("transformer", "mlp_flat", "mlp_local", "lstm", "mamba")
TARGETS = ("soft", "sampled")
SNAPSHOT_DTYPES = ("float32", "float16")
# Fields added after runs were cached: at these values they stay out of a run's key (and file),
# so every run cached before them keeps its key.
KEYLESS_DEFAULTS = {"snapshot_dtype": "float32"}

@dataclass(frozen=True)
class ModelConfig:
    arch: str = "transformer"  # transformer | mlp_flat (sees the prefix) | mlp_local (sees one token) | lstm | mamba
    d_model: int = 64          # residual width (MLPs, LSTM: hidden width)
    n_layers: int = 2          # transformer blocks, residual MLP blocks, stacked LSTM layers, or Mamba blocks
    n_heads: int = 4           # transformer only
    d_mlp: int = 256           # hidden width inside each MLP sub-block; Mamba: d_inner, the width of the
                               # expanded stream its SSM scans (2 * d_model in the paper); unused by the LSTM
    attention_off_top: int = 0  # transformer only: the top n blocks have no attention (Paper I's C4 variant)
    d_embed: int = 0           # MLPs only: 0 = one input row per (position, token), i.e. a linear layer on
                               # the one-hot prefix; n > 0 = shared n-dim token embeddings, flattened

    def __post_init__(self):
        check_field_types(self)
        if self.arch not in ARCHS:
            raise ValueError(f"ModelConfig: unknown arch {self.arch!r}; choose from {ARCHS}")
        if min(self.d_model, self.n_layers, self.n_heads, self.d_mlp) < 1:
            raise ValueError(f"ModelConfig: sizes must be positive, got {self}")
        if self.arch == "transformer" and self.d_model % self.n_heads:
            raise ValueError(f"ModelConfig: d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.d_embed < 0 or (self.d_embed and not self.arch.startswith("mlp")):
            raise ValueError(f"ModelConfig: d_embed must be 0, or positive for an MLP, got {self}")
        if not 0 <= self.attention_off_top <= self.n_layers or (self.attention_off_top and self.arch != "transformer"):
            raise ValueError(f"ModelConfig: attention_off_top must be in 0..n_layers for a transformer, got {self}")

@dataclass(frozen=True)
class TrainConfig:
    steps: int = 3000
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.1
    warmup: int = 200          # linear warm-up steps, then cosine decay to zero
    grad_clip: float | None = 1.0  # the largest gradient norm; None: no clipping
    target: str = "soft"       # soft: cross-entropy against the exact posterior; sampled: against the observed token
    seed: int = 0              # model initialisation and training data
    eval_every: int = 250      # learning-curve spacing, in steps
    eval_size: int = 512       # sequences in the fixed learning-curve batch
    snapshots: tuple[int, ...] = ()  # steps at which to keep a copy of the weights (training dynamics)
    snapshot_dtype: str = "float32"  # float16 halves the snapshots' size (the final weights stay float32)

    def __post_init__(self):
        object.__setattr__(self, "snapshots", tuple(self.snapshots))  # JSON gives a list back
        check_field_types(self)
        if any(isinstance(s, bool) or not isinstance(s, int) for s in self.snapshots):
            raise TypeError(f"TrainConfig: snapshots must be integer steps, got {self.snapshots}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"TrainConfig: grad_clip must be positive (None: no clipping), got {self.grad_clip}")
        for name in ("weight_decay", "seed"):
            if getattr(self, name) < 0:
                raise ValueError(f"TrainConfig: {name} must be >= 0, got {name}={getattr(self, name)}")
        if any(not 1 <= s <= self.steps for s in self.snapshots):
            raise ValueError(f"TrainConfig: snapshot steps must be in 1..steps={self.steps}, got {self.snapshots}")
        if self.snapshot_dtype not in SNAPSHOT_DTYPES:
            raise ValueError(f"TrainConfig: unknown snapshot_dtype {self.snapshot_dtype!r}; choose from {SNAPSHOT_DTYPES}")
        if self.target not in TARGETS:
            raise ValueError(f"TrainConfig: unknown target {self.target!r}; choose from {TARGETS}")
        if min(self.steps, self.batch_size, self.eval_every, self.eval_size) < 1 or self.lr <= 0:
            raise ValueError(f"TrainConfig: steps, batch_size, eval_every, eval_size and lr must be positive, got {self}")
        if not 0 <= self.warmup <= self.steps:
            raise ValueError(f"TrainConfig: warmup must be in 0..steps={self.steps}, got {self.warmup}")

@dataclass(frozen=True)
class RunConfig:
    task: object               # a task from lib.tasks.TASKS, e.g. Bijection(V=20, L=19)
    model: ModelConfig
    train: TrainConfig

    def to_dict(self) -> dict:
        return {"task": {"name": self.task.name, **dataclasses.asdict(self.task)},
                "model": dataclasses.asdict(self.model),
                "train": {k: v for k, v in dataclasses.asdict(self.train).items()
                          if k not in KEYLESS_DEFAULTS or v != KEYLESS_DEFAULTS[k]}}

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        task = dict(d["task"])
        return cls(make_task(task.pop("name"), **task), ModelConfig(**d["model"]), TrainConfig(**d["train"]))

    @property
    def label(self) -> str:
        """Short human-readable name, used in run folder names and progress bars."""
        return f"{self.task.name}-{self.model.arch}-{self.train.target}-s{self.train.seed}"
