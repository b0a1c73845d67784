"""The one interface every output's frames go through: a video file or a pipe
(``mux.VideoWriter``) and an image sequence (``frames_out.SequenceWriter``), each written under a
temporary name (a pipe: as it goes) and made final by ``finish``, or removed by ``abort``."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np


class FrameSink(Protocol):
    """Where a render's frames go, in order."""

    def write(self, image: np.ndarray, pts: int, alpha: np.ndarray | None = None) -> None:
        """One RGB frame (uint8, at the output's size) at source ``pts``, with the source's
        ``alpha`` where the output keeps it."""

    def finish(self) -> Path:
        """Everything written: the output made final (renamed into place); returns its path."""

    def abort(self) -> None:
        """Stop: nothing half-written is left presented as finished."""
