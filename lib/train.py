"""The one training loop, for every task and architecture.

AdamW with linear warm-up then cosine decay to zero, gradient clipping, a fresh batch of
sequences every step, and a learning curve measured on one fixed evaluation batch drawn
from a seed stream that training never uses.

Used by: 01_bijection (C1) and every chapter that trains.
"""
import math
import time
from dataclasses import dataclass, field

import torch
from tqdm import tqdm  # plain text bars: no widget dependency in notebooks

from lib import metrics
from lib.config import RunConfig
from lib.hooks import Hooked
from lib.model import build_model

EVAL_SEED = 2_147_483_647  # evaluation batches; training seeds are small integers


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

    def model_at(self, step: int) -> Hooked:
        """The model as it was after `step` training steps (one of the configured snapshots)."""
        if step not in self.snapshots:
            raise ValueError(f"no snapshot at step {step}; this run kept {sorted(self.snapshots)}")
        model = build_model(self.config.model, self.config.task)
        model.load_state_dict(self.snapshots[step], strict=True)
        return model.eval()


def lr_factor(step: int, warmup: int, steps: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


def loss_fn(logits: torch.Tensor, batch, target: str) -> torch.Tensor:
    """Cross-entropy at the query positions, against the exact posterior (soft) or the
    observed outcome (sampled). Both have the posterior as their minimiser (Theorem 1);
    they differ only in gradient noise."""
    log_q = logits[:, batch.query_pos].log_softmax(-1)  # [batch, n_query, n_out]
    if target == "soft":
        return -(batch.posterior.to(log_q.dtype) * log_q).sum(-1).mean()
    return torch.nn.functional.nll_loss(log_q.flatten(0, 1), batch.labels.flatten())


def train(cfg: RunConfig, device: torch.device | None = None, progress: bool = True) -> Run:
    device = device or default_device()
    task, tc = cfg.task, cfg.train
    with torch.random.fork_rng(devices=[]):  # seed the initialisation without touching global RNG
        torch.manual_seed(tc.seed)
        model = build_model(cfg.model, task).to(device)
    # No weight decay on norms, biases, or Mamba's A_log (decay rates, which it would pull towards A = -1).
    decayed = {name for name, p in model.named_parameters() if p.dim() >= 2 and not name.endswith("A_log")}
    decay = [p for name, p in model.named_parameters() if name in decayed]
    no_decay = [p for name, p in model.named_parameters() if name not in decayed]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": tc.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=tc.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, tc.warmup, tc.steps))
    data = torch.Generator(device).manual_seed(tc.seed)
    curve_batch = eval_batch(task, tc.eval_size, device)

    run = Run(cfg, model)
    start = time.perf_counter()
    bar = tqdm(range(1, tc.steps + 1), desc=cfg.label, disable=not progress, mininterval=2)
    for step in bar:
        batch = task.sample(tc.batch_size, data)
        loss = loss_fn(model(batch.tokens), batch, tc.target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        opt.step()
        schedule.step()
        if step in tc.snapshots:
            run.snapshots[step] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        if step % tc.eval_every == 0 or step == tc.steps:
            point = {"step": step, "loss": loss.item(), **metrics.score(model, curve_batch).summary()}
            run.history.append(point)
            bar.set_postfix(mae=f"{point['entropy_mae']:.4f}")
    run.train_seconds = time.perf_counter() - start
    run.model = model.cpu().eval()
    return run
