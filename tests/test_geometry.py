"""Each geometry measure on a hand-built case whose answer is known in advance."""
import math

import numpy as np
import pytest
import torch

from lib import geometry
from lib.config import ModelConfig
from lib.model import build_model, zero_head
from lib.tasks import make_task


def test_mean_abs_cos_of_orthogonal_vectors_is_zero_and_of_known_angles_is_known():
    torch.testing.assert_close(geometry.mean_abs_cos(torch.eye(5)), torch.tensor(0.0))
    torch.testing.assert_close(geometry.mean_abs_cos(torch.ones(3, 4)), torch.tensor(1.0))
    at_60_degrees = torch.tensor([[1.0, 0.0], [0.5, math.sqrt(3) / 2]])
    torch.testing.assert_close(geometry.mean_abs_cos(at_60_degrees), torch.tensor(0.5))
    # the sign does not matter: opposite vectors are as far from orthogonal as equal ones
    torch.testing.assert_close(geometry.mean_abs_cos(torch.tensor([[1.0, 0.0], [-1.0, 0.0]])), torch.tensor(1.0))


@pytest.mark.parametrize("d", [2, 3, 16])
def test_the_welch_bound_is_met_by_a_regular_simplex_and_never_beaten(d):
    # d + 1 vertices of a regular simplex centred at 0 are equiangular with |cos| = 1/d: the bound's equality case
    vertices = torch.eye(d + 1, dtype=torch.float64) - 1 / (d + 1)  # in the d-dimensional plane sum(x) = 0
    basis = torch.linalg.svd(vertices).Vh[:d]
    simplex = vertices @ basis.T  # [d + 1, d]
    unit = simplex / simplex.norm(dim=1, keepdim=True)
    largest = (unit @ unit.T - torch.eye(d + 1, dtype=torch.float64)).abs().max().item()
    assert largest == pytest.approx(1 / d) == pytest.approx(geometry.welch_bound(d + 1, d))
    random = torch.nn.functional.normalize(torch.randn(500, 4 * d, d, generator=torch.Generator().manual_seed(d)), dim=-1)
    cos = (random @ random.transpose(1, 2) - torch.eye(4 * d)).abs().amax((1, 2))
    assert cos.min().item() >= geometry.welch_bound(4 * d, d)
    assert geometry.welch_bound(20, 32) == 0.0  # as many dimensions as vectors: all orthogonal is possible


def test_gaussian_baseline_is_exact_in_2d_and_matches_monte_carlo():
    assert geometry.gaussian_abs_cos(2) == pytest.approx(2 / math.pi)  # |cos| of a uniform angle
    x = torch.randn(4000, 2, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert geometry.mean_abs_cos(x).mean().item() == pytest.approx(geometry.gaussian_abs_cos(16), rel=0.02)
    assert geometry.gaussian_abs_cos(1024) == pytest.approx(math.sqrt(2 / (math.pi * 1024)), rel=0.01)
    assert geometry.gaussian_abs_cos(32) == pytest.approx(math.sqrt(2 / (math.pi * 32)), rel=0.02)


def tiny_model(task, d_model=8, n_heads=2, n_layers=1):
    return build_model(ModelConfig(d_model=d_model, n_layers=n_layers, n_heads=n_heads, d_mlp=16), task).eval()


def test_key_orthogonality_reads_layer_zero_keys_per_head():
    """Embeddings [h_i, h_i] (row i of a Hadamard matrix in both heads' slices) and W_K =
    identity give orthogonal keys in each head; a shared embedding makes them parallel."""
    model = tiny_model(make_task("bijection", V=4, L=4))
    with torch.no_grad():
        model.blocks[0].attn.W_K.weight.copy_(torch.eye(8))
        hadamard = torch.tensor([[1.0, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]])
        model.embed.weight[4:] = hadamard.repeat(1, 2)       # the value tokens
        model.embed.weight[:4] = torch.ones(8)               # the key tokens, all alike
    torch.testing.assert_close(geometry.key_orthogonality(model, torch.arange(4, 8)), torch.zeros(2))
    torch.testing.assert_close(geometry.key_orthogonality(model, torch.arange(4)), torch.ones(2))
    null = geometry.permutation_null(model, torch.arange(4, 8), n_permutations=50)
    assert null.shape == (50, 2) and (null.mean(0) > 0.2).all()  # shuffling destroys the orthogonality


def test_shared_direction_share_is_the_mean_vectors_share_of_the_energy():
    orthogonal = torch.eye(4)
    torch.testing.assert_close(geometry.shared_direction_share(torch.cat([orthogonal, -orthogonal])), torch.tensor(0.0))
    torch.testing.assert_close(geometry.shared_direction_share(torch.ones(3, 5) * 2), torch.tensor(1.0))
    # a common vector m added to residuals that cancel: |m|^2 / (|m|^2 + mean |r|^2), per group
    residual, common = torch.randn(2, 6, 8, dtype=torch.float64), torch.randn(2, 1, 8, dtype=torch.float64)
    residual -= residual.mean(1, keepdim=True)
    expected = common.squeeze(1).norm(dim=-1) ** 2 / (common.squeeze(1).norm(dim=-1) ** 2 + (residual.norm(dim=-1) ** 2).mean(1))
    torch.testing.assert_close(geometry.shared_direction_share(residual + common), expected)


def test_initial_model_is_what_training_starts_from():
    from lib import profiles
    cfg = profiles.c1("smoke")["runs"]["transformer"][1]
    a, b = geometry.initial_model(cfg), geometry.initial_model(cfg)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(p, q, msg=name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)
        torch.testing.assert_close(build_model(cfg.model, cfg.task).embed.weight, a.embed.weight)


def test_focusing_takes_entropy_per_head_before_averaging():
    """Two heads, each attending to one position (different ones): entropy 0, not the 1 bit of
    their average; a uniform head over 4 visible positions has log2(4) = 2 bits."""
    patterns = torch.zeros(2, 1, 2, 1, 4)                 # [layer, batch, head, query, seq]
    patterns[0, 0, 0, 0, 0] = patterns[0, 0, 1, 0, 1] = 1
    patterns[1] = 0.25
    groups = {"even": torch.arange(4) % 2 == 0, "odd": torch.arange(4) % 2 == 1}
    result = geometry.focusing(patterns, torch.tensor([3]), groups)
    np.testing.assert_allclose(result.by_layer, [0.0, 2.0])
    np.testing.assert_allclose(result.normalised[1], [[1.0], [1.0]])
    np.testing.assert_allclose(result.mass["even"], [[1.0, 0.0], [0.5, 0.5]])


def test_reduction_is_the_fraction_of_layer_zero_entropy_removed():
    patterns = torch.zeros(2, 1, 1, 1, 4)
    patterns[0] = 0.25                                     # 2 bits at layer 0
    patterns[1, ..., :2] = 0.5                             # 1 bit at the last layer
    result = geometry.focusing(patterns, torch.tensor([3]), {})
    assert result.reduction == pytest.approx(0.5)


def test_a_rank_one_cloud_has_all_its_variance_on_pc1():
    rng = np.random.default_rng(0)
    a, u = rng.normal(size=(500, 1)), rng.normal(size=(1, 12))
    explained, scores = geometry.standardised_pca(a * u + rng.normal(size=12) * 5)
    assert explained[0] == pytest.approx(1.0)
    assert geometry.participation_ratio(explained) == pytest.approx(1.0)
    assert abs(np.corrcoef(scores[:, 0], a[:, 0])[0, 1]) == pytest.approx(1.0)


def test_an_isotropic_cloud_has_no_dominant_axis():
    explained, _ = geometry.standardised_pca(np.random.default_rng(0).normal(size=(20_000, 10)))
    assert explained[0] < 0.12 and geometry.participation_ratio(explained) > 9.5


def test_within_position_correlation_removes_a_position_confound():
    """Across positions x and y move in opposite directions (r near -1); within each position
    they are the same noise (r = +1)."""
    rng = np.random.default_rng(0)
    position = np.repeat(np.arange(10), 50)
    noise = rng.normal(size=500)
    x, y = 10 * position + noise, -10 * position + noise
    assert np.corrcoef(x, y)[0, 1] < -0.9
    assert geometry.within_group_corr(x, y, position) == pytest.approx(1.0)


def test_r2_split_by_sequence_is_one_for_a_linear_target_and_near_zero_for_noise():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5, 3))
    assert geometry.r2_split_by_sequence(X, X @ np.array([1.0, -2.0, 0.5]) + 3) == pytest.approx(1.0)
    assert geometry.r2_split_by_sequence(X, rng.normal(size=(200, 5))) < 0.05


def test_manifold_summary_on_an_entropy_ordered_line():
    rng = np.random.default_rng(0)
    entropy = rng.uniform(0, 4, size=(100, 6))
    acts = entropy[..., None] * rng.normal(size=8) + 0.01 * rng.normal(size=(100, 6, 8))
    summary = geometry.manifold(acts, entropy).summary()
    assert summary["pc1_share"] > 0.99 and summary["dim90"] == 1
    assert abs(summary["spearman"]) > 0.99 and abs(summary["within_position_r"]) > 0.99 and summary["r2"] > 0.99


def test_ablating_a_silent_head_changes_nothing_and_a_live_head_changes_the_output():
    task = make_task("bijection", V=5, L=5)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = tiny_model(task, n_layers=2)
    for p in model.parameters():  # larger weights than the GPT-2 init, so every head matters
        torch.nn.init.normal_(p, std=0.5)
    with torch.no_grad():  # head 1 of layer 0 writes nothing: its value weights are zero
        model.blocks[0].attn.W_V.weight[4:] = 0
    batch = task.sample(64, torch.Generator().manual_seed(0))
    base = model(batch.tokens)
    with model.hooks([zero_head(0, 1)]):
        torch.testing.assert_close(model(batch.tokens), base)
    ablations = geometry.head_ablations(model, batch)
    base_scores = geometry.ablated_scores(model, batch, [])
    for mode in ("zero", "mean"):
        torch.testing.assert_close(ablations[mode, 0, 1].entropy_error, base_scores.entropy_error)
        assert (ablations[mode, 0, 0].entropy_error - base_scores.entropy_error).abs().max() > 1e-3
    layers = geometry.layer_ablations(model, batch)
    assert set(layers) == {(mode, layer) for mode in ("skip block", "zero attention", "zero MLP") for layer in (0, 1)}


def test_mean_ablation_keeps_the_average_and_zero_ablation_does_not():
    z = torch.arange(24.0).view(2, 3, 2, 2)  # [batch, pos, head, d_head]
    mean_z = z.mean(0)
    _, fn = geometry.mean_head(0, 1, mean_z[:, 1])
    out = fn(z, "")
    torch.testing.assert_close(out[:, :, 1], mean_z[:, 1].expand(2, 3, 2))
    torch.testing.assert_close(out[:, :, 0], z[:, :, 0])


def test_concentration_statistics():
    single = geometry.concentration(np.array([0.0, 4.0, 1.0, 0.5]))
    assert single == {"top_over_second": 4.0, "heads_above_half_top": 1, "top_share": pytest.approx(4 / 5.5)}
    distributed = geometry.concentration(np.array([1.0, 0.9, 0.8, 0.1]))
    assert distributed["top_over_second"] == pytest.approx(1 / 0.9) and distributed["heads_above_half_top"] == 3


def test_position_groups_partition_the_sequence():
    for task in (make_task("bijection"), make_task("sawtooth"), make_task("hmm")):
        groups = torch.stack(list(geometry.position_groups(task).values()))
        assert groups.shape[1] == task.seq_len and (groups.sum(0) == 1).all(), task.name


def blobs(n_per: int, centres: np.ndarray, spread: float, seed: int = 0):
    """Points around each centre (Gaussian, sd `spread`) and their true labels."""
    rng = np.random.default_rng(seed)
    X = np.concatenate([c + spread * rng.standard_normal((n_per, centres.shape[1])) for c in centres])
    return X, np.repeat(np.arange(len(centres)), n_per)


def test_kmeans_finds_well_separated_blobs_and_is_seeded():
    centres = 20.0 * np.eye(5)
    X, truth = blobs(40, centres, spread=0.5)
    labels = geometry.kmeans(X, 5, seed=0)
    assert geometry.adjusted_rand_index(labels, truth) == pytest.approx(1.0)
    np.testing.assert_array_equal(labels, geometry.kmeans(X, 5, seed=0))
    with pytest.raises(ValueError, match="k must be"):
        geometry.kmeans(X[:3], 5)


def test_adjusted_rand_index_known_cases():
    truth = np.repeat(np.arange(5), 200)
    relabelled = (truth + 3) % 5 * 7  # another name for every cluster
    assert geometry.adjusted_rand_index(relabelled, truth) == pytest.approx(1.0)
    random = np.random.default_rng(0).integers(0, 5, len(truth))
    assert abs(geometry.adjusted_rand_index(random, truth)) < 0.01
    # a hand-computed case: [0,0,1,1] vs [0,0,0,1]: pairs together in both 1, rows 2, cols 3, total 6
    # expected 2*3/6 = 1, max (2+3)/2 = 2.5 -> (1 - 1) / (2.5 - 1) = 0
    assert geometry.adjusted_rand_index(np.array([0, 0, 1, 1]), np.array([0, 0, 0, 1])) == pytest.approx(0.0)
    # [0,0,1,1,2,2] vs [0,0,1,1,1,1]: both 3, rows 3, cols 1 + 6 = 7, total 15: expected 21/15 = 1.4,
    # max 5 -> (3 - 1.4) / (5 - 1.4) = 4/9
    assert geometry.adjusted_rand_index(np.array([0, 0, 1, 1, 2, 2]),
                                        np.array([0, 0, 1, 1, 1, 1])) == pytest.approx(4 / 9)


def test_silhouette_of_tight_far_blobs_is_near_one_and_of_a_hand_case_is_exact():
    X, labels = blobs(50, np.array([[0.0, 0.0], [100.0, 0.0]]), spread=0.1)
    assert geometry.silhouette(X, labels) > 0.99
    assert geometry.silhouette(X, labels, chunk=7) == pytest.approx(geometry.silhouette(X, labels))
    # points 0, 1 (cluster A) and 4 (cluster B) on a line: a(0) = 1, b(0) = 4 -> 3/4; a(1) = 1,
    # b(1) = 3 -> 2/3; point 4 alone in its cluster -> 0
    line = np.array([[0.0], [1.0], [4.0]])
    assert geometry.silhouette(line, np.array([0, 0, 1])) == pytest.approx((3 / 4 + 2 / 3 + 0) / 3)
    # labels that cut across the blobs score below zero
    assert geometry.silhouette(X, np.tile([0, 1], 50)) < 0.05


def test_hmm_state_geometry_on_states_that_are_the_posterior():
    """A 'model' whose state is the exact posterior vector of a clear-cut filter: each point
    sits near one corner of the simplex, so k-means recovers the argmax state (ARI 1), and
    the entropy is far from linear in the posterior, but an R^2 is defined and below 1."""
    rng = np.random.default_rng(0)
    n_seq, n_query, S = 60, 10, 5
    state = rng.integers(0, S, (n_seq, n_query))
    posterior = np.full((n_seq, n_query, S), 0.02)
    np.put_along_axis(posterior, state[..., None], 0.92, -1)
    posterior *= rng.uniform(0.95, 1.05, posterior.shape)
    posterior /= posterior.sum(-1, keepdims=True)
    acts = np.concatenate([posterior, rng.standard_normal((n_seq, n_query, 3)) * 1e-3], -1)
    out = geometry.hmm_state_geometry(acts, posterior, S, symbols=rng.integers(0, S, (n_seq, n_query)))
    assert out["ari"] == pytest.approx(1.0) and abs(out["ari_symbol"]) < 0.05  # symbols unrelated here
    assert out["silhouette"] > 0.5
    assert 0 < out["pc1_share"] < 1 and out["entropy_r2"] <= 1
