"""The public API (``import videostyle as vs``): the examples of docs/api.md with a tiny network,
pictures in every accepted form, settings as keywords, the events as --progress json gives them,
an engine kept across calls, an interrupt that keeps the frames, and the quickstart notebook."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import videostyle as vs
from videostyle.cli import main
from videostyle.errors import ConfigError, RenderInterrupted
from videostyle.io.images import write_image

from .clips import make_clip
from .conftest import pattern, stripes

TINY = {"model": "random", "size": 48, "iterations": 3, "iterations_later": 1, "device": "cpu",
        "precision": "fp32", "settle": 0}


def _frames(path: Path) -> int:
    import av

    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def test_the_package_offers_its_api():
    assert set(vs.__all__) >= {"stylize", "render", "frames", "estimate", "Engine", "settings"}
    assert callable(vs.render) and vs.render is vs.api.render  # (the name is the function, not the layer)
    assert vs.settings(size=128, style_weight=2.0).optim.size == 128


def test_a_picture_in_every_form_gives_the_same_painting(tmp_path):
    import torch
    from PIL import Image

    content, style = pattern(60, 80), stripes(40, 40)
    write_image(tmp_path / "c.png", content)
    write_image(tmp_path / "s.png", style)
    from_paths = vs.stylize(tmp_path / "c.png", style=str(tmp_path / "s.png"), **TINY)
    from_pil = vs.stylize(Image.fromarray(content), style=Image.fromarray(style), **TINY)
    from_arrays = vs.stylize(content, style=[style], **TINY)
    from_floats = vs.stylize(content.astype(np.float32) / 255.0, style=style, **TINY)
    from_tensors = vs.stylize(torch.from_numpy(content).permute(2, 0, 1).float() / 255.0,
                              style=torch.from_numpy(style).permute(2, 0, 1)[None].float() / 255.0, **TINY)
    assert isinstance(from_pil, Image.Image) and from_pil.size == (48, 36)
    ref = np.asarray(from_paths)
    for other in (from_pil, from_arrays, from_floats, from_tensors):
        assert np.array_equal(np.asarray(other), ref)
    assert vs.stylize(content, style=style, output_size="source", **TINY).size == (80, 60)


def test_without_on_event_a_warning_reaches_the_logger(caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="videostyle"):
        vs.stylize(pattern(48, 64), style=stripes(40, 40), **TINY)
    assert any(r.levelno == logging.WARNING and "untrained VGG weights" in r.getMessage() for r in caplog.records)


def test_a_setting_is_a_keyword_and_a_wrong_one_says_what_was_meant():
    with pytest.raises(ConfigError, match="unknown key iteratons; did you mean 'iterations'"):
        vs.stylize(pattern(32, 32), style=stripes(32, 32), iteratons=3)
    with pytest.raises(ConfigError, match="no style given"):
        vs.stylize(pattern(32, 32))
    with pytest.raises(ConfigError, match="a tensor must be"):
        import torch

        vs.stylize(torch.zeros(2, 3, 8, 8), style=stripes(32, 32), **TINY)


def test_a_picture_file_is_checked_against_the_max_pixels_setting(tmp_path):
    from videostyle.errors import InputError

    write_image(tmp_path / "c.png", pattern(48, 64))
    with pytest.raises(InputError, match=r"c.png declares a 64x48 picture .* raise max_pixels"):
        vs.stylize(tmp_path / "c.png", style=stripes(40, 40), max_pixels=1000, **TINY)
    assert vs.stylize(tmp_path / "c.png", style=stripes(40, 40), max_pixels=64 * 48, **TINY).size == (48, 36)


def test_render_reports_the_events_that_progress_json_writes(tmp_path, capsys):
    """The same events in the same order as the command line's --progress json (estimate events
    aside: the scan's arrival, on its own thread, revises the estimate at a time that varies)."""
    clip = make_clip(tmp_path / "clip.mp4", frames=6)
    write_image(tmp_path / "s.png", stripes(40, 40))
    got: list[dict] = []
    res = vs.render(clip, tmp_path / "api.mp4", style=tmp_path / "s.png", on_event=got.append, **TINY)
    assert res.frames == 6 and _frames(tmp_path / "api.mp4") == 6
    argv = ["render", str(clip), "--style", str(tmp_path / "s.png"), "-o", str(tmp_path / "cli.mp4"),
            "--progress", "json"]
    for key, value in TINY.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    assert main(argv) == 0
    cli = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]

    def names(events: list[dict]) -> list[str]:
        return [e["event"] for e in events if e["event"] != "estimate"]

    assert names(got) == names(cli) and names(got)[0] == "notice" and names(got)[-1] == "end"
    assert any(e["event"] == "estimate" for e in got)
    assert [e["index"] for e in got if e["event"] == "frame"] == list(range(6))
    json.dumps(got)  # (plain data)


def test_frames_streams_and_stops_when_the_loop_does(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=8)
    seen = [(f.index, f.image.shape) for f in vs.frames(clip, style=stripes(40, 40), **TINY)]
    assert seen == [(k, (36, 48, 3)) for k in range(8)]
    stream = vs.frames(clip, style=stripes(40, 40), **TINY)
    first = next(stream)
    assert first.index == 0 and first.to_pil().size == (48, 36)
    stream.close()  # (a break: the engines close, nothing is left running)
    fast = list(vs.frames(clip, style=stripes(40, 40), method="fast", max_frames=3, size=48))
    assert len(fast) == 3 and all(f.iterations == 0 for f in fast)


def test_estimate_says_what_a_render_would_take_and_writes_nothing(tmp_path):
    src = make_clip(tmp_path / "c.mp4", frames=8, size=(96, 64), audio=())
    write_image(tmp_path / "s.png", stripes(48, 48))
    e = vs.estimate(src, style=tmp_path / "s.png", **{**TINY, "iterations": 40, "iterations_later": 5})
    assert isinstance(e, vs.Estimate) and e.plan.frames == 8 and e.plan.first_iterations == 40
    assert e.plan.later_iterations == 5 and e.total_seconds > 0 and "8 frame(s)" in e.line()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.mp4", "s.png"]
    assert vs.estimate(src, style=tmp_path / "s.png", method="fast", **TINY) is None


def test_an_engine_keeps_its_network_across_calls(monkeypatch):
    from videostyle import factory

    built = []
    new = factory.new_stylizer
    monkeypatch.setattr(factory, "new_stylizer", lambda *a, **k: built.append(1) or new(*a, **k))
    engine = vs.Engine(model="random", device="cpu", precision="fp32")
    one = vs.stylize(pattern(48, 64), style=stripes(40, 40), engine=engine, **TINY)
    targets = dict(engine.stylizer.targets._targets)  # the style's Gram targets, per content size
    two = vs.stylize(pattern(48, 64), style=stripes(40, 40), engine=engine, **TINY)
    assert len(built) == 1 and np.array_equal(np.asarray(one), np.asarray(two))
    assert targets and all(engine.stylizer.targets._targets[hw] is g for hw, g in targets.items())  # kept
    other = vs.stylize(pattern(48, 64), style=stripes(40, 40), engine=engine, **{**TINY, "style_weight": 7.0})
    assert not np.array_equal(np.asarray(other), np.asarray(one))  # (new settings: new targets, another picture)
    assert all(engine.stylizer.targets._targets.get(hw) is not g for hw, g in targets.items())
    assert "random" in repr(engine)


def test_an_interrupt_keeps_the_frames_and_the_next_call_resumes(tmp_path):
    """Ctrl-C in a notebook is a KeyboardInterrupt in the render's thread: the call stops with
    its engines closed and its finished frames kept; called again, it goes on from them."""
    clip = make_clip(tmp_path / "clip.mp4", frames=8)
    out = tmp_path / "out.mp4"

    def interrupt(event: dict) -> None:
        if event["event"] == "frame" and event["index"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(RenderInterrupted):
        vs.render(clip, out, style=stripes(40, 40), on_event=interrupt, **TINY)
    assert not out.exists() and (tmp_path / f".{out.name}.videostyle-work").is_dir()
    res = vs.render(clip, out, style=stripes(40, 40), **TINY)
    assert res.frames == 8 and _frames(out) == 8
    assert len(res.frame_seconds) <= 5  # (stylized now: those after the interrupt; the rest came from the folder)


def test_the_quickstart_notebook_runs(tmp_path):
    """examples/quickstart.ipynb, executed as a reader would, at tiny sizes (its first cell's
    sizes replaced): every cell runs and the pictures are shown inline."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("onnxruntime", reason="the notebook's clip uses the fast engine")
    nb = nbformat.read(Path(__file__).parents[1] / "examples" / "quickstart.ipynb", as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert first.source.startswith("SIZE")
    first.source = "SIZE, ITERATIONS, FRAMES = 64, 4, 3"
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert len(images) >= 3
    assert (tmp_path / "bunny_fast.mp4").is_file() and (tmp_path / "bunny_gatys.mp4").is_file()


def test_render_into_a_stream_writes_the_video_there_and_no_work_folder(tmp_path):
    import io

    import av

    clip = make_clip(tmp_path / "clip.mp4", frames=5)
    buf = io.BytesIO()
    res = vs.render(clip, style=stripes(40, 40), stream=buf, fmt="matroska", method="fast", size=48)
    assert res.frames == 5 and buf.getbuffer().nbytes > 0
    buf.seek(0)
    with av.open(buf, format="matroska") as c:
        assert sum(1 for _ in c.decode(video=0)) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]  # (nothing written beside the input)
    with pytest.raises(ConfigError, match="container"):
        vs.render(clip, style=stripes(40, 40), stream=io.BytesIO(), method="fast", size=48)


def test_a_batch_plans_and_runs_through_the_api(tmp_path):
    write_image(tmp_path / "a.png", pattern(40, 56))
    write_image(tmp_path / "b.png", pattern(40, 56)[::-1].copy())
    write_image(tmp_path / "s.png", stripes(40, 40))
    (tmp_path / "jobs.yaml").write_text(
        "jobs:\n  - name: stills\n    inputs: ['[ab].png']\n    styles: [s.png]\n    output: out/{input_stem}.png\n"
        "    method: fast\n    size: 36\n")
    plan = vs.plan_batch(tmp_path / "jobs.yaml", size=48)
    mine = plan.renders
    assert [r.input.name for r in mine] == ["a.png", "b.png"] and all(r.cfg.optim.size == 48 for r in mine)  # (the keyword over the job's)
    seen: list[str] = []
    outcomes = vs.run_batch(vs.BatchPlan(mine), on_outcome=lambda o: seen.append(o.status))
    assert seen == ["ok", "ok"] and [o.status for o in outcomes] == seen
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]
    assert [o.status for o in vs.run_batch(vs.BatchPlan(mine))] == ["skipped", "skipped"]  # (not overwritten)
    with pytest.raises(ConfigError, match="did you mean"):
        vs.plan_batch(tmp_path / "jobs.yaml", szie=40)


def test_evaluate_and_keyframes_and_optimises_are_api_calls(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=6)
    out = tmp_path / "fast.mp4"
    vs.render(clip, out, style=stripes(40, 40), method="fast", size=48)
    rep = vs.evaluate(out, clip, gaps=(1, 2), size=48)
    assert rep.frames == 6 and sorted(rep.error) == [1, 2] and all(v >= 0 for v in rep.error.values())
    with pytest.raises(ConfigError, match="positive"):
        vs.evaluate(out, clip, gaps=(0,))
    written = vs.propose_keyframes(clip, tmp_path / "keys")
    assert written and written[0][0] == 0 and all(p.is_file() for _, p in written)
    assert vs.optimises() and vs.optimises(method="hybrid") and not vs.optimises(method="fast")
