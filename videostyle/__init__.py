"""videostyle: paint images and videos in the style of an artwork.

    import videostyle as vs
    vs.stylize("photo.jpg", style="starry.jpg", size=256)        # a PIL image
    vs.render("clip.mp4", "out.mp4", style="starry.jpg")         # a file
    for frame in vs.frames("clip.mp4", style="starry.jpg", method="fast"): ...

The API is ``videostyle.api`` (docs/api.md). ``videostyle.render`` is its function; the render
layer's modules are imported by their full names (``from videostyle.render import pipeline``).
"""

from __future__ import annotations

__version__ = "0.1.0"

# (After the render layer's package is imported, so that the name is the API's function.)
from videostyle.api import (BatchPlan, Config, Engine, Estimate, Outcome, RenderResult, StyledFrame, TemporalReport,
                            VideostyleError, estimate, evaluate, frames, optimises, plan_batch, propose_keyframes, render,
                            run_batch, settings, stylize)

__all__ = ["BatchPlan", "Config", "Engine", "Estimate", "Outcome", "RenderResult", "StyledFrame", "TemporalReport",
           "VideostyleError", "__version__", "estimate", "evaluate", "frames", "optimises", "plan_batch",
           "propose_keyframes", "render", "run_batch", "settings", "stylize"]
