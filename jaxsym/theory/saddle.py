"""Escape from saddles: analytic escape times to compare with simulation (NumPy, no JAX).

So far: the exact gradient-flow solution of Saxe et al. (2013) for a 1-D two-layer linear
network ``y_hat = w2 w1 x`` trained on input-output correlation ``s`` with time constant
``tau``. With balanced weights (``w1 = w2``) the product ``u = w1 w2`` obeys the logistic flow

    tau du/dt = 2 u (s - u),

whose time to go from ``u0`` to ``u_f`` is ``t = (tau / 2s) ln[u_f (s - u0) / (u0 (s - u_f))]``
(9.21024 for s = tau = 1, u0 = 1e-4, u_f = 1 - 1e-4). The escape from the symmetric saddle u = 0
costs ~ (tau / 2s) ln(1/u0): the log-law in its simplest form.
"""

from __future__ import annotations

import numpy as np

__all__ = ["saxe_escape_time", "simulate_balanced_linear"]


def saxe_escape_time(s: float, tau: float, u0: float, u_final: float) -> float:
    """Analytic time for ``u = w1 w2`` to go from ``u0`` to ``u_final`` (0 < u0 < u_final < s)."""
    if not 0 < u0 < u_final < s:
        raise ValueError(f"need 0 < u0 < u_final < s, got u0={u0}, u_final={u_final}, s={s}")
    return tau / (2 * s) * np.log(u_final * (s - u0) / (u0 * (s - u_final)))


def simulate_balanced_linear(s: float, tau: float, u0: float, u_final: float,
                             dt: float = 1e-4, max_time: float = 1e4) -> float:
    """Gradient flow of ``L = (s - w1 w2)^2 / 2`` from ``w1 = w2 = sqrt(u0)`` (classical RK4 on
    ``tau w1' = w2 (s - w1 w2)``, ``tau w2' = w1 (s - w1 w2)``); returns the time at which
    ``w1 w2`` reaches ``u_final``, linearly interpolated within the last step."""
    w = np.array([np.sqrt(u0), np.sqrt(u0)])

    def flow(v):
        residual = s - v[0] * v[1]
        return np.array([v[1] * residual, v[0] * residual]) / tau

    t = 0.0
    while t < max_time:
        k1 = flow(w)
        k2 = flow(w + 0.5 * dt * k1)
        k3 = flow(w + 0.5 * dt * k2)
        k4 = flow(w + dt * k3)
        nxt = w + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        u, u_next = w[0] * w[1], nxt[0] * nxt[1]
        if u_next >= u_final:
            return t + dt * (u_final - u) / (u_next - u)
        w, t = nxt, t + dt
    return float("inf")
