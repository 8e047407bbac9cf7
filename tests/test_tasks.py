import itertools

import pytest
import torch

from lib.tasks import make_task


def brute_force_predictive(V, keys, values, t):
    """p(pi(k_t) = y | first t pairs) by enumerating all V! bijections (keys may repeat)."""
    counts = torch.zeros(V, dtype=torch.float64)
    for pi in itertools.permutations(range(V)):
        if all(pi[k] == v for k, v in zip(keys[:t], values[:t])):
            counts[pi[keys[t]]] += 1
    return counts / counts.sum()


@pytest.mark.parametrize("V,L", [(4, 4), (5, 3), (2, 1)])
def test_bijection_posterior_matches_enumeration(V, L):
    task = make_task("bijection", V=V, L=L)
    batch = task.sample(6, torch.Generator().manual_seed(V * 10 + L))
    for tokens, posterior, labels in zip(batch.tokens, batch.posterior, batch.labels):
        keys = tokens[0::2].tolist()
        values = labels.tolist()
        for t in range(L):
            torch.testing.assert_close(posterior[t], brute_force_predictive(V, keys, values, t))


def test_bijection_sequence_layout():
    task = make_task("bijection", V=20, L=19)
    batch = task.sample(256, torch.Generator().manual_seed(0))
    keys, values = batch.tokens[:, 0::2], batch.tokens[:, 1::2] - 20
    assert batch.tokens.shape == (256, 37) and batch.posterior.shape == (256, 19, 20)
    assert ((keys >= 0) & (keys < 20)).all() and ((values >= 0) & (values < 20)).all()
    # keys without replacement, and a bijection: values distinct too
    assert all(len(set(row.tolist())) == 19 for row in keys)
    assert all(len(set(row.tolist())) == 18 for row in values)
    # next-token supervision: the label at key position 2t is the value that follows it
    torch.testing.assert_close(batch.labels[:, :-1], values)
    torch.testing.assert_close(batch.query_pos, torch.arange(0, 37, 2))
    # the posterior gives the observed label positive probability, and entropy log2(V - t)
    assert (batch.posterior.gather(-1, batch.labels[..., None]) > 0).all()
    support = (batch.posterior > 0).sum(-1)
    torch.testing.assert_close(support, (20 - torch.arange(19)).expand(256, 19))


def test_bijection_sampling_is_seeded_and_uniform():
    task = make_task("bijection", V=5, L=4)
    a = task.sample(20_000, torch.Generator().manual_seed(1))
    b = task.sample(20_000, torch.Generator().manual_seed(1))
    torch.testing.assert_close(a.tokens, b.tokens)
    freq = torch.bincount(a.labels[:, 0], minlength=5) / 20_000  # pi(k1) is uniform
    torch.testing.assert_close(freq, torch.full((5,), 0.2), atol=0.015, rtol=0)


@pytest.mark.parametrize("params,word", [({"V": 1}, "V"), ({"V": 5, "L": 6}, "L"), ({"V": 5, "L": 0}, "L")])
def test_bijection_rejects_bad_parameters(params, word):
    with pytest.raises(ValueError, match=f"{word} must"):
        make_task("bijection", **params)


def test_unknown_task_is_an_error():
    with pytest.raises(ValueError, match="unknown task"):
        make_task("bijections")


@pytest.mark.parametrize("V,L", [(4, 6), (5, 4), (3, 3)])
def test_sawtooth_posterior_matches_enumeration(V, L):
    task = make_task("sawtooth", V=V, L=min(L, V))
    batch = task.sample(8, torch.Generator().manual_seed(V * 10 + L))
    repeats = 0
    for tokens, posterior, labels in zip(batch.tokens, batch.posterior, batch.labels):
        keys, values = tokens[0::2].tolist(), labels.tolist()
        for t in range(task.L):
            torch.testing.assert_close(posterior[t], brute_force_predictive(V, keys, values, t))
            repeats += keys[t] in keys[:t]
    assert repeats > 0  # the case that differs from the canonical bijection was exercised


def test_sawtooth_entropy_is_not_a_function_of_position():
    task = make_task("sawtooth", V=20, L=19)
    batch = task.sample(512, torch.Generator().manual_seed(0))
    entropy = -(batch.posterior * batch.posterior.clamp_min(1e-300).log2()).sum(-1)  # [batch, L]
    assert (entropy[:, 0] == torch.log2(torch.tensor(20.0, dtype=torch.float64))).all()
    assert entropy[:, 10].std() > 0.5 and (entropy[:, 10] == 0).any()  # repeats give 0 mid-sequence
    keys = batch.tokens[:, 0::2]
    repeats = torch.stack([(keys[:, :t] == keys[:, t:t + 1]).any(1) for t in range(1, 19)], 1)
    assert abs(repeats.double().mean().item() - task.repeat) < 0.03


def parse_recall(task, tokens):
    """Read one recall sequence token by token: its bindings, and (PAD position, key) per query."""
    from lib.tasks.recall import FILLER, PAD, QUERY, SEP, STORE
    row, bindings, queries, i = tokens.tolist(), {}, [], 0
    while row[i] == STORE:
        assert row[i + 2] == SEP and row[i + 1] not in bindings
        bindings[row[i + 1]] = row[i + 3]
        i += 4
    for i in range(i, len(row)):
        if row[i] == QUERY:
            assert row[i + 2] == PAD
            queries.append((i + 2, row[i + 1]))
        else:
            assert row[i] == FILLER or row[i - 2] == QUERY or row[i - 1] == QUERY
    return bindings, queries


@pytest.mark.parametrize("params", [{}, {"n_pairs": 16, "n_keys": 64, "n_values": 64}, {"n_pairs": 5, "n_queries": 5,
                                     "n_filler": 3, "n_keys": 6, "n_values": 5, "read_at": "pad"}])
def test_recall_posterior_is_the_value_stored_with_the_queried_key(params):
    task = make_task("recall", **params)
    batch = task.sample(32, torch.Generator().manual_seed(0))
    assert batch.tokens.shape == (32, task.seq_len) and batch.posterior.shape == (32, task.n_queries, task.n_values)
    for tokens, posterior, labels in zip(batch.tokens, batch.posterior, batch.labels):
        bindings, queries = parse_recall(task, tokens)
        assert len(bindings) == task.n_pairs and len(set(bindings.values())) == task.n_pairs  # distinct keys, values
        assert all(task.value0 <= v < task.vocab_size for v in bindings.values())
        read_at = {"key": 1, "pad": 0}[task.read_at]  # answer read at the key, one before the PAD, or at the PAD
        assert [pos - read_at for pos, _ in queries] == batch.query_pos.tolist()
        asked = [key for _, key in queries]
        assert len(set(asked)) == task.n_queries and set(asked) <= set(bindings)
        stored = torch.tensor([bindings[key] - task.value0 for key in asked])
        torch.testing.assert_close(labels, stored)
        torch.testing.assert_close(posterior.argmax(-1), stored)
        torch.testing.assert_close(posterior.sum(-1), torch.ones(task.n_queries, dtype=torch.float64))
    torch.testing.assert_close(task.posterior(batch.tokens), batch.posterior)


def test_recall_layout_at_the_paper_defaults():
    task = make_task("recall")
    assert (task.seq_len, task.vocab_size, task.n_out) == (4 * 64 + 32 + 3 * 3 + 2 * 16, 522, 256)
    assert task.seq_len == 329
    batch = task.sample(8, torch.Generator().manual_seed(1))
    assert ((batch.tokens == 2).sum(1) == 32 + 2 * 16).all()  # FILLER after storage and between queries
    torch.testing.assert_close(batch.tokens, task.sample(8, torch.Generator().manual_seed(1)).tokens)


def test_recall_query_keys_and_values_are_uniform():
    task = make_task("recall", n_pairs=4, n_queries=1, n_filler=0, n_keys=4, n_values=4)
    batch = task.sample(20_000, torch.Generator().manual_seed(2))
    asked_slot = (batch.tokens[:, 1:16:4] == batch.tokens[:, batch.query_pos]).double().argmax(1)
    for counts in (torch.bincount(asked_slot, minlength=4), torch.bincount(batch.labels[:, 0], minlength=4)):
        torch.testing.assert_close(counts / 20_000, torch.full((4,), 0.25), atol=0.015, rtol=0)


@pytest.mark.parametrize("params,word", [({"n_pairs": 300}, "n_pairs"), ({"n_pairs": 20, "n_values": 16}, "n_pairs"),
                                         ({"n_pairs": 0}, "n_pairs"), ({"n_pairs": 2, "n_queries": 3}, "n_queries"),
                                         ({"n_filler": -1}, "n_filler"), ({"n_keys": 1}, "n_keys"),
                                         ({"read_at": "value"}, "read_at")])
def test_recall_rejects_bad_parameters(params, word):
    with pytest.raises(ValueError, match=f"{word} must"):
        make_task("recall", **params)


def test_recall_posterior_rejects_an_unstored_query_key():
    task = make_task("recall", n_pairs=4, n_keys=8, n_values=8)
    tokens = task.sample(2, torch.Generator().manual_seed(0)).tokens
    stored = set(tokens[0, 1:16:4].tolist())
    tokens[0, task.pad_pos[0] - 1] = next(k for k in range(10, 18) if k not in stored)
    with pytest.raises(ValueError, match="stored exactly once"):
        task.posterior(tokens)
