"""The benchmarks' harness: docs/benchmarks.md's generated tables are what the committed results
generate, a changed table is caught, two runs compare as ratios, and the scenarios have names.
(CI runs every scenario at smoke sizes: .ci/run.)"""

from __future__ import annotations

import json
import re
import shutil

from benchmarks import __main__ as cli
from benchmarks import docs
from benchmarks.scenarios import REGISTRY


def test_the_generated_tables_are_what_the_results_generate():
    assert docs.main(check=True) == 0
    assert docs.BEGIN.pattern in docs.__doc__ or "generated" in docs.DOC.read_text()


def test_a_table_edited_by_hand_is_caught_and_written_again(tmp_path, capsys):
    doc = tmp_path / "benchmarks.md"
    shutil.copy(docs.DOC, doc)
    text = doc.read_text()
    i = text.index("<!-- generated: ")
    j = text.index("| ", text.index("| --- |", i) + 6)
    doc.write_text(text[:j] + "| 999 " + text[j + 2:])
    assert docs.main(check=True, doc=doc) == 1
    assert "python -m benchmarks docs" in capsys.readouterr().out
    assert docs.main(check=False, doc=doc) == 0 and doc.read_text() == text


def test_a_table_says_the_settings_its_run_was_given(tmp_path):
    """A run with ``--set`` (a replayed file, another size) says so in its table's head, so that
    the scenario's general note is not read as what was run."""
    result = {"title": "T", "note": "", "columns": [["a", "a", "{}"]], "rows": [{"a": 1}],
              "options": {"replay": "tests/data/x.jsonl.gz", "size": "512"}}
    data = {"machine": {"date": "2026-12-07", "commit": "abc1234", "dirty": False, "gpu": None, "torch": "2.14.1",
                        "cpu": {"model": "CPU", "cores": 2, "flags": []}},
            "device": "cpu", "smoke": False, "results": {"x": result}}
    (tmp_path / "r.json").write_text(json.dumps(data))
    head = docs.block("x", str(tmp_path / "r.json"))[0]
    assert head.endswith("Run with `--set replay=tests/data/x.jsonl.gz` `--set size=512`.")
    del result["options"]
    (tmp_path / "r.json").write_text(json.dumps(data))
    assert "Run with" not in docs.block("x", str(tmp_path / "r.json"))[0]


def test_two_runs_compare_as_ratios(tmp_path, capsys):
    def run(ms: float, commit: str) -> dict:
        return {"machine": {"commit": commit}, "results": {"x": {
            "columns": [["size", "size", "{}"], ["ms", "ms", "{:.1f}"]], "rows": [{"size": "64x36", "ms": ms}]}}}

    (tmp_path / "a.json").write_text(json.dumps(run(10.0, "aaaaaaa")))
    (tmp_path / "b.json").write_text(json.dumps(run(5.0, "bbbbbbb")))
    assert cli.main(["compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 0
    out = capsys.readouterr().out
    assert "| 64x36 | 0.50x |" in out and "aaaaaaa -> bbbbbbb" in out


def test_scenarios_are_named_as_the_docs_quote_them():
    assert set(REGISTRY) >= {"chains-render", "chains-network", "iteration", "roofline", "render", "render-length",
                             "converge", "estimate", "drift", "temporal", "tiles", "paint", "peer", "command"}
    assert all(s.columns and s.title for s in REGISTRY.values())
    assert cli.main(["run", "no-such-scenario"]) == 2
    doc = docs.DOC.read_text()
    quoted = set(re.findall(r"`python -m benchmarks run ([a-z0-9-]+)", doc))
    assert quoted and quoted <= set(REGISTRY), quoted - set(REGISTRY)


def test_every_figure_is_one_command(capsys):
    import importlib

    from benchmarks.figures import FIGURES

    assert cli.main(["figures"]) == 0
    listed = capsys.readouterr().out
    for name, (module, _) in FIGURES.items():
        assert name in listed and callable(importlib.import_module(f"benchmarks.figures.{module}").main)
    assert cli.main(["figure", "no-such-figure"]) == 2
