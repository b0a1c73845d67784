#!/usr/bin/env python
"""Where a video render's threads spend their time: a render of the clip (scaled up past its
own size, as bench.py does) while a sampler reads every thread's innermost frames every few
milliseconds. Prints the stage times per frame and, per thread kind, the lines it was found
on most (waits included: a thread blocked on a lock or queue shows the line that waits).

    python scripts/profile_render.py --method fast --size 1920 --frames 48
    python scripts/profile_render.py --method fast --size 1920 --set encode.preset=veryfast
"""

from __future__ import annotations

import collections
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

from videostyle.config import Config, apply
from videostyle.render.pipeline import render_video
from videostyle.engines import render_spec  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import media_parser  # noqa: E402

PACKAGE = str(Path(__file__).resolve().parents[1] / "videostyle")


class Sampler(threading.Thread):
    """Every ``interval`` seconds, each other thread's innermost frame inside videostyle (or the
    innermost frame at all, when none is) is counted under the thread's kind."""

    def __init__(self, interval: float = 0.005) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        self.done = threading.Event()

    def run(self) -> None:
        me = threading.get_ident()
        while not self.done.is_set():
            names = {t.ident: t.name for t in threading.enumerate()}
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                kind = re.sub(r"[_-]\d+(_\d+)?$", "", names.get(ident, "?"))
                inner, ours = frame, None
                f = frame
                while f is not None:
                    if f.f_code.co_filename.startswith(PACKAGE) and ours is None:
                        ours = f
                    f = f.f_back
                at = ours or inner
                line = f"{Path(at.f_code.co_filename).name}:{at.f_lineno} {at.f_code.co_name}"
                if ours is not None and inner is not ours:
                    line += f" -> {inner.f_code.co_name}"
                self.counts[kind][line] += 1
            time.sleep(self.interval)


def main() -> None:
    ap = media_parser(__doc__, frames=48, size=1920)
    ap.add_argument("--method", default="fast")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--top", type=int, default=8)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="another config value (YAML syntax), e.g. encode.preset=veryfast")
    args = ap.parse_args()
    import yaml

    from bench import upscaled

    extra = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    with tempfile.TemporaryDirectory() as tmp:
        src = upscaled(args.clip, args.size, args.frames, Path(tmp)) if args.size > 640 else args.clip
        cfg = apply(Config(), {"fast.method": args.method, "style.images": [str(args.style)], "optim.size": args.size,
                               "render.max_frames": args.frames, "render.device": args.device, **extra})
        sampler = Sampler()
        sampler.start()
        res = render_video(src, Path(tmp) / "out.mkv", render_spec(cfg))
        sampler.done.set()
        sampler.join()
    n = res.frames
    s = res.stages
    stages = ", ".join(f"{k} {1e3 * v / n:.1f}" for k, v in vars(s).items())
    print(f"# {args.method} at {args.size} px, {n} frames, {n / res.seconds:.1f} frames/s end to end; {extra or ''}")
    print(f"# ms/frame: {stages}")
    for kind, counter in sorted(sampler.counts.items(), key=lambda kv: -sum(kv[1].values())):
        total = sum(counter.values())
        print(f"\n| {kind} ({total} samples) | share |\n| --- | --- |")
        for line, c in counter.most_common(args.top):
            print(f"| {line} | {100 * c / total:.0f}% |")


if __name__ == "__main__":
    main()
