"""The one training loop, for every task and architecture.

AdamW with linear warm-up then cosine decay to zero, gradient clipping, a fresh batch of
sequences every step, and a learning curve measured on one fixed evaluation batch drawn
from a seed stream that training never uses.

Used by: 01_bijection (C1) and every chapter that trains.
"""
import math
import os
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm  # plain text bars: no widget dependency in notebooks

from lib import metrics
from lib.config import RunConfig, TrainConfig
from lib.hooks import Hooked
from lib.model import build_model, count_params

EVAL_SEED = 2_147_483_647  # evaluation batches; training seeds are small integers

# The version of the numbers this loop trains to (with lib.metrics, the model's and the task's
# VERSION, it keys every run: lib/cache.py). Bump it when a change alters them, even by float
# rounding; tests/test_golden_numerics.py fails until you do.
VERSION = 1

# torch.compile of the forward pass and loss, where `make bench` measured it paying on this CPU:
# the transformer (about 1.2x per step once fused attention is in) and not the MLPs, the LSTM
# or Mamba. Its 10-40 s of compilation are repaid only in a run this long or longer.
COMPILED_ARCHS = ("transformer",)
COMPILE_MIN_STEPS = 1000


def default_device() -> torch.device:
    """CUDA when the machine has it (the `paper` profile), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def eval_batch(task, size: int, device: torch.device, offset: int = 0):
    """A fixed batch from the evaluation stream (offset picks a disjoint stream)."""
    return task.sample(size, torch.Generator(device).manual_seed(EVAL_SEED - offset))


@dataclass
class Run:
    config: RunConfig
    model: Hooked
    history: list[dict] = field(default_factory=list)  # one row per learning-curve point
    train_seconds: float = 0.0
    snapshots: dict[int, dict] = field(default_factory=dict)  # step -> state dict, at TrainConfig.snapshots

    @property
    def steps_per_second(self) -> float:
        return self.config.train.steps / self.train_seconds

    @property
    def training_flops(self) -> float:
        """The usual estimate of its training compute: 6 x parameters x trained tokens (a
        forward and a backward pass over every token of every batch)."""
        return training_flops(self.config)

    def model_at(self, step: int) -> Hooked:
        """The model as it was after `step` training steps (one of the configured snapshots)."""
        if step not in self.snapshots:
            raise ValueError(f"no snapshot at step {step}; this run kept {sorted(self.snapshots)}")
        model = build_model(self.config.model, self.config.task)
        model.load_state_dict(self.snapshots[step], strict=True)
        return model.eval()


def training_flops(cfg: RunConfig) -> float:
    """6 x parameters x trained tokens for the run `cfg` describes (the tokens of the sequences
    it samples, which for the HMM are shorter than the position table its model is built for)."""
    params = count_params(cfg.model, cfg.task)
    tokens = cfg.task.sample(1, torch.Generator().manual_seed(0)).tokens.shape[1]
    return 6.0 * params * cfg.train.steps * cfg.train.batch_size * tokens


def lr_factor(step: int, warmup: int, steps: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


def compiles(cfg: RunConfig) -> bool:
    """Whether `train` compiles this run's forward pass: where it pays, unless BAR_COMPILE=0."""
    return (os.environ.get("BAR_COMPILE", "1") != "0" and cfg.model.arch in COMPILED_ARCHS
            and cfg.train.steps >= COMPILE_MIN_STEPS)


def compiled_or_eager(fn):
    """torch.compile(fn), falling back to fn itself, with one warning, when compilation is
    impossible (no C++ compiler, an unsupported platform). Compilation happens at the first
    call, before anything runs, so `fn` must be pure (a forward pass and its loss).

    Each run compiles from scratch, with static shapes: otherwise a run's kernels, and so its
    rounding, would depend on what the process compiled before (a recompile turns shapes
    dynamic, and after 8 recompiles dynamo silently runs eagerly), so a run trained second in a
    worker would differ from the same run trained first (tests/test_train_cache.py)."""
    torch._dynamo.reset()
    compiled = torch.compile(fn, dynamic=False)
    chosen = None

    def call(*args):
        nonlocal chosen
        if chosen is None:
            try:
                result, chosen = compiled(*args), compiled
                return result
            except Exception as error:  # noqa: BLE001 - any compiler failure means: run eagerly
                warnings.warn(f"torch.compile failed ({type(error).__name__}: {(str(error).splitlines() or [''])[0][:160]}); "
                              "training eagerly", stacklevel=2)
                chosen = fn
        return chosen(*args)
    return call


def loss_fn(logits: torch.Tensor, batch, target: str) -> torch.Tensor:
    """Cross-entropy at the query positions, against the exact posterior (soft) or the
    observed outcome (sampled). Both have the posterior as their minimiser (Theorem 1);
    they differ only in gradient noise."""
    log_q = logits[:, batch.query_pos].log_softmax(-1)  # [batch, n_query, n_out]
    if target == "soft":
        return -(batch.posterior.to(log_q.dtype) * log_q).sum(-1).mean()
    return torch.nn.functional.nll_loss(log_q.flatten(0, 1), batch.labels.flatten())


def optimiser(model: Hooked, tc: TrainConfig) -> torch.optim.AdamW:
    """AdamW at the run's peak learning rate (the schedule scales it). No weight decay on norms,
    biases, or Mamba's A_log (decay rates, which it would pull towards A = -1)."""
    decayed = {name for name, p in model.named_parameters() if p.dim() >= 2 and not name.endswith("A_log")}
    decay = [p for name, p in model.named_parameters() if name in decayed]
    no_decay = [p for name, p in model.named_parameters() if name not in decayed]
    return torch.optim.AdamW([{"params": decay, "weight_decay": tc.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=tc.lr)


def training_step(model: Hooked, opt: torch.optim.Optimizer, tc: TrainConfig, compile: bool):
    """`step(batch) -> loss`: the loss on one batch, backward, gradient clipping and an
    optimiser step; with `compile`, the forward pass and loss go through torch.compile."""
    def batch_loss(batch):
        return loss_fn(model(batch.tokens), batch, tc.target)
    if compile:
        batch_loss = compiled_or_eager(batch_loss)

    def step(batch):
        loss = batch_loss(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if tc.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        opt.step()
        return loss
    return step


CHECKPOINT_SECONDS = 600.0  # a resumable run saves its state this often (wall clock)


def train(cfg: RunConfig, device: torch.device | None = None, progress: bool = True,
          compile: bool | None = None, checkpoint: Path | None = None, on_checkpoint=None,
          checkpoint_seconds: float | None = None) -> Run:
    """Train the run `cfg` describes. `compile`: torch.compile its forward pass and loss
    (default: where that pays, `compiles`); either way the numbers agree to float rounding.

    With `checkpoint` (a file path), the run is resumable: every CHECKPOINT_SECONDS it saves
    its whole state there (weights, optimiser, schedule, data stream, learning curve), and a
    later call with the same path resumes from it. A resumed run ends bit-identical to one that
    was never stopped. The caller deletes the checkpoint once the finished run is saved.
    `on_checkpoint(path)` is called after each save (a cluster worker publishes it);
    `checkpoint_seconds` overrides CHECKPOINT_SECONDS.

    On the CPU a run trains on one thread wherever it trains (a `make train` worker or a
    notebook), so that its numbers never depend on the thread count: compiled kernels split
    their reductions across threads, and these models gain little from a second thread."""
    device = device or default_device()
    with one_thread(device):
        return _train(cfg, device, progress, compile, checkpoint, on_checkpoint,
                      CHECKPOINT_SECONDS if checkpoint_seconds is None else checkpoint_seconds)


@contextmanager
def one_thread(device: torch.device):
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _train(cfg: RunConfig, device: torch.device, progress: bool, compile: bool | None,
           checkpoint: Path | None, on_checkpoint, checkpoint_seconds: float) -> Run:
    task, tc = cfg.task, cfg.train
    with torch.random.fork_rng(devices=[]):  # seed the initialisation without touching global RNG
        torch.manual_seed(tc.seed)
        model = build_model(cfg.model, task).to(device)
    opt = optimiser(model, tc)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, tc.warmup, tc.steps))
    data = torch.Generator(device).manual_seed(tc.seed)
    curve_batch = eval_batch(task, tc.eval_size, device)
    run, done, spent = Run(cfg, model), 0, 0.0
    if checkpoint is not None and (state := read_checkpoint(checkpoint, cfg)) is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        schedule.load_state_dict(state["schedule"])
        data.set_state(state["data"])
        run.history, run.snapshots, done, spent = state["history"], state["snapshots"], state["step"], state["seconds"]
    train_step = training_step(model, opt, tc, compiles(cfg) if compile is None else compile)

    start = last_save = time.perf_counter()
    bar = tqdm(range(done + 1, tc.steps + 1), desc=cfg.label, disable=not progress, mininterval=2,
               initial=done, total=tc.steps)
    for step in bar:
        loss = train_step(task.sample(tc.batch_size, data))
        if not math.isfinite(loss.item()):  # a diverged run is an error, never a cached model
            raise FloatingPointError(f"{cfg.label}: the loss is {loss.item()} at step {step}; training stopped")
        schedule.step()
        if step in tc.snapshots:
            dtype = getattr(torch, tc.snapshot_dtype)
            run.snapshots[step] = {k: v.detach().cpu().to(dtype, copy=True) for k, v in model.state_dict().items()}
        if step % tc.eval_every == 0 or step == tc.steps:
            point = {"step": step, "loss": loss.item(), **metrics.score(model, curve_batch).summary()}
            run.history.append(point)
            bar.set_postfix(mae=f"{point['entropy_mae']:.4f}")
        if checkpoint is not None and step < tc.steps and time.perf_counter() - last_save >= checkpoint_seconds:
            save_checkpoint(checkpoint, cfg, step, model, opt, schedule, data, run, spent + time.perf_counter() - start)
            if on_checkpoint is not None:
                on_checkpoint(checkpoint)
            last_save = time.perf_counter()
    run.train_seconds = spent + time.perf_counter() - start
    run.model = model.cpu().eval()
    return run


def save_checkpoint(path: Path, cfg: RunConfig, step: int, model, opt, schedule, data, run: Run, seconds: float):
    """The whole state of an unfinished run, written atomically (a reader never sees half)."""
    from lib.cache import atomic_save  # imported here: lib.cache imports this module
    atomic_save({"config": cfg.to_dict(), "step": step, "model": model.state_dict(), "opt": opt.state_dict(),
                 "schedule": schedule.state_dict(), "data": data.get_state(), "history": run.history,
                 "snapshots": run.snapshots, "seconds": seconds}, path)


def read_checkpoint(path: Path, cfg: RunConfig) -> dict | None:
    """The state saved at `path` for this very run, or None (no checkpoint; or one that cannot
    be read or is another run's, which is then ignored with a one-line warning)."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - truncated or not a torch file
        warnings.warn(f"{path}: unreadable checkpoint ({type(error).__name__}); training {cfg.label} from the start")
        return None
    if state.get("config") != cfg.to_dict():
        warnings.warn(f"{path}: a checkpoint of another run; training {cfg.label} from the start")
        return None
    return state
