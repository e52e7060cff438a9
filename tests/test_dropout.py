"""Dropout on the hidden units as a traced knob: the mask's law and layout independence, its
neutrality when off, that it breaks the symmetry of identical units, and its config checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import xor_network, xor_spec

from jaxsym.core import dense, nn
from jaxsym.engine.store import study_identity
from jaxsym.study import config, plan


def _params(rng, d=3, m=17):
    def normal(*shape):
        return jnp.asarray(rng.standard_normal(shape))

    return [{"W": normal(m, d), "b": normal(m)}, {"W": normal(2, m), "b": jnp.zeros(2)}]


def test_mask_law_scaling_and_layout_independence():
    """Inverted dropout: a kept activation is a / (1 - p) (to one rounding), a dropped one 0, the
    dropped fraction is p within a binomial 5-sigma band, and the real units get the same mask
    in the natural and the padded training layout (padding units stay 0)."""
    rng = np.random.default_rng(0)
    params = _params(rng)
    x = jnp.asarray(rng.standard_normal((4000, 3)))
    p, key = 0.3, jax.random.key(7)
    plain = np.asarray(nn.hidden_activations(params, x, "tanh")[0])
    dropped = np.asarray(nn.hidden_activations(params, x, "tanh", dropout=(p, key))[0])
    kept = dropped != 0
    # (XLA may divide as a multiply by the reciprocal: one rounding apart)
    np.testing.assert_allclose(dropped[kept], plain[kept] / (1 - p), rtol=3e-16, atol=0)
    n = kept.size
    assert abs((~kept).mean() - p) < 5 * np.sqrt(p * (1 - p) / n)
    padded = dense.pad_params(params)
    assert padded[0]["W"].shape[0] > 17  # the training layout really is wider
    wide = np.asarray(nn.hidden_activations(padded, x, "sigmoid", (17,), dropout=(p, key))[0])
    narrow = np.asarray(nn.hidden_activations(params, x, "sigmoid", dropout=(p, key))[0])
    np.testing.assert_array_equal(wide[:, :17], narrow)
    assert (wide[:, 17:] == 0).all()
    # rate 0: the identity, bit for bit
    np.testing.assert_array_equal(
        np.asarray(nn.hidden_activations(params, x, "tanh", dropout=(0.0, key))[0]), plain)


def _spec(dropped, batch_size=0, optimizer="sgd"):
    return xor_spec(steps=60, checkpoints=6, batch_size=batch_size, optimizer=optimizer,
                    dropped=dropped)


def _run(spec, sigma_b, dropout=None, seed=0):
    extra = {} if dropout is None else {"dropout": dropout}
    return xor_network(spec, sigma_b, seed, **extra)


def test_dropout_off_is_the_plain_step():
    """Knob left out, or compiled in at rate 0 (every unit kept, a / 1 = a): the same
    training, every record equal (float64, to rounding of the checkpoint loss's other
    evaluation order: 1e-12)."""
    plain = _run(_spec(False), 0.3)
    for other in (_run(_spec(True), 0.3, 0.0), _run(_spec(False), 0.3, 0.5)):
        for name in plain:
            if np.issubdtype(plain[name].dtype, np.floating):
                np.testing.assert_allclose(other[name], plain[name], rtol=1e-12, atol=1e-14,
                                           err_msg=name)
            else:
                np.testing.assert_array_equal(other[name], plain[name], err_msg=name)


@pytest.mark.parametrize("batch_size,optimizer", [(0, "sgd"), (16, "adam")])
def test_dropout_breaks_identical_units(batch_size, optimizer):
    """sigma_b = 0, constant W at odd width 17: without dropout the units stay exactly
    identical (diversity 0 at every checkpoint); with dropout 0.3 the rows separate and the
    units compute different functions."""
    spec = _spec(True, batch_size=batch_size, optimizer=optimizer)
    off = _run(spec, 0.0, 0.0)
    assert (off["functional_diversity"] == 0.0).all() and not off["broken"]
    on = _run(spec, 0.0, 0.3)
    assert on["broken"] and on["functionally_broken"]
    assert on["functional_diversity"][-1].min() > 1e-2


def test_dropout_is_a_function_of_the_network_key():
    """The masks come from the network's own key: the same key gives the same records, another
    key other ones."""
    spec = _spec(True)
    a, b, c = _run(spec, 0.0, 0.3, seed=3), _run(spec, 0.0, 0.3, seed=3), _run(spec, 0.0, 0.3, 4)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert not np.array_equal(a["loss"], c["loss"])


def test_dropout_enters_config_grid_spec_and_identity():
    study = config.parse_study('[task]\nname = "xor"\n[grid]\ndropout = [0.0, 0.25]\n')
    assert dict(study.grid)["dropout"] == (0.0, 0.25)
    assert all(g.spec.dropped for g in plan.plan(study).groups)
    for bad in ("[train]\ndropout = 1.0\n", "[train]\ndropout = -0.1\n",
                "[grid]\ndropout = [0.5, 1.5]\n"):
        with pytest.raises(config.ConfigError, match=r"dropout.*must be in \[0, 1\)"):
            config.parse_study(bad)
    base = config.parse_study('[task]\nname = "xor"\n')
    off = config.parse_study('[task]\nname = "xor"\n[train]\ndropout = 0.0\n')
    on = config.parse_study('[task]\nname = "xor"\n[train]\ndropout = 0.1\n')
    assert study_identity(off) == study_identity(base) != study_identity(on)
    assert not any(g.spec.dropped for g in plan.plan(base).groups)
