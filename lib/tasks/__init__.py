"""The task registry: every wind tunnel has the same shape.

A task is a frozen dataclass of its parameters with
  `sample(batch_size, generator) -> Batch`  fresh sequences with their exact posterior, and
  `posterior(tokens) -> probs`             the closed-form Bayesian predictive.
Tasks take a `torch.Generator` and never touch global RNG state.
"""
from lib.tasks.batch import Batch
from lib.tasks.bijection import Bijection
from lib.tasks.hmm import HMM
from lib.tasks.recall import Recall
from lib.tasks.sawtooth import Sawtooth


TASKS = {task.name: task for task in (Bijection, HMM, Sawtooth, Recall)}


def make_task(name: str, **params):
    """Build a task by registry name, e.g. `make_task("bijection", V=20, L=19)`."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {sorted(TASKS)}")
    return TASKS[name](**params)
