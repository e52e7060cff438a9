"""One network's weight-init schemes (traced mode index) against their stated laws."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsym.core import init
from jaxsym.core.spec import KNOBS, WEIGHT_MODES, NetworkSpec

SPEC = NetworkSpec(layer_sizes=(3, 5, 1), activation="tanh", loss="mse", optimizer="sgd",
                   fan_in_scaled=True, steps=1, batch_size=0, dtype="float64",
                   checkpoints=(0, 1), gradient_steps=0, diversity_threshold=1e-2,
                   loss_threshold=1e-2, classification=False)


def _knobs(mode, **knobs):
    values = {"sigma_b": 0.0, "weight_value": 0.7, "W_std": 1.3, "learning_rate": 0.1,
              "eps": 0.0, **knobs, "weight_mode": WEIGHT_MODES.index(mode)}
    return {k: jnp.asarray(v, jnp.float64) for k, v in values.items()}


@pytest.fixture
def draws():
    base, noise = jax.random.split(jax.random.key(3))
    return (jax.random.normal(base, (5, 3), jnp.float64),
            jax.random.normal(noise, (5, 3), jnp.float64))


def _weights(draws, mode, **knobs):
    return np.asarray(init.weights_from_draws(SPEC, _knobs(mode, **knobs), *draws))


def test_each_mode_follows_its_law(draws):
    z, e = (np.asarray(d) for d in draws)
    np.testing.assert_array_equal(_weights(draws, "constant"), np.full((5, 3), 0.7 / np.sqrt(3)))
    np.testing.assert_array_equal(_weights(draws, "zero"), np.zeros((5, 3)))
    np.testing.assert_allclose(_weights(draws, "glorot"), np.sqrt(2 / 8) * z, rtol=1e-15)
    np.testing.assert_allclose(_weights(draws, "normal"), 1.3 / np.sqrt(3) * z, rtol=1e-15)
    tied = _weights(draws, "tied")
    assert (tied == tied[:1]).all()  # exactly symmetric: every unit the same row
    np.testing.assert_allclose(tied[0], 1.3 / np.sqrt(3) * z[0], rtol=1e-15)
    np.testing.assert_allclose(_weights(draws, "tied", eps=1e-3) - tied, 1e-3 * e, rtol=1e-12,
                               atol=1e-18)


def test_init_params_cuts_one_draw_in_the_documented_order():
    knobs = _knobs("normal", sigma_b=0.3, W_std=2.0)
    params = init.init_params(jax.random.key(5), knobs, SPEC)
    flat = np.asarray(jax.random.normal(jax.random.key(5), (2 * 15 + 5 + 2 * 5 + 1,),
                                        jnp.float64))
    start = 0
    for layer, (n_out, n_in) in zip(params, [(5, 3), (1, 5)]):
        size = n_out * n_in
        z = flat[start:start + size].reshape(n_out, n_in)
        bias = flat[start + 2 * size:start + 2 * size + n_out]
        start += 2 * size + n_out
        np.testing.assert_allclose(layer["W"], 2.0 / np.sqrt(n_in) * z, rtol=1e-15)
        np.testing.assert_allclose(layer["b"], 0.3 * bias, rtol=1e-15)
    assert start == flat.size


def test_modes_share_one_compile():
    calls = []

    @jax.jit
    def run(mode):
        calls.append(1)
        knobs = {k: jnp.asarray(0.5, jnp.float64) for k in KNOBS}
        knobs["weight_mode"] = mode
        return init.init_params(jax.random.key(0), knobs, SPEC)

    outs = [run(jnp.asarray(float(i))) for i in range(len(WEIGHT_MODES))]
    flat = {b"".join(np.asarray(layer["W"]).tobytes() for layer in o) for o in outs}
    assert len(calls) == 1 and len(flat) == len(WEIGHT_MODES)


@pytest.mark.parametrize("modes", [("orthogonal",), ("torch_default",), ("grouped",),
                                   ("zero", "glorot", "tied"), ("constant", "torch_default"),
                                   ("random_output", "signed_output", "hadamard")])
def test_compiling_in_fewer_modes_keeps_every_mode_bitwise(modes):
    """A spec with ``weight_modes`` a subset computes only those schemes (one: no select), and
    each of them draws exactly the parameters of the every-mode init, weights and biases."""
    import dataclasses

    spec = dataclasses.replace(SPEC, layer_sizes=(3, 6, 5, 2), weight_modes=modes)

    @jax.jit
    def both(knobs):
        every = dataclasses.replace(spec, weight_modes=WEIGHT_MODES)
        return (init.init_params(jax.random.key(4), knobs, every),
                init.init_params(jax.random.key(4), knobs, spec))

    for mode in modes:
        full, fewer = both({**_knobs(mode, sigma_b=0.2, eps=1e-3), "groups": jnp.asarray(2.0)})
        for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(fewer)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    def lines(s):
        return jax.jit(lambda k: init.init_params(jax.random.key(0), k, s)).lower(
            _knobs(modes[0])).as_text().count("\n")

    assert lines(spec) < lines(dataclasses.replace(spec, weight_modes=WEIGHT_MODES))


def test_torch_default_is_pytorchs_uniform_for_weights_and_biases():
    """Mode torch_default: W and b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's nn.Linear),
    sigma_b unused; checked by the bounds and a Kolmogorov-Smirnov test on 20000 draws."""
    from scipy import stats

    spec = NetworkSpec(layer_sizes=(40, 500, 3), activation="tanh", loss="mse",
                       optimizer="sgd", fan_in_scaled=True, steps=1, batch_size=0,
                       dtype="float64", checkpoints=(0, 1), gradient_steps=0,
                       diversity_threshold=1e-2, loss_threshold=1e-2, classification=False)
    params = init.init_params(jax.random.key(2), _knobs("torch_default", sigma_b=5.0), spec)
    for layer, fan_in in zip(params, (40, 500)):
        bound = 1 / np.sqrt(fan_in)
        for values in (np.asarray(layer["W"]).ravel(), np.asarray(layer["b"])):
            assert np.abs(values).max() <= bound
        weights = np.asarray(layer["W"]).ravel()
        assert stats.kstest(weights / bound, stats.uniform(-1, 2).cdf).pvalue > 1e-3
    assert stats.kstest(np.asarray(params[0]["b"]) * np.sqrt(40),
                        stats.uniform(-1, 2).cdf).pvalue > 1e-3
    # the other modes keep their N(0, sigma_b^2) biases
    normal = init.init_params(jax.random.key(2), _knobs("normal", sigma_b=5.0), spec)
    assert np.std(np.asarray(normal[0]["b"])) > 3.0


def test_the_alternatives_to_random_w_follow_their_laws():
    """orthogonal: semi-orthogonal x W_std; random_output / signed_output: constant hidden
    layers with a Glorot / alternating-sign output layer; hadamard: deterministic +-1/sqrt(n_in)
    rows, orthogonal when n_in is a power of two >= n_out."""
    spec = NetworkSpec(layer_sizes=(8, 6, 3), activation="tanh", loss="mse", optimizer="sgd",
                       fan_in_scaled=True, steps=1, batch_size=0, dtype="float64",
                       checkpoints=(0, 1), gradient_steps=0, diversity_threshold=1e-2,
                       loss_threshold=1e-2, classification=False)
    key = jax.random.key(4)
    ortho = init.init_params(key, _knobs("orthogonal", W_std=1.5), spec)
    W1, W2 = (np.asarray(layer["W"]) for layer in ortho)
    np.testing.assert_allclose(W1 @ W1.T, 2.25 * np.eye(6), atol=1e-12)  # rows (6 < 8)
    np.testing.assert_allclose(W2 @ W2.T, 2.25 * np.eye(3), atol=1e-12)
    glorot = init.init_params(key, _knobs("glorot"), spec)
    for mode in ("random_output", "signed_output"):
        params = init.init_params(key, _knobs(mode), spec)
        np.testing.assert_array_equal(params[0]["W"], np.full((6, 8), 0.7 / np.sqrt(8)))
    np.testing.assert_array_equal(init.init_params(key, _knobs("random_output"), spec)[1]["W"],
                                  glorot[1]["W"])
    signed = np.asarray(init.init_params(key, _knobs("signed_output"), spec)[1]["W"])
    np.testing.assert_array_equal(signed, 0.7 / np.sqrt(6) * np.tile([1, -1, 1, -1, 1, -1],
                                                                    (3, 1)))
    had = [np.asarray(layer["W"]) for layer in
           init.init_params(key, _knobs("hadamard"), spec)]
    assert set(np.unique(np.abs(had[0]))) == {1 / np.sqrt(8)}
    np.testing.assert_allclose(had[0] @ had[0].T, np.eye(6), atol=1e-12)
    assert len({row.tobytes() for row in had[0]}) == 6  # distinct units
    again = init.init_params(jax.random.key(99), _knobs("hadamard"), spec)
    np.testing.assert_array_equal(again[0]["W"], had[0])  # deterministic


def test_grouped_mode_is_k_groups_of_identical_units_and_glorot_at_the_width():
    """grouped: hidden unit j takes group j mod k's Glorot row (first layer) and column
    (output layer), bitwise; k = 1 is one collapsed unit; k >= the width is Glorot itself."""
    spec = NetworkSpec(layer_sizes=(3, 8, 2), activation="tanh", loss="mse", optimizer="sgd",
                       fan_in_scaled=True, steps=1, batch_size=0, dtype="float64",
                       checkpoints=(0, 1), gradient_steps=0, diversity_threshold=1e-2,
                       loss_threshold=1e-2, classification=False)
    key = jax.random.key(4)
    glorot = init.init_params(key, _knobs("glorot"), spec)

    def grouped(k):
        return init.init_params(key, {**_knobs("grouped"), "groups": jnp.asarray(k, jnp.float64)},
                                spec)

    for k in (8, 11):
        for a, b in zip(jax.tree.leaves(grouped(k)), jax.tree.leaves(glorot)):
            np.testing.assert_array_equal(a, b)
    for k in (1, 3):
        params = grouped(k)
        W1, V = np.asarray(params[0]["W"]), np.asarray(params[1]["W"])
        g = np.arange(8) % k
        np.testing.assert_array_equal(W1, np.asarray(glorot[0]["W"])[g])
        np.testing.assert_array_equal(V, np.asarray(glorot[1]["W"])[:, g])
        assert len({tuple(row) for row in W1}) == k  # exactly k distinct units
