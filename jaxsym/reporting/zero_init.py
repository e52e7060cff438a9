"""The W = 0 section: the rank-one trap under optimizers linear in the gradient, and Adam, the
ingredient that leaves it (the c-schicho/ZeroInitializationSymmetry recipe on digits).

Contract: :func:`render` ``(numbers, figures_dir) -> list of markdown lines`` from
:func:`jaxsym.analysis.zero_init.analyse`; no figure.
"""

from __future__ import annotations

from jaxsym.analysis import stats
from jaxsym.reporting.common import setups

__all__ = ["render"]


def _zero_init_text(rows) -> str:
    lines = ["| batch | optimizer | weights | sigma_b | lr | P(broken) [95% CI] | median step "
             "to break | final s2/s1 (median) | test accuracy (mean +- sd) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['batch']} | {r['optimizer']} | {r['weight_mode']} | "
                     f"{r['sigma_b']:g} | {r['lr']:g} | {r['p_broken']:.2f} "
                     f"[{r['p_low']:.2f}, {r['p_high']:.2f}] | "
                     f"{stats.format_median(r['median'], r['steps'])} | "
                     f"{r['diversity']:.1e} | {r['accuracy']:.3f} +- {r['accuracy_sd']:.3f} |")
    zero = [r for r in rows if r["weight_mode"] == "zero"]

    def listing(selected):
        return ", ".join(f"{r['optimizer']} lr {r['lr']:g} ({r['batch']} batch, sigma_b "
                         f"{r['sigma_b']:g}: step {r['median'].median:.0f})"
                         if r["median"].reached else
                         f"{r['optimizer']} lr {r['lr']:g} ({r['batch']} batch, sigma_b "
                         f"{r['sigma_b']:g})" for r in selected) or "none"
    return "\n".join([
        "The public report c-schicho/ZeroInitializationSymmetry trains a relu MLP with every "
        "weight 0 and biases N(0, 1) with Adam on minibatches (MNIST, one hidden layer of "
        "500) and finds accuracy close to a standard initialisation, while this study's "
        "staircase finds relu with W = 0 stuck under gradient descent. The theory "
        "(`jaxsym.theory.zero_init`, tested in `tests/test_zero_init.py`): relu is positively "
        "homogeneous, so after the first updates every live unit is a positive multiple of "
        "one unit, and every optimizer linear in the gradient (SGD, heavy-ball momentum, any "
        "minibatch) keeps it so in exact arithmetic: the layer is rank one. Adam divides each "
        "coordinate by its own running RMS, which removes the per-unit factor (its first step "
        "is -lr sign(g), the same size for every unit), so units with different biases get "
        "different kinks along the common direction and separate at once: the ingredient "
        "that breaks the symmetry by design is the optimizer, not the minibatch noise and "
        "not the bias scale. The set of multiples is invariant but not necessarily stable: "
        "the units differ, so their rounding differs, and where departures from the set grow "
        "(larger learning rates) a gradient method leaves it after a delay, seeded by "
        "rounding (float64 here), like the escape from the symmetric saddle. Measured on "
        "digits (one hidden layer of 64 relu units, float64, 1500 steps):", "",
        "- W = 0 broke (P >= 0.9) with: " + listing(
            [r for r in zero if r["p_broken"] >= 0.9]) + ";",
        "- W = 0 stayed rank one (P <= 0.1) with: " + listing(
            [r for r in zero if r["p_broken"] <= 0.1]) + ".", "", *lines])


def render(numbers, figures_dir) -> list[str]:
    """The section's markdown lines."""
    del figures_dir  # no figure
    return ["## W = 0: the rank-one trap, and the ingredient that leaves it", "",
            _zero_init_text(numbers["rows"]), "", "### Setup", "",
            *setups(numbers["datasets"])]
