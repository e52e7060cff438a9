"""One network's weight-init schemes (traced mode index) against their stated laws."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsym import network

SPEC = network.NetworkSpec(layer_sizes=(3, 5, 1), activation="tanh", loss="mse", optimizer="sgd",
                           fan_in_scaled=True, steps=1, batch_size=0, dtype="float64",
                           checkpoints=(0, 1), gradient_steps=0, diversity_threshold=1e-2,
                           loss_threshold=1e-2, classification=False)


def _init(mode, shape=(5, 3), **knobs):
    values = {"sigma_b": 0.0, "weight_value": 0.7, "W_std": 1.3, "learning_rate": 0.1,
              "eps": 0.0, **knobs, "weight_mode": network.WEIGHT_MODES.index(mode)}
    values = {k: jnp.asarray(v, jnp.float64) for k, v in values.items()}
    return np.asarray(network.weight_initializer(SPEC, values)(jax.random.key(3), shape,
                                                               jnp.float64))


@pytest.fixture
def draws():
    base, noise = jax.random.split(jax.random.key(3))
    return (np.asarray(jax.random.normal(base, (5, 3), jnp.float64)),
            np.asarray(jax.random.normal(noise, (5, 3), jnp.float64)))


def test_each_mode_follows_its_law(draws):
    z, e = draws
    np.testing.assert_array_equal(_init("constant"), np.full((5, 3), 0.7 / np.sqrt(3)))
    np.testing.assert_array_equal(_init("zero"), np.zeros((5, 3)))
    np.testing.assert_allclose(_init("glorot"), np.sqrt(2 / 8) * z, rtol=1e-15)
    np.testing.assert_allclose(_init("normal"), 1.3 / np.sqrt(3) * z, rtol=1e-15)
    tied = _init("tied")
    assert (tied == tied[:1]).all()  # exactly symmetric: every unit the same row
    np.testing.assert_allclose(tied[0], 1.3 / np.sqrt(3) * z[0], rtol=1e-15)
    np.testing.assert_allclose(_init("tied", eps=1e-3) - tied, 1e-3 * e, rtol=1e-12, atol=1e-18)


def test_modes_share_one_compile():
    calls = []

    @jax.jit
    def run(mode):
        calls.append(1)
        knobs = {k: jnp.asarray(0.5, jnp.float64) for k in network.KNOBS}
        knobs["weight_mode"] = mode
        return network.weight_initializer(SPEC, knobs)(jax.random.key(0), (5, 3), jnp.float64)

    outs = [run(jnp.asarray(float(i))) for i in range(len(network.WEIGHT_MODES))]
    assert len(calls) == 1 and len({np.asarray(o).tobytes() for o in outs}) == 5
