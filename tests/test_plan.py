"""The study plan: JAX-free, built once, and cut exactly as the engine trains it."""

import subprocess
import sys

import numpy as np
import pytest

from jaxsym.study import config, plan

TEXT = """
name = "planned"
[task]
name = "teacher_student"
dim = 2
n_train = 16
n_test = 8
draws = 2
[model]
width = 3
[train]
steps = 5
[grid]
sigma_b = [0.0, 0.1, 0.2]
activation = ["tanh", "relu"]
weight_mode = ["constant", "zero"]
[seeds]
count = 3
"""


def test_import_does_not_import_jax():
    code = ("import sys, jaxsym.study.plan as p, jaxsym.study.config as c; "
            "p.plan(c.parse_study(sys.argv[1])); "
            "assert 'jax' not in sys.modules, sorted(m for m in sys.modules if 'jax' in m)")
    subprocess.run([sys.executable, "-c", code, TEXT], check=True)


def test_groups_knobs_and_chunks():
    study = config.parse_study(TEXT)
    planned = plan.plan(study, chunk_size=4)
    assert len(planned.tasks) == 2 and planned.task is planned.tasks[0]
    assert planned.tasks[1].x_train.tolist() == study.make_task(1).x_train.tolist()
    # weight_mode is a knob: only activation splits the grid
    assert [g.categorical for g in planned.groups] == [(("activation", "tanh"),),
                                                        (("activation", "relu"),)]
    assert planned.knobs.shape == (12, len(plan.KNOBS))
    mode = planned.knobs[:, plan.KNOBS.index("weight_mode")]
    assert mode.tolist() == [0.0, 1.0] * 6
    # only the study's init schemes are compiled in, the same in every group
    assert {g.spec.weight_modes for g in planned.groups} == {("constant", "zero")}
    # every network exactly once; each chunk on one group and one draw, at most chunk_size
    nets = np.concatenate([c.nets for c in planned.chunks])
    assert sorted(nets.tolist()) == list(range(study.n_networks))
    assert [c.index for c in planned.chunks] == list(range(len(planned.chunks)))
    for chunk in planned.chunks:
        assert 1 <= len(chunk.nets) <= 4
        group = planned.groups[chunk.group]
        assert set((chunk.nets // planned.n_seeds).tolist()) <= set(group.grid_indices.tolist())
        assert set(((chunk.nets % planned.n_seeds) // 3).tolist()) == {chunk.draw}
    # group 0 (6 points x 3 seeds on draw 0 = 18 networks, then draw 1) in chunks of 4
    assert [len(c.nets) for c in planned.chunks[:10]] == [4, 4, 4, 4, 2] * 2
    assert [c.draw for c in planned.chunks[:10]] == [0] * 5 + [1] * 5


def test_bad_chunk_size_and_unbuildable_task():
    study = config.parse_study(TEXT)
    with pytest.raises(ValueError, match="chunk_size must be"):
        plan.plan(study, chunk_size=0)
    bad = config.apply_overrides(study, {"task.teacher_width": 1})
    with pytest.raises(config.ConfigError, match="config key 'task': cannot build task"):
        plan.plan(bad)


def test_a_run_plans_the_study_once_and_builds_each_draw_once(tmp_path, monkeypatch):
    """`jaxsym run` validates, checks resources, trains and merges from ONE plan: the study is
    planned once and each data draw's task is built once."""
    from jaxsym import cli
    from jaxsym.study import config as config_module

    calls = {"plan": 0, "task": []}
    real_plan, real_task = plan.plan, config_module.Study.make_task

    def counting_plan(*args, **kwargs):
        calls["plan"] += 1
        return real_plan(*args, **kwargs)

    def counting_task(self, draw=0):
        calls["task"].append(draw)
        return real_task(self, draw)

    monkeypatch.setattr(plan, "plan", counting_plan)
    monkeypatch.setattr(config_module.Study, "make_task", counting_task)
    path = tmp_path / "two_draws.toml"
    path.write_text('name = "two_draws"\n[task]\nname = "xor"\nn_train = 16\nn_test = 8\n'
                    'draws = 2\n[model]\nwidth = 3\n[train]\nloss = "bce"\nsteps = 5\n'
                    '[grid]\nsigma_b = [0.0, 0.1]\n[seeds]\ncount = 2\n')
    assert cli.main(["run", str(path), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    assert calls["plan"] == 1
    assert sorted(calls["task"]) == [0, 1]
