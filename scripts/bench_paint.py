#!/usr/bin/env python
"""Painted keyframes against EbSynth on the same work. A flat-colour painting of frame 0 (the
frame's colours quantized to a few flat areas with dark outlines, as a quick paint-over looks; and
of frame 4 s on, for the two-painting case) is carried through the first seconds of the clip by
videostyle (``--paint``, Gatys, the defaults at --size) and by EbSynth's CLI run per frame as its
users run it (the painting as the style, the keyframe and the current frame as the guide; with
two paintings, a pass from each, blended by position as EbSynth's own blending does).

For each frame: the distance to the painting carried to it (the painting warped by the flow
from the frame to its keyframe, where that flow is reliable), the style loss against the
painting's Gram matrices, and, for the clip, the temporal error (``videostyle eval``'s measure)
and seconds per frame. Prints one table per case, beside a plain render with the painting(s) as
``--style`` images at the same iterations (its flicker is the baseline), then the frame-by-frame
decay of the two carried ones (``--every N``: every Nth frame).

    python scripts/bench_paint.py --ebsynth /path/to/ebsynth/bin/ebsynth --size 128 --seconds 5 \
        --strip docs/paint_strip.jpg

``--strip``: the one-painting case as a picture: the source frames a second apart, the painting,
and the frames carried from it, ours and the peer's.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import media_parser  # noqa: E402

from videostyle import config as C  # noqa: E402
from videostyle.engines import build_stylizer, render_flow_params  # noqa: E402
from videostyle.io.images import read_image, write_image  # noqa: E402
from videostyle.io.media import probe  # noqa: E402
from videostyle.metrics import temporal_error  # noqa: E402
from videostyle.engines import span  # noqa: E402
from videostyle.render.paint import PaintRender  # noqa: E402
from videostyle.engines import render_spec  # noqa: E402
from videostyle.report import Reporter  # noqa: E402
from videostyle.temporal import paint  # noqa: E402
from videostyle.temporal.flow import pair, warp  # noqa: E402


def flat_painting(frame: np.ndarray, colours: int = 6) -> np.ndarray:
    """``frame`` as flat areas of ``colours`` colours with dark outlines."""
    smooth = cv2.bilateralFilter(frame, 9, 60, 9)
    z = smooth.reshape(-1, 3).astype(np.float32)
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 1.0)
    _, labels, centres = cv2.kmeans(z, colours, None, crit, 3, cv2.KMEANS_PP_CENTERS)
    flat = centres[labels.ravel()].reshape(frame.shape).astype(np.uint8)
    edges = cv2.Canny(cv2.cvtColor(smooth, cv2.COLOR_RGB2GRAY), 60, 140)
    flat[edges > 0] = (flat[edges > 0] * 0.25).astype(np.uint8)
    return flat


def ebsynth(exe: Path, style: Path, guide_from: Path, guide_to: Path, out: Path) -> None:
    subprocess.run([str(exe), "-style", str(style), "-guide", str(guide_from), str(guide_to), "-output", str(out)],
                   check=True, capture_output=True)


def peer(exe: Path, frames: list[Path], paintings: dict[int, Path], tmp: Path) -> tuple[list[np.ndarray], float]:
    """EbSynth per frame from each painting, blended by position between two (as ours)."""
    painted = sorted(paintings)
    outs: list[np.ndarray] = []
    t0 = time.perf_counter()
    for i in range(len(frames)):
        acc = None
        for origin, w in paint.weights(i, painted):
            if i == origin:
                img = read_image(paintings[origin]).astype(np.float32)
            else:
                o = tmp / f"eb_{origin}_{i}.png"
                ebsynth(exe, paintings[origin], frames[origin], frames[i], o)
                img = read_image(o).astype(np.float32)
            acc = w * img if acc is None else acc + w * img
        outs.append(np.clip(np.round(acc), 0, 255).astype(np.uint8))
    return outs, (time.perf_counter() - t0) / len(frames)


def ours(clip: Path, n: int, size: int, paintings: dict[int, Path], out: Path,
         anchor: bool = True, start: bool = True, content: bool = True) -> tuple[list[np.ndarray], float]:
    cfg = C.apply(C.Config(), {"optim.size": size, "render.max_frames": n,
                               "style.paintings": [f"f:{i}={p}" for i, p in paintings.items()]})
    pr = PaintRender(clip, out, render_spec(cfg), Reporter(), True, True)
    pr.anchor, pr.anchor_start, pr.anchor_content = anchor, start, content
    pr.cache_source()
    t0 = time.perf_counter()
    for p in pr.passes:
        pr.render_pass(p)
    per = (time.perf_counter() - t0) / n
    frames = [pr.frame(i) for i in range(n)]
    pr.work.remove()
    return frames, per


def plain(clip: Path, n: int, size: int, paintings: dict[int, Path], out: Path) -> tuple[list[np.ndarray], float]:
    """A render with the painting(s) as plain ``--style`` images, no keyframes."""
    from videostyle.render.pipeline import render_video

    out.mkdir()
    cfg = C.apply(C.Config(), {"optim.size": size, "render.max_frames": n,
                               "style.images": [str(p) for p in paintings.values()]})
    t0 = time.perf_counter()
    render_video(clip, out / "%04d.png", render_spec(cfg), Reporter())
    per = (time.perf_counter() - t0) / n
    return [read_image(f) for f in sorted(out.glob("*.png"))], per


def measures(outs: list[np.ndarray], sources: list[np.ndarray], paintings: dict[int, np.ndarray],
             grams: dict[int, object]) -> list[tuple[float, float]]:
    """Per frame: the distance to its nearer painting carried to it (reliable pixels, /255) and
    the style loss against that painting."""
    params = render_flow_params(C.Config())
    painted = sorted(paintings)
    rows = []
    for i, (o, s) in enumerate(zip(outs, sources)):
        k = min(painted, key=lambda p: abs(p - i))
        pk = pair(s, sources[k], params)
        carried = warp(paintings[k], pk.back)
        m = pk.mask > 0.5
        dist = float(np.abs(o.astype(np.float32) - carried)[m].mean() / 255) if m.any() else float("nan")
        rows.append((dist, grams[k].score(o, s)["style"]))  # type: ignore[attr-defined]
    return rows


def flows(sources: list[np.ndarray], painting: np.ndarray) -> None:
    """How well each way of leading back to frame 0 carries it: frame 0 carried to each frame by
    the flow, against the frame itself (mean absolute difference over all pixels, /255), for the
    straight flow alone, the composed chain alone, the straight one where the two agree within
    0.25 px (the rule before the photometric choice), and ``paint.Anchor``'s choice."""
    params = render_flow_params(C.Config())
    pp = lambda a, b: pair(a, b, params)  # noqa: E731
    anchor = paint.Anchor(sources[0], painting)
    rows: dict[str, list[float]] = {"straight flow": [], "composed chain": [], "straight where within 0.25 px": [],
                                    "chosen per patch (--paint)": []}
    straight_share = []
    for i in range(1, len(sources)):
        p1 = pp(sources[i], sources[i - 1])
        chosen, _, straight = anchor.carry(sources[i], p1.back, p1.mask, pp)
        anchor.advance(sources[i], sources[i - 1], pp)
        chain = anchor.chain  # (the frame-to-frame flows composed back to frame 0)
        direct = pp(sources[i], sources[0])
        agree = (np.linalg.norm(direct.back - chain, axis=2) < 0.25) & (direct.mask > 0.5)
        straight_share.append(float(straight.mean()))
        for name, f in zip(rows, (direct.back, chain, np.where(agree[..., None], direct.back, chain), chosen)):
            carried = warp(sources[0], f.astype(np.float32))
            rows[name].append(float(np.abs(carried.astype(np.float32) - sources[i]).mean() / 255))
    print("\n# frame 0 carried to each later frame, against the frame (mean absolute difference, /255)")
    print("| flow back to frame 0 | median | at the last frame |")
    print("| --- | --- | --- |")
    for name, r in rows.items():
        print(f"| {name} | {statistics.median(r):.4f} | {r[-1]:.4f} |")
    print(f"(the choice takes the straight flow at {statistics.median(straight_share):.0%} of the pixels, median)")


def main() -> None:
    ap = media_parser(__doc__, frames=0, size=128)
    ap.add_argument("--ebsynth", type=Path, required=True, help="EbSynth's CLI (built with build-linux-cpu_only.sh)")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--variants", action="store_true",
                    help="also the passes with the frame as the content target, then also started from the frame "
                         "before (not the carried painting), then held to the frame before only")
    ap.add_argument("--flows", action="store_true",
                    help="also how well each way of leading back to the painting's frame carries that frame")
    ap.add_argument("--every", type=int, default=1, help="the frame-by-frame table: every Nth frame")
    ap.add_argument("--strip", type=Path, help="write the one-painting case's strip here (JPEG or PNG)")
    args = ap.parse_args()
    info = probe(args.clip)
    fps = float(info.fps)
    n = int(round(args.seconds * fps))
    cfg = C.apply(C.Config(), {"optim.size": args.size, "render.max_frames": n})
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        from videostyle.factory import prepare_content

        sources = [prepare_content(fr.image, args.size, "clip") for fr in span(cfg).frames(args.clip, info=info)]
        files = []
        for i, s in enumerate(sources):
            files.append(tmp / f"src_{i:04d}.png")
            write_image(files[-1], s)
        if args.flows:
            flows(sources, flat_painting(sources[0]))
        cases = {"one painting (frame 0)": [0], f"two paintings (frames 0 and {int(4 * fps)})": [0, int(4 * fps)]}
        seen: set[tuple[int, ...]] = set()
        for ci, (name, at) in enumerate(cases.items()):
            at = [a for a in at if a < n]
            if tuple(at) in seen:
                continue
            seen.add(tuple(at))
            pics = {a: flat_painting(sources[a]) for a in at}
            pfiles = {}
            for a, img in pics.items():
                pfiles[a] = tmp / f"painting_{a:04d}.png"
                write_image(pfiles[a], img)
            grams = {a: build_stylizer(C.apply(C.Config(), {"optim.size": args.size}), [img], lambda m: None)
                     for a, img in pics.items()}
            ours_out, ours_s = ours(args.clip, n, args.size, pfiles, tmp / "ours.mkv")
            peer_out, peer_s = peer(args.ebsynth, files, pfiles, tmp)
            plain_out, plain_s = plain(args.clip, n, args.size, pfiles, tmp / f"plain{ci}")
            results = {"videostyle --paint": (ours_out, ours_s), "EbSynth per frame": (peer_out, peer_s),
                       "videostyle --style the painting(s), no --paint": (plain_out, plain_s)}
            if args.variants:
                results["videostyle --paint, content target the frame"] = ours(
                    args.clip, n, args.size, pfiles, tmp / "content.mkv", content=False)
                results["videostyle --paint, content the frame, started from the frame before"] = ours(
                    args.clip, n, args.size, pfiles, tmp / "held.mkv", start=False, content=False)
                results["videostyle --paint, held to the frame before only"] = ours(
                    args.clip, n, args.size, pfiles, tmp / "chain.mkv", anchor=False)
            print(f"\n# {args.clip.name}, {n} frames at {args.size} px, {name}")
            print("| method | distance to the carried painting (median, /255) | at the last frame | style loss "
                  "(median) | temporal error | s/frame |")
            print("| --- | --- | --- | --- | --- | --- |")
            if args.strip and len(at) == 1:
                from videostyle.preview import contact_sheet

                picks = [min(round(t * fps), n - 1) for t in range(int(args.seconds) + 1)]
                sheet = contact_sheet([("source", [sources[i] for i in picks]),
                                       ("the painting (frame 0), then videostyle --paint", [pics[0]] +
                                        [ours_out[i] for i in picks[1:]]),
                                       ("the painting, then EbSynth per frame", [pics[0]] +
                                        [peer_out[i] for i in picks[1:]])],
                                      max(args.size, 160), [f"{i / fps:.0f} s (frame {i})" for i in picks])
                write_image(args.strip, sheet)
            per_frame = {}
            for method, (outs, secs) in results.items():
                rows = per_frame[method] = measures(outs, sources, pics, grams)
                later = [r for i, r in enumerate(rows) if i not in pics]
                terr = temporal_error(outs, sources, params=render_flow_params(C.Config())).error[1]
                print(f"| {method} | {statistics.median(d for d, _ in later):.3f} | {rows[-1][0]:.3f} | "
                      f"{statistics.median(s for _, s in later):.3g} | {terr:.5f} | {secs:.2f} |", flush=True)
            a, b = list(per_frame)[:2]
            print(f"\n# frame by frame, {name}: distance to the carried painting (/255) and style loss")
            print(f"| frame | s | {a}: distance | style loss | {b}: distance | style loss |")
            print("| --- | --- | --- | --- | --- | --- |")
            for i in range(0, n, max(1, args.every)):
                (da, sa), (db, sb) = per_frame[a][i], per_frame[b][i]
                print(f"| {i} | {i / fps:.2f} | {da:.3f} | {sa:.3g} | {db:.3f} | {sb:.3g} |")


if __name__ == "__main__":
    main()
