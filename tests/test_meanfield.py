"""Mean-field maps against closed forms and against Monte-Carlo wide random networks."""

import numpy as np
import pytest

from jaxsym.core.activations import get_activation
from jaxsym.theory import meanfield as mf


@pytest.mark.parametrize("sigma_w2,sigma_b2", [(0.5, 0.1), (1.0, 0.05), (2.0, 0.3), (4.0, 0.0)])
def test_erf_chi_1_closed_form(sigma_w2, sigma_b2):
    q = mf.q_star("erf", sigma_w2, sigma_b2)
    expected = 4 * sigma_w2 / (np.pi * np.sqrt(1 + 4 * q))
    assert mf.chi_1("erf", sigma_w2, sigma_b2) == pytest.approx(expected, rel=1e-4)
    # erf's length map is closed form too: E[erf(sqrt(q) z)^2] = (2/pi) arcsin(2q / (1 + 2q))
    q_next = sigma_w2 * 2 / np.pi * np.arcsin(2 * q / (1 + 2 * q)) + sigma_b2
    assert mf.q_map(q, "erf", sigma_w2, sigma_b2) == pytest.approx(q_next, rel=1e-6)
    assert q == pytest.approx(q_next, rel=1e-6)  # and q* is its fixed point


def test_relu_critical_point_is_two_at_zero_bias():
    assert float(mf.critical_sigma_w2("relu", 1e-12)) == pytest.approx(2.0, abs=1e-9)
    assert mf.chi_1("relu", 1.5, 0.1) == pytest.approx(0.75, rel=1e-12)  # sigma_w^2 / 2


def test_linear_fixed_point_closed_form():
    assert mf.q_star("linear", 0.5, 0.2) == pytest.approx(0.2 / (1 - 0.5), rel=1e-10)
    assert mf.q_star("linear", 1.5, 0.2) == float("inf")


def test_tanh_critical_line_is_increasing_and_matches_known_value():
    line = mf.critical_sigma_w2("tanh", [0.01, 0.05, 0.2])
    assert np.all(np.diff(line) > 0)
    assert line[1] == pytest.approx(1.76, abs=0.01)  # Schoenholz et al. (2017), Fig. 1
    for sigma_w2, sigma_b2 in zip(line, [0.01, 0.05, 0.2]):
        assert mf.chi_1("tanh", sigma_w2, sigma_b2) == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid"])
def test_bias_only_edge(activation):
    """sigma_w = 0: every input maps to the same state; chi_1 = 0 (the staircase)."""
    result = mf.mean_field(activation, 0.0, 0.3)
    assert result.q_star == pytest.approx(0.3)
    assert result.c_star == 1.0 and result.chi_1 == 0.0


def _monte_carlo(activation, sigma_w2, sigma_b2, depth=6, width=1024, seeds=6, q0=1.0, c0=0.3):
    """Measured q^l (mean squared pre-activation) and c^l of two inputs through random nets."""
    g = get_activation(activation).g
    rng = np.random.default_rng(0)
    qs, cs = np.zeros((seeds, depth)), np.zeros((seeds, depth))
    for s in range(seeds):
        x = rng.standard_normal((2, width))
        x[1] = c0 * x[0] + np.sqrt(1 - c0 ** 2) * x[1]
        h = x * np.sqrt(q0)  # pre-activations of layer 0 with length q0 and correlation c0
        for layer in range(depth):
            W = rng.standard_normal((width, width)) * np.sqrt(sigma_w2 / width)
            b = rng.standard_normal(width) * np.sqrt(sigma_b2)
            h = g(h) @ W.T + b
            qs[s, layer] = np.mean(h[0] ** 2)
            cs[s, layer] = np.mean(h[0] * h[1]) / np.sqrt(np.mean(h[0] ** 2) * np.mean(h[1] ** 2))
    return qs.mean(0), cs.mean(0), qs.std(0) / np.sqrt(seeds), cs.std(0) / np.sqrt(seeds)


@pytest.mark.parametrize("activation,sigma_w2,sigma_b2", [("tanh", 1.5, 0.05), ("tanh", 3.0, 0.05),
                                                          ("relu", 1.8, 0.1)])
def test_maps_match_wide_random_networks(activation, sigma_w2, sigma_b2):
    q_mc, c_mc, q_err, c_err = _monte_carlo(activation, sigma_w2, sigma_b2)
    q, c = 1.0, 0.3
    for layer in range(len(q_mc)):
        # the c-map needs both lengths equal; they are, in expectation, from q0 on
        c = (sigma_w2 * mf._pair_expectation(
            lambda u1, u2: get_activation(activation).g(np.sqrt(q) * u1)
            * get_activation(activation).g(np.sqrt(q) * u2), c) + sigma_b2)
        q = mf.q_map(q, activation, sigma_w2, sigma_b2)
        c = c / q
        # within 4 standard errors plus the O(1/width) finite-width bias
        assert abs(q_mc[layer] - q) <= 4 * q_err[layer] + 0.01 * q, (layer, q_mc[layer], q)
        assert abs(c_mc[layer] - c) <= 4 * c_err[layer] + 0.01, (layer, c_mc[layer], c)
