"""The plain-language answer: generated from the tables, at most MAX_WORDS words, every claim
linked to a section of the report, and the README's copy identical to the committed report's."""

import re
from pathlib import Path

import pytest
import xarray as xr

from jaxsym.analysis import calibrate
from jaxsym.reporting import answer
from tests.test_calibrate import _baseline_score, _baseline_val, _dataset

ROOT = Path(__file__).resolve().parents[1]


def _numbers():
    modes = list(calibrate.BASELINE_MODES) + list(answer._ALTERNATIVES)
    const = _dataset(["constant"], [1.0], [1e-3, 0.1], _baseline_score, _baseline_val)
    base = _dataset(modes, [1.0], [0.0], _baseline_score, _baseline_val)
    level = {1: 0.3, 2: 0.96}
    grouped = xr.concat([_dataset(["grouped"], [1.0], [0.0],
                                  lambda m, c, s, lr, seed, k=k: level[k], _baseline_val)
                         for k in level], dim="groups").assign_coords(groups=list(level))
    return calibrate.analyse([(const, None), (base, None), (grouped, None)])


def test_answer_counts_come_from_the_tables_and_link_to_them():
    lines = answer.answer_lines({"calibrate": _numbers()}, link="figures/REPORT.md")
    text = "\n".join(lines)
    assert lines[0] == answer.START and answer.END in lines
    assert "matched Glorot in 1 of 1 [rows](figures/REPORT.md#recommendation)" in text
    assert "a median of 2 groups of identical units" in text
    for anchor in ("#recommendation", "#is-random-w-the-only-choice-the-alternatives",
                   "#how-many-distinct-units-does-training-need"):
        assert f"(figures/REPORT.md{anchor})" in text
    assert answer.words(lines) <= answer.MAX_WORDS
    assert answer.answer_lines({}) == []


def test_sync_readme_copies_the_block_and_repoints_links(tmp_path):
    report = tmp_path / "figures" / "REPORT.md"
    report.parent.mkdir()
    block = "\n".join(answer.answer_lines({"calibrate": _numbers()}))
    table = "<!-- recommendation:start -->\n| a | [b](#recommendation) |\n<!-- recommendation:end -->"
    report.write_text("# report\n\n" + block + "\n" + table + "\nrest\n")
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{answer.START}\nold\n{answer.END}\nmiddle\n"
                      "<!-- recommendation:start -->\n<!-- recommendation:end -->\nafter\n")
    assert answer.sync_readme(readme, report) and not answer.sync_readme(readme, report)
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("after\n") and "old" not in text
    assert "](figures/REPORT.md#recommendation)" in text and "](#" not in text
    assert "middle\n<!-- recommendation:start -->\n| a | [b](figures/REPORT.md#recommendation) |" in text
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="markers"):
        answer.sync_readme(readme, report)


def test_the_committed_answer_is_short_and_the_readme_is_the_full_reports():
    text = (ROOT / "figures" / "REPORT.md").read_text()
    block = answer.block(text)
    assert block is not None, "figures/REPORT.md has no answer block"
    assert answer.words(block.splitlines()) <= answer.MAX_WORDS
    readme_text = (ROOT / "README.md").read_text()
    for name in answer.BLOCKS:  # the README's copies are the report's, links re-pointed
        assert (answer.block(readme_text, name)
                == answer.block(text, name).replace("](#", "](figures/REPORT.md#")), name
    # every link points at a heading of the report
    headings = {"#" + re.sub(r"[^a-z0-9 _-]", "", h.lower()).replace(" ", "-")
                for h in re.findall(r"^#+ (.*)$", text, re.M)}
    assert set(re.findall(r"\]\((#[^)]*)\)", block)) <= headings


def test_the_noise_sentence_pools_every_run_of_a_kind():
    """Two minibatch runs and two label-noise runs give ONE clause each, with the pooled ranges
    (not one clause per run)."""
    from types import SimpleNamespace

    def point(value, median, lyapunov, n=4):
        return {"value": value, "median": SimpleNamespace(median=median), "agree": n, "n": n,
                "lyapunov": lyapunov}

    def minibatch(full, one):
        return {"axis": "batch_size", "cells": [{"fixed": {"activation": "tanh"}, "points": [
            point(1, one, 0.01), point(4, full * 1.1, 0.02), point(0, full, 0.03)]}]}

    def label(levels):
        return {"axis": "label_noise", "cells": [
            {"fixed": {"activation": "gelu"},
             "points": [point(v, float("inf"), -0.01 if v in levels else 0.01)
                        for v in (0.0, 0.4, 0.8, 1.6)]},
            {"fixed": {"activation": "tanh"},
             "points": [point(v, 100.0, 0.01) for v in (0.0, 0.4, 0.8, 1.6)]}]}

    sections = {"stochastic": {"runs": [minibatch(100.0, 120.0), label((0.4, 0.8)),
                                        minibatch(200.0, 340.0), label((0.4, 0.8, 1.6))]}}
    text = answer._q4(sections, "")
    assert text.count("minibatches slowed") == 1 and text.count("label noise") == 2
    assert "(batch size 1: 1.2x-1.7x the full-batch median steps) and healed it nowhere" in text
    assert ("label noise 0.4-1.6 made identical gelu units an attractor (stochastic collapse) "
            "in 2 of 4 cells") in text
    assert "predicted 88 of 88 networks' breaks" in text
