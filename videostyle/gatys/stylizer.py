"""Optimise an image so its VGG features match a content image and the Gram statistics of style
images (Gatys et al.), with warm starts and temporal terms for video.

Images enter and leave as numpy arrays (H, W, 3): uint8 or float32 in [0, 1]. Progress is
reported through a callback receiving :class:`STIterate`; nothing here prints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from videostyle.errors import ConfigError, DivergedError, setting
from videostyle.device import resolve_precision
from videostyle.engine import TemporalTerm
from videostyle.gatys.features import VGGFeatures
from videostyle.io.images import MIN_SIDE, check_size, preserve_colors
from videostyle.report import STIterate
from videostyle.gatys.losses import PerceptualLoss, gram_matrix
from videostyle.gatys.specs import LossSpec, OptimSpec
from videostyle.gatys.memory import GB, PassCost, budget, image_bytes, pass_cost
from videostyle.gatys.runners import EagerRunner, GraphRunner, Runner, TiledRunner, iterate, no_algorithm_search
from videostyle.gatys.targets import StyleTargets
from videostyle.gatys.tensors import resize, scaled_terms, to_numpy, to_tensor
from videostyle.gatys import plan
from videostyle.gatys.tiles import grid, tiled_grams


@dataclass
class StylizeResult:
    image: np.ndarray  # (H, W, 3) float32 in [0, 1]
    iterations: int  # iterations actually run (all levels)
    loss: float  # final total loss
    losses: dict[str, float] = field(default_factory=dict)


Callback = Callable[[STIterate], None]
S = TypeVar("S", bound="Stylizer")


@dataclass(frozen=True)
class Start:
    """An optimisation's start: the content (1, 3, H, W), the start image at its size, and the
    levels' sizes (smallest first) and iterations."""

    content: Tensor
    x: Tensor
    sizes: list[tuple[int, int]]
    steps: list[int]

# ---------------------------------------------------------------- the stylizer


def _check_graphs(cuda_graphs: bool, device: torch.device, optim: OptimSpec, compiled: bool) -> None:
    if cuda_graphs and (device.type != "cuda" or optim.optimizer != "adam" or compiled):
        raise ConfigError(f"{setting('cuda_graphs')} needs {setting('device', 'cuda')} and {setting('optimizer', 'adam')} "
                          f"(L-BFGS branches on the device's values between kernels, which a graph cannot hold), "
                          f"without {setting('compile')}")


class Stylizer:
    """Holds the frozen extractor and the style targets; ``stylize`` runs one optimisation."""

    def __init__(self, extractor: VGGFeatures, loss: LossSpec, optim: OptimSpec, *, device: torch.device,
                 precision: str = "auto", channels_last: bool = True, compile: bool = False, cuda_graphs: bool = False,
                 memory_gb: float = 0.0, style_scale: float = 1.0, stroke_side: int = 0,
                 preserve_colors: bool = False) -> None:
        """``extractor``: the frozen network; ``loss``: layers and weights of the terms; ``optim``:
        the optimiser, iterations, init, pyramid, tiles and early stop; ``precision``: autocast
        (auto, fp32, bf16, fp16); ``memory_gb``: the budget ``optim.tile`` auto plans in (0: half
        the RAM, or CUDA's free memory); ``style_scale``: style image size relative to the
        content's; ``stroke_side``: the long side a larger image starts its pyramid at (0: off);
        ``preserve_colors``: keep the content's chroma."""
        self.device = device
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.extractor = extractor.to(device)
        self.channels_last = channels_last
        if channels_last:
            self.extractor = self.extractor.to(memory_format=torch.channels_last)
        self._net: Callable[..., dict[str, Tensor]] = self.extractor
        if compile:
            self._net = torch.compile(self.extractor, dynamic=False)  # type: ignore[assignment]
        _check_graphs(cuda_graphs, device, optim, compile)
        self.targets = StyleTargets()
        self._regions: list[tuple[np.ndarray, int | None]] = []
        self._keep: np.ndarray | None = None
        self._region_now: list[tuple[Tensor, dict[str, Tensor]]] = []  # this level's, on the device
        self._pass_cost: PassCost | None = None
        self._tiles: dict[tuple[int, int], int] = {}  # tile_for's answers
        self._searched: set[tuple[int, int]] = set()  # sizes cuDNN has chosen algorithms for
        self.set_loss(loss)
        self.optim, self.precision, self.cuda_graphs, self.memory_gb = optim, precision, cuda_graphs, memory_gb
        self.style_scale, self.preserve_colors, self.stroke_side = style_scale, preserve_colors, stroke_side
        self._graphs: dict[Any, GraphRunner] = {}
        # Where one-line notes go (the CLI's stderr); each kind is said once per stylizer.
        self.notice: Callable[[str], None] | None = None
        self._noticed: set[str] = set()
        self._fp32 = False  # autocast off: the restart after a divergence (see _optimize)

    def configure(self, *, loss: LossSpec, optim: OptimSpec, **settings: Any) -> None:
        """A new loss, optimiser and settings (``__init__``'s) on this stylizer's network and
        device (one network, several renders: benchmarks, batches)."""
        _check_graphs(settings.get("cuda_graphs", False), self.device, optim, compiled=self._net is not self.extractor)
        if loss != self._spec or any(getattr(self, k) != v for k, v in settings.items()):
            self.set_loss(loss)  # (clears the style targets, which the rest also shapes)
        self.optim = optim
        for k, v in settings.items():
            setattr(self, k, v)

    def set_loss(self, loss: LossSpec) -> None:
        """New layers or weights (on the same network: it must return every layer)."""
        self._spec = loss
        self.loss = PerceptualLoss(loss)
        self.content_layers, self.style_layers = loss.content_layers, loss.style_layers
        self.layer_weights = self.loss.layer_weights
        self.strength = 1.0  # the style weight's scale (strength keyframes), see set_strength
        self.targets.clear()
        self._tiles.clear()
        self._pass_cost = None

    # -- style targets

    def set_styles(self, images: Sequence[np.ndarray], blend: Sequence[float] = ()) -> None:
        self.targets.set_styles(images, blend)

    def set_blend(self, weights: Sequence[float]) -> None:
        """New blend weights of the same style images (style keyframes)."""
        self.targets.set_blend(weights)

    def set_strength(self, strength: float) -> None:
        """Scale the style weight (strength keyframes; 1 = the configured weight)."""
        if strength != self.strength:
            self.strength = strength
            self.loss = PerceptualLoss(dataclasses.replace(self._spec, style_weight=self._spec.style_weight * strength))

    def _autocast(self, hw: tuple[int, int]) -> contextlib.AbstractContextManager[None]:
        dtype = resolve_precision(self.precision, self.device, hw[0] * hw[1])
        if dtype is None or self._fp32:
            return contextlib.nullcontext()
        # No cast cache: it only serves leaf tensors that need grad (the image, cast once per
        # forward anyway) and CUDA graph capture requires it off.
        return torch.autocast(self.device.type, dtype=dtype, cache_enabled=False)

    def _features(self, x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with self._autocast(tuple(x.shape[-2:])):  # type: ignore[arg-type]
            return self._net(x, tuple(layers))

    def style_targets(self, hw: tuple[int, int]) -> dict[str, Tensor]:
        """Blended Gram targets for a content of size ``hw`` (style resized to scale * its long side)."""
        return self.targets.at(hw, self._style_side(hw), self._style_grams_at)

    def _style_side(self, hw: tuple[int, int]) -> int:
        return max(round(max(hw) * self.style_scale), MIN_SIDE)

    def _style_grams_at(self, img: Tensor, side: int, hw: tuple[int, int]) -> dict[str, Tensor]:
        """Gram matrices of one style image scaled to ``side`` px (its long side)."""
        tile = self.tile_for(hw)  # (a pass without a graph needs less than the frame's: its tile fits)
        ih, iw = img.shape[2], img.shape[3]
        f = side / max(ih, iw)  # the style image is scaled up or down to match
        sh, sw = round(ih * f), round(iw * f)
        with torch.no_grad():
            scaled = resize(img, (max(sh, MIN_SIDE), max(sw, MIN_SIDE))).to(self.device)
            return self._grams(scaled, tile)

    # -- regions

    def set_region_styles(self, images: Sequence[np.ndarray]) -> None:
        """The style images regions may name (``set_regions``' slots 0, 1, ...)."""
        self.targets.set_region_styles(images)

    def set_regions(self, regions: Sequence[tuple[np.ndarray, int | None]], keep: np.ndarray | None = None) -> None:
        """Regions of the next frames (Gatys et al. 2017's spatial control): (mask (H, W) in
        [0, 1], slot) pairs, where slot is a ``set_region_styles`` index, or None for the main
        styles (``set_styles``, keyframes included). Each region is styled by its guided Gram
        term; pixels in no region get no style term, and ``keep`` (H, W) in [0, 1] puts the
        content back where it is 1 (feathered masks blend). Empty: the whole frame, unguided."""
        self._regions = list(regions)
        self._keep = keep

    def _region_terms(self, hw: tuple[int, int], grams: dict[str, Tensor]) -> list[tuple[Tensor, dict[str, Tensor]]]:
        if not self._regions:
            return []
        region_grams = self.targets.regions_at(hw, self._style_side(hw), self._style_grams_at)
        out = []
        for mask, slot in self._regions:
            m = torch.from_numpy(np.ascontiguousarray(mask, np.float32))[None, None].to(self.device)
            if m.shape[-2:] != hw:
                m = F.interpolate(m, size=hw, mode="area")
            out.append((m, grams if slot is None else region_grams[slot]))
        return out

    def tile_for(self, hw: tuple[int, int]) -> int:
        """The tile (px of the network's input) a frame of ``hw`` is optimised in; 0: whole.

        ``optim.tile`` auto: whole when the whole optimisation fits the memory budget (the
        extractor's pass measured once, ``memory.pass_cost``, plus the optimiser's image-sized
        vectors), else the largest tile whose pass fits beside the tiled optimiser's vectors."""
        if hw in self._tiles:
            return self._tiles[hw]
        o = self.optim
        fixed = o.fixed_tile
        h, w = hw
        if fixed is not None:
            tile = fixed if fixed and max(h, w) > fixed else 0
        elif self.cuda_graphs:
            tile = 0  # (graphs replay whole frames)
        else:
            if self._pass_cost is None:
                self._pass_cost = pass_cost(self._features, self.loss.spec.layers, self.device)
            cost, pixels = self._pass_cost, h * w
            avail = budget(self.device, self.memory_gb)
            vectors = 2 * EagerRunner.history + 8 if o.optimizer == "lbfgs" else 10
            tile = plan.auto_tile(pixels, avail, cost.fixed, cost.per_pixel, image_bytes(pixels, vectors),
                                  image_bytes(pixels, 2 * TiledRunner.history + 8), o.tile_margin)
            if tile:
                if tile < 0:
                    raise ConfigError(
                        f"a {w}x{h} frame needs more memory than the budget leaves ({avail / GB:.1f} GB free for "
                        f"it) even in tiles; raise {setting('memory')}, free memory, or lower {setting('size')}")
                self._notice(f"tiles{hw}", f"{w}x{h} frames do not fit the memory budget whole ({avail / GB:.1f} GB "
                             f"free for them): optimised in tiles of {tile} px ({setting('tile')}, {setting('memory')})")
        if len(self._tiles) > 8:
            self._tiles.clear()
        self._tiles[hw] = tile
        return tile

    def fits_batch(self, hw: tuple[int, int], k: int) -> bool:
        """Whether ``k`` frames of ``hw`` optimised as one batch fit the memory budget whole (the
        network's pass and the optimiser's vectors, ``k`` times a frame's)."""
        if self.tile_for(hw) or self.cuda_graphs:
            return False
        if self.optim.fixed_tile is not None:
            return True  # (a fixed tile the frame is smaller than: whole, as asked)
        if self._pass_cost is None:
            self._pass_cost = pass_cost(self._features, self.loss.spec.layers, self.device)
        pixels = hw[0] * hw[1] * k
        vectors = 2 * EagerRunner.history + 8 if self.optim.optimizer == "lbfgs" else 10
        cost = self._pass_cost
        return cost.fixed + cost.per_pixel * pixels + image_bytes(pixels, vectors) <= budget(self.device, self.memory_gb)

    def sibling(self, cls: type[S]) -> S:
        """A ``cls`` (this type or a subclass) on this stylizer's network, device and settings,
        with its own styles, regions and strength (one chain of several optimised together,
        ``gatys.chains``): the network is shared, not copied."""
        new = cls.__new__(cls)
        new.__dict__.update(self.__dict__)
        new.targets = StyleTargets()
        new._tiles, new._graphs, new._noticed = {}, {}, set()
        new._regions, new._keep, new._region_now = [], None, []
        new.set_loss(self._spec)
        return new

    def _grams(self, img: Tensor, tile: int) -> dict[str, Tensor]:
        """Gram matrices of an image's style layers (by tiles of ``tile`` px when it is larger)."""
        hw = (int(img.shape[2]), int(img.shape[3]))
        if tile and max(hw) > tile:
            tiles = grid(hw[0], hw[1], tile - 2 * self.optim.tile_margin, self.optim.tile_margin)
            with no_algorithm_search():
                return tiled_grams(self._features, img, self.style_layers, tiles)
        feats = self._features(img, self.style_layers)
        return {name: gram_matrix(feats[name]) for name in self.style_layers}

    # -- optimisation

    def initial_image(self, content: np.ndarray, init: str | np.ndarray, seed: int) -> np.ndarray:
        if isinstance(init, np.ndarray):
            return init
        if init == "content":
            return content
        if init == "noise":
            gen = torch.Generator().manual_seed(seed)
            h, w = content.shape[:2]
            return torch.rand((h, w, 3), generator=gen).numpy()
        if init == "image":
            raise ConfigError(f"{setting('init', 'image')} needs {setting('init_image', 'PATH')}")
        raise ConfigError(f"unknown init {init!r}; use content, noise or image")

    def stylize(
        self,
        content: np.ndarray,
        init: str | np.ndarray | None = None,
        *,
        iterations: int | None = None,
        temporal: Sequence[TemporalTerm] = (),
        pyramid: bool = True,
        coarse: int = 0,
        stop_loss: float | None = None,
        seed: int | None = None,
        callback: Callback | None = None,
    ) -> StylizeResult:
        """Stylize ``content`` (H, W, 3) at its own size, starting from ``init``.

        ``pyramid`` enables coarse-to-fine when ``optim.pyramid_levels`` > 1 or the image is
        larger than ``stroke_side`` (used for first frames and scene cuts; warm-started frames are
        already close and skip it). ``coarse``: iterations at half size first (later frames; the
        temporal targets and masks are scaled down with the frame).
        ``stop_loss`` ends the optimisation once the loss without its temporal term falls to it.
        """
        start = self._begin(content, init, iterations, temporal, pyramid, coarse, seed)
        x = start.x
        total_iters = 0
        result_loss, result_losses = math.nan, {}
        for level, hw in enumerate(start.sizes):
            x = resize(x, hw)
            x, n, result_loss, result_losses = self._optimise(
                resize(start.content, hw).to(self.device), x.to(self.device), start.steps[level],
                scaled_terms(temporal, hw), stop_loss if level == len(start.sizes) - 1 else None,
                level, len(start.sizes), callback,
            )
            total_iters += n
        return StylizeResult(self._end(x, content), total_iters, result_loss, result_losses)

    def _begin(self, content: np.ndarray, init: str | np.ndarray | None, iterations: int | None,
               temporal: Sequence[TemporalTerm], pyramid: bool, coarse: int, seed: int | None) -> Start:
        """An optimisation's start image, content and levels (``stylize``'s arguments)."""
        o = self.optim
        if self.device.type == "cuda":
            # tf32 matmuls and convolutions (faster on a GPU; docs/benchmarks.md) unless fp32 was
            # asked for by name: then fp32 means IEEE fp32, as on the CPU.
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = self.precision != "fp32"
        iterations = o.iterations if iterations is None else iterations
        seed = o.seed if seed is None else seed
        h, w = content.shape[:2]
        check_size(h, w, "the content image")
        init_arr = self.initial_image(content, o.init if init is None else init, seed)
        if init_arr.shape[:2] != (h, w):
            init_t = resize(to_tensor(init_arr), (h, w))
        else:
            init_t = to_tensor(init_arr)
        n = plan.levels((h, w), pyramid=pyramid and not temporal, pyramid_levels=o.pyramid_levels,
                        scale=o.pyramid_scale, stroke_side=self.stroke_side)
        sizes, steps = plan.sizes_and_steps((h, w), n, o.pyramid_scale, iterations, coarse)
        return Start(to_tensor(content), init_t, sizes, steps)

    def _end(self, x: Tensor, content: np.ndarray) -> np.ndarray:
        """The optimised image ``x`` (1, 3, H, W) as the picture ``stylize`` returns."""
        out = to_numpy(x)
        if self.preserve_colors:
            out = preserve_colors(out, content)
        if self._keep is not None:
            # Regions without a style keep the content exactly (their feathered edges blend).
            k = self._keep[..., None].astype(np.float32)
            c = content.astype(np.float32) / (255.0 if content.dtype == np.uint8 else 1.0)
            out = out * (1.0 - k) + c * k
        return out

    def score(self, image: np.ndarray, content: np.ndarray) -> dict[str, float]:
        """The weighted loss terms of a finished ``image`` against ``content`` (same size) and
        the styles: how a frame of a render is measured after the fact."""
        hw = image.shape[:2]
        with torch.no_grad():
            grams = self.style_targets(hw)
            cf = self._features(to_tensor(content, self.device), self.content_layers)
            terms = self.loss_terms(to_tensor(image, self.device), cf, grams, [])
        return {k: float(v) for k, v in terms.items()}

    def loss_terms(self, x: Tensor, content_feats: dict[str, Tensor], grams: dict[str, Tensor],
                   temporal: Sequence[tuple[Tensor, Tensor, float]]) -> dict[str, Tensor]:
        """The weighted loss terms of image ``x`` (its features taken here)."""
        return self.loss(x, self._features(x, self.loss.spec.layers), content_feats, grams, temporal,
                         self._region_now)

    def _optimise(self, content: Tensor, x0: Tensor, iterations: int, temporal: Sequence[TemporalTerm],
                  stop_loss: float | None, level: int, levels: int,
                  callback: Callback | None) -> tuple[Tensor, int, float, dict[str, float]]:
        o = self.optim
        hw = (int(content.shape[2]), int(content.shape[3]))
        grams = self.style_targets(hw)
        tile = self.tile_for(hw)
        self._region_now = self._region_terms(hw, grams)
        if self._region_now and (tile or self.cuda_graphs):
            raise ConfigError(f"style regions ({setting('mask')}) need the frame optimised whole, without "
                              f"{setting('cuda_graphs')}: raise {setting('memory')} or lower {setting('size')}")
        with torch.no_grad():
            content_feats = ({} if tile else
                             {k: v.detach() for k, v in self._features(content, self.content_layers).items()})
        temp = [(to_tensor(t.target, self.device), torch.from_numpy(np.ascontiguousarray(t.mask, np.float32))[None, None]
                 .to(self.device), t.weight) for t in temporal if t.weight > 0]
        if iterations <= 0:
            with torch.no_grad():
                terms = self.loss_terms(x0, content_feats, grams, temp)
            return x0.detach(), 0, float(sum(terms.values())), {k: float(v) for k, v in terms.items()}
        if tile:
            runner: Runner = TiledRunner(self, o.optimizer, o.lr, content, tile)
        elif self.cuda_graphs:
            runner = self._graph(hw, grams, content_feats, temp)
        else:
            runner = EagerRunner(self, o.optimizer, o.lr)
        step = runner.start(x0, content_feats, grams, temp)

        run = iterate(self, runner, step, iterations, stop_loss, level, levels, hw, callback)
        spent = 0
        if run.diverged:
            # Restart from the same start with L-BFGS and a strong-Wolfe line search: every step
            # then decreases the loss, at 1-3 extra evaluations per iteration. In fp32 where the
            # render runs in bf16 or fp16: the line search's first step (1/|g|_1, about 1/n of the
            # range) does not reach a bf16 network's 0-255 input, and from there it stalls, every
            # iteration the loss it started at (the image comes out as the content).
            reduced = resolve_precision(self.precision, self.device, hw[0] * hw[1]) is not None
            self._notice("diverged", f"the optimisation diverged at iteration {run.done} (loss {run.loss:.4g}, "
                         f"{_times(run.loss, run.first)}): one step overshot even after "
                         f"being taken back; restarted the image from its start{' in fp32' if reduced else ''} "
                         "with a line search (slower per iteration); a lower "
                         f"{setting('style_weight')}, or {setting('optimizer', 'adam')}, avoids it")
            spent = run.done
            runner = (TiledRunner(self, "lbfgs", o.lr, content, tile, line_search=True) if tile else
                      EagerRunner(self, "lbfgs", o.lr, line_search=True))
            self._fp32 = reduced
            try:
                step = runner.start(x0, content_feats, grams, temp)
                run = iterate(self, runner, step, iterations, stop_loss, level, levels, hw, callback)
            finally:
                self._fp32 = False
            if run.diverged:
                raise DivergedError(
                    f"the optimisation diverged (loss {run.loss:.4g} at iteration {run.done}, started at "
                    f"{run.first:.4g}) even with a line search; lower {setting('style_weight')} or {setting('lr')}, or use "
                    f"{setting('optimizer', 'adam')}")
        x = runner.result()
        if not bool(torch.isfinite(x).all()):
            raise DivergedError(f"the optimisation produced a non-finite image; lower {setting('style_weight')} or "
                                f"{setting('lr')}")
        return x, spent + run.done, run.loss, run.losses

    def _notice(self, key: str, message: str) -> None:
        """Say ``message`` through ``self.notice`` once per stylizer and ``key`` (a video would
        repeat it every frame)."""
        if self.notice is not None and key not in self._noticed:
            self._noticed.add(key)
            self.notice(message)

    def _graph(self, hw: tuple[int, int], grams: dict[str, Tensor], content_feats: dict[str, Tensor],
               temp: Sequence[tuple[Tensor, Tensor, float]]) -> GraphRunner:
        key = (hw, tuple(wt for _, _, wt in temp))
        runner = self._graphs.get(key)
        if runner is None or runner.grams is not grams:
            if len(self._graphs) >= 4:  # each graph keeps a memory pool for its size's activations
                self._graphs.pop(next(iter(self._graphs)))
            runner = GraphRunner(self, self.optim.lr)
            self._graphs[key] = runner
        return runner


def _times(loss: float, first: float) -> str:
    """``loss`` against ``first``, in words: "73 times the loss it started at", "not finite"."""
    if not math.isfinite(loss):
        return "not finite"
    return f"{loss / first:.3g} times the loss it started at" if first > 0 else f"up from {first:.4g}"
