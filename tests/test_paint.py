"""Painted keyframes (--paint): the painted frame is the painting, the frames around it follow it
through the flow, two paintings blend across their gap, and a painting that does not fit its
frame or the clip says so. The shot is a PNG sequence of a texture moving 2 px a frame (lossless,
so the flow is what limits the match)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from videostyle import config as C
from videostyle.cli import main
from videostyle.io.images import write_image
from videostyle.io.media import read_frames
from videostyle.render.paint import PaintRender
from videostyle.render.policy import VideoStylizer
from videostyle.report import Reporter
from videostyle.temporal import paint
from videostyle.temporal.flow import FramePair, pair
from videostyle.engines import render_spec
from videostyle.errors import worded

H, W, SHIFT, N = 96, 128, 2, 8
TINY = {"model.name": "random", "optim.size": W, "optim.iterations": 2, "render.device": "cpu",
        "render.precision": "fp32", "temporal.settle": 0}


def _texture(frames: int = N) -> np.ndarray:
    rng = np.random.default_rng(0)
    big = cv2.GaussianBlur(rng.random((H, W + SHIFT * frames, 3)).astype(np.float32), (0, 0), 2.0)
    return ((big - big.min()) / (big.max() - big.min()) * 255).astype(np.uint8)


def _frame(big: np.ndarray, k: int, frames: int = N) -> np.ndarray:
    """Frame k: the texture moved right by SHIFT px a frame."""
    x = SHIFT * (frames - k)
    return big[:, x:x + W]


def _shot(tmp_path: Path, frames: int = N) -> tuple[Path, np.ndarray]:
    big = _texture(frames)
    shot = tmp_path / "shot"
    shot.mkdir()
    for k in range(frames):
        write_image(shot / f"{k:04d}.png", _frame(big, k, frames))
    return shot / "%04d.png", big


class Notes(Reporter):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def notice(self, message: str) -> None:
        self.lines.append(worded(message, flags=True))  # (as the command line words it)


def _rendered(shot: Path, out: Path, paintings: list[str], later: int = 0, **more: object) -> tuple[PaintRender, Notes]:
    """A painted render's passes, run, with its work folder kept to look into."""
    cfg = C.apply(C.Config(), {**TINY, "optim.iterations_later": later, "style.paintings": paintings, **more})
    notes = Notes()
    pr = PaintRender(shot, out, render_spec(cfg), notes, True, True)
    pr.cache_source()
    for p in pr.passes:
        pr.render_pass(p)
    return pr, notes


def _reliable(pr: PaintRender, k: int, prev: int) -> np.ndarray:
    m = pair(pr.source.load(k), pr.source.load(prev), pr.vs.spec.flow).mask > 0.5
    m[:2], m[-2:], m[:, :2], m[:, -2:] = False, False, False, False
    return m


def test_passes_and_blend_weights_run_from_one_painting_to_the_next():
    ps = paint.passes([5, 12], 20)
    assert [(p.name, p.frames[0], p.frames[-1]) for p in ps] == [
        ("bwd000005", 4, 0), ("fwd000005", 6, 11), ("bwd000012", 11, 6), ("fwd000012", 13, 19)]
    assert paint.weights(5, [5, 12]) == ((5, 1.0),) and paint.weights(12, [5, 12]) == ((12, 1.0),)
    assert paint.weights(2, [5, 12]) == ((5, 1.0),) and paint.weights(15, [5, 12]) == ((12, 1.0),)
    ws = [dict(paint.weights(i, [5, 12])) for i in range(6, 12)]
    assert all(w[5] + w[12] == pytest.approx(1.0) for w in ws)
    assert [round(w[12], 3) for w in ws] == [round((i - 5) / 7, 3) for i in range(6, 12)]  # rising to the second
    assert paint.passes([0], 1) == [] and paint.passes([0, 1], 2) == []


def test_the_painted_frame_is_the_painting_and_the_shift_carries_it(tmp_path):
    shot, big = _shot(tmp_path)
    painting = 255 - _frame(big, 0)  # a painting over frame 0: its own colours, the frame's layout
    write_image(tmp_path / "p0.png", painting)
    pr, notes = _rendered(shot, tmp_path / "o.mp4", [f"f:0={tmp_path / 'p0.png'}"])
    assert np.array_equal(pr.frame(0), painting)
    for k in range(1, N):
        m = _reliable(pr, k, k - 1)
        m[:, :SHIFT * k + 2] = False  # (what came in from the left edge was never painted)
        d = np.abs(pr.frame(k).astype(int) - (255 - _frame(big, k)))[m]
        assert m.mean() > 0.7 and d.mean() < 0.5 and np.percentile(d, 99) <= 2, k
    assert not [n for n in notes.lines if "--paint" in n and n.startswith("warning")]


def test_a_long_pass_is_held_to_its_painting_beyond_the_reach_of_one_flow(tmp_path, monkeypatch):
    # 12 frames of 2 px: past frame 4 the flow straight to the painting fails (more than the
    # search reaches) and the chained flow carries it; without the hold the chain drifts.
    n = 12
    shot, big = _shot(tmp_path, n)
    write_image(tmp_path / "p.png", 255 - _frame(big, 0, n))
    drift = {}
    anchors = []
    begin = VideoStylizer.begin_pass
    monkeypatch.setattr(VideoStylizer, "begin_pass", lambda self, p: (anchors.append(p.anchor), begin(self, p))[1])
    for held in (True, False):
        cfg = C.apply(C.Config(), {**TINY, "optim.iterations_later": 5, "style.paintings": [f"f:0={tmp_path / 'p.png'}"]})
        pr = PaintRender(shot, tmp_path / f"o{held}.mkv", render_spec(cfg), Notes(), True, True)
        pr.anchor = held
        pr.cache_source()
        for p in pr.passes:
            pr.render_pass(p)
        if held:  # the chain of flows leads back to the painting: 2 px a frame, 22 px in all
            chain, reliable = anchors[-1].chain, anchors[-1].reliable
            assert reliable.mean() > 0.6
            assert np.median(chain[..., 0][reliable > 0.5]) == pytest.approx(-2 * (n - 1), abs=0.3)
        k = n - 1
        m = _reliable(pr, k, k - 1)
        m[:, :SHIFT * k + 2] = False
        drift[held] = np.abs(pr.frame(k).astype(float) - (255 - _frame(big, k, n)))[m].mean()
    assert drift[True] < 0.75 * drift[False], drift


def test_the_painting_is_carried_by_whichever_flow_carries_its_own_frame():
    # The frame is the keyframe moved 6 px right. Two flows lead back: the straight one and the
    # chain. Whichever is wrong (the chain drifted by 0.8 px; the straight one lost, though its
    # round trip passed), the painting arrives where the frame's own pixels say it goes.
    big = _texture()
    key, cur = _frame(big, 0), _frame(big, 3)
    painting = 255 - key
    ones = np.ones((H, W), np.float32)

    def flow(dx: float) -> np.ndarray:
        f = np.zeros((H, W, 2), np.float32)
        f[..., 0] = dx
        return f

    for straight, chained in ((-6.0, -5.2), (0.0, -6.0)):
        anchor = paint.Anchor(key, painting)
        carried, held = anchor.term(cur, flow(chained), ones, lambda a, b: FramePair(flow(straight), ones))
        d = np.abs(carried.astype(int) - (255 - cur))[:, 8:]
        assert d.mean() < 0.5 and held.min() == 1.0, (straight, chained, d.mean())


def test_two_paintings_blend_across_the_gap_and_each_end_is_its_painting(tmp_path):
    shot, big = _shot(tmp_path)
    first, last = 255 - _frame(big, 0), _frame(big, N - 1)[..., ::-1].copy()  # inverted; channels swapped
    write_image(tmp_path / "a.png", first)
    write_image(tmp_path / "b.png", last)
    pr, _ = _rendered(shot, tmp_path / "o.mp4", [f"f:0={tmp_path / 'a.png'}", f"f:{N - 1}={tmp_path / 'b.png'}"])
    assert np.array_equal(pr.frame(0), first) and np.array_equal(pr.frame(N - 1), last)
    for k in range(1, N - 1):
        w = k / (N - 1)
        fwd = pr.work.store("fwd000000").load(k).astype(np.float32)
        bwd = pr.work.store(f"bwd{N - 1:06d}").load(k).astype(np.float32)
        assert np.abs(pr.frame(k) - ((1 - w) * fwd + w * bwd)).max() <= 0.5 + 1e-6
        # each pass carries its own painting: the backward one the second painting, moved back
        # (what came in at the right edge, going backwards, was never painted)
        m = _reliable(pr, k, k + 1)
        m[:, W - SHIFT * (N - 1 - k) - 2:] = False
        assert np.abs(bwd - _frame(big, k)[..., ::-1])[m].mean() < 0.5


def test_a_painted_render_writes_the_clip_and_the_painting_opens_it(tmp_path, capsys):
    shot, big = _shot(tmp_path)
    painting = 255 - _frame(big, 0)
    write_image(tmp_path / "p0.png", painting)
    out = tmp_path / "out.mov"
    assert main(["render", str(shot), "--paint", f"f:0={tmp_path / 'p0.png'}", "-o", str(out), "--model", "random",
                 "--size", str(W), "--iterations-later", "2", "--device", "cpu", "--precision", "fp32", "-q",
                 "--codec", "prores"]) == 0
    frames = [f.image for f in read_frames(out)]
    assert len(frames) == N
    assert np.abs(frames[0].astype(int) - painting).mean() < 1.5  # (through ProRes 4444)
    assert not list(tmp_path.glob(".out.mov*"))


def test_a_painting_that_does_not_follow_its_frame_warns(tmp_path):
    shot, big = _shot(tmp_path)
    other = _texture(N + 40)[:, :W]  # another shot altogether
    write_image(tmp_path / "p.png", 255 - other)
    pr, notes = _rendered(shot, tmp_path / "o.mp4", [f"f:3={tmp_path / 'p.png'}"])
    warns = [n for n in notes.lines if "--paint" in n and n.startswith("warning")]
    assert len(warns) == 1 and "f:3=" in warns[0] and "frame 3" in warns[0]
    # a painting that does follow its frame correlates well above the bar; another frame's does not
    small = pr.source.load(3)
    assert paint.layout_match(255 - small, small) > 0.3 > paint.MATCH
    assert paint.layout_match(255 - pr.source.load(3), _frame(_texture(N + 40), 0, N + 40)) < paint.MATCH


def test_a_painting_outside_the_clip_is_refused_in_one_line(tmp_path, capsys):
    shot, big = _shot(tmp_path)
    write_image(tmp_path / "p.png", _frame(big, 0))
    out = tmp_path / "o.mp4"
    rc = main(["render", str(shot), "--paint", f"f:50={tmp_path / 'p.png'}", "-o", str(out), "--model", "random",
               "--size", "64", "--device", "cpu", "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and "f:50=" in err[0] and "frame 50" in err[0] and "0 to 7" in err[0]
    assert not out.exists()
    assert main(["render", str(shot), "--paint", "later=p.png", "-o", str(out), "-q"]) == 2
    assert "expected TIME=IMAGE" in capsys.readouterr().err


def _two_paintings_rendered(tmp_path: Path) -> tuple[Path, list[str], Path]:
    """The shot painted at its ends, its flags, and its frames rendered whole in one process
    (a PNG sequence: the frames themselves, not an encoder's rendering of them)."""
    shot, big = _shot(tmp_path)
    write_image(tmp_path / "a.png", 255 - _frame(big, 0))
    write_image(tmp_path / "b.png", _frame(big, N - 1)[..., ::-1].copy())
    paintings = [f"f:0={tmp_path / 'a.png'}", f"f:{N - 1}={tmp_path / 'b.png'}"]
    args = ["--model", "random", "--size", "64", "--iterations-later", "3", "--device", "cpu", "--precision", "fp32",
            "--threads", "1", "-q"] + [x for p in paintings for x in ("--paint", p)]
    whole = tmp_path / "whole" / "%04d.png"
    whole.parent.mkdir()
    assert main(["render", str(shot), "-o", str(whole), *args]) == 0
    return shot, args, whole


def _interrupted_at(monkeypatch, saves: int) -> None:
    """Make the painted render's ``saves``-th frame save raise Ctrl-C (undo with monkeypatch.undo)."""
    from videostyle.render import paint as paint_render

    calls = {"n": 0}
    real = paint_render.save_frame

    def interrupted(*a, **k):
        calls["n"] += 1
        if calls["n"] == saves:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(paint_render, "save_frame", interrupted)


def _same_frames(a: Path, b: Path) -> bool:
    fa, fb = [f.image for f in read_frames(a)], [f.image for f in read_frames(b)]
    return len(fa) == len(fb) == N and all(np.array_equal(x, y) for x, y in zip(fa, fb))


def test_a_resumed_painted_render_gives_the_frames_of_an_uninterrupted_one(tmp_path, monkeypatch):
    shot, args, whole = _two_paintings_rendered(tmp_path)
    _interrupted_at(monkeypatch, N - 2 + 3)  # in the middle of the second pass
    part = tmp_path / "part" / "%04d.png"
    part.parent.mkdir()
    assert main(["render", str(shot), "-o", str(part), *args]) == 130
    assert not list(part.parent.glob("*.png"))
    monkeypatch.undo()
    assert main(["render", str(shot), "-o", str(part), *args]) == 0
    assert _same_frames(whole, part)


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs the ray extra")
def test_painted_passes_run_side_by_side_with_workers_and_resume_from_one_process(tmp_path, monkeypatch):
    shot, args, whole = _two_paintings_rendered(tmp_path)
    _interrupted_at(monkeypatch, 3)  # one process's render, in its first pass
    part = tmp_path / "part" / "%04d.png"
    part.parent.mkdir()
    assert main(["render", str(shot), "-o", str(part), *args]) == 130
    monkeypatch.undo()

    from videostyle.render import paint as paint_render

    def not_here(self, p):  # the passes run in Ray's workers, not in this process
        raise AssertionError(f"pass {p.name} rendered in the driver")

    monkeypatch.setattr(paint_render.PaintRender, "render_pass", not_here)
    assert main(["render", str(shot), "-o", str(part), *args, "--workers", "2"]) == 0
    assert _same_frames(whole, part)
    assert not list(part.parent.glob(".*videostyle-work"))


def test_proposals_are_the_first_frame_the_cuts_and_where_the_motion_adds_up():
    u = (1.0,) + (0.3,) * 9 + (0.9,) + (0.05,) * 9
    assert paint.propose(u, (10,), threshold=1.0) == [0, 4, 8, 10]  # 0.3 x 4 passes 1; the cut; 0.05 x 9 does not
    assert paint.propose(u, (10,), threshold=1.0, every=3) == [0, 3, 6, 9, 10, 13, 16, 19]
    assert paint.propose((), ()) == []


def test_keyframes_writes_the_frames_to_paint_and_the_flags_that_use_them(tmp_path, capsys):
    from .clips import make_clip

    clip = make_clip(tmp_path / "c.mp4", frames=12, size=(160, 120), audio=(), cut_at=7)
    keys = tmp_path / "keys"
    assert main(["keyframes", str(clip), "-o", str(keys), "--threshold", "100"]) == 0
    assert sorted(p.name for p in keys.iterdir()) == ["0000.png", "0007.png"]  # the first frame and the cut
    out = capsys.readouterr().out
    assert f"--paint f:7={keys / '0007.png'}" in out and f"--paint f:0={keys / '0000.png'}" in out
    first = next(read_frames(clip)).image
    assert np.array_equal(cv2.cvtColor(cv2.imread(str(keys / "0000.png")), cv2.COLOR_BGR2RGB), first)
    assert main(["keyframes", str(clip), "-o", str(keys), "--every", "5"]) == 1  # without -y: refused
    assert "exists" in capsys.readouterr().err
    assert main(["keyframes", str(clip), "-o", str(keys), "--every", "5", "--threshold", "100", "-y"]) == 0
    assert sorted(p.name for p in keys.iterdir()) == ["0000.png", "0005.png", "0007.png"]


def test_yaml_paintings_are_the_paint_flags():
    flat = C.flatten({"paintings": [{"at": "f:120", "image": "p120.png"}, {"at": 8.5, "image": "p204.png"}]})
    cfg = C.apply(C.Config(), flat)
    assert cfg.style.paintings == ("f:120=p120.png", "8.5=p204.png")
    with pytest.raises(C.ConfigError, match="did you mean 'image'"):
        C.flatten({"paintings": [{"at": "f:1", "imgae": "p.png"}]})


def test_a_partial_painting_covers_its_part_and_the_rest_keeps_the_content(tmp_path):
    """An alpha channel marks what was painted: there the painting, carried by the flow; the rest
    (no --style) keeps the frame's content."""
    shot, big = _shot(tmp_path)
    painting = 255 - _frame(big, 0)
    alpha = np.zeros((H, W), np.uint8)
    alpha[:, : W // 2] = 255  # the left half painted
    rgba = np.dstack([painting, alpha])
    cv2.imwrite(str(tmp_path / "half.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    pr, _ = _rendered(shot, tmp_path / "o.mp4", [f"f:0={tmp_path / 'half.png'}"], later=2)
    first = pr.frame(0)
    assert np.array_equal(first[:, : W // 2], painting[:, : W // 2])
    assert np.array_equal(first[:, W // 2:], pr.source.load(0)[:, W // 2:])
    for k in (3, N - 1):
        out, src = pr.frame(k).astype(int), pr.source.load(k).astype(int)
        edge = W // 2 + SHIFT * k  # the painted half's edge, moved with the shot
        rest = np.abs(out - src)[4:-4, edge + 6:-4]
        painted = np.abs(out - src)[4:-4, SHIFT * k + 6:edge - 6]
        assert rest.mean() < 2.0 and painted.mean() > 30, k


def test_a_painted_render_into_an_image_sequence_starts_with_the_painting(tmp_path):
    shot, big = _shot(tmp_path)
    painting = 255 - _frame(big, 0)
    write_image(tmp_path / "p0.png", painting)
    out = tmp_path / "out"
    out.mkdir()
    assert main(["render", str(shot), "--paint", f"f:0={tmp_path / 'p0.png'}", "-o", str(out / "%04d.png"),
                 "--model", "random", "--size", str(W), "--iterations-later", "1", "--device", "cpu",
                 "--precision", "fp32", "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"{i:04d}.png" for i in range(N)]
    first = cv2.cvtColor(cv2.imread(str(out / "0000.png")), cv2.COLOR_BGR2RGB)
    assert np.array_equal(first, painting)  # lossless: the painting itself


def test_a_mask_beside_a_painting_keeps_its_region(tmp_path):
    """--mask right.png (keeping the content there) and a painting of the whole frame: the
    frames after it follow the painting on the left and keep the content on the right."""
    shot, big = _shot(tmp_path)
    write_image(tmp_path / "p0.png", 255 - _frame(big, 0))
    right = np.zeros((H, W, 3), np.uint8)
    right[:, W // 2:] = 255
    write_image(tmp_path / "right.png", right)
    pr, _ = _rendered(shot, tmp_path / "o.mp4", [f"f:0={tmp_path / 'p0.png'}"], later=2,
                      **{"style.masks": [str(tmp_path / "right.png")], "style.mask_feather": 0.0})
    for k in (2, N - 1):
        out, src = pr.frame(k).astype(int), pr.source.load(k).astype(int)
        kept = np.abs(out - src)[4:-4, W // 2 + 4:-4]
        painted = np.abs(out - src)[4:-4, SHIFT * k + 6:W // 2 - 6]
        assert kept.mean() < 2.0 and painted.mean() > 30, k
    with pytest.raises(C.ConfigError, match="still mask images"):
        from .clips import make_clip

        video_mask = make_clip(tmp_path / "m.mp4", frames=3, size=(W, H), audio=())
        _rendered(shot, tmp_path / "o2.mp4", [f"f:0={tmp_path / 'p0.png'}"], **{"style.masks": [str(video_mask)]})
