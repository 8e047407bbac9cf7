"""SULA, Paper III's in-context evidence task, with its exact posterior.

A prompt shows k labelled words, then a query word. A hidden mapping m (prior 1/2 each way)
decides which of two arbitrary label words goes with positive and which with negative words;
each shown example carries the mapped label, flipped with probability `noise`. The query's
answer is its mapped label, so the Bayes predictive over the two labels is the posterior over
m: log-odds (agreements - disagreements) * log((1 - noise) / noise). With noise 0.1 the mean
Bayes entropies are 1.0, 0.469, 0.258, ... bits for k = 0, 1, 2: the numbers in the authors'
committed SULA figures (spec paper2_3.md §3.2).

Conditions (Paper III §5.2, Fig. 2): `main`; `remap`, the same prompts with other label words;
`shuffled`, example labels drawn at random (the evidence carries no mapping).

Used by: 07_llm_geometry (L6-L9); Paper III §4-§5, spec paper2_3.md §3.10.
"""
import math
from dataclasses import dataclass

import torch

from lib import metrics

# The version of the numbers this module computes: it keys their cache entries (lib/cache.py).
# Bump it when a change alters them; a comment or a refactor keeps it.
VERSION = 1

POSITIVE = ("happy", "great", "lovely", "joyful", "excellent", "wonderful", "pleasant", "cheerful",
            "delightful", "superb", "kind", "bright", "calm", "brilliant", "friendly", "gentle")
NEGATIVE = ("sad", "awful", "terrible", "horrible", "nasty", "dreadful", "gloomy", "bitter",
            "miserable", "cruel", "angry", "rude", "dull", "painful", "ugly", "hostile")
LABELS = {"main": ("A", "B"), "remap": ("X", "Y"), "shuffled": ("A", "B")}
HEADER = "Each word gets a label.\n"


def binary_entropy(p: torch.Tensor) -> torch.Tensor:
    """Bits; p is the probability of one of two outcomes."""
    p = torch.as_tensor(p, dtype=torch.float64)
    return metrics.entropy_bits(torch.stack([p, 1 - p], -1))


@dataclass(frozen=True)
class Evidence:
    noise: float = 0.1

    def posterior(self, polarities, labels, query_polarity: int) -> float:
        """P(the query's label is 1 | examples): label = polarity XOR m, examples flipped w.p. noise."""
        agree = sum(int(p == y) for p, y in zip(polarities, labels))   # consistent with m = 0
        log_odds = (2 * agree - len(labels)) * math.log((1 - self.noise) / self.noise)  # m = 0 vs m = 1
        p_m0 = 1 / (1 + math.exp(-log_odds))
        return p_m0 if query_polarity == 1 else 1 - p_m0

    def mean_bayes_entropy(self, k: int) -> float:
        """Expected Bayes entropy after k examples (agreements with the true m ~ Binomial(k, 1 - noise))."""
        total = 0.0
        for a in range(k + 1):
            prob = math.comb(k, a) * (1 - self.noise) ** a * self.noise ** (k - a)
            p = 1 / (1 + math.exp(-(2 * a - k) * math.log((1 - self.noise) / self.noise)))
            total += prob * binary_entropy(p).item()
        return total

    def prompts(self, condition: str, ks, n_per_k: int, generator: torch.Generator) -> list[dict]:
        """n_per_k prompts per k: text, k, the Bayes probability of label 1 and its entropy."""
        labels_words = LABELS[condition]
        out = []
        for k in ks:
            for _ in range(n_per_k):
                r = torch.rand(3 * k + 3, generator=generator).tolist()
                m = int(r[0] < 0.5)
                words = torch.randperm(len(POSITIVE), generator=generator).tolist()
                pol, lab, lines = [], [], []
                for i in range(k):
                    p = int(r[1 + 3 * i] < 0.5)
                    y = p ^ m ^ int(r[2 + 3 * i] < self.noise)
                    if condition == "shuffled":
                        y = int(r[2 + 3 * i] < 0.5)
                    word = (POSITIVE if p else NEGATIVE)[words[i]]
                    pol.append(p)
                    lab.append(y)
                    lines.append(f"{word}: {labels_words[y]}")
                q_pol = int(r[-1] < 0.5)
                query = (POSITIVE if q_pol else NEGATIVE)[words[k]]
                p1 = self.posterior(pol, lab, q_pol)
                out.append({"text": HEADER + "".join(line + "\n" for line in lines) + f"{query}:",
                            "k": k, "condition": condition, "bayes_p1": p1,
                            "bayes_entropy": binary_entropy(p1).item(), "answer": q_pol ^ m})
        return out


def label_token_ids(tokenizer, condition: str) -> list[int]:
    """First sub-token of ' ' + label, the next token after 'word:' (spec §3.5)."""
    return [tokenizer(" " + w, add_special_tokens=False)["input_ids"][0] for w in LABELS[condition]]


def score(logprobs: torch.Tensor, label_ids: list[int], prompts: list[dict]) -> dict:
    """Model entropy over the two labels (renormalised), the mass on them, and the error
    against the Bayes entropy, per prompt (float64 tensors)."""
    lp = logprobs[:, label_ids]                                      # [n, 2]
    mass = lp.exp().sum(-1)
    p1 = (lp[:, 1] - torch.logsumexp(lp, -1)).exp()
    h_model = binary_entropy(p1)
    h_bayes = torch.tensor([p["bayes_entropy"] for p in prompts], dtype=torch.float64)
    return {"k": torch.tensor([p["k"] for p in prompts]), "h_model": h_model, "h_bayes": h_bayes,
            "mass": mass, "p1": p1, "abs_error": (h_model - h_bayes).abs()}


def constant_baselines(h_bayes: torch.Tensor) -> dict:
    """MAE (bits) of predictors that ignore the prompt: best constant entropy (the median),
    always uniform (1 bit) and always certain (0 bits)."""
    best = h_bayes.median()
    return {"best_constant": (h_bayes - best).abs().mean().item(), "best_constant_entropy": best.item(),
            "uniform": (h_bayes - 1).abs().mean().item(), "certain": h_bayes.abs().mean().item()}
