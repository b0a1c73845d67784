#!/usr/bin/env python
"""The fast engine's render from a video file against the same frames as image sequences:
8-bit PNG, 16-bit PNG and OpenEXR (linear light), each render a new process as a user runs it,
the kinds taking turns; prints the median seconds and the ratio to the video's. The 16-bit and
EXR sequences get the default codec (``auto``: HEVC Main 10, which keeps their depth), and again
with ``--codec h264``, which leaves only the input side's cost.

    python scripts/bench_sequences.py                     # the shared bunny clip, 120 frames at 640 px
    python scripts/bench_sequences.py --frames 48 --repeats 5
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import media_parser  # noqa: E402

from videostyle.io.frames_out import encode  # noqa: E402


def write_sequences(clip: Path, frames: int, root: Path) -> dict[str, str]:
    """The clip's first ``frames`` frames as each kind of sequence; returns kind -> input."""
    kinds = {"video": str(clip)}
    for name, ext in (("png8", ".png"), ("png16", ".png"), ("exr", ".exr")):
        d = root / name
        d.mkdir()
        kinds[name] = str(d / f"%04d{ext}")
    with av.open(str(clip)) as c:
        for i, fr in enumerate(c.decode(video=0)):
            if i >= frames:
                break
            img = fr.to_ndarray(format="rgb24")
            cv2.imwrite(str(root / "png16" / f"{i:04d}.png"), cv2.cvtColor(img.astype(np.uint16) * 257, cv2.COLOR_RGB2BGR))
            for name, ext in (("png8", ".png"), ("exr", ".exr")):
                p = root / name / f"{i:04d}{ext}"
                p.write_bytes(encode(p, img))
    return kinds


def main() -> None:
    ap = media_parser(__doc__, frames=120, size=640)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        kinds = write_sequences(args.clip, args.frames, Path(tmp))
        runs = {k: (inp, []) for k, inp in kinds.items()}
        runs.update({f"{k} (h264)": (kinds[k], ["--codec", "h264"]) for k in ("png16", "exr")})
        times: dict[str, list[float]] = {k: [] for k in runs}
        for _ in range(args.repeats):
            for kind, (inp, extra) in runs.items():
                cmd = [sys.executable, "-m", "videostyle", "render", inp, "--style", str(args.style), "--method", "fast",
                       "--size", str(args.size), "--max-frames", str(args.frames), "-o", str(Path(tmp) / "out.mp4"),
                       "-y", "-q", *extra]
                t0 = time.perf_counter()
                subprocess.run(cmd, check=True)
                times[kind].append(time.perf_counter() - t0)
    base = statistics.median(times["video"])
    print(f"# {args.clip.name}, {args.frames} frames at {args.size} px, --method fast, median of {args.repeats}")
    print("| input | frames | s (median) | fps end to end | x the video's |")
    print("| --- | --- | --- | --- | --- |")
    for kind, secs in times.items():
        m = statistics.median(secs)
        print(f"| {kind} | {args.frames} | {m:.1f} | {args.frames / m:.2f} | {base / m:.2f} |")


if __name__ == "__main__":
    main()
