"""The notebook API (jaxsym.run / load / report, jaxsym.analysis) and self-describing results.

The session runs in a fresh interpreter (no test conftest), as a notebook would: JAX's global
float64 switch must be the same after a float64 study as before it.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from jaxsym import analysis
from jaxsym.analysis import stats

#: one xdist worker runs this module, so its module-scoped fixtures are built once
pytestmark = pytest.mark.xdist_group("test_api")

ROOT = Path(__file__).parents[1]
EXAMPLE = ROOT / "experiments" / "example.toml"


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """A notebook session in a subprocess; returns its run directory."""
    out = tmp_path_factory.mktemp("notebook") / "run"
    code = textwrap.dedent(f"""
        import jax, jax.numpy as jnp, numpy as np, xarray as xr
        import jaxsym

        assert not jax.config.jax_enable_x64
        ds = jaxsym.run({str(EXAMPLE)!r}, out={str(out)!r}, seeds=4, steps=300)
        # float64 was scoped to the study: the user's JAX state is unchanged
        assert not jax.config.jax_enable_x64 and jnp.ones(1).dtype == jnp.float32
        assert ds.loss.dtype == np.float64 and ds.sizes["seed"] == 4
        again = jaxsym.load({str(out)!r})
        for name in ds.data_vars:
            np.testing.assert_array_equal(ds[name].values, again[name].values)
        p = jaxsym.analysis.p_broken(again)
        assert isinstance(p, xr.Dataset) and set(p.data_vars) >= {{"p", "low", "high"}}
        path = jaxsym.report(ds)
        print(path)
        try:
            jaxsym.run({str(EXAMPLE)!r}, out={str(out.parent / "bad")!r}, activation="x")
        except ValueError as error:
            print("refused:", error)
        try:
            jaxsym.run({str(EXAMPLE)!r}, out={str(out.parent / "bad")!r},
                       model__activation="tanhh")
        except ValueError as error:
            print("refused:", error)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=600)
    assert result.returncode == 0, result.stderr
    return out, result.stdout.splitlines()


def test_notebook_session_runs_loads_and_reports(session):
    out, lines = session
    assert lines[0] == str(out / "report" / "REPORT.md")
    report = (out / "report" / "REPORT.md").read_text()
    assert "## example" in report and "| sigma_b | networks | P(broken) [95% CI]" in report
    assert (out / "report" / "overview_example.png").stat().st_size > 10_000
    # the config's comment is text, never a markdown heading
    assert not [line for line in report.splitlines()
                if line.startswith("# ") and line != "# jaxsym report"]
    assert lines[1].startswith("refused: argument 'activation': unknown keyword; allowed: seeds")
    assert lines[2] == ("refused: config key 'model.activation': unknown value 'tanhh'; "
                        "allowed: " + lines[2].split("allowed: ")[1])
    assert not (out.parent / "bad").exists()


def test_analysis_matches_the_direct_statistics(session):
    import jaxsym

    ds = jaxsym.load(session[0])
    p = analysis.p_broken(ds)
    np.testing.assert_array_equal(p.p.values, ds.broken.mean("seed").values)
    assert (p.low <= p.p).all() and (p.p <= p.high).all()
    low, high = stats.wilson_interval(ds.broken.sum("seed").values, np.full(p.p.shape, 4))
    np.testing.assert_allclose(p.low.values, low)
    np.testing.assert_allclose(p.high.values, high)
    med = analysis.median_time(ds, "time_to_break")
    for i, sigma in enumerate(ds.sigma_b.values):
        point = ds.sel(sigma_b=sigma)
        expected = stats.median_time(point.time_to_break.values, point.broken.values)
        assert med.median_steps.values[i] == expected.median and med.low.values[i] == expected.low
    summary = analysis.summary(ds)
    assert summary.attrs["budget"] == 300 and int(summary.n) == 4
    np.testing.assert_array_equal(summary.p_broken_p.values, p.p.values)


def test_log_law_is_the_report_fit():
    """analysis.log_law equals the fit of a synthetic T = 40 + 25 log10(1/sigma) + noise."""
    import xarray as xr

    rng = np.random.default_rng(0)
    sigma = np.array([0.0, 1e-8, 1e-6, 1e-4, 1e-2])
    times = 40 + 25 * np.log10(1 / np.where(sigma > 0, sigma, 1e-12))[:, None] \
        + rng.integers(-3, 4, (5, 32))
    ds = xr.Dataset({"time_to_converge": (("sigma_b", "seed"), times),
                     "converged": (("sigma_b", "seed"), np.ones((5, 32), bool)),
                     "broken": (("sigma_b", "seed"), np.ones((5, 32), bool))},
                    coords={"sigma_b": sigma}, attrs={"steps": 1000})
    fit = analysis.log_law(ds)
    assert int(fit.n_points) == 4
    assert float(fit.b_low) <= 25 <= float(fit.b_high) and abs(float(fit.b) - 25) < 1


def test_every_variable_and_coordinate_is_described(session):
    import jaxsym

    ds = jaxsym.load(session[0])
    for name, variable in {**ds.data_vars, **ds.coords}.items():
        assert variable.attrs.get("long_name"), name
        assert "units" in variable.attrs or variable.dtype.kind in "US", name
    assert "NOT the PRNG seed" in ds.seed.attrs["description"]
    assert "after this many optimizer updates" in ds.step.attrs["description"]
    assert ds.time_to_break.attrs["units"] == "steps"
    # provenance: versions, the dirty flag and the command line
    for key in ("jax_version", "jaxlib_version", "optax_version", "numpy_version",
                "scipy_version", "xarray_version", "git_dirty", "command"):
        assert ds.attrs[key], key
    assert ds.attrs["git_dirty"] in ("yes", "no", "unknown")


def test_run_takes_a_plan_as_planned(tmp_path):
    """api.run is the one orchestration: a StudyPlan (what the command line passes) runs as
    planned, and changing it there is refused rather than silently re-planned."""
    from jaxsym import api

    planned = api.plan(api.study(EXAMPLE, seeds=1, steps=3), chunk_size=4)
    assert api.resource_problem(planned) is None
    assert api.estimate(planned)["networks"] == planned.n_networks == 6
    with pytest.raises(ValueError, match="already validated and planned"):
        api.run(planned, out=tmp_path / "refused", chunk_size=8)
    assert not (tmp_path / "refused").exists()
    ds = api.run(planned, out=tmp_path / "run")
    assert ds.attrs["chunk_size"] == 4 and ds.attrs["report_section"] == "generic"
    assert ds.encoding["source"] == str(tmp_path / "run" / "results.nc")
    assert len(list((tmp_path / "run" / "chunks").glob("*.npz"))) == len(planned.chunks) == 2
