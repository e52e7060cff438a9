"""Symmetry metrics: exact zeros for symmetric layers, rank-two estimate vs SVD, scale-free."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxsym import metrics


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
