"""How many chains a device gains from (``--chains auto``): the network's forward and input
gradient timed at batch 1, 2, 4 and 8 at the render's frame size, once per device, size and
precision, and kept in the cache folder (``chains.json``).

More chains pay for themselves only where a batch costs less per image than one image: on a GPU
that one frame leaves mostly idle. They also cost frames: each chain after the first starts
fresh (a first frame's iterations) and renders ``overlap`` frames that the seam cross-fades.
``choose`` weighs both: the K whose whole render (its fresh starts, its later frames split over
K chains, each batch step at its measured cost) is shortest, among those whose batch fits the
memory budget whole.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from videostyle.device import cache_dir

if TYPE_CHECKING:
    from videostyle.gatys.stylizer import Stylizer
    from videostyle.render.spec import RenderSpec

SIZES = (1, 2, 4, 8)


def per_image(st: Stylizer, hw: tuple[int, int], k: int, seconds: float = 0.5) -> float:
    """Seconds per image of the network's forward and input gradient at batch ``k`` (median,
    ``torch.utils.benchmark``), with the stylizer's layout and precision."""
    from torch.utils import benchmark

    x = torch.rand(k, 3, *hw, device=st.device).requires_grad_(True)
    layers = st.loss.spec.layers

    def once() -> None:
        feats = st._features(x, layers)
        sum(v.float().pow(2).mean() for v in feats.values()).backward()  # type: ignore[union-attr]
        x.grad = None

    once()  # (cuDNN picks its algorithms)
    # (the render's threads: Timer's default is one, and on a CPU a batch's gain depends on them)
    t = benchmark.Timer("once()", globals={"once": once},
                        num_threads=torch.get_num_threads()).blocked_autorange(min_run_time=seconds)
    return t.median / k


def choose(costs: Mapping[int, float], frames: int, fresh: int, later: int, overlap: int,
           fits: Callable[[int], bool] = lambda k: True) -> int:
    """The K (of ``costs``' batch sizes, seconds per image) whose render of ``frames`` is
    shortest: each batch step costs ``K x costs[K]``; the chains start fresh together
    (``fresh`` iterations), then share the later frames (``later`` iterations each) and the
    ``overlap`` frames each seam adds. 1 where nothing is shorter."""
    times = {}
    for k in sorted(costs):
        if k == 1 or (fits(k) and k <= frames):
            steps = fresh + later * max(frames + (k - 1) * overlap - k, 0) / k
            times[k] = k * costs[k] * steps
    best = 1
    for k in sorted(times):
        if times[k] < 0.95 * times[best]:  # (a larger K must gain more than the timing's noise)
            best = k
    return best


def _key(st: Stylizer, hw: tuple[int, int]) -> str:
    dev = st.device
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"{dev.type}x{torch.get_num_threads()}"
    return f"{name}|{torch.__version__}|{st.precision}|{st.channels_last}|{hw[0]}x{hw[1]}"


def measured(st: Stylizer, hw: tuple[int, int], cache: Path | None = None) -> dict[int, float]:
    """Seconds per image at each batch size of SIZES that fits, measured once per device, size
    and precision and then read from ``cache`` (default: the cache folder's chains.json)."""
    path = cache or cache_dir() / "chains.json"
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    key = _key(st, hw)
    if key in known:
        return {int(k): float(v) for k, v in known[key].items()}
    costs: dict[int, float] = {}
    for k in SIZES:
        if k > 1 and not st.fits_batch(hw, k):
            break
        try:
            costs[k] = per_image(st, hw, k)
        except torch.OutOfMemoryError:
            break
    known[key] = costs
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(known, indent=1, sort_keys=True))
        tmp.replace(path)
    except OSError:
        pass  # (measured again next time)
    return costs


def auto_chains(spec: RenderSpec, st: Stylizer, hw: tuple[int, int], frames: int) -> int:
    """``--chains auto`` for a render of ``frames`` frames of ``hw`` on ``st``'s device."""
    costs = measured(st, hw)
    p = spec.policy
    return choose(costs, frames, p.iterations, p.iterations_later + p.coarse_later, spec.overlap,
                  lambda k: st.fits_batch(hw, k))
