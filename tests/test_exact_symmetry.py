"""Theorem 1, bitwise: identical units stay identical, on every CPU kernel family.

Units of a hidden layer that start with the same incoming row, bias and outgoing column must
end 1000 steps later (2000 in ``python -m jaxsym.core.exactness --full``) with bitwise-equal
parameters (difference exactly 0.0), for every
activation, loss, optimizer, batch mode and dtype, at widths that fill the vector registers
(8, 16) and that leave a remainder (17, 33), with one and two hidden layers
(:data:`jaxsym.core.exactness.SUITE_SHAPES`: hidden widths 17, 33, 17 -> 8 and 33 -> 16; the
``--full`` product of every width at both depths is benchmarks/results/exact_symmetry/).

Kernel families (``jaxsym.core.exactness.KERNEL_FAMILIES``): the machine's own (YNNPACK, chosen by
the CPU's features) runs in this process; XLA's and Eigen's kernels under
``--xla_cpu_max_isa=AVX2`` and ``SSE4_2`` run in subprocesses, which is how one machine
emulates another CPU. The engine's strategies (map with 1 and 8 networks per step, vmap) are
covered in tests/test_cross_machine.py.
"""

import json
import os
import subprocess
import sys

import pytest

from jaxsym.core import exactness

CASES = exactness.theorem_cases(full=False)
#: steps of each case in the suite (``python -m jaxsym.core.exactness --full`` runs 2000)
STEPS = 1000


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_theorem_1_is_bitwise(case):
    results = exactness.theorem_asymmetry(*case, steps=STEPS, shapes=exactness.SUITE_SHAPES)
    assert set(results) == set(exactness.SUITE_SHAPES)
    assert {w for hidden in results for w in hidden} == set(exactness.WIDTHS)
    for hidden, (asymmetry, moved) in results.items():
        assert asymmetry == 0.0, (case, hidden, asymmetry)
    # not vacuous: the symmetric units really trained (relu units may die, so not every net)
    assert sum(moved > 1e-3 for _, moved in results.values()) >= len(results) // 2, results


def test_dense_products_are_symmetric_here():
    assert exactness.product_failures() == []


def test_the_plain_products_are_not():
    """The check can fail: XLA's own kernels break symmetry in the plain ``dz^T @ a``."""
    code = ("import jax, jax.numpy as jnp, numpy as np\n"
            "jax.config.update('jax_enable_x64', True)\n"
            "a = jnp.asarray(np.random.default_rng(0).standard_normal((64, 1)))\n"
            "dw = jax.jit(lambda dz, a: dz.T @ a)(jnp.tile(a, (1, 17)), jnp.tile(a[::-1], (1, 17)))\n"
            "print(int((np.asarray(dw) != np.asarray(dw)[0, 0]).sum()))\n")
    env = {**os.environ, "XLA_FLAGS": exactness.KERNEL_FAMILIES["xla-avx2"]}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, timeout=300)
    assert int(out.stdout.split()[-1]) > 0


@pytest.mark.parametrize("family", sorted(exactness.FAMILY_CASES))
def test_other_kernel_families(family):
    """Products and a covering subset of the theorem cases under another family's kernels."""
    env = {**os.environ, "XLA_FLAGS": exactness.KERNEL_FAMILIES[family]}
    cases = ",".join(str(i) for i in exactness.FAMILY_CASES[family])
    out = subprocess.run([sys.executable, "-m", "jaxsym.core.exactness", "--cases", cases,
                          "--steps", str(STEPS)],
                         env=env, capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["xla_flags"] == exactness.KERNEL_FAMILIES[family]
    assert report["product_failures"] == []
    assert len(report["theorem"]) == (len(exactness.FAMILY_CASES[family])
                                      * len(exactness.SUITE_SHAPES))
    bad = [r for r in report["theorem"] if r["asymmetry"] != 0.0]
    assert bad == [], bad


def test_training_layout_pins_the_natural_view():
    """The engine trains padded params (jaxsym.core.dense.pad_params); both views are the same
    network: same outputs and gradients, the padding units stay exactly zero."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxsym.core import dense, nn, train
    from jaxsym.core.init import init_mlp

    sizes = (3, 17, 9, 2)
    params = init_mlp(jax.random.key(0), sizes, "normal", W_std=1.0, sigma_b=0.3)
    padded = dense.pad_params(params)
    assert [p["W"].shape for p in padded] == [(32, 3), (16, 32), (2, 16)]
    jax.tree.map(np.testing.assert_array_equal, dense.unpad_params(padded, sizes), params)
    x = jnp.asarray(np.random.default_rng(0).standard_normal((40, 3)))
    y = jnp.asarray(np.random.default_rng(1).standard_normal((40, 2)))
    for activation in ("sigmoid", "softplus", "tanh"):  # g(0) != 0 for the first two
        out_nat = nn.apply(params, x, activation)
        out_pad = nn.apply(padded, x, activation, sizes[1:-1])
        np.testing.assert_allclose(out_pad, out_nat, rtol=1e-13, atol=1e-14)
        g_nat = jax.grad(train.loss_of_params)(params, x, y, activation, "mse")
        g_pad = jax.grad(train.loss_of_params)(padded, x, y, activation, "mse", sizes[1:-1])
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14),
                     dense.unpad_params(g_pad, sizes), g_nat)
        tx, step = train.make_step(x, y, layer_sizes=sizes, activation=activation, loss="mse",
                                   optimizer="adam", learning_rate=0.01)
        p, state = padded, tx.init(padded)
        for t in range(5):
            _, _, p, state = step(p, state, t)
        for layer, (n_in, n_out) in zip(p[:-1], zip(sizes[:-2], sizes[1:-1])):
            assert np.all(np.asarray(layer["W"])[n_out:] == 0.0)
            assert np.all(np.asarray(layer["b"])[n_out:] == 0.0)
        for layer, n_in in zip(p[1:], sizes[1:-1]):
            assert np.all(np.asarray(layer["W"])[:, n_in:] == 0.0)


def test_noise_knob_is_exactly_off_at_zero_and_breaks_twins_otherwise():
    """The emulated hardware noise (train.make_step(noise=...)): 0 keeps identical units
    bitwise identical; a positive dose makes them differ by about that relative size."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxsym.core import dense, train

    rng = np.random.default_rng(3)
    sizes = (3, 17, 2)
    params = exactness.symmetric_params(rng, sizes, "float64")
    x = jnp.asarray(rng.standard_normal((32, 3)))
    y = jnp.asarray(rng.standard_normal((32, 2)))
    with pytest.raises(ValueError, match="noise given without noise_key"):
        train.make_step(x, y, layer_sizes=sizes, activation="tanh", loss="mse",
                        optimizer="sgd", learning_rate=0.1, noise=1e-6)

    def run(noise):
        tx, step = train.make_step(x, y, layer_sizes=sizes, activation="tanh", loss="mse",
                                   optimizer="sgd", learning_rate=0.1, noise=noise,
                                   noise_key=jax.random.key(7))
        p = dense.pad_params(params)
        p, state = p, tx.init(p)
        for t in range(3):
            _, _, p, state = step(p, state, t)
        return dense.unpad_params(p, sizes), p

    quiet, _ = run(jnp.asarray(0.0))
    assert float(exactness.twin_asymmetry(quiet)) == 0.0
    noisy, padded = run(jnp.asarray(1e-6))
    gap = float(exactness.twin_asymmetry(noisy))
    scale = float(jnp.max(jnp.abs(noisy[0]["W"])))
    assert 1e-8 * scale < gap < 1e-4 * scale
    assert np.all(np.asarray(padded[0]["W"])[17:] == 0.0)  # relative noise keeps padding 0


def _gpu_present() -> bool:
    import jax

    try:
        return bool(jax.devices("gpu"))
    except RuntimeError:
        return False


@pytest.mark.skipif(not _gpu_present(), reason="no GPU visible to JAX (jax.devices('gpu') "
                    "finds none): the GPU kernel family cannot be checked on this machine")
@pytest.mark.parametrize("case", CASES[:6] + CASES[-2:], ids=lambda c: "-".join(c))
def test_theorem_1_is_bitwise_on_gpu(case):
    import jax

    with jax.default_device(jax.devices("gpu")[0]):
        results = exactness.theorem_asymmetry(*case, steps=2000)
    assert all(asymmetry == 0.0 for asymmetry, _ in results.values()), results
