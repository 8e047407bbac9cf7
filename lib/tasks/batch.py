"""The one shape every task's sample takes."""
from dataclasses import dataclass

import torch


@dataclass
class Batch:
    tokens: torch.Tensor     # [batch, seq_len] long
    query_pos: torch.Tensor  # [n_query] long: the positions where a prediction is scored
    posterior: torch.Tensor  # [batch, n_query, n_out] float64: the exact Bayes predictive
    labels: torch.Tensor     # [batch, n_query] long: the observed outcome, a draw from the posterior
