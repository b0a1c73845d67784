"""Progress bars: frames (s/frame, ETA) and, at -v, iterations within a frame."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from videostyle.report import STIterate


class TqdmReporter:
    """Progress bars: frames (s/frame, ETA) and, at -v, iterations within a frame."""

    def __init__(self, quiet: bool = False, verbose: bool = False) -> None:
        self.quiet, self.verbose = quiet, verbose
        self.frames_bar: Any = None
        self.iter_bar: Any = None
        self.level = -1

    def notice(self, message: str) -> None:
        from tqdm import tqdm

        tqdm.write(f"videostyle: {message}", file=sys.stderr)

    def begin(self, total: int | None, what: str) -> None:
        from tqdm import tqdm

        if self.quiet:
            return
        self.frames_bar = tqdm(total=total, desc=Path(what).name[:30], unit="frame", file=sys.stderr,
                               dynamic_ncols=True, leave=True)

    def iterate(self, it: STIterate) -> None:
        from tqdm import tqdm

        if self.quiet or not self.verbose:
            return
        if self.iter_bar is None or it.i == 1:
            if self.iter_bar is not None:
                self.iter_bar.close()
            lvl = f" L{it.level + 1}/{it.levels}" if it.levels > 1 else ""
            self.iter_bar = tqdm(total=it.iterations, desc=f"  iter {it.size[1]}x{it.size[0]}{lvl}", unit="it",
                                 file=sys.stderr, leave=False, dynamic_ncols=True)
        self.iter_bar.update(1)
        self.iter_bar.set_postfix(loss=f"{it.loss:.4g}", refresh=False)

    def frame(self, done: Any) -> None:
        if self.iter_bar is not None:
            self.iter_bar.close()
            self.iter_bar = None
        if self.frames_bar is None:
            return
        if done.restarted:
            self.notice(f"frame {done.index}: scene cut, restarted from the content with full iterations")
        self.frames_bar.update(1)
        if done.resumed or done.loss != done.loss:  # resumed / parallel / fast frames: no optimiser stats
            return
        post = {"it": done.iterations, "loss": f"{done.loss:.4g}"}
        if done.seconds:
            post["s/frame"] = f"{done.seconds:.2f}"
        self.frames_bar.set_postfix(post, refresh=True)

    def end(self) -> None:
        if self.iter_bar is not None:
            self.iter_bar.close()
            self.iter_bar = None
        if self.frames_bar is not None:
            self.frames_bar.close()
            self.frames_bar = None
