"""The JAX-free vocabulary (core.spec) and THE record schema (core.records) against the code
that uses them: the JAX registries, the config validator and what run_network returns."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsym.core import network, nn, observers, records, train
from jaxsym.core.spec import KNOBS, LOSSES, OPTIMIZERS, NetworkSpec


@pytest.mark.parametrize("module", ["jaxsym.core.spec", "jaxsym.core.records"])
def test_importing_does_not_import_jax(module):
    code = f"import sys, {module}; sys.exit(1 if 'jax' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_registries_implement_exactly_the_spec_names():
    assert tuple(nn._LOSS_FUNCTIONS) == LOSSES
    assert tuple(train._FACTORIES) == OPTIMIZERS
    for kind in OPTIMIZERS:
        train.make_optimizer(kind, 0.1)
    with pytest.raises(ValueError, match="allowed: sgd, momentum, adam"):
        train.make_optimizer("lion", 0.1)


def _spec(classification, dtype="float64", depth=3):
    return NetworkSpec(layer_sizes=(2,) + (5,) * (depth - 1) + (3 if classification else 1,),
                       activation="tanh", loss="softmax_ce" if classification else "mse",
                       optimizer="sgd", fan_in_scaled=True, steps=7, batch_size=0, dtype=dtype,
                       checkpoints=(0, 2, 7), gradient_steps=3, diversity_threshold=1e-2,
                       loss_threshold=1e-2, classification=classification)


@pytest.mark.parametrize("classification", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_run_network_returns_the_record_table(classification, dtype):
    """Names, order-free set, shapes and dtypes of run_network's output are the table's."""
    spec = _spec(classification, dtype)
    x = jnp.zeros((6, 2), jnp.float32)
    y = jnp.zeros(6, jnp.int32) if classification else jnp.zeros((6, 1), jnp.float32)
    data = {"x_train": x, "y_train": y, "x_test": x, "y_test": y}
    if classification:
        data.update(labels_train=y, labels_test=y)
    knobs = dict.fromkeys(KNOBS, 0.0)
    out = jax.eval_shape(lambda k: network.run_network(k, knobs, data, spec), jax.random.key(0))
    shapes = records.record_shapes(spec)
    assert set(out) == set(shapes) == {r.name for r in records.records_of(spec)}
    for record in records.records_of(spec):
        assert out[record.name].shape == shapes[record.name], record.name
        assert out[record.name].dtype == np.dtype(records.record_dtype(record, spec)), record.name


def test_shapes_and_initial_values_follow_the_dims():
    spec = _spec(False)
    shapes = records.record_shapes(spec)
    assert shapes["loss"] == (3,) and shapes["diversity"] == (3, 2)
    assert shapes["grad_norm"] == (3, 3) and shapes["time_to_break_layer"] == (2,)
    assert "final_accuracy" not in shapes and "final_accuracy" in records.record_shapes(
        _spec(True))
    initial = records.initial_values(spec)
    assert "final_loss" not in initial and "test_loss" not in initial
    assert initial["time_to_break"] == 7 and initial["time_to_break"].dtype == np.int32
    assert (initial["time_to_break_layer"] == 7).all()
    assert np.isnan(initial["diversity_at_break"]).all()
    assert initial["broken"].dtype == bool and not initial["broken"]
    state = observers.initial_state(spec)
    assert set(state.records) == set(initial) and state.last_loss.dtype == jnp.float64


def test_every_record_is_described_once():
    names = [r.name for r in records.RECORDS]
    assert len(names) == len(set(names))
    for record in records.RECORDS:
        assert set(record.dims) <= set(records.NETWORK_DIMS) - {"seed"}
        assert record.kind in ("float", "int32", "bool")
        assert record.long_name and record.units and record.description
        assert record.initial in (None, "zero", "steps", "nan")
    assert records.grid_dim("loss") == "loss_function" and records.grid_dim("sigma_b") == "sigma_b"


def test_update_is_the_hand_written_optax_step():
    """train.update is value_and_grad -> tx.update -> apply_updates, bitwise."""
    import optax

    params = [{"W": jnp.asarray(np.random.default_rng(0).standard_normal((4, 3))),
               "b": jnp.linspace(-1.0, 1.0, 4)}]
    x = jnp.asarray(np.random.default_rng(1).standard_normal((8, 3)))

    def objective(p):
        return jnp.mean(jnp.tanh(x @ p[0]["W"].T + p[0]["b"]) ** 2)

    for kind in OPTIMIZERS:
        tx = train.make_optimizer(kind, 0.1)
        state = (params, tx.init(params))
        (new_params, _), (value, grads) = jax.jit(train.update(tx, objective))(state)

        @jax.jit
        def by_hand(p, opt_state, tx=tx):
            v, g = jax.value_and_grad(objective)(p)
            updates, _ = tx.update(g, opt_state, p)
            return optax.apply_updates(p, updates), v, g

        expected, v, g = by_hand(*state)
        assert float(value) == float(v)
        for got, want in zip(jax.tree.leaves((new_params, grads)), jax.tree.leaves((expected, g))):
            np.testing.assert_array_equal(got, want)
