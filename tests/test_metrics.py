"""Symmetry metrics: exact zeros for symmetric layers, rank-two estimate vs SVD, scale-free."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxsym.core import metrics


def test_unit_spread_is_zero_for_identical_units_and_scale_free():
    row = np.random.RandomState(0).randn(1, 5)
    assert float(metrics.unit_spread(jnp.asarray(np.tile(row, (6, 1))))) == 0.0
    units = np.random.RandomState(1).randn(6, 5)
    a = float(metrics.unit_spread(jnp.asarray(units)))
    b = float(metrics.unit_spread(jnp.asarray(1e6 * units)))
    assert a == pytest.approx(b, rel=1e-12) and a > 0.5
    assert float(metrics.unit_spread(jnp.zeros((4, 3)))) == 0.0


@pytest.mark.parametrize("scale", [1e-12, 1.0, 1e12])
@pytest.mark.parametrize("ratio", [0.5, 1e-3, 1e-6])
def test_rank_two_estimate_equals_svd_for_rank_two(scale, ratio):
    rng = np.random.RandomState(2)
    u, _ = np.linalg.qr(rng.randn(8, 2))
    v, _ = np.linalg.qr(rng.randn(5, 2))
    W = scale * (u @ np.diag([1.0, ratio]) @ v.T)
    assert float(metrics.direction_diversity(jnp.asarray(W))) == pytest.approx(ratio, rel=1e-8)
    # t^2 - f carries rounding ~1e-16 relative, so (s2/s1)^2 is known to ~1e-16 absolute
    rel = 1e-7 + 1e-15 / ratio**2
    assert float(metrics.rank_two_diversity(jnp.asarray(W))) == pytest.approx(ratio, rel=rel)


def test_rank_one_float32_tiny_weights_are_not_reported_diverse():
    """After W = 0 the weights start ~1e-10: without normalisation f underflows in float32."""
    rng = np.random.RandomState(3)
    W = (1e-12 * np.outer(rng.randn(8), rng.randn(3))).astype(np.float32)
    assert float(metrics.rank_two_diversity(jnp.asarray(W))) < 1e-3
    assert float(metrics.rank_two_diversity(jnp.zeros((4, 4), jnp.float32))) == 0.0


def test_generic_matrix_is_diverse():
    W = np.random.RandomState(4).randn(8, 5)
    s = np.linalg.svd(W, compute_uv=False)
    assert float(metrics.direction_diversity(jnp.asarray(W))) == pytest.approx(s[1] / s[0])
    assert float(metrics.rank_two_diversity(jnp.asarray(W))) > 0.3


from hypothesis import given, settings
from hypothesis import strategies as st


@settings(max_examples=60, deadline=None)
@given(shape=st.sampled_from([(8, 2), (2, 9), (16, 16), (33, 17), (40, 5)]),
       noise=st.floats(0.0, 1.0), seed=st.integers(0, 2**31 - 1))
def test_diversity_bounds_bracket_the_exact_ratio(shape, noise, seed):
    """lower <= s2/s1 (SVD) <= upper for rank-one-plus-noise and generic matrices (float64;
    the bounds carry rounding of ~1e-12 in absolute terms near rank one)."""
    n_out, n_in = shape
    rng = np.random.default_rng(seed)
    W = np.outer(rng.standard_normal(n_out), rng.standard_normal(n_in)) \
        + noise * rng.standard_normal((n_out, n_in)) * rng.exponential(1.0, (1, n_in))
    lower, upper = (float(v) for v in metrics.diversity_bounds(jnp.asarray(W)))
    s = np.linalg.svd(W, compute_uv=False)
    exact = s[1] / s[0]
    assert lower <= exact * (1 + 1e-9) + 1e-7
    assert exact <= upper * (1 + 1e-9) + 1e-7
    if min(n_out, n_in) == 2:  # rank <= 2: both bounds are tight
        assert upper == pytest.approx(exact, rel=1e-6, abs=1e-7)


def test_break_test_agrees_with_the_exact_svd():
    """Depth 3, width 32, tied init (every unit the same row + eps noise), lr = 0: the network
    is broken exactly when both hidden layers' exact s2/s1 exceed the threshold, although the
    rank-two estimate alone exceeds it at some eps where the SVD does not."""
    import jax

    from jaxsym.core import network
    from jaxsym.core.init import init_params
    from jaxsym.core.spec import WEIGHT_MODES, NetworkSpec

    spec = NetworkSpec(layer_sizes=(2, 32, 32, 1), activation="tanh", loss="mse",
                       optimizer="sgd", fan_in_scaled=True, steps=1, batch_size=0,
                       dtype="float64", checkpoints=(0, 1), gradient_steps=0,
                       diversity_threshold=1e-2, loss_threshold=0.0, classification=False)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((16, 2)))
    data = {"x_train": x, "y_train": jnp.zeros((16, 1)), "x_test": x,
            "y_test": jnp.zeros((16, 1))}
    eps = np.logspace(-4, -1, 25)

    def one(e):
        knobs = {"sigma_b": 0.0, "weight_value": 1.0, "W_std": 1.0, "learning_rate": 0.0,
                 "eps": e, "noise": 0.0, "weight_mode": float(WEIGHT_MODES.index("tied"))}
        key = jax.random.key(3)
        records = network.run_network(key, knobs, data, spec)
        params = init_params(jax.random.split(key)[0],
                             {k: jnp.asarray(v, jnp.float64) for k, v in knobs.items()}, spec)
        return (records["broken"], records["broken_layer"], records["diversity_at_break"],
                [p["W"] for p in params[:-1]])

    estimate_only = 0
    for e in eps:
        broken, broken_layer, at_break, weights = jax.jit(one)(e)
        exact = [np.linalg.svd(np.asarray(W), compute_uv=False) for W in weights]
        exact = np.array([s[1] / s[0] for s in exact])
        estimate = np.array([float(metrics.rank_two_diversity(W)) for W in weights])
        assert bool(broken) == bool(np.all(exact > 1e-2)), (e, exact)
        np.testing.assert_array_equal(np.asarray(broken_layer), exact > 1e-2)
        if bool(broken):
            np.testing.assert_allclose(np.asarray(at_break), exact, rtol=1e-9)
        else:
            assert np.isnan(np.asarray(at_break)).all()
        estimate_only += int(np.sum((estimate > 1e-2) & ~(exact > 1e-2)))
    assert estimate_only >= 1  # layers the old estimate-only test called broken
    # vmapped (the engine's map batches and vmap strategy): the batched SVD rule gives the
    # same verdicts and values as one network at a time
    batched = jax.jit(jax.vmap(one))(jnp.asarray(eps))
    for i, e in enumerate(eps[::6]):
        single = jax.jit(one)(e)
        assert bool(batched[0][6 * i]) == bool(single[0])
        np.testing.assert_array_equal(np.asarray(batched[1][6 * i]), np.asarray(single[1]))
        np.testing.assert_allclose(np.asarray(batched[2][6 * i]), np.asarray(single[2]),
                                   rtol=1e-12)
    assert 0 < int(np.sum(np.asarray(batched[0]))) < len(eps)
