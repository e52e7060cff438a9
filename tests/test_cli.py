"""Command line: bad input gets one line naming the key and allowed values, exit 2, no files."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jaxsym import cli

EXAMPLE = Path(__file__).parents[1] / "experiments" / "example.toml"
BASE = EXAMPLE.read_text()

# (case id, config text or None for the example, extra CLI args, expected message fragment)
BAD_INPUTS = [
    ("unknown activation", BASE.replace('activation = "tanh"', 'activation = "tanhh"'), [],
     "config key 'model.activation': unknown value 'tanhh'; allowed: linear, relu"),
    ("unknown loss", BASE.replace('loss = "mse"', 'loss = "hinge"'), [],
     "config key 'train.loss': unknown value 'hinge'; allowed: mse, bce, softmax_ce"),
    ("unknown optimizer", BASE.replace('optimizer = "sgd"', 'optimizer = "lbfgs"'), [],
     "allowed: sgd, momentum, adam"),
    ("unknown task", BASE.replace('name = "teacher_student"', 'name = "imagenet"'), [],
     "config key 'task.name': unknown value 'imagenet'; allowed: teacher_student"),
    ("unknown weight mode", BASE.replace('weight_mode = "constant"', 'weight_mode = "he"'), [],
     "config key 'init.weight_mode': unknown value 'he'; allowed: constant, zero, glorot"),
    ("unknown section", BASE + "\n[optimiser]\nlr = 1\n", [],
     "config key 'optimiser': unknown section; allowed: name, description, task"),
    ("unknown key", BASE.replace("steps = 2000", "steps = 2000\nepochs = 3"), [],
     "config key 'train.epochs': unknown key; allowed: loss, optimizer"),
    ("unknown task option", BASE.replace("dim = 2", "dim = 2\nclasses = 3"), [],
     "config key 'task.classes': unknown key; allowed: name, seed, draws, validation, n_train"),
    ("negative sigma_b", BASE.replace("fan_in_scaled = true", "fan_in_scaled = true\nsigma_b = -0.1"),
     [], "config key 'init.sigma_b': must be >= 0, got -0.1"),
    ("nan scale", BASE.replace("learning_rate = 0.2", "learning_rate = nan"), [],
     "config key 'train.learning_rate': expected a finite number"),
    ("negative grid value",
     BASE.replace("sigma_b = {logspace = [-8, -1], num = 5, zero = true}", "sigma_b = [0.1, -1.0]"),
     [], "config key 'grid.sigma_b': must be >= 0, got -1.0"),
    ("negative noise", BASE.replace("steps = 2000", "steps = 2000\nnoise = -1e-6"), [],
     "config key 'train.noise': must be >= 0, got -1e-06"),
    ("negative noise grid", BASE.replace("[grid]", "[grid]\nnoise = [0.0, -1e-9]"), [],
     "config key 'grid.noise': must be >= 0, got -1e-09"),
    ("unknown grid axis", BASE.replace("[grid]", "[grid]\nmomentum = [0.9]"), [],
     "config key 'grid.momentum': unknown grid axis; allowed: sigma_b"),
    ("zero width", BASE.replace("width = 8", "width = 0"), [],
     "config key 'model.width': must be an integer >= 1, got 0"),
    ("zero depth", BASE.replace("depth = 2", "depth = 0"), [],
     "config key 'model.depth': must be an integer >= 1, got 0"),
    ("float steps", BASE.replace("steps = 2000", "steps = 20.5"), [],
     "config key 'train.steps': expected an integer, got 20.5"),
    ("malformed toml", BASE.replace("[model]", "[model"), [], "config is not valid TOML"),
    ("bad dtype", None, ["--dtype", "float16"],
     "argument --dtype: invalid choice: 'float16' (choose from "),
    ("zero steps flag", None, ["--steps", "0"], "argument --steps: expected an integer >= 1"),
    ("bad --set", None, ["--set", "train.dtype=float8"],
     "config key 'train.dtype': unknown value 'float8'; allowed: float32, float64, bfloat16"),
    ("--set without section", None, ["--set", "steps=3"],
     "argument --set: expected section.key=value"),
    ("loss vs regression", BASE.replace('loss = "mse"', 'loss = "bce"'), [],
     "config key 'train.loss': task 'teacher_student' is a regression; allowed: mse"),
    ("missing config file", "MISSING", [], "cannot read config"),
    ("task that cannot be built", None, ["--set", "task.teacher_width=1"],
     "config key 'task': cannot build task 'teacher_student' (dim = 2, teacher_width = 1"),
    ("float task size", None, ["--set", "task.dim=2.5"],
     "config key 'task.dim': expected an integer >= 1, got 2.5"),
    ("zero task size", None, ["--set", "task.n_train=0"],
     "config key 'task.n_train': expected an integer >= 1, got 0"),
    ("name escaping runs/", BASE.replace('name = "example"', 'name = "../../escaped"'), [],
     "config key 'name': expected letters, digits, '_', '-' and '.'"),
    ("empty name", BASE.replace('name = "example"', 'name = ""'), [],
     "config key 'name': expected letters, digits"),
    ("seed root beyond 32 bits", None, ["--set", "seeds.root=99999999999999999999"],
     "config key 'seeds.root': must be <= 4294967295"),
    ("steps beyond int32", None, ["--steps", "3000000000"],
     "config key 'train.steps': must be <= 2147483646"),
    ("more seeds than memory", None, ["--seeds", "2000000000"],
     "study 'example' needs about"),
    ("a width beyond memory", None, ["--set", "model.width=100000000"],
     "reduce seeds.count, the grid, model.width or task.n_train"),
    ("--distributed without a cluster", None, ["--distributed"],
     "argument --distributed: no cluster to join"),
    ("no hidden layer", BASE.replace("depth = 2", "depth = 1"), [],
     "config key 'model.depth': must be >= 2 (depth counts weight layers"),
    ("non-UTF-8 config", BASE.replace("bias-only", "bias\xe9only").encode("latin-1"), [],
     "not UTF-8 text"),
    ("a grid above the --yes threshold", None, ["--seeds", "200000"],
     "study 'example' has 1,200,000 networks and would take about"),
    ("diversity threshold outside s2/s1's range", None, ["--set", "thresholds.diversity=7.0"],
     "config key 'thresholds.diversity': must be in (0, 1) (it is compared with s2/s1, which "
     "lies in [0, 1]), got 7.0"),
    ("zero loss threshold", None, ["--set", "thresholds.loss=0"],
     "config key 'thresholds.loss': must be > 0"),
    ("unknown report section", None, ["--set", "report.section=fancy"],
     "config key 'report.section': unknown value 'fancy'; allowed: generic, bias_only"),
]


def run_cli(args):
    """``cli.main(args)``'s exit status, whether it returns it or argparse raises SystemExit."""
    try:
        return cli.main(args)
    except SystemExit as exit_:
        return exit_.code


@pytest.mark.parametrize("case,text,args,message", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, case, text, args,
                                                          message):
    config_path = EXAMPLE if text is None else tmp_path / "study.toml"
    if text == "MISSING":
        config_path = tmp_path / "missing.toml"
    elif isinstance(text, bytes):
        config_path.write_bytes(text)
    elif text is not None:
        config_path.write_text(text)
    out = tmp_path / "out"
    code = run_cli(["run", str(config_path), "--out", str(out), *args])
    err = capsys.readouterr().err
    assert code == 2, case
    assert len(err.strip().splitlines()) == 1, err
    assert message in err, err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["study.toml"])


@pytest.mark.parametrize("where", ["chunk", "merge"])
def test_full_disk_is_one_line_exit_2_and_resumable(tmp_path, capsys, monkeypatch, where):
    """A full disk while writing a chunk (ENOSPC) or while merging results.nc (netCDF only says
    'NetCDF: HDF error'): one line naming the file and the free space, exit 2; the chunks
    written so far are kept and the same command then finishes the run."""
    import errno

    import numpy as np
    import xarray as xr

    from jaxsym.engine import store

    args = ["run", str(EXAMPLE), "--out", str(tmp_path / "run"), "--steps", "5", "--seeds",
            "2", "--chunk-size", "4", "--no-progress"]
    if where == "chunk":
        real, calls = np.savez, []

        def savez(*a, **k):
            calls.append(1)
            if len(calls) > 1:
                raise OSError(errno.ENOSPC, "No space left on device", "chunks/g000.npz")
            return real(*a, **k)

        monkeypatch.setattr(store.np, "savez", savez)
        expected = "cannot write 'chunks/g000.npz': No space left on device"
    else:
        def to_netcdf(self, *a, **k):
            raise RuntimeError("NetCDF: HDF error")

        monkeypatch.setattr(xr.Dataset, "to_netcdf", to_netcdf)
        expected = "results.nc' (NetCDF: HDF error);"
    assert run_cli(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and expected in err and "MiB free" in err, err
    assert "re-run the same command" in err
    assert not (tmp_path / "run" / "results.nc").exists()
    assert not [p for p in (tmp_path / "run").rglob("*tmp*")]
    monkeypatch.undo()
    assert run_cli(args) == 0
    assert (tmp_path / "run" / "results.nc").exists()


def test_there_are_at_least_15_bad_inputs():
    assert len(BAD_INPUTS) >= 15


def test_python_m_jaxsym_and_version():
    result = subprocess.run([sys.executable, "-m", "jaxsym", "--version"], capture_output=True,
                            text=True, check=True, env=dict(os.environ))
    assert result.stdout.startswith("jaxsym ")


def test_run_prints_summary_and_resumes(tmp_path, capsys):
    text = BASE.replace("steps = 2000", "steps = 30").replace("count = 8", "count = 2")
    (tmp_path / "s.toml").write_text(text)
    out = tmp_path / "run"
    assert cli.main(["run", str(tmp_path / "s.toml"), "--out", str(out), "--no-progress"]) == 0
    first = capsys.readouterr().out
    assert "6 points x 2 seeds = 12 networks; trained 12" in first
    assert (out / "results.nc").exists()
    # every file gets the umask's mode (chunks were 0600: unreadable by the group)
    mask = os.umask(0)
    os.umask(mask)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.parent.name == "chunks" for p in files)
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {oct(0o666 & ~mask)}
    assert cli.main(["run", str(tmp_path / "s.toml"), "--out", str(out), "--no-progress"]) == 0
    assert "trained 0" in capsys.readouterr().out
    # a different study in the same directory is refused with exit 2
    assert run_cli(["run", str(tmp_path / "s.toml"), "--out", str(out), "--seeds", "3",
                    "--no-progress"]) == 2
    assert "holds a different study" in capsys.readouterr().err


def test_run_plans_once_and_builds_each_data_draw_once(tmp_path, capsys, monkeypatch):
    """`jaxsym run` plans the study once (groups, knobs, chunks) and builds each data draw's
    task once, for the validation, the resource check and the engine alike."""
    from jaxsym.study import config, plan

    calls = {"task": 0, "groups": 0}
    make_task, plan_groups = config.Study.make_task, plan.plan_groups

    def counted_task(self, draw=0):
        calls["task"] += 1
        return make_task(self, draw)

    def counted_groups(*args):
        calls["groups"] += 1
        return plan_groups(*args)

    monkeypatch.setattr(config.Study, "make_task", counted_task)
    monkeypatch.setattr(plan, "plan_groups", counted_groups)
    assert cli.main(["run", str(EXAMPLE), "--out", str(tmp_path / "run"), "--seeds", "1",
                     "--steps", "3", "--set", "task.draws=2", "--no-progress"]) == 0
    assert "x 2 data draws = 12 networks; trained 12" in capsys.readouterr().out
    assert calls == {"task": 2, "groups": 1}


def test_bundled_experiments_validate_in_every_preset():
    from jaxsym.study import config, experiments

    for name, overrides, presets in experiments.STUDY_EXPERIMENTS:
        for preset in presets:
            study = config.apply_overrides(
                config.load_study(config.BUNDLED_DIR / f"{name}.toml", preset=preset),
                overrides)
            assert study.n_networks > 0
            assert study.get("report.section") in experiments.SECTION_KINDS
            if name.startswith("bias_only"):
                minimum = {"quick": 8, "full": 16 if "mnist1d" in name else 64,
                           "large": 512}[preset]
                assert study.get("seeds.count") >= minimum, (name, preset)


def test_theory_commands(capsys):
    assert cli.main(["theory", "critical", "--activation", "tanh", "--sigma-b2", "0.05"]) == 0
    assert "critical sigma_w^2 = 1.76" in capsys.readouterr().out
    assert cli.main(["theory", "meanfield", "--activation", "relu", "--sigma-w2", "1.5",
                     "--sigma-b2", "0.1"]) == 0
    assert "chi_1 = 0.75," in capsys.readouterr().out
    assert run_cli(["theory", "critical", "--sigma-b2", "-1"]) == 2
    assert "--sigma-b2: expected a finite number >= 0" in capsys.readouterr().err


def test_no_command_prints_usage_and_the_commands(capsys):
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: jaxsym")
    assert all(command in out for command in ("run", "study", "report", "theory"))


def test_noise_levels_take_integers_and_floats_alike():
    """``task.noise = 0`` and ``0.0`` are the same setting (noise levels are floats); sizes
    stay integers."""
    from jaxsym.study import config

    text = BASE.replace('name = "teacher_student"\ndim = 2\nteacher_width = 2', 'name = "circles"')
    as_int = config.parse_study(text.replace("[model]", "noise = 0\n\n[model]"))
    as_float = config.parse_study(text.replace("[model]", "noise = 0.0\n\n[model]"))
    assert as_int.task_options["noise"] == as_float.task_options["noise"] == 0.0
    assert isinstance(as_int.task_options["noise"], float)
    assert config.parse_study(BASE).task_options["dim"] == 2


def test_packaging_declares_tomli_before_311_and_ships_a_license():
    import tomllib

    root = Path(__file__).parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert any(dep.replace(" ", "").startswith("tomli") and "python_version<'3.11'"
               in dep.replace(" ", "") for dep in project["dependencies"])
    assert project["requires-python"] == ">=3.10"
    license_text = (root / "LICENSE").read_text()
    assert project["license"]["text"] in license_text.splitlines()[0]


@pytest.mark.parametrize("command", [
    ["run", str(EXAMPLE), "--out", "{file}"],
    ["run", str(EXAMPLE), "--out", "{file}/sub"],
    ["study", "--runs", "{file}", "--figures", "{tmp}/figures"],
    ["study", "--runs", "{tmp}/runs", "--figures", "{file}"],
])
def test_output_paths_that_are_files_are_refused_before_any_work(tmp_path, capsys, command):
    """An output directory that is a file (or under one): one line, exit 2, nothing written,
    before any training (``study --figures FILE`` used to fail only after the whole study)."""
    target = tmp_path / "README.md"
    target.write_text("not a directory")
    args = [a.format(file=target, tmp=tmp_path) for a in command]
    assert run_cli(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "is a file" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md"]
    assert target.read_text() == "not a directory"


def test_report_into_a_file_is_refused(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert run_cli(["run", str(EXAMPLE), "--out", str(run_dir), "--seeds", "1", "--steps", "3",
                    "--no-progress"]) == 0
    target = tmp_path / "README.md"
    target.write_text("x")
    capsys.readouterr()
    assert run_cli(["report", str(run_dir), "--figures", str(target)]) == 2
    assert "argument --out/--figures: " in capsys.readouterr().err
    assert target.read_text() == "x"


def test_ctrl_c_is_one_line_and_exit_130(tmp_path):
    """SIGINT during training: no traceback, one line saying how to resume, exit 130."""
    import signal
    import time

    # a test run started in the background of a non-interactive shell inherits SIGINT ignored,
    # and Python keeps it ignored: the child restores Python's handler before running jaxsym
    # (a preexec_fn would fork a process that holds JAX's threads)
    launcher = ("import runpy, signal, sys; signal.signal(signal.SIGINT, "
                "signal.default_int_handler); sys.argv[0] = 'jaxsym'; "
                "runpy.run_module('jaxsym', run_name='__main__', alter_sys=True)")
    process = subprocess.Popen(
        [sys.executable, "-c", launcher, "run", str(EXAMPLE), "--out", str(tmp_path / "run"),
         "--no-progress", "--chunk-size", "8", "--seeds", "64"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1])))
    # interrupt in the middle of training: after the first chunk, long before the last (48)
    deadline = time.monotonic() + 120
    chunks = tmp_path / "run" / "chunks"
    while not (chunks.is_dir() and any(chunks.glob("g*.npz"))) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("jaxsym: interrupted;")
    assert len([l for l in err.strip().splitlines() if l.startswith("jaxsym")]) == 1


def test_submodules_load_after_import_jaxsym():
    """``import jaxsym`` then ``jaxsym.engine.store.load`` / ``jaxsym.load`` (the README's snippet),
    without importing JAX until a JAX module is used."""
    code = ("import sys, jaxsym; assert 'jax' not in sys.modules; "
            "assert jaxsym.load.__module__ == 'jaxsym.api' and callable(jaxsym.engine.store.load); "
            "print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1])))
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def _subparsers(parser):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                yield from ((f"{name} {n}", s) for n, s in _subparsers(sub))


def test_every_subcommand_says_what_it_does_and_shows_its_defaults():
    """Each subcommand has a description, and every option with a default shows it in --help
    (the study's --figures default depends on the preset: the quick main job writes
    figures/quick/, never the tracked full-preset figures/)."""
    parser = cli.build_parser()
    subs = dict(_subparsers(parser))
    assert {"run", "study", "report", "theory", "theory meanfield"} <= set(subs)
    for name, sub in subs.items():
        assert sub.description, name
        text = " ".join(sub.format_help().split())
        for action in sub._actions:
            default = action.default
            if action.option_strings and default not in (None, False, [], "==SUPPRESS==") \
                    and action.dest != "help":
                shown = ",".join(f"{v:g}" for v in default) if isinstance(default, list) \
                    else str(default)
                assert f"default {shown}" in text or f"default: {shown}" in text, \
                    (name, action.dest, text)
    help_text = " ".join(subs["study"].format_help().split())
    assert "default: figures/quick/, figures/ or figures/large/ by preset" in help_text
    from jaxsym.study.experiments import STUDY_FIGURES

    assert STUDY_FIGURES == {"quick": "figures/quick", "full": "figures", "large": "figures/large"}


def test_read_only_out_dir_is_refused_before_anything_is_written(tmp_path, capsys,
                                                                  monkeypatch):
    """A parent the user cannot write to (emulated: the tests run as root, who may write
    anywhere) is named in one line, exit 2, and nothing is created."""
    parent = tmp_path / "readonly"
    parent.mkdir()
    real = os.access
    monkeypatch.setattr(cli.os, "access", lambda path, mode: False
                        if os.path.abspath(path) == str(parent) else real(path, mode))
    assert run_cli(["run", str(EXAMPLE), "--out", str(parent / "run")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"jaxsym: error: argument --out: '{parent}' is not writable"
    assert list(parent.iterdir()) == []


@pytest.mark.skipif(not os.path.exists("/proc/sys/vm/max_map_count"),
                    reason="needs Linux's /proc/self/maps and vm.max_map_count")
def test_study_releases_compiled_code_before_the_mapping_limit(tmp_path, monkeypatch):
    """``jaxsym study`` drops the compiled executables between experiments once the process
    nears the kernel's limit on memory mappings: XLA's CPU JIT maps every executable's code,
    and the full preset, kept in one process, passed Linux's 65,530 mappings and crashed the
    compiler ("Cannot allocate memory"). Here the threshold is lowered to 1,500 mappings and
    three experiments with distinct static groups run in one study: each is released, and the
    mappings at the start of the third equal those at the start of the second within a few
    hundred (kept, each experiment adds several hundred). At the real threshold (half the
    limit) nothing is released, so experiments sharing static groups keep reusing them."""
    from jaxsym import api
    from jaxsym.cli import commands

    overrides = {"grid.weight_value": [1.0], "grid.learning_rate": [0.1], "grid.sigma_b": [0.01, 1.0],
                 "train.steps": 20, "seeds.count": 1, "task.draws": 1}
    plans = [(api.plan(api.study("calibrate_spirals", overrides={
        **overrides, "grid.activation": [name]})), name) for name in ("tanh", "relu", "gelu")]
    counts, released, real_run, real_release = [], [], api.run, commands.release_compiled

    def counting_run(*args, **kwargs):
        counts.append(commands._mappings()[0])
        return real_run(*args, **kwargs)

    def recording_release():
        released.append(real_release())
        return released[-1]

    limit = commands._mappings()[1]
    monkeypatch.setattr(api, "experiment_plans", lambda preset: plans)
    monkeypatch.setattr(api, "run", counting_run)
    monkeypatch.setattr(api, "report", lambda run_dirs, out: Path(out) / "REPORT.md")
    monkeypatch.setattr(commands, "release_compiled", recording_release)
    monkeypatch.setattr(commands, "MAPPINGS_RELEASE_FRACTION", 1500 / limit)
    assert commands.COMMANDS["study"](cli.build_parser().parse_args(
        ["study", "--runs", str(tmp_path / "runs"), "--figures", str(tmp_path / "fig"),
         "--no-progress"])) == 0
    assert len(counts) == 3 and released == [True] * 3, (counts, released)
    assert abs(counts[2] - counts[1]) < 300, counts
    monkeypatch.setattr(commands, "MAPPINGS_RELEASE_FRACTION", 0.5)
    assert real_release() is False
