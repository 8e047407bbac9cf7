import itertools

import pytest
import torch

from lib.tasks import make_task
from lib.tasks.hmm import forward_filter, repair_to_grid


def brute_force_filter(T, E, obs):
    """p(s_t | o_0..o_t) by summing the joint over every hidden path (uniform initial state)."""
    S, K = T.shape[0], len(obs)
    out = torch.zeros(K, S, dtype=torch.float64)
    for t in range(K):
        for path in itertools.product(range(S), repeat=t + 1):
            p = 1 / S * E[path[0], obs[0]]
            for i in range(1, t + 1):
                p = p * T[path[i - 1], path[i]] * E[path[i], obs[i]]
            out[t, path[-1]] += p
        out[t] /= out[t].sum()
    return out


def test_forward_filter_matches_enumeration_of_hidden_paths():
    task = make_task("hmm", K=4, K_max=4)
    batch = task.sample(3, torch.Generator().manual_seed(0))
    T, E, obs = task.decode(batch.tokens)
    for n in range(3):
        torch.testing.assert_close(batch.posterior[n], brute_force_filter(T[n], E[n], obs[n].tolist()))


def test_the_recursion_starts_with_an_emission_not_a_transition():
    T = torch.tensor([[[0.9, 0.1], [0.9, 0.1]]], dtype=torch.float64)
    E = torch.tensor([[[0.5, 0.5], [0.5, 0.5]]], dtype=torch.float64)
    # an uninformative first observation leaves the uniform prior untouched
    torch.testing.assert_close(forward_filter(T, E, torch.tensor([[0]]))[0, 0],
                               torch.tensor([0.5, 0.5], dtype=torch.float64))


def test_matrices_live_on_the_authors_grid():
    task = make_task("hmm", K=20)
    batch = task.sample(2000, torch.Generator().manual_seed(1))
    T, E, _ = task.decode(batch.tokens)
    for m in (T, E):
        cents = m * 100
        torch.testing.assert_close(cents, cents.round())
        assert (cents >= 5 - 1e-9).all() and (cents <= 80 + 1e-9).all()
        torch.testing.assert_close(cents.sum(-1), torch.full(cents.shape[:-1], 100.0, dtype=torch.float64))


def test_repair_to_grid_adds_to_the_smallest_and_takes_from_the_largest():
    rows = torch.tensor([[0.333, 0.333, 0.334, 0.0, 0.0],     # rounds to 33+33+33+5+5 = 109: remove 9
                         [0.194, 0.194, 0.194, 0.194, 0.224]],  # rounds to 19*4+22 = 98: add 2
                        dtype=torch.float64)
    cents = repair_to_grid(rows)
    torch.testing.assert_close(cents.sum(-1), torch.tensor([100.0, 100.0], dtype=torch.float64))
    assert (cents[0, 3:] == 5).all()              # the floor is never crossed
    assert cents[0, :3].sum() == 90
    assert cents[1, 4] == 22                      # the largest entry got nothing
    assert sorted(cents[1, :4].tolist()) == [19, 19, 20, 20]


def test_tokenisation_round_trip_and_layout():
    task = make_task("hmm", K=20, K_max=50)
    batch = task.sample(64, torch.Generator().manual_seed(2))
    assert batch.tokens.shape == (64, 93) and task.seq_len == 153
    assert (batch.tokens[:, 0] == 96).all() and (batch.tokens[:, 26] == 97).all() and (batch.tokens[:, 52] == 98).all()
    assert (batch.tokens[:, 53::2] == 99).all() and (batch.tokens[:, 54::2] >= 100).all()
    T, E, obs = task.decode(batch.tokens)
    torch.testing.assert_close(task.encode(T, E, obs), batch.tokens)
    torch.testing.assert_close(task.posterior(batch.tokens), batch.posterior)
    torch.testing.assert_close(batch.query_pos, 54 + 2 * torch.arange(20))


def test_sampled_states_are_draws_from_the_filter():
    """The hidden state s_t is distributed as the filtering posterior given o_0..o_t: the
    average posterior mass on the true state equals the average squared posterior."""
    task = make_task("hmm", K=6)
    batch = task.sample(20_000, torch.Generator().manual_seed(3))
    on_truth = batch.posterior.gather(-1, batch.labels[..., None]).squeeze(-1).mean()
    expected = (batch.posterior ** 2).sum(-1).mean()
    torch.testing.assert_close(on_truth, expected, atol=0.01, rtol=0)


@pytest.mark.parametrize("params,word", [({"K": 0}, "K must"), ({"K": 60, "K_max": 50}, "K must"),
                                         ({"S": 4}, "S=5")])
def test_hmm_rejects_bad_parameters(params, word):
    with pytest.raises(ValueError, match=word):
        make_task("hmm", **params)
