"""Properties of :mod:`jaxsym.inits`: shapes, dtypes, laws, symmetry tools, keys, traced scales.

Statistical checks use a fixed key and a tolerance of ``Z = 4.5`` standard errors of the
estimator (a two-sided 4.5-sigma band is left with probability ~7e-6), so they are deterministic
and still sharp enough to catch a wrong fan or a factor of 2:

* variance with known mean 0: ``v_hat = mean(x^2)``; ``sd(v_hat) / Var = sqrt((kurt - 1) / N)``,
  with kurt = 3 for a normal (an upper bound for the truncated normal, kurt ~ 2.4, and for the
  uniform, kurt = 1.8);
* mean: ``sd(mean) = sqrt(Var / N)``.

Speed: on CPU every new (distribution, shape, dtype, batch) costs an XLA compile of threefry
(~0.4 s), so the tests share a handful of shapes: SHAPE for statistics, SMALL / SMALL[::-1] and
their biases (6,) / (4,) for everything else (SIZES is built from exactly those layers), and one
vmap batch size.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxsym import inits, nn
from helpers import assert_trees_all_close, counting_traces

Z = 4.5
KEY = jax.random.key(20240607)
SHAPE = (300, 120)  # (n_out, n_in) = (fan_out, fan_in): non-square, catches swapped fans
FAN_OUT, FAN_IN = SHAPE
SMALL = (6, 4)
SIZES = (4, 6, 6, 6)  # layers W: (6, 4), (6, 6), (6, 6); b: (6,) (few shapes: few compiles)
F32, F64 = jnp.float32, jnp.float64
DTYPES = [F32, F64]
RTOL = {F32: 1e-6, F64: 1e-13}
SCALES = np.array([0.0, 1e-6, 0.3, 2.5])  # the one vmap batch: len(SCALES) keys and scales
BATCH_KEYS = jax.random.split(KEY, len(SCALES))

ALL_NAMES = ("zeros", "constant", "normal", "uniform", "glorot_normal", "glorot_uniform",
             "xavier_normal", "xavier_uniform", "he_normal", "he_uniform", "kaiming_normal",
             "kaiming_uniform", "lecun_normal", "lecun_uniform", "orthogonal")
DEFAULT_SCALES = {"constant": {"value": 0.3}, "normal": {"std": 0.5},
                  "uniform": {"limit": 0.2}, "orthogonal": {"scale": 1.5}}
FAN_BASED = ("glorot_normal", "glorot_uniform", "xavier_normal", "xavier_uniform", "he_normal",
             "he_uniform", "kaiming_normal", "kaiming_uniform", "lecun_normal", "lecun_uniform",
             "orthogonal")
VARIANCES = {  # for SHAPE = (n_out, n_in): fan_in = n_in = 120, fan_out = n_out = 300
    "glorot": 2.0 / (FAN_IN + FAN_OUT), "xavier": 2.0 / (FAN_IN + FAN_OUT),
    "he": 2.0 / FAN_IN, "kaiming": 2.0 / FAN_IN, "lecun": 1.0 / FAN_IN,
}


def _np(x):
    return np.asarray(x, dtype=np.float64)


def assert_mean_zero_variance(x, variance, kurtosis=3.0, z=Z):
    """Sample mean ~ 0 and ``mean(x^2) ~ variance`` within ``z`` standard errors."""
    x = _np(x).ravel()
    n = x.size
    se_mean = math.sqrt(variance / n)
    assert abs(x.mean()) <= z * se_mean, (x.mean(), se_mean)
    rel = x.dot(x) / n / variance - 1.0
    se_rel = math.sqrt((kurtosis - 1.0) / n)
    assert abs(rel) <= z * se_rel, f"variance off by {rel:+.4f} (tolerance {z * se_rel:.4f})"


def _scheme(name):
    return inits.make_initializer(name, **DEFAULT_SCALES.get(name, {}))


# --------------------------------------------------------------------------------------------
# elementary schemes
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ALL_NAMES)
def test_every_scheme_shape_dtype_and_determinism(name, dtype):
    init = _scheme(name)
    a = init(KEY, SMALL, dtype)
    assert a.shape == SMALL and a.dtype == dtype
    assert np.all(np.isfinite(_np(a)))
    np.testing.assert_array_equal(_np(init(KEY, SMALL, dtype)), _np(a))
    if name not in FAN_BASED:  # the elementary schemes also take bias shapes
        b = init(KEY, (6,), dtype)
        assert b.shape == (6,) and b.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
def test_zeros_and_constant_are_exact_and_ignore_the_key(dtype):
    other = jax.random.key(1)
    for shape in [SMALL, (6,)]:
        np.testing.assert_array_equal(_np(inits.zeros()(KEY, shape, dtype)), np.zeros(shape))
        c = inits.constant(-0.7)(KEY, shape, dtype)
        assert c.dtype == dtype
        np.testing.assert_array_equal(np.asarray(c), np.full(shape, -0.7, dtype=dtype))
        again = inits.constant(-0.7)(other, shape, dtype)
        np.testing.assert_array_equal(np.asarray(c), np.asarray(again))
    # fan_in scaling divides by sqrt(n_in) = sqrt(shape[-1]) = 2; a bias has no fan-in
    scaled = inits.constant(0.9, fan_in_scaled=True)(KEY, SMALL, dtype)
    np.testing.assert_allclose(_np(scaled), np.full(SMALL, 0.9 / 2.0), rtol=RTOL[dtype])
    bias = inits.constant(0.9, fan_in_scaled=True)(KEY, (6,), dtype)
    np.testing.assert_allclose(_np(bias), np.full(6, 0.9), rtol=RTOL[dtype])
    np.testing.assert_array_equal(_np(inits.constant(0.0)(KEY, SMALL, dtype)), 0.0)


@pytest.mark.parametrize("fan_in_scaled", [False, True])
def test_normal_std_and_fan_in_scaling(fan_in_scaled):
    std = 1.7
    w = inits.normal(std, fan_in_scaled=fan_in_scaled)(KEY, SHAPE, F64)
    expected_std = std / math.sqrt(FAN_IN) if fan_in_scaled else std
    assert_mean_zero_variance(w, expected_std**2)
    if fan_in_scaled:  # scaling by fan_out instead would be far outside the band
        assert abs(np.mean(_np(w) ** 2) / (std**2 / FAN_OUT) - 1) > 1.0
    # same key, different std: the same standard-normal draw, rescaled
    unit = inits.normal(1.0)(KEY, SHAPE, F64)
    np.testing.assert_allclose(_np(w), _np(unit) * expected_std, rtol=1e-13)
    np.testing.assert_array_equal(_np(inits.normal(0.0)(KEY, SMALL, F64)), 0.0)


def test_uniform_bounds_and_variance():
    limit = 0.37
    w = _np(inits.uniform(limit)(KEY, SHAPE, F64))
    assert np.all(np.abs(w) <= limit)
    # the extremes are reached: P(max < limit (1 - 1e-3)) = (1 - 5e-4)^36000 ~ 1e-8
    assert w.max() > limit * (1 - 1e-3) and w.min() < -limit * (1 - 1e-3)
    assert_mean_zero_variance(w, limit**2 / 3, kurtosis=1.8)


@pytest.mark.parametrize("name", [n for n in FAN_BASED if n != "orthogonal"])
def test_fan_based_variances_for_n_out_n_in_layout(name):
    family, law = name.split("_")
    variance = VARIANCES[family]
    w = _np(inits.make_initializer(name)(KEY, SHAPE, F64))
    assert_mean_zero_variance(w, variance, kurtosis=3.0 if law == "normal" else 1.8)
    if law == "normal":  # jax's truncated normal: cut at 2 standard-normal units
        assert np.max(np.abs(w)) <= 2.0 / 0.87962566103423978 * math.sqrt(variance) * (1 + 1e-12)
        # ... and rescaled: N(0, Var) cut at 2 sd without the rescaling would stay below 2 sd
        assert np.max(np.abs(w)) > 2.0 * math.sqrt(variance)
    else:
        assert np.max(np.abs(w)) <= math.sqrt(3 * variance)
    if family in ("he", "kaiming", "lecun"):  # the transposed layout would be 2.5x off: caught
        swapped = variance * FAN_IN / FAN_OUT
        assert abs(np.mean(w**2) / swapped - 1) > 1.0


def test_aliases_are_the_same_factories():
    assert inits.xavier_normal is inits.glorot_normal
    assert inits.xavier_uniform is inits.glorot_uniform
    assert inits.kaiming_normal is inits.he_normal
    assert inits.kaiming_uniform is inits.he_uniform
    np.testing.assert_array_equal(_np(inits.make_initializer("kaiming_uniform")(KEY, SMALL, F64)),
                                  _np(inits.he_uniform()(KEY, SMALL, F64)))


@pytest.mark.parametrize("shape, dtype", [(SMALL, F32), (SMALL, F64), (SMALL[::-1], F64),
                                          ((6, 6), F64)])
def test_orthogonal_rows_or_columns_orthonormal(shape, dtype):
    scale = 1.5
    w = _np(inits.orthogonal(scale)(KEY, shape, dtype))
    atol = 1e-5 if dtype == F32 else 1e-12
    n_out, n_in = shape
    gram = w @ w.T if n_out <= n_in else w.T @ w
    np.testing.assert_allclose(gram, scale**2 * np.eye(min(shape)), atol=atol)
    if n_out == n_in:
        np.testing.assert_allclose(w.T @ w, scale**2 * np.eye(n_in), atol=atol)


@pytest.mark.parametrize("name", FAN_BASED)
def test_fan_based_schemes_reject_bias_shapes(name):
    init = inits.make_initializer(name)
    canonical = inits.SCHEMES[name][0].__name__  # aliases report the canonical name
    with pytest.raises(ValueError, match=rf"{canonical}.*2-D weight shape.*\(6,\)"):
        init(KEY, (6,), F32)


# --------------------------------------------------------------------------------------------
# symmetry tools
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ALL_NAMES)
def test_tied_rows_are_bitwise_identical(name):
    base = _scheme(name)
    w = np.asarray(inits.tied(base)(KEY, SMALL, F64))
    assert w.shape == SMALL and w.dtype == np.float64
    assert np.array_equal(w, np.broadcast_to(w[0], w.shape))
    # the row is row 0 of one draw of the layer's own scheme (same law as any row of it)
    np.testing.assert_array_equal(w[0], np.asarray(base(KEY, SMALL, F64))[0])
    if name not in FAN_BASED:
        b = np.asarray(inits.tied(base)(KEY, (6,), F64))
        assert b.shape == (6,) and np.all(b == b[0])


def test_perturbed_breaks_tied_symmetry_by_eps():
    eps = 3e-3
    base = inits.tied(inits.normal(1.0))
    w = _np(inits.perturbed(base, eps)(KEY, SHAPE, F64))
    w0 = _np(inits.perturbed(base, 0.0)(KEY, SHAPE, F64))
    # eps = 0 is the exactly symmetric base draw, of key_base = split(key)[0]
    assert np.all(w0 == w0[0])
    np.testing.assert_array_equal(w0, _np(base(jax.random.split(KEY)[0], SHAPE, F64)))
    assert not np.any(w[1:] == w[0])
    # perturbation - base ~ eps N(0, 1) i.i.d., independent of the base
    assert_mean_zero_variance(w - w0, eps**2)
    d = (w - w0).ravel()
    corr = np.corrcoef(d, w0.ravel())[0, 1]
    assert abs(corr) <= Z / math.sqrt(d.size)


@pytest.mark.parametrize("dtype", DTYPES)
def test_perturbed_is_base_plus_eps_times_independent_noise(dtype):
    w = inits.perturbed(inits.constant(0.5), 0.1)(KEY, SMALL, dtype)
    assert w.dtype == dtype
    key_base, key_noise = jax.random.split(KEY)
    expected = (_np(inits.constant(0.5)(key_base, SMALL, dtype))
                + _np(inits.normal(0.1)(key_noise, SMALL, dtype)))
    np.testing.assert_allclose(_np(w), expected, rtol=RTOL[dtype])


# --------------------------------------------------------------------------------------------
# init_mlp and bias_only
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_init_mlp_shapes_and_dtypes(dtype):
    params = inits.init_mlp(KEY, SIZES, inits.normal(1.0), inits.normal(0.1), dtype=dtype)
    assert isinstance(params, list) and len(params) == len(SIZES) - 1
    for layer, (n_in, n_out) in zip(params, zip(SIZES[:-1], SIZES[1:])):
        assert set(layer) == {"W", "b"}
        assert layer["W"].shape == (n_out, n_in) and layer["W"].dtype == dtype
        assert layer["b"].shape == (n_out,) and layer["b"].dtype == dtype
    assert nn.layer_sizes(params) == SIZES


@settings(max_examples=10, deadline=None)
@given(sizes=st.lists(st.integers(1, 4), min_size=2, max_size=4))
def test_init_mlp_shapes_property(sizes):
    """Any depth and widths (deterministic inits: no RNG compile per new shape)."""
    params = inits.init_mlp(KEY, sizes, inits.constant(0.25), inits.zeros(), dtype=F64)
    assert [layer["W"].shape for layer in params] == list(zip(sizes[1:], sizes[:-1]))
    assert [layer["b"].shape for layer in params] == [(n,) for n in sizes[1:]]
    assert all(np.all(_np(la["W"]) == 0.25) and np.all(_np(la["b"]) == 0) for la in params)


def test_init_mlp_key_derivation_is_the_documented_one():
    w_init, b_init = inits.normal(1.0), inits.uniform(1.0)
    params = inits.init_mlp(KEY, SIZES, w_init, b_init, dtype=F64)
    for i, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        key_w, key_b = jax.random.split(jax.random.fold_in(KEY, i))
        np.testing.assert_array_equal(_np(params[i]["W"]), _np(w_init(key_w, (n_out, n_in), F64)))
        np.testing.assert_array_equal(_np(params[i]["b"]), _np(b_init(key_b, (n_out,), F64)))


def test_init_mlp_reproducible_and_layer_keys_independent():
    normal = inits.normal(1.0)
    a = inits.init_mlp(KEY, SIZES, normal, normal, dtype=F64)
    assert_trees_all_close(inits.init_mlp(KEY, SIZES, normal, normal, dtype=F64), a, rtol=0)
    other = inits.init_mlp(jax.random.key(7), SIZES, normal, normal, dtype=F64)
    assert not np.array_equal(_np(a[0]["W"]), _np(other[0]["W"]))
    # changing layer 2's weight scheme leaves every other draw untouched
    b = inits.init_mlp(KEY, SIZES, [normal, inits.constant(1.0), normal], normal, dtype=F64)
    for i in (0, 2):
        assert_trees_all_close(b[i], a[i], rtol=0)
    assert_trees_all_close(b[1]["b"], a[1]["b"], rtol=0)
    assert not np.array_equal(_np(b[1]["W"]), _np(a[1]["W"]))
    # a shallower net has the same first layers
    shallow = inits.init_mlp(KEY, SIZES[:-1], normal, normal, dtype=F64)
    assert_trees_all_close(shallow, a[:-1], rtol=0)
    # layers 2 and 3 have the same shapes and scheme but their own keys; W and b differ too
    assert not np.array_equal(_np(a[1]["W"]), _np(a[2]["W"]))
    firsts = [float(layer[p].ravel()[0]) for layer in a for p in ("W", "b")]
    assert len(set(firsts)) == len(firsts)


def test_init_mlp_per_layer_sequences_and_errors():
    sizes = SIZES[:3]
    params = inits.init_mlp(KEY, sizes, (inits.zeros(), inits.constant(2.0)),
                            [inits.constant(-1.0), inits.zeros()], dtype=F64)
    np.testing.assert_array_equal(_np(params[0]["W"]), np.zeros((6, 4)))
    np.testing.assert_array_equal(_np(params[1]["W"]), np.full((6, 6), 2.0))
    np.testing.assert_array_equal(_np(params[0]["b"]), np.full(6, -1.0))
    np.testing.assert_array_equal(_np(params[1]["b"]), np.zeros(6))
    with pytest.raises(ValueError, match=r"weight_init.*sequence of 2.*got 3"):
        inits.init_mlp(KEY, sizes, [inits.zeros()] * 3, inits.zeros())
    with pytest.raises(ValueError, match=r"bias_init.*sequence of 2.*got 1"):
        inits.init_mlp(KEY, sizes, inits.zeros(), [inits.zeros()])
    for bad in [(3,), (3, 0, 1), (3, 2.5, 1)]:
        with pytest.raises(ValueError, match="layer_sizes"):
            inits.init_mlp(KEY, bad, inits.zeros(), inits.zeros())
    with pytest.raises(TypeError, match="weight_init"):
        inits.init_mlp(KEY, sizes, "normal", inits.zeros())
    with pytest.raises(ValueError, match="2-D weight shape"):  # fan-based bias init
        inits.init_mlp(KEY, sizes, inits.zeros(), inits.he_normal())
    with pytest.raises(ValueError, match=r"layer 1 W.*shape \(4, 6\)"):  # wrong-shape init
        inits.init_mlp(KEY, sizes, lambda k, s, d: jnp.zeros(s[::-1], d), inits.zeros())
    with pytest.raises(ValueError, match=r"layer 1 b.*float32"):  # wrong-dtype init
        inits.init_mlp(KEY, sizes, inits.zeros(), lambda k, s, d: jnp.zeros(s, F32), dtype=F64)


@pytest.mark.parametrize("fan_in_scaled", [False, True])
def test_bias_only_constant_weights_and_gaussian_biases(fan_in_scaled):
    weight_value, sigma_b = 0.6, 0.25
    w_inits, b_inits = inits.bias_only(weight_value, sigma_b, n_layers=3,
                                       fan_in_scaled=fan_in_scaled)
    assert len(w_inits) == len(b_inits) == 3
    params = inits.init_mlp(KEY, SIZES, w_inits, b_inits, dtype=F64)
    for i, (layer, n_in) in enumerate(zip(params, SIZES[:-1])):
        expected = weight_value / math.sqrt(n_in) if fan_in_scaled else weight_value
        np.testing.assert_allclose(_np(layer["W"]), expected, rtol=1e-15)
        # b = sigma_b * (the standard normal draw of the layer's bias key)
        key_b = jax.random.split(jax.random.fold_in(KEY, i))[1]
        z = _np(jax.random.normal(key_b, layer["b"].shape, F64))
        np.testing.assert_allclose(_np(layer["b"]), sigma_b * z, rtol=1e-15)
    # the bias law itself, on a large sample: N(0, sigma_b^2)
    for b_init in b_inits:
        assert_mean_zero_variance(b_init(KEY, SHAPE, F64), sigma_b**2)


def test_bias_only_zero_weights_and_output_overrides():
    w_inits, b_inits = inits.bias_only(0.0, 1e-3, n_layers=3, output_weight_init=inits.normal(1.0),
                                       output_bias_init=inits.zeros())
    params = inits.init_mlp(KEY, SIZES, w_inits, b_inits, dtype=F64)
    for layer in params[:2]:
        np.testing.assert_array_equal(_np(layer["W"]), 0.0)
        b = _np(layer["b"])
        assert len(set(b.tolist())) == b.size and np.all(b != 0)  # biases differ: symmetry broken
    assert np.std(_np(params[2]["W"])) > 0.1
    np.testing.assert_array_equal(_np(params[2]["b"]), 0.0)
    # sigma_b = 0 gives an exactly symmetric network
    w0, b0 = inits.bias_only(0.5, 0.0, n_layers=3)
    sym = inits.init_mlp(KEY, SIZES, w0, b0, dtype=F64)
    assert all(np.all(_np(la["W"]) == 0.5) and np.all(_np(la["b"]) == 0.0) for la in sym)


# --------------------------------------------------------------------------------------------
# registry and errors
# --------------------------------------------------------------------------------------------

def test_registry_names_and_docstrings():
    assert set(inits.scheme_names()) == set(ALL_NAMES)
    assert inits.WEIGHT_SCHEMES is inits.SCHEMES
    for name in inits.__all__:
        obj = getattr(inits, name)
        if callable(obj) and name != "Initializer":
            assert obj.__doc__ and len(obj.__doc__) > 40, name


def test_make_initializer_builds_the_scheme():
    a = inits.make_initializer("normal", std=2.0, fan_in_scaled=True)(KEY, SMALL, F64)
    b = inits.normal(2.0, fan_in_scaled=True)(KEY, SMALL, F64)
    np.testing.assert_array_equal(_np(a), _np(b))
    o = inits.make_initializer("orthogonal")(KEY, SMALL[::-1], F64)  # default scale 1
    np.testing.assert_allclose(_np(o) @ _np(o).T, np.eye(4), atol=1e-12)


def test_make_initializer_errors():
    with pytest.raises(ValueError,
                       match=r"unknown init scheme 'gaussian'.*glorot_normal.*orthogonal"):
        inits.make_initializer("gaussian")
    with pytest.raises(ValueError) as info:
        inits.make_initializer("Zeros")
    assert all(name in str(info.value) for name in ALL_NAMES)
    with pytest.raises(ValueError, match=r"'normal'.*'sigma'.*allowed: std, fan_in_scaled"):
        inits.make_initializer("normal", sigma=1.0)
    with pytest.raises(ValueError, match=r"'uniform'.*needs.*'limit'.*allowed: limit"):
        inits.make_initializer("uniform")
    with pytest.raises(ValueError, match=r"'constant'.*needs.*'value'"):
        inits.make_initializer("constant", fan_in_scaled=True)
    with pytest.raises(ValueError, match=r"'he_normal'.*'scale'.*allowed: \(none\)"):
        inits.make_initializer("he_normal", scale=2.0)
    with pytest.raises(ValueError, match="std must be finite and >= 0"):
        inits.make_initializer("normal", std=-1.0)
    with pytest.raises(ValueError, match="limit must be finite and >= 0"):
        inits.make_initializer("uniform", limit=-0.1)


@pytest.mark.parametrize("factory, name", [
    (lambda v: inits.normal(v), "std"),
    (lambda v: inits.normal(v, fan_in_scaled=True), "std"),
    (lambda v: inits.uniform(v), "limit"),
    (lambda v: inits.perturbed(inits.zeros(), v), "eps"),
    (lambda v: inits.bias_only(0.0, v, 2), "sigma_b"),
])
@pytest.mark.parametrize("bad", [-1.0, -1, np.float32(-0.5), float("nan"), float("inf")])
def test_concrete_bad_scales_are_rejected(factory, name, bad):
    with pytest.raises(ValueError, match=rf"{name} must be finite and >= 0"):
        factory(bad)


def test_flags_and_counts_must_be_static():
    with pytest.raises(TypeError, match="fan_in_scaled"):
        inits.normal(1.0, fan_in_scaled="yes")
    with pytest.raises(ValueError, match="n_layers"):
        inits.bias_only(0.0, 0.1, n_layers=0)


def test_traced_negative_scale_is_not_checked():
    """A traced scale cannot be inspected: no error, the formula is applied as written."""
    out = jax.vmap(lambda s: inits.normal(s)(KEY, SMALL, F64))(jnp.asarray(-SCALES))  # scales only
    unit = _np(inits.normal(1.0)(KEY, SMALL, F64))
    np.testing.assert_allclose(_np(out), -SCALES[:, None, None] * unit, rtol=1e-15)


# --------------------------------------------------------------------------------------------
# traced scales: vmap over keys and scales, one compilation
# --------------------------------------------------------------------------------------------

def test_vmap_bias_only_over_keys_sigma_b_and_weight_value():
    """float32 parameters from float64 traced scales (an explicit cast, fine under strict)."""
    dtype = F32
    weight_values = np.array([0.0, -0.4, 1.0, 0.25])

    def build(key, sigma_b, weight_value):
        w, b = inits.bias_only(weight_value, sigma_b, n_layers=3, fan_in_scaled=True)
        return inits.init_mlp(key, SIZES, w, b, dtype=dtype)

    batched = jax.vmap(build)(BATCH_KEYS, jnp.asarray(SCALES), jnp.asarray(weight_values))
    for i, (s, v) in enumerate(zip(SCALES, weight_values)):
        single = build(BATCH_KEYS[i], float(s), float(v))
        assert single[0]["b"].dtype == dtype
        assert_trees_all_close(jax.tree.map(lambda x: x[i], batched), single, rtol=RTOL[dtype],
                               err_msg=f"sigma_b={s}, weight_value={v}")


@pytest.mark.parametrize("make, batch_keys", [
    pytest.param(lambda s: inits.normal(s, fan_in_scaled=True), True, id="normal-W_std"),
    pytest.param(lambda s: inits.perturbed(inits.tied(inits.normal(1.0)), s), True,
                 id="perturbed-eps"),
    # scales only (one key): the same property, without a batched-RNG compile per scheme
    pytest.param(lambda s: inits.constant(s, fan_in_scaled=True), False, id="constant-value"),
    pytest.param(lambda s: inits.uniform(s), False, id="uniform-limit"),
    pytest.param(lambda s: inits.orthogonal(s), False, id="orthogonal-scale"),
    pytest.param(lambda s: inits.make_initializer("normal", std=s), False, id="registry-std"),
])
def test_vmap_initializer_over_keys_and_scales(make, batch_keys):
    keys = BATCH_KEYS if batch_keys else jnp.stack([KEY] * len(SCALES))
    in_axes = (0 if batch_keys else None, 0)
    batched = jax.vmap(lambda k, s: make(s)(k, SMALL, F64), in_axes)(
        BATCH_KEYS if batch_keys else KEY, jnp.asarray(SCALES))
    assert batched.shape == (len(SCALES),) + SMALL
    for i, s in enumerate(SCALES):
        np.testing.assert_allclose(_np(batched[i]), _np(make(float(s))(keys[i], SMALL, F64)),
                                   rtol=1e-13, atol=1e-300, err_msg=f"scale={s}")


def test_jit_bias_only_traces_once_for_many_sigma_b():
    def build(key, sigma_b, weight_value):
        w, b = inits.bias_only(weight_value, sigma_b, n_layers=3)
        return inits.init_mlp(key, SIZES, w, b, dtype=F64)

    counted = counting_traces(build)
    f = jax.jit(counted)
    z = [_np(la["b"]) for la in build(KEY, 1.0, 0.5)]  # sigma_b = 1: the standard normal draws
    for sigma_b in np.geomspace(1e-8, 10.0, 50):
        params = f(KEY, float(sigma_b), 0.5)
        for la, z_l in zip(params, z):
            np.testing.assert_array_equal(_np(la["W"]), 0.5)
            np.testing.assert_allclose(_np(la["b"]), sigma_b * z_l, rtol=1e-14)
    assert counted.traces == 1
