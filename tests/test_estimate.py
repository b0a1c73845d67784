"""The render says what it will take: the estimate from its first measured iterations, the
progress stream that the bar, --progress json and the studio share."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from videostyle.cli import main
from videostyle.errors import worded
from videostyle.estimate import (BESIDE_SCAN, MEASURED, PRIOR_FACTOR, START_DELTAS, WARMUP_ITERATIONS, Estimating,
                                 RenderPlan, alternatives, duration, fit_errors, replay)
from videostyle.io.images import write_image
from videostyle.report import FrameDone, Reporter, STIterate

from .clips import make_clip
from .conftest import stripes

TINY = ["--model", "random", "--size", "64", "--iterations", "8", "--iterations-later", "2", "--device", "cpu",
        "--precision", "fp32", "--settle", "0"]


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Record(Reporter):
    def __init__(self) -> None:
        self.estimates: list = []
        self.progresses: list = []

    def estimate(self, e) -> None:  # type: ignore[override]
        self.estimates.append(e)

    def progress(self, p) -> None:  # type: ignore[override]
        self.progresses.append(p)


def _frame(est: Estimating, clock: Clock, index: int, iterations: int, it_secs: float, size=(64, 64)) -> None:
    for i in range(1, iterations + 1):
        clock.t += it_secs
        est.iterate(STIterate(i, iterations, 0, 1, 1.0, {}, size))
    est.frame(FrameDone(index, None, iterations, iterations * it_secs, 1.0))


def test_the_estimate_comes_before_frame_0_ends_and_counts_the_whole_render():
    clock, rec = Clock(), Record()
    est = Estimating(rec, clock)
    est.begin(10, "clip.mp4")
    est.plan(RenderPlan(frames=10, first_iterations=100, later_iterations=10, size=(64, 64)))
    for i in range(1, WARMUP_ITERATIONS + 1):
        clock.t += 0.1
        est.iterate(STIterate(i, 100, 0, 1, 1.0, {}, (64, 64)))
    assert len(rec.estimates) == 1  # before frame 0 ends
    e = rec.estimates[0]
    # 100 iterations of frame 0 and 9 later frames of 10, at 0.1 s each
    assert e.total_seconds == pytest.approx(100 * 0.1 + 9 * 10 * 0.1, rel=1e-6)
    assert e.iteration_seconds == pytest.approx(0.1)
    p = rec.progresses[-1]
    n = WARMUP_ITERATIONS
    assert p.done == pytest.approx(n / 100) and p.model_left == pytest.approx((100 - n) * 0.1 + 90 * 0.1)
    assert "frame 0 at 64x64, 100 iterations" in e.line() and "estimated 19 s" in e.line()
    # where later frames stop early, the range from each at one iteration to each at its budget
    est = Estimating(Record(), clock)
    est.begin(10, "clip.mp4")
    est.plan(RenderPlan(frames=10, first_iterations=100, later_iterations=10, size=(64, 64), early_stop=True))
    for i in range(1, WARMUP_ITERATIONS + 1):
        clock.t += 0.1
        est.iterate(STIterate(i, 100, 0, 1, 1.0, {}, (64, 64)))
    e = est.inner.estimates[0]
    assert e.low_seconds == pytest.approx(100 * 0.1 + 9 * 1 * 0.1, rel=1e-6)
    assert e.line().startswith("estimated 19 s (11 s to 24 s: later frames stop early, after 1 to 10 iterations)")


def test_the_first_iterations_start_up_costs_are_left_out():
    clock, rec = Clock(), Record()
    est = Estimating(rec, clock)
    est.begin(1, "image.png")
    est.plan(RenderPlan(frames=1, first_iterations=100, later_iterations=0, size=(64, 64)))
    for i in range(1, WARMUP_ITERATIONS + 1):  # the first iterations twice as slow as the rest
        clock.t += 0.2 if i <= 1 + START_DELTAS else 0.1
        est.iterate(STIterate(i, 100, 0, 1, 1.0, {}, (64, 64)))
    assert rec.estimates[0].iteration_seconds == pytest.approx(0.1)
    # a frame 0 too short to measure past them: estimated from what it measured, when it ends
    clock, rec = Clock(), Record()
    est = Estimating(rec, clock)
    est.begin(1, "image.png")
    est.plan(RenderPlan(frames=1, first_iterations=3, later_iterations=0, size=(64, 64)))
    _frame(est, clock, 0, 3, 0.2)
    assert len(rec.estimates) == 1 and rec.estimates[0].iteration_seconds == pytest.approx(0.2)


def test_later_frames_that_stop_early_refine_the_time_left():
    clock, rec = Clock(), Record()
    est = Estimating(rec, clock)
    est.begin(10, "clip.mp4")
    est.plan(RenderPlan(frames=10, first_iterations=100, later_iterations=10, size=(64, 64)))
    _frame(est, clock, 0, 100, 0.1)
    for k in range(1, 4):
        _frame(est, clock, k, 4, 0.1)  # the loss-ratio stop: 4 of 10 iterations
    p = rec.progresses[-1]
    assert p.done == 4
    assert p.model_left == pytest.approx(6 * 0.4, rel=1e-6)  # measured, not the budget's 6 x 1.0 s
    # said first after 4 measured iterations, revised at 16 and 48 of frame 0's and after the
    # first later frame (the next revision waits for the 4th)
    assert [e.revision for e in rec.estimates] == [0, 1, 2, 3]
    last = rec.estimates[-1]
    assert last.later_frame_seconds == pytest.approx(0.4) and last.total_seconds == pytest.approx(10 + 0.4 + 8 * 0.4)
    assert last.line().startswith("revised: estimated 14 s")


def test_a_smaller_frame_pyramid_level_is_costed_per_pixel():
    clock, rec = Clock(), Record()
    est = Estimating(rec, clock)
    est.begin(1, "image.png")
    est.plan(RenderPlan(frames=1, first_iterations=10, later_iterations=0, size=(128, 128)))
    for i in range(1, WARMUP_ITERATIONS + 1):  # the coarse level, a quarter of the pixels, a quarter of the time
        clock.t += 0.025
        est.iterate(STIterate(i, 10, 0, 2, 1.0, {}, (64, 64)))
    assert rec.estimates[0].iteration_seconds == pytest.approx(0.1)


def test_a_long_estimate_names_the_faster_ways():
    plan = RenderPlan(frames=240, first_iterations=300, later_iterations=20, size=(288, 512))
    alts = [worded(a, flags=True) for a in alternatives(plan, 70 * 60)]
    assert any(a.startswith("--method fast") for a in alts) and any("--size 256 (about 18 min)" in a for a in alts)
    keywords = [worded(a, flags=False) for a in alternatives(plan, 70 * 60)]  # (the API's words)
    assert keywords[0].startswith("method=fast") and "size=256 (about 18 min)" in keywords and "config=preview" in keywords
    assert alternatives(plan, 60) == ()
    assert [duration(s) for s in (30, 600, 4200)] == ["30 s", "10 min", "1 h 10 min"]


def test_progress_json_is_one_object_per_event(tmp_path, capsys):
    src = make_clip(tmp_path / "c.mp4", frames=4, audio=())
    write_image(tmp_path / "s.png", stripes(48, 48))
    assert main(["render", str(src), "--style", str(tmp_path / "s.png"), "-o", str(tmp_path / "o.mp4"),
                 "--progress", "json", *TINY]) == 0
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    events = [json.loads(ln) for ln in lines]  # every line is JSON: no bar, no plain notice
    kinds = [e["event"] for e in events]
    assert kinds[-1] == "end" and kinds.index("begin") < kinds.index("plan")  # (notices may come first)
    for kind in ("plan", "iterate", "estimate", "progress", "frame", "notice"):
        assert kind in kinds
    assert kinds.index("estimate") < kinds.index("frame")  # before frame 0 ends
    assert [e["index"] for e in events if e["event"] == "frame"] == [0, 1, 2, 3]
    last = [e for e in events if e["event"] == "progress"][-1]
    assert last["done"] == 4 and last["total"] == 4
    plan = next(e for e in events if e["event"] == "plan")
    assert plan["first_iterations"] == 8 and plan["later_iterations"] == 2


def test_progress_file_gets_the_events_while_the_bar_stays(tmp_path, capsys):
    src = make_clip(tmp_path / "c.mp4", frames=3, audio=())
    write_image(tmp_path / "s.png", stripes(48, 48))
    log = tmp_path / "progress.jsonl"
    assert main(["render", str(src), "--style", str(tmp_path / "s.png"), "-o", str(tmp_path / "o.mp4"),
                 "--progress-file", str(log), *TINY]) == 0
    err = capsys.readouterr().err
    assert "for 3 frame(s) on this machine (CPU): frame 0 at 64x48, 8 iterations" in err  # the estimate line on the terminal
    events = [json.loads(ln) for ln in log.read_text().splitlines()]
    assert "begin" in [e["event"] for e in events] and events[-1]["event"] == "end"


def test_a_network_render_is_estimated_from_its_frames():
    clock, rec = Clock(), Record()
    est = Estimating(rec, clock)
    est.begin(50, "clip.mp4")
    est.plan(RenderPlan(frames=50, first_iterations=0, later_iterations=0, size=(144, 256)))
    for k in range(3):
        clock.t += 0.1
        est.frame(FrameDone(k, 50, 0, 0.1, float("nan")))
    e = rec.estimates[0]
    assert e.total_seconds == pytest.approx(50 * 0.1, rel=0.05) and "nan" not in e.line()
    assert "feed-forward network" in e.line() and rec.progresses[-1].model_left == pytest.approx(4.7, rel=1e-6)


def test_the_settle_pass_is_counted_until_its_frames_are_rendered_again():
    clock, rec = Clock(), Record()
    est = Estimating(rec, clock)
    est.begin(10, "clip.mp4")
    est.plan(RenderPlan(frames=10, first_iterations=100, later_iterations=10, size=(64, 64), settle_frames=3))
    _frame(est, clock, 0, 100, 0.1)
    for k in (1, 2, 3):
        _frame(est, clock, k, 10, 0.1)
    before = rec.progresses[-1].model_left
    assert before == pytest.approx((6 + 3) * 1.0, rel=1e-6)  # 6 frames to go and 3 to render again
    for k in (3, 2, 1):  # the settle pass: no new frames, the same work as later frames
        for i in range(1, 11):
            clock.t += 0.1
            est.iterate(STIterate(i, 10, 0, 1, 1.0, {}, (64, 64)))
        est.frame(FrameDone(k, None, 10, 1.0, 1.0, settled=True))
    after = rec.progresses[-1]
    assert after.done == 4 and after.model_left == pytest.approx(6 * 1.0, rel=1e-6)


def test_the_scans_scene_cuts_cost_a_first_frame_each():
    clock, rec = Clock(), Record()
    est = Estimating(rec, clock)
    est.begin(10, "clip.mp4")
    plan = RenderPlan(frames=10, first_iterations=100, later_iterations=10, size=(64, 64))
    est.plan(plan)
    _frame(est, clock, 0, 100, 0.1)  # frame 0: 10 s
    _frame(est, clock, 1, 10, 0.1)
    assert rec.progresses[-1].model_left == pytest.approx(8 * 1.0, rel=1e-6)
    # The scan arrives: cuts at 5 and 8, each a fresh frame at frame 0's cost.
    est.plan(RenderPlan(frames=10, first_iterations=100, later_iterations=10, size=(64, 64),
                        motion=(1.0,) + (0.1,) * 9, cuts=(5, 8)))
    _frame(est, clock, 2, 10, 0.1)
    p = rec.progresses[-1]
    assert p.done == 3  # the second plan does not start the count again
    assert p.model_left == pytest.approx(5 * 1.0 + 2 * 10.0, rel=1e-6)


def test_motion_foresees_the_later_frames_that_stop_early():
    """Frames that move a lot use the whole budget; the scan says the rest hardly move, so they
    are foreseen at fewer iterations, in proportion: at the prior factor until a frame has
    stopped early (raised where frames at their budget say it is larger), then with the
    smallest factor that accounts for the frames measured."""
    clock, rec = Clock(), Record()
    est = Estimating(rec, clock)
    est.begin(20, "clip.mp4")
    motion = (1.0,) + (0.2,) * 9 + (0.05,) * 10
    est.plan(RenderPlan(frames=20, first_iterations=100, later_iterations=20, size=(64, 64), early_stop=True,
                        motion=motion))
    _frame(est, clock, 0, 100, 0.1)
    assert est._factor == PRIOR_FACTOR  # (nothing measured yet)
    for k in range(1, 10):
        _frame(est, clock, k, 20, 0.1)  # at the budget: the factor is at least 20 / 0.2 = 100
    # ... less than the prior: the rest at the prior's iterations (0.05 x 200 = 10), and the range
    # reaches their whole budget
    assert rec.progresses[-1].model_left == pytest.approx(10 * 10 * 0.1, rel=1e-6)
    e = est._estimate(clock())
    assert e.high_seconds >= clock() + 10 * 20 * 0.1
    _frame(est, clock, 10, 5, 0.1)  # one of them stopped after 5: the factor is 100
    # the 9 others at motion 0.05: 100 x 0.05 = 5 iterations each, at 0.1 s
    assert rec.progresses[-1].model_left == pytest.approx(9 * 5 * 0.1, rel=1e-6)
    _frame(est, clock, 11, 10, 0.1)
    _frame(est, clock, 12, 10, 0.1)  # two took 10: the factor that fits them best is 200
    assert rec.progresses[-1].model_left == pytest.approx(7 * 10 * 0.1, rel=1e-6)
    # Frames at their budget that hardly move raise the prior: 20 iterations at motion 0.05 say
    # the factor is at least 400.
    est3 = Estimating(Record(), Clock())
    est3.plan(RenderPlan(frames=20, first_iterations=100, later_iterations=20, size=(64, 64), early_stop=True,
                         motion=(1.0,) + (0.05,) * 19))
    est3.later_its.append((0.05, 20))
    est3._fit()
    assert est3._factor == pytest.approx(400.0) and est3._prior
    # Without the early stop every frame takes its budget, whatever the motion.
    est2 = Estimating(Record(), Clock())
    est2.plan(RenderPlan(frames=20, first_iterations=100, later_iterations=20, size=(64, 64), motion=motion))
    assert est2._factor is None


def test_the_motion_fit_sums_each_frames_error_as_a_direct_sum_does():
    """The fit's swept sums equal ``sum(|min(cap, k u) - n|)`` summed point by point, at every
    candidate factor and between them, with frames at, under and over the budget and ties."""
    rng = np.random.default_rng(7)
    for trial in range(200):
        count, cap = int(rng.integers(1, 80)), float(rng.integers(1, 30))
        us = rng.uniform(1e-3, 0.5, count)
        if trial % 2:
            us = np.round(us, 2) + 0.01  # equal motions: tied candidates
        ns = rng.integers(1, int(cap) + 3, count).astype(np.float64)
        ks = np.concatenate([np.unique(np.minimum(ns, cap) / us), rng.uniform(0, 2 / us.min(), 8), [0.0]])
        direct = np.array([np.abs(np.minimum(cap, k * us) - ns).sum() for k in ks])
        # (float64 sums of at most 80 terms of a few hundred: within 1e-9 of each other)
        np.testing.assert_allclose(fit_errors(us, ns, cap, ks), direct, rtol=1e-9, atol=1e-9)


def test_a_render_sends_the_scan_as_a_second_plan(tmp_path, capsys):
    src = make_clip(tmp_path / "cut.mp4", frames=10, size=(96, 64), audio=(), cut_at=6)
    write_image(tmp_path / "s.png", stripes(48, 48))
    assert main(["render", str(src), "--style", str(tmp_path / "s.png"), "-o", str(tmp_path / "o.mp4"),
                 "--progress", "json", *TINY]) == 0
    events = [json.loads(ln) for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    plans = [e for e in events if e["event"] == "plan"]
    assert len(plans) == 2 and not plans[0]["motion"] and plans[0]["early_stop"] and plans[0]["scanning"]
    assert plans[1]["cuts"] == [6] and len(plans[1]["motion"]) == 10 and plans[1]["motion"][0] == 1.0
    assert not plans[1]["scanning"]
    restarted = [e["index"] for e in events if e["event"] == "frame" and e["restarted"]]
    assert restarted == [6]  # the render found the cut the scan foresaw


def test_a_scan_done_during_frame_0_reaches_the_estimate_before_frame_0_ends(tmp_path, capsys, monkeypatch):
    """The scan's plan is handed on at the first iteration after the scan ends, not at frame 0's end
    (here the scan runs to its end as it is started, so frame 0's first iteration finds it)."""
    from videostyle.render.scan import BackgroundScan

    monkeypatch.setattr(BackgroundScan, "start", BackgroundScan.run)
    src = make_clip(tmp_path / "cut.mp4", frames=8, size=(96, 64), audio=(), cut_at=5)
    write_image(tmp_path / "s.png", stripes(48, 48))
    assert main(["render", str(src), "--style", str(tmp_path / "s.png"), "-o", str(tmp_path / "o.mp4"),
                 "--progress", "json", *TINY]) == 0
    events = [json.loads(ln) for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    kinds = [(e["event"], e.get("index")) for e in events if e["event"] in ("plan", "iterate", "frame")]
    second = [i for i, e in enumerate(events) if e["event"] == "plan"][1]
    first_frame = next(i for i, e in enumerate(events) if e["event"] == "frame")
    first_iterate = next(i for i, e in enumerate(events) if e["event"] == "iterate")
    assert second < first_iterate < first_frame, kinds[:6]
    assert events[second]["cuts"] == [5]


def test_a_scan_that_fails_ends_the_wait_for_it(tmp_path, capsys, monkeypatch):
    """A scan that fails (it only informs the estimate) still ends in a second plan, without
    motion, so that the estimate stops counting iterations as run beside it."""
    import importlib

    scan_mod = importlib.import_module("videostyle.render.scan")  # (videostyle.render is also the API's function)

    def broken(*args, **kwargs):
        raise ValueError("unreadable")

    monkeypatch.setattr(scan_mod, "scan", broken)
    src = make_clip(tmp_path / "c.mp4", frames=6, size=(96, 64), audio=())
    write_image(tmp_path / "s.png", stripes(48, 48))
    assert main(["render", str(src), "--style", str(tmp_path / "s.png"), "-o", str(tmp_path / "o.mp4"),
                 "--progress", "json", *TINY]) == 0
    events = [json.loads(ln) for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    plans = [e for e in events if e["event"] == "plan"]
    assert [p["scanning"] for p in plans] == [True, False] and not plans[1]["motion"]


def _iterations(est: Estimating, clock: Clock, first: int, last: int, secs: float, of: int = 300) -> None:
    for i in range(first, last + 1):
        clock.t += secs
        est.iterate(STIterate(i, of, 0, 1, 1.0, {}, (64, 64)))


def test_iterations_beside_the_scan_do_not_set_the_rate():
    """The scan shares the cores with frame 0's first iterations: the first estimate waits for
    iterations after it, and the bar shows no time left before that estimate, then its number."""
    clock, rec = Clock(), Record()
    est = Estimating(rec, clock)
    est.begin(10, "clip.mp4")
    plan = RenderPlan(frames=10, first_iterations=300, later_iterations=10, size=(64, 64), scanning=True)
    est.plan(plan)
    _iterations(est, clock, 1, 20, 0.2)  # twice as slow beside the scan
    assert not rec.estimates and all(p.seconds_left is None for p in rec.progresses)
    est.plan(replace(plan, scanning=False, motion=(1.0,) + (0.5,) * 9))
    _iterations(est, clock, 21, 20 + MEASURED - 1, 0.1)
    assert not rec.estimates
    _iterations(est, clock, 20 + MEASURED, 20 + MEASURED, 0.1)
    (e,) = rec.estimates
    assert e.iteration_seconds == pytest.approx(0.1)
    p = rec.progresses[-1]
    assert p.seconds_left == pytest.approx(e.total_seconds - clock.t) and p.model_left == p.seconds_left


def test_a_scan_longer_than_a_few_dozen_iterations_does_not_hold_the_estimate_back():
    """Said from the iterations beside the scan after BESIDE_SCAN of them, revised when the scan
    ends and again once MEASURED iterations after it are in."""
    clock, rec = Clock(), Record()
    est = Estimating(rec, clock)
    est.begin(10, "clip.mp4")
    plan = RenderPlan(frames=10, first_iterations=300, later_iterations=10, size=(64, 64), scanning=True)
    est.plan(plan)
    _iterations(est, clock, 1, 1 + START_DELTAS + BESIDE_SCAN, 0.2)
    (e,) = rec.estimates
    assert e.iteration_seconds == pytest.approx(0.2)
    est.plan(replace(plan, scanning=False, motion=(1.0,) + (0.5,) * 9))
    assert len(rec.estimates) == 2  # the scan's motion
    n = 1 + START_DELTAS + BESIDE_SCAN
    _iterations(est, clock, n + 1, n + MEASURED, 0.1)
    assert len(rec.estimates) == 3 and rec.estimates[-1].iteration_seconds == pytest.approx(0.1)
    assert [x.revision for x in rec.estimates] == [0, 1, 2]


def test_a_render_of_chains_only_says_what_it_does():
    """A painted render has no fresh frame: each frame is a chain's, from the one before."""
    clock, rec = Clock(), Record()
    est = Estimating(rec, clock)
    est.begin(6, "clip.mp4")
    est.plan(RenderPlan(frames=6, first_iterations=0, later_iterations=10, size=(64, 64)))
    for k in (1, 2):
        _frame(est, clock, k, 10, 0.1)
    line = rec.estimates[0].line()
    assert "6 frame(s) at 64x64, each up to 10 iterations from the frame before" in line
    assert "feed-forward" not in line and rec.progresses[-1].model_left == pytest.approx(4 * 1.0, rel=1e-6)


DATA = Path(__file__).parent / "data"


def _replayed(name: str) -> tuple[list, list, float, float]:
    """A recorded render's events (``--progress-file``, gzipped) through the estimator again, on
    the clock they were written at: (time, estimate) for each estimate, its progress, the time
    frame 0 ended, and the real total."""
    now = [0.0]

    class Timed(Record):
        def estimate(self, e) -> None:  # type: ignore[override]
            self.estimates.append((now[0], e))

    rec = Timed()
    frame0: list[float] = []
    with gzip.open(DATA / name, "rt") as f:
        real = replay(f, Estimating(rec, clock=lambda: now[0]), now,
                      lambda est, plan: frame0.append(now[0]))
    return rec.estimates, rec.progresses, frame0[0], real


@pytest.mark.parametrize("name", ["bunny256_48.jsonl.gz", "bunny256_240.jsonl.gz", "bunny512_48.jsonl.gz",
                                  "bunny512_240.jsonl.gz", "bikes256_48.jsonl.gz", "bikes256_250.jsonl.gz",
                                  "bikes512_48.jsonl.gz", "bikes512_250.jsonl.gz"])
def test_a_recorded_render_is_foreseen_within_a_quarter_before_frame_0_ends(name):
    """The shared bunny clip at 256 and 512 px (48 frames and all 240), and the
    bikes clip at 256 px (48 frames, a scene cut at frame 30; all 250, ten frames started again)
    and at 512 px (48 frames; all 250, whose scan ran beside frame 0's first eight iterations and
    made them nearly twice as slow as the rest),
    the defaults (300 iterations for frame 0 and a cut, up to 20 for later frames with the
    loss-ratio stop, the 1 s settle pass), as renders on 2-core CPUs wrote their events: every
    estimate said before frame 0 ended is within 25% of the real total, the real total falls in
    each one's range, and the bar's time left never swings by more than 2x within a minute after
    the first estimate. (In the whole bunny clip the first three seconds run every later frame's
    budget and the rest stop after a few iterations: only the scan's motion, in before frame 0
    ends, tells them apart. In the whole bikes clip five fast frames in a row, 97-101, are cuts at
    256 px and not at the scan's 160: that file's plan carries the scan's cuts as the scan now
    finds them, at the render's size where it doubts; the render's own events are as recorded.)"""
    estimates, progresses, frame0, real = _replayed(name)
    assert [e.revision for _, e in estimates] == list(range(len(estimates)))
    early = [e for t, e in estimates if t < frame0]
    assert len(early) >= 2  # the first, and revised as frame 0's iterations came in
    for e in early:
        assert abs(e.total_seconds / real - 1) <= 0.25, (e.revision, e.total_seconds, real)
        assert e.low_seconds <= real <= e.high_seconds
    start = estimates[0][0]
    lefts = [(p.elapsed, p.seconds_left) for p in progresses
             if p.seconds_left and start <= p.elapsed <= start + 60]
    swing = max(max(a, b) / min(a, b) for i, (t, a) in enumerate(lefts) for u, b in lefts[i:] if u - t <= 60)
    assert swing <= 2.0


@pytest.mark.slow
def test_a_real_render_ends_inside_the_range_of_every_estimate_said_before_frame_0_ends(tmp_path):
    """A whole render on this machine with the defaults (300 iterations for frame 0, up to 20 for
    later frames with the loss-ratio stop, the settle pass), the network at its full depth with
    random weights on a small moving clip: each estimate said before frame 0 ends has the time
    the render took inside its range. (Its number is not held to 25% here: how early later
    frames stop depends on the network and the footage, and the prior is for the real network
    on real footage; the recorded renders above hold that.)"""
    from videostyle.config import Config, apply
    from videostyle.engines import render_spec
    from videostyle.render.pipeline import render_video

    src = make_clip(tmp_path / "clip.mp4", frames=36, size=(128, 72), audio=())
    write_image(tmp_path / "s.png", stripes(64, 64))
    said: list = []
    before_frame_0: list[int] = []

    class Said(Record):
        def frame(self, done) -> None:  # type: ignore[override]
            before_frame_0.append(len(said))

        def estimate(self, e) -> None:  # type: ignore[override]
            said.append(e)

    cfg = apply(Config(), {"model.name": "random", "style.images": [str(tmp_path / "s.png")], "render.device": "cpu"})
    real = render_video(src, tmp_path / "out.mp4", render_spec(cfg), Estimating(Said())).seconds
    assert before_frame_0[0] >= 1
    for e in said[:before_frame_0[0]]:
        assert e.low_seconds <= real <= e.high_seconds, (e.revision, e.low_seconds, real, e.high_seconds)
