"""Saddle theory: the Saxe et al. (2013) escape time against simulated gradient flow."""

import numpy as np
import pytest

from jaxsym.theory import saddle


def test_saxe_published_value():
    # exactly 9.21024...; quoted as 9.2103 in the issue (within 1e-4)
    assert saddle.saxe_escape_time(1.0, 1.0, 1e-4, 1 - 1e-4) == pytest.approx(9.2103, abs=1e-4)
    # with u_f = s - u0 the formula reduces to (tau / s) ln((s - u0) / u0)
    assert saddle.saxe_escape_time(1.0, 1.0, 1e-4, 1 - 1e-4) == pytest.approx(
        np.log((1 - 1e-4) / 1e-4), rel=1e-12)


@pytest.mark.parametrize("s,tau,u0", [(1.0, 1.0, 1e-4), (2.0, 0.5, 1e-3)])
def test_gradient_flow_matches_the_analytic_time(s, tau, u0):
    u_final = s * (1 - 1e-4)
    expected = saddle.saxe_escape_time(s, tau, u0, u_final)
    simulated = saddle.simulate_balanced_linear(s, tau, u0, u_final, dt=2e-3)
    assert simulated == pytest.approx(expected, rel=5e-3)


def test_escape_time_grows_like_log_of_inverse_init():
    times = [saddle.saxe_escape_time(1.0, 1.0, u0, 0.5) for u0 in (1e-2, 1e-4, 1e-6)]
    # (tau / 2s) ln(10^2) per two decades of u0, up to the ln(s - u0) term (~ u0 / s)
    np.testing.assert_allclose(np.diff(times), np.log(100) / 2, rtol=3e-3)
    with pytest.raises(ValueError, match="need 0 < u0 < u_final < s"):
        saddle.saxe_escape_time(1.0, 1.0, 0.5, 0.4)
