"""The package outside its source checkout: a wheel carries the bundled experiments.

Builds a wheel of this checkout, installs it (no dependencies: they come from the test
environment) into a fresh virtual environment, and runs the installed ``jaxsym`` from a
directory outside the repository: the quick study's dry run validates every bundled
experiment, and a bundled experiment trains by name.

The inner environment sees the TEST environment's packages however that was made (the system
interpreter, a virtual environment, with or without system site-packages): it is created from
``sys.executable`` and a ``.pth`` file lists the test interpreter's site-packages directories
(``--system-site-packages`` would see the base interpreter's, not an outer venv's). The
directories are added as plain paths, so their own ``.pth`` files (an editable install of this
checkout among them) are not run: the installed wheel is the jaxsym that is imported.
"""

import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

#: one xdist worker runs this module, so its module-scoped fixtures are built once
pytestmark = pytest.mark.xdist_group("test_packaging")

ROOT = Path(__file__).parents[1]


def outer_site_packages() -> list[str]:
    """The test interpreter's package directories, in its own order: every site-packages on
    ``sys.path`` (an outer venv's, and the base's when that venv includes them), the user site
    and sysconfig's purelib / platlib."""
    found = [p for p in sys.path if os.path.basename(p) in ("site-packages", "dist-packages")]
    found += site.getsitepackages() if hasattr(site, "getsitepackages") else []
    if site.ENABLE_USER_SITE:
        found.append(site.getusersitepackages())
    found += [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    return [p for i, p in enumerate(found) if os.path.isdir(p) and p not in found[:i]]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "src"  # a copy, so the build leaves nothing in the checkout
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(
        "runs*", ".git", "figures", "benchmarks", "*.egg-info", "build", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "-q", "-w", str(tmp / "dist"), str(source)], check=True,
                   capture_output=True, text=True)
    wheel = next((tmp / "dist").glob("jaxsym-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    inner = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                           check=True, capture_output=True, text=True).stdout.strip()
    Path(inner, "_outer_environment.pth").write_text("\n".join(outer_site_packages()) + "\n")
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True, text=True)
    work = tmp / "elsewhere"
    work.mkdir()
    return venv, work, wheel


def _run(venv, work, *args):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "XLA_FLAGS")}
    return subprocess.run([str(venv / "bin" / "jaxsym"), *args], cwd=work, capture_output=True,
                          text=True, env=env, timeout=300)


def test_wheel_ships_the_bundled_experiments(installed):
    import zipfile

    _, _, wheel = installed
    names = zipfile.ZipFile(wheel).namelist()
    bundled = sorted(p.name for p in (ROOT / "jaxsym" / "experiments").glob("*.toml"))
    assert bundled and all(f"jaxsym/experiments/{n}" in names for n in bundled)


def test_installed_study_dry_run_outside_the_repo(installed):
    venv, work, _ = installed
    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import jaxsym; print(jaxsym.__file__)"], cwd=work,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(venv)), where
    # the test environment's packages are visible (jax, matplotlib: the report needs them)
    subprocess.run([str(venv / "bin" / "python"), "-c", "import jax, matplotlib, xarray"],
                   cwd=work, check=True)
    result = _run(venv, work, "study", "--preset", "quick", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "nothing was written" in result.stdout and "bias_only_regression" in result.stdout
    assert sorted(p.name for p in work.iterdir()) == []


def test_installed_package_trains_a_bundled_experiment_by_name(installed):
    venv, work, _ = installed
    result = _run(venv, work, "run", "example", "--steps", "5", "--seeds", "1",
                  "--no-progress")
    assert result.returncode == 0, result.stderr
    assert (work / "runs" / "example" / "results.nc").exists()
    report = _run(venv, work, "report", "runs/example")
    assert report.returncode == 0, report.stderr
    assert (work / "runs" / "example" / "report" / "REPORT.md").exists()
