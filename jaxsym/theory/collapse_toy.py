"""The two-GELU toy of Chen, Kunin, Yamamura & Ganguli (2023, "Stochastic collapse", their
notebook ``nbs/one_hidden_layer/toy_model.ipynb``), re-implemented in JAX with many seeds.

Model: ``f(x) = sum_j v_j gelu(w_j x)``, scalar input, two hidden units, no biases (exact,
erf GELU as PyTorch's ``nn.GELU()``); start ``w = (1.0, 0.6)``, ``v = (-0.6, -0.4)`` (two
DIFFERENT units). Data: 8 points ``x_n, y_n ~ N(0, 1)`` (pure-noise targets; the paper draws
them with ``torch.manual_seed(0)``, here with ``numpy.random.default_rng(data_seed)``: another
draw of the same law). Loss at step t: ``(1 / 2N) sum_n (f(x_n) - y_n - sigma xi_tn)^2`` with
fresh ``xi_tn ~ N(0, 1)`` (label noise); heavy-ball momentum 0.9 (``v <- 0.9 v + g``,
``p <- p - lr v``, PyTorch's and optax's), lr 0.1, 10^4 steps. The paper runs 8 seeds per noise
level and reports that the two units collapse onto one (or one dies) as the noise grows.

Outcome per run (the paper's own criteria, ``compute_ind_node`` in its FIG3_FIG4 notebook, at
its threshold 0.1): unit j's vector ``u_j = (w_j, v_j)``; the units are *identical* when
``2 ||u_1 - u_2||^2 / (||u_1||^2 + ||u_2||^2) < 0.1``, a unit is *dead* when its norm is below
0.1 of the larger one's; *collapsed* = identical or dead (a simpler subnetwork either way).
"""

from __future__ import annotations

import numpy as np

__all__ = ["toy_outcomes", "TOY_NOISE", "TOY_STEPS", "TOY_SEEDS"]

#: the paper's label-noise levels, steps and (here) seeds per level
TOY_NOISE = (0.0, 0.1, 0.2, 0.4, 0.8)
TOY_STEPS = 10_000
TOY_SEEDS = 512
#: the paper's thresholds for "identical" (relative squared distance) and "dead" (norm ratio)
THRESHOLD = 0.1


def toy_outcomes(noise=TOY_NOISE, seeds: int = TOY_SEEDS, steps: int = TOY_STEPS,
                 data_seed: int = 0, learning_rate: float = 0.1) -> dict:
    """Train ``seeds`` runs of the toy per label-noise level (float64, one compiled program,
    vmapped over seeds; run ``s`` of level ``k`` draws its noise from ``fold_in(key(k), s)``).

    Returns ``{"noise": (L,), "identical", "dead", "collapsed": (L,) counts, "seeds",
    "steps", "distance": (L, seeds) the final relative squared distance of the two units}``.
    """
    import jax
    import jax.numpy as jnp
    import optax

    from jaxsym.core.precision import float64_scope

    rng = np.random.default_rng(data_seed)
    x_np, y_np = rng.standard_normal(8), rng.standard_normal(8)
    with float64_scope():
        x, y = jnp.asarray(x_np), jnp.asarray(y_np)
        start = {"w": jnp.asarray([1.0, 0.6]), "v": jnp.asarray([-0.6, -0.4])}
        tx = optax.sgd(learning_rate, momentum=0.9)

        def loss(p, targets):
            out = jax.nn.gelu(x[:, None] * p["w"][None, :], approximate=False) @ p["v"]
            return 0.5 * jnp.mean((out - targets) ** 2)

        def run(sigma, key):
            def body(carry, t):
                p, state = carry
                targets = y + sigma * jax.random.normal(jax.random.fold_in(key, t), y.shape)
                updates, state = tx.update(jax.grad(loss)(p, targets), state, p)
                return (optax.apply_updates(p, updates), state), None

            (p, _), _ = jax.lax.scan(body, (start, tx.init(start)), jnp.arange(steps))
            u = jnp.stack([p["w"], p["v"]], axis=1)             # (2 units, 2)
            norms = jnp.sum(u * u, axis=1)
            distance = 2.0 * jnp.sum((u[0] - u[1]) ** 2) / jnp.sum(norms)
            dead = jnp.sqrt(jnp.min(norms) / jnp.max(norms)) < THRESHOLD
            return distance, dead

        program = jax.jit(jax.vmap(run, in_axes=(None, 0)))
        distances, deads = [], []
        for k, sigma in enumerate(noise):
            keys = jax.vmap(lambda s, k=k: jax.random.fold_in(jax.random.key(k), s))(
                jnp.arange(seeds))
            d, dead = program(jnp.asarray(float(sigma)), keys)
            distances.append(np.asarray(d))
            deads.append(np.asarray(dead))
    distance = np.stack(distances)
    dead = np.stack(deads)
    identical = distance < THRESHOLD
    return {"noise": np.asarray(noise, np.float64), "identical": identical.sum(axis=1),
            "dead": dead.sum(axis=1), "collapsed": (identical | dead).sum(axis=1),
            "seeds": int(seeds), "steps": int(steps), "distance": distance}
