"""Optimise an image so its VGG features match a content image and the Gram statistics of style
images (Gatys et al.), with warm starts and temporal terms for video.

Images enter and leave as numpy arrays (H, W, 3): uint8 or float32 in [0, 1]. Progress is
reported through a callback receiving :class:`STIterate`; nothing here prints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from videostyle.config import Config, OptimConfig
from videostyle.errors import ConfigError, DivergedError
from videostyle.compiled import cpu_has_bf16
from videostyle.features import VGGFeatures, build_extractor
from videostyle.images import MIN_SIDE, check_size, preserve_colors
from videostyle.report import STIterate
from videostyle.losses import LossSpec, PerceptualLoss, gram_matrix
from videostyle.lbfgs import LBFGS
from videostyle.memory import GB, PassCost, budget, image_bytes, map_large_blocks, pass_cost
from videostyle.tiles import ALIGN, TiledObjective, grid, tiled_grams


@dataclass(frozen=True)
class TemporalTerm:
    """Temporal loss against a warped earlier output: target (H, W, 3) float, mask (H, W) in [0, 1]."""

    target: np.ndarray
    mask: np.ndarray
    weight: float


@dataclass
class StylizeResult:
    image: np.ndarray  # (H, W, 3) float32 in [0, 1]
    iterations: int  # iterations actually run (all levels)
    loss: float  # final total loss
    losses: dict[str, float] = field(default_factory=dict)


Callback = Callable[[STIterate], None]

# A loss this many times the iteration-1 loss means the optimiser has left the basin (L-BFGS
# without a line search can take a huge step when its curvature estimate is off).
EXPLODE = 10.0


@dataclass(frozen=True)
class _Run:
    """How one optimiser run ended."""

    done: int  # iterations run
    loss: float  # total loss at the last iteration
    losses: dict[str, float]  # weighted terms at the last iteration
    first: float  # total loss at iteration 1
    diverged: bool  # non-finite, exploded, or (L-BFGS) ended worse than it started


# ---------------------------------------------------------------- image helpers


def to_tensor(image: np.ndarray, device: torch.device | str = "cpu") -> Tensor:
    """(H, W, 3) uint8 or float [0, 1] -> (1, 3, H, W) float32."""
    arr = np.asarray(image)
    t = torch.from_numpy(np.ascontiguousarray(arr))
    t = t.float().div_(255.0) if arr.dtype == np.uint8 else t.float()
    return t.permute(2, 0, 1).unsqueeze(0).to(device)


def to_numpy(t: Tensor) -> np.ndarray:
    """(1, 3, H, W) -> (H, W, 3) float32 on the CPU, clamped to [0, 1]."""
    return t.detach().float().clamp(0, 1)[0].permute(1, 2, 0).contiguous().cpu().numpy()


def resize(t: Tensor, hw: tuple[int, int]) -> Tensor:
    if tuple(t.shape[-2:]) == tuple(hw):
        return t
    return F.interpolate(t, size=hw, mode="bilinear", align_corners=False, antialias=True)


# ---------------------------------------------------------------- device / precision


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) present")
        return dev
    if name == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"--device {name!r}: use auto, cpu, cuda or cuda:N")


def resolve_precision(name: str, device: torch.device, pixels: int = 512 * 512) -> torch.dtype | None:
    """Autocast dtype, or None for fp32. ``auto``: bf16 on a CPU with native bf16 (about 2x faster
    there); on CUDA tf32 below HD and bf16 from 720p up (faster only at large sizes)."""
    if name == "fp32":
        return None
    if name == "bf16":
        return torch.bfloat16
    if name == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if pixels >= 720 * 1280 else None
    return torch.bfloat16 if cpu_has_bf16() else None


# ---------------------------------------------------------------- the stylizer


def loss_spec(cfg: Config) -> LossSpec:
    s = cfg.style
    return LossSpec(tuple(s.content_layers), tuple(s.style_layers),
                    tuple(s.layer_weights) or tuple(1.0 for _ in s.style_layers),
                    s.content_weight, s.style_weight, s.tv_weight)


def _check_graphs(cuda_graphs: bool, device: torch.device, optim: OptimConfig, compiled: bool) -> None:
    if cuda_graphs and (device.type != "cuda" or optim.optimizer != "adam" or compiled):
        raise ConfigError("--cuda-graphs needs --device cuda and --optimizer adam (L-BFGS branches on the "
                          "device's values between kernels, which a graph cannot hold), without --compile")


def settings(cfg: Config) -> dict[str, Any]:
    """The stylizer's arguments that ``cfg`` sets besides its network and device: the one place
    where the config is translated for it."""
    return {"loss": loss_spec(cfg), "optim": cfg.optim, "precision": cfg.render.precision,
            "cuda_graphs": cfg.render.cuda_graphs, "memory_gb": cfg.render.memory, "style_scale": cfg.style.scale,
            "stroke_side": cfg.style.stroke_side,
            "preserve_colors": cfg.style.preserve_colors}


def _scaled_terms(temporal: Sequence[TemporalTerm], hw: tuple[int, int]) -> list[TemporalTerm]:
    """Temporal terms at size ``hw`` (targets and masks resized as frames are, antialiased; terms
    already at that size as they are)."""
    out = []
    for t in temporal:
        if t.target.shape[:2] == hw:
            out.append(t)
            continue
        tgt = resize(to_tensor(t.target), hw)
        mask = resize(torch.from_numpy(np.ascontiguousarray(t.mask, np.float32))[None, None], hw)
        out.append(TemporalTerm(to_numpy(tgt), mask[0, 0].numpy(), t.weight))
    return out


class Stylizer:
    """Holds the frozen extractor and the style targets; ``stylize`` runs one optimisation."""

    def __init__(self, extractor: VGGFeatures, loss: LossSpec, optim: OptimConfig, *, device: torch.device,
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
        self._targets: dict[tuple[int, int], dict[str, Tensor]] = {}  # blended, per content size
        self._style_grams: dict[tuple[int, int], list[dict[str, Tensor]]] = {}  # each style's, per size
        self._region_styles: list[Tensor] = []
        self._region_targets: dict[tuple[int, int], list[dict[str, Tensor]]] = {}
        self._regions: list[tuple[np.ndarray, int | None]] = []
        self._keep: np.ndarray | None = None
        self._region_now: list[tuple[Tensor, dict[str, Tensor]]] = []  # this level's, on the device
        self._pass_cost: PassCost | None = None
        self._tiles: dict[tuple[int, int], int] = {}  # tile_for's answers
        self._searched: set[tuple[int, int]] = set()  # sizes cuDNN has chosen algorithms for
        self.set_loss(loss)
        self.optim, self.precision, self.cuda_graphs, self.memory_gb = optim, precision, cuda_graphs, memory_gb
        self.style_scale, self.preserve_colors, self.stroke_side = style_scale, preserve_colors, stroke_side
        self._styles: list[Tensor] = []
        self._blend: list[float] = []
        self._graphs: dict[Any, _GraphRunner] = {}
        # Where one-line notes go (the CLI's stderr); each kind is said once per stylizer.
        self.notice: Callable[[str], None] | None = None
        self._noticed: set[str] = set()

    @classmethod
    def from_config(cls, cfg: Config, extractor: VGGFeatures | None = None,
                    device: torch.device | None = None) -> Stylizer:
        """A stylizer with ``cfg``'s network, loss and optimiser on its device."""
        if cfg.render.threads:
            torch.set_num_threads(cfg.render.threads)
        if extractor is None:
            m = cfg.model
            extractor = build_extractor(loss_spec(cfg).layers, model=m.name, weights=m.weights,
                                        weights_format=m.weights_format, pooling=m.pooling,  # type: ignore[arg-type]
                                        seed=cfg.optim.seed)
        r = cfg.render
        return cls(extractor, device=device or resolve_device(r.device), channels_last=r.channels_last,
                   compile=r.compile, **settings(cfg))

    def configure(self, cfg: Config) -> None:
        """``cfg``'s loss, optimiser and precision on this stylizer's network and device (one
        network, several renders: benchmarks, batches)."""
        s = settings(cfg)
        _check_graphs(s["cuda_graphs"], self.device, s["optim"], compiled=self._net is not self.extractor)
        self.set_loss(s.pop("loss"))  # (clears the style targets, which the rest also shapes)
        for k, v in s.items():
            setattr(self, k, v)

    def set_loss(self, loss: LossSpec) -> None:
        """New layers or weights (on the same network: it must return every layer)."""
        self._spec = loss
        self.loss = PerceptualLoss(loss)
        self.content_layers, self.style_layers = loss.content_layers, loss.style_layers
        self.layer_weights = self.loss.layer_weights
        self.strength = 1.0  # the style weight's scale (strength keyframes), see set_strength
        self._targets.clear()
        self._style_grams.clear()
        self._tiles.clear()
        self._pass_cost = None

    # -- style targets

    def set_styles(self, images: Sequence[np.ndarray], blend: Sequence[float] = ()) -> None:
        if not images:
            raise ConfigError("no style image given; pass --style IMAGE")
        weights = list(blend) if blend else [1.0] * len(images)
        total = sum(weights)
        if total <= 0:
            raise ConfigError("style blend weights must sum to more than 0")
        self._styles = [to_tensor(im) for im in images]
        self._blend = [w / total for w in weights]
        self._targets.clear()
        self._style_grams.clear()

    def set_blend(self, weights: Sequence[float]) -> None:
        """New blend weights of the same style images (style keyframes): the Gram targets become
        the weighted sum of each style's Gram matrices, updated in place (a captured CUDA graph
        reads the same tensors)."""
        if len(weights) != len(self._styles):
            raise ValueError("one weight per style image")
        total = float(sum(weights))
        blend = [float(w) / total for w in weights]
        if blend == self._blend:
            return
        self._blend = blend
        for hw, targets in self._targets.items():
            with torch.no_grad():
                for name, g in self._blended(self._style_grams[hw]).items():
                    targets[name].copy_(g)

    def set_strength(self, strength: float) -> None:
        """Scale the style weight (strength keyframes; 1 = the configured weight)."""
        if strength != self.strength:
            self.strength = strength
            self.loss = PerceptualLoss(dataclasses.replace(self._spec, style_weight=self._spec.style_weight * strength))

    def _blended(self, per_style: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        for grams, w in zip(per_style, self._blend):
            for name, g in grams.items():
                out[name] = out[name] + g * w if name in out else g * w
        return out

    def _autocast(self, hw: tuple[int, int]) -> contextlib.AbstractContextManager[None]:
        dtype = resolve_precision(self.precision, self.device, hw[0] * hw[1])
        if dtype is None:
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
        if hw in self._targets:
            return self._targets[hw]
        if not self._styles:
            raise ConfigError("no style image given; pass --style IMAGE")
        side = max(round(max(hw) * self.style_scale), MIN_SIDE)
        per_style = [self._style_grams_at(img, side, hw) for img in self._styles]
        with torch.no_grad():
            grams = self._blended(per_style)
        if len(self._targets) > 8:
            self._targets.clear()
            self._style_grams.clear()
        self._targets[hw], self._style_grams[hw] = grams, per_style
        return grams

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
        self._region_styles = [to_tensor(im) for im in images]
        self._region_targets.clear()

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
        side = max(round(max(hw) * self.style_scale), MIN_SIDE)
        if hw not in self._region_targets:
            if len(self._region_targets) > 8:
                self._region_targets.clear()
            self._region_targets[hw] = [self._style_grams_at(img, side, hw) for img in self._region_styles]
        out = []
        for mask, slot in self._regions:
            m = torch.from_numpy(np.ascontiguousarray(mask, np.float32))[None, None].to(self.device)
            if m.shape[-2:] != hw:
                m = F.interpolate(m, size=hw, mode="area")
            out.append((m, grams if slot is None else self._region_targets[hw][slot]))
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
            vectors = 2 * _EagerRunner.history + 8 if o.optimizer == "lbfgs" else 10
            if cost(pixels) + image_bytes(pixels, vectors) <= avail:
                tile = 0
            else:
                # Tiled: the optimiser's vectors, and the content's maps kept whole (<= 32 B/px).
                left = avail - image_bytes(pixels, 2 * _TiledRunner.history + 8) - 32 * pixels
                side = int(math.sqrt(max(0.0, left - cost.fixed) / cost.per_pixel)) if left > cost.fixed else 0
                tile = side // ALIGN * ALIGN
                if tile < 2 * o.tile_margin + 4 * ALIGN:
                    raise ConfigError(
                        f"a {w}x{h} frame needs more memory than the budget leaves ({avail / GB:.1f} GB free for "
                        f"it) even in tiles; raise --memory, free memory, or lower --size")
                self._notice(f"tiles{hw}", f"{w}x{h} frames do not fit the memory budget whole ({avail / GB:.1f} GB "
                             f"free for them): optimised in tiles of {tile} px (--tile, --memory)")
        if len(self._tiles) > 8:
            self._tiles.clear()
        self._tiles[hw] = tile
        return tile

    def _grams(self, img: Tensor, tile: int) -> dict[str, Tensor]:
        """Gram matrices of an image's style layers (by tiles of ``tile`` px when it is larger)."""
        hw = (int(img.shape[2]), int(img.shape[3]))
        if tile and max(hw) > tile:
            tiles = grid(hw[0], hw[1], tile - 2 * self.optim.tile_margin, self.optim.tile_margin)
            with _no_algorithm_search():
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
            raise ConfigError("--init image needs --init-image PATH")
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
        o = self.optim
        if self.device.type == "cuda":
            # tf32 matmuls and convolutions (about 1.1x at 512 px on an H200) unless fp32 was
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
        levels = o.pyramid_levels if pyramid and not temporal else 1
        if pyramid and not temporal and self.stroke_side and max(h, w) > self.stroke_side:
            # Strokes form at stroke_side and are refined at each larger level (see config).
            levels = max(levels, 1 + math.ceil(math.log(max(h, w) / self.stroke_side, o.pyramid_scale) - 1e-9))
        sizes = []
        for k in range(levels):
            f = o.pyramid_scale ** (levels - 1 - k)
            lh, lw = round(h / f), round(w / f)
            if min(lh, lw) >= MIN_SIDE:
                sizes.append((lh, lw))
        if not sizes or sizes[-1] != (h, w):
            sizes.append((h, w))
        steps = [iterations] * len(sizes)
        if coarse and len(sizes) == 1 and min(h, w) // 2 >= MIN_SIDE:
            # A later frame's coarse pass: half size first, then its full-size iterations.
            sizes, steps = [(round(h / 2), round(w / 2)), (h, w)], [coarse, iterations]
        content_t = to_tensor(content)
        x = init_t
        total_iters = 0
        result_loss, result_losses = math.nan, {}
        for level, hw in enumerate(sizes):
            x = resize(x, hw)
            x, n, result_loss, result_losses = self._optimise(
                resize(content_t, hw).to(self.device), x.to(self.device), steps[level],
                _scaled_terms(temporal, hw), stop_loss if level == len(sizes) - 1 else None,
                level, len(sizes), callback,
            )
            total_iters += n
        out = to_numpy(x)
        if self.preserve_colors:
            out = preserve_colors(out, content)
        if self._keep is not None:
            # Regions without a style keep the content exactly (their feathered edges blend).
            k = self._keep[..., None].astype(np.float32)
            c = content.astype(np.float32) / (255.0 if content.dtype == np.uint8 else 1.0)
            out = out * (1.0 - k) + c * k
        return StylizeResult(out, total_iters, result_loss, result_losses)

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
            raise ConfigError("style regions (--mask) need the frame optimised whole, without --cuda-graphs: "
                              "raise --memory or lower --size")
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
            runner: _Runner = _TiledRunner(self, o.optimizer, o.lr, content, tile)
        elif self.cuda_graphs:
            runner = self._graph(hw, grams, content_feats, temp)
        else:
            runner = _EagerRunner(self, o.optimizer, o.lr)
        step = runner.start(x0, content_feats, grams, temp)

        run = self._iterate(runner, step, iterations, stop_loss, level, levels, hw, callback)
        spent = 0
        if run.diverged:
            # Restart from the same start with L-BFGS and a strong-Wolfe line search: every step
            # then decreases the loss, at 1-3 extra evaluations per iteration.
            self._notice("diverged", f"the optimisation diverged at iteration {run.done} (loss {run.loss:.4g}); "
                         "restarted the image from its start with a line search (slower per iteration)")
            spent = run.done
            runner = (_TiledRunner(self, "lbfgs", o.lr, content, tile, line_search=True) if tile else
                      _EagerRunner(self, "lbfgs", o.lr, line_search=True))
            step = runner.start(x0, content_feats, grams, temp)
            run = self._iterate(runner, step, iterations, stop_loss, level, levels, hw, callback)
            if run.diverged:
                raise DivergedError(
                    f"the optimisation diverged (loss {run.loss:.4g} at iteration {run.done}, started at "
                    f"{run.first:.4g}) even with a line search; lower --style-weight or --lr, or use --optimizer adam")
        x = runner.result()
        if not bool(torch.isfinite(x).all()):
            raise DivergedError("the optimisation produced a non-finite image; lower --style-weight or --lr")
        return x, spent + run.done, run.loss, run.losses

    def _iterate(self, runner: _Runner, step: Callable[[], Tensor], iterations: int, stop_loss: float | None,
                 level: int, levels: int, hw: tuple[int, int], callback: Callback | None) -> _Run:
        """Run up to ``iterations`` steps; stop early at ``stop_loss`` or the tolerance, or at the
        iteration where the loss turns non-finite or explodes (then ``diverged``)."""
        o = self.optim
        last: dict[str, float] = {}
        history: list[float] = []
        loss = math.nan
        for i in range(1, iterations + 1):
            # The step's losses are those of the image before its update: with a stop loss, that
            # image is kept, so that a frame already as stylized as the first one (a static shot)
            # is not moved at all. Moving it by one step a frame made a held frame drift by
            # 2.2/255 in 10 s (scripts/bench_drift.py --static).
            before = runner.snapshot() if stop_loss is not None else None
            # One host read per iteration: the weighted terms and their total, stacked on the
            # device (reading each term apart would wait on the device once per term).
            values = step().tolist()
            if i == 1 and self.device.type == "cuda" and hw not in self._searched:
                # cuDNN's benchmark mode tries each convolution's algorithms on the first pass at
                # a new size, with workspaces as large as the free memory (measured on an H200:
                # 33 GB at 512 px, 130 GB at 1080p, against 0.8 and 1.8 GB for the iterations
                # themselves). Hand the cached workspace back, for other processes and the
                # tile planner's budget.
                self._searched.add(hw)
                torch.cuda.empty_cache()
            last = dict(zip(runner.names, values[:-1]))
            loss = values[-1]
            history.append(loss)
            if callback is not None:
                callback(STIterate(i, iterations, level, levels, loss, last, hw))
            grown = loss - history[0]  # (an absolute floor: a start at loss 0 is not "exploded" by 1e-9)
            if not math.isfinite(loss) or (loss > EXPLODE * history[0] and grown > 1e-6):
                return _Run(i, loss, last, history[0], True)
            if i == iterations:
                # The last iteration: an image that ended worse than it started, or not finite,
                # is garbage even when no single step exploded.
                worse = o.optimizer == "lbfgs" and grown > 1e-3 * history[0] and grown > 1e-6  # Adam may climb first
                garbage = len(history) > 2 and (worse or not bool(torch.isfinite(runner.result()).all()))
                return _Run(i, loss, last, history[0], garbage)
            # The stop compares the terms the first frame was scored on: a temporal term has no
            # counterpart there, so counting it would keep every frame that has one from stopping.
            if stop_loss is not None and sum(v for k, v in last.items() if k != "temporal") <= stop_loss:
                assert before is not None
                runner.restore(before)
                break
            if o.tolerance > 0 and len(history) > o.tolerance_window:
                window = history[-o.tolerance_window - 1:]
                rel = [abs(a - b) / max(abs(a), 1e-12) for a, b in zip(window, window[1:])]
                if max(rel) < o.tolerance:
                    break
        return _Run(len(history), loss, last, history[0] if history else math.nan, False)

    def _notice(self, key: str, message: str) -> None:
        """Say ``message`` through ``self.notice`` once per stylizer and ``key`` (a video would
        repeat it every frame)."""
        if self.notice is not None and key not in self._noticed:
            self._noticed.add(key)
            self.notice(message)

    def _graph(self, hw: tuple[int, int], grams: dict[str, Tensor], content_feats: dict[str, Tensor],
               temp: Sequence[tuple[Tensor, Tensor, float]]) -> _GraphRunner:
        key = (hw, tuple(wt for _, _, wt in temp))
        runner = self._graphs.get(key)
        if runner is None or runner.grams is not grams:
            if len(self._graphs) >= 4:  # each graph keeps a memory pool for its size's activations
                self._graphs.pop(next(iter(self._graphs)))
            runner = _GraphRunner(self, self.optim.lr)
            self._graphs[key] = runner
        return runner


@contextlib.contextmanager
def _no_algorithm_search() -> Iterator[None]:
    """cuDNN's benchmark mode off, for tiles: the grid shifts each evaluation, so the border
    tiles change shape each time, and every new shape would start a search of all algorithms
    with workspaces as large as the free memory (seconds each, and the whole device's memory at
    its peak: measured on an H200 at 3840 px, 133 GB, against 17 GB untiled)."""
    bench = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = bench


class _Runner:
    """Runs optimiser iterations on an image; ``step()`` returns the weighted loss terms followed
    by their total, stacked on the device, evaluated at the image before the update."""

    names: list[str]  # the terms' names, in the order step() returns them

    def start(self, x0: Tensor, content_feats: dict[str, Tensor], grams: dict[str, Tensor],
              temp: Sequence[tuple[Tensor, Tensor, float]]) -> Callable[[], Tensor]:
        raise NotImplementedError

    def result(self) -> Tensor:
        raise NotImplementedError

    x: Tensor  # the image being optimised

    def snapshot(self) -> Tensor:
        return self.x.detach().clone()

    def restore(self, image: Tensor) -> None:
        with torch.no_grad():
            self.x.copy_(image)


def _stacked(runner: _Runner, terms: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """The total loss, and the terms followed by the total stacked for one host read (their
    names go to ``runner.names``)."""
    runner.names = list(terms)
    parts = list(terms.values())
    total = parts[0]
    for t in parts[1:]:
        total = total + t
    return total, torch.stack([*(t.detach() for t in parts), total.detach()])


class _EagerRunner(_Runner):
    # Curvature pairs L-BFGS keeps (each two image-sized vectors), and their dtype (None: fp32).
    history = 50
    history_dtype: torch.dtype | None = None

    def __init__(self, st: Stylizer, optimizer: str, lr: float, line_search: bool = False) -> None:
        self.st, self.optimizer, self.lr, self.line_search = st, optimizer, lr, line_search

    def start(self, x0: Tensor, content_feats: dict[str, Tensor], grams: dict[str, Tensor],
              temp: Sequence[tuple[Tensor, Tensor, float]]) -> Callable[[], Tensor]:
        x = self.x = x0.detach().clone().contiguous().requires_grad_(True)
        if self.optimizer == "lbfgs" and self.line_search:
            # One closure evaluation per step() (plus the line search's) so progress, early
            # stopping and the iteration count are exact; L-BFGS keeps its history across steps.
            opt: torch.optim.Optimizer = torch.optim.LBFGS(
                [x], lr=1.0, max_iter=1, history_size=self.history, tolerance_grad=-1, tolerance_change=-1,
                line_search_fn="strong_wolfe")
        elif self.optimizer == "lbfgs":
            # torch's steps without its ~2 x history device reads an iteration (videostyle.lbfgs).
            opt = LBFGS([x], lr=1.0, history_size=self.history, history_dtype=self.history_dtype)
        else:
            opt = torch.optim.Adam([x], lr=self.lr)
        out: list[Tensor] = []
        evaluate = self.objective(x, content_feats, grams, temp)

        def closure() -> Tensor:
            opt.zero_grad(set_to_none=True)
            total, values = evaluate()
            out.append(values)
            return total

        def step() -> Tensor:
            out.clear()
            opt.step(closure)  # type: ignore[arg-type]
            if self.optimizer == "adam":
                with torch.no_grad():
                    x.clamp_(0, 1)
            return out[0]

        return step

    def objective(self, x: Tensor, content_feats: dict[str, Tensor], grams: dict[str, Tensor],
                  temp: Sequence[tuple[Tensor, Tensor, float]]) -> Callable[[], tuple[Tensor, Tensor]]:
        """A call that leaves the loss's gradient in ``x.grad`` and returns the total and the
        stacked terms and total."""

        def evaluate() -> tuple[Tensor, Tensor]:
            total, values = _stacked(self, self.st.loss_terms(x, content_feats, grams, temp))
            total.backward()
            return total, values

        return evaluate

    def result(self) -> Tensor:
        with torch.no_grad():
            self.x.clamp_(0, 1)
        return self.x.detach()


class _TiledRunner(_EagerRunner):
    """Iterations on an image optimised by tiles (``optim.tile``): each evaluation takes the
    whole image's loss and gradient through a TiledObjective, with the tile grid shifted each
    time so that no tile edge stays in one place."""

    # At the frame sizes that need tiles, 50 pairs (the untiled history) would take more memory
    # than the tiles save (2 x 50 x 4 bytes per pixel and channel: 5 GB at 2048 px). Measured on
    # the real network (512 px, Starry Night, untiled, where the history alone differs): 5 pairs
    # end 200 iterations 0.3% above 50 pairs (1.5% after 50 iterations); Adam ends 2% above.
    history = 5
    # The pairs in bf16: measured at 2048 px in tiles of 512 (10 iterations, real network), peak
    # RSS 2180 -> 2028 MB and final loss 3.571 -> 3.572 (scripts/bench_tiles.py --history-dtypes).
    history_dtype = torch.bfloat16

    def __init__(self, st: Stylizer, optimizer: str, lr: float, content: Tensor, tile: int,
                 line_search: bool = False) -> None:
        super().__init__(st, optimizer, lr, line_search)
        self.content, self.core = content, tile - 2 * st.optim.tile_margin
        if content.device.type == "cpu":
            map_large_blocks()

    def objective(self, x: Tensor, content_feats: dict[str, Tensor], grams: dict[str, Tensor],
                  temp: Sequence[tuple[Tensor, Tensor, float]]) -> Callable[[], tuple[Tensor, Tensor]]:
        o = self.st.optim
        core = self.core
        obj = TiledObjective(self.st._features, self.st.loss.spec, self.content, grams, temp, core=core,
                             margin=o.tile_margin)
        calls = [0]

        def evaluate() -> tuple[Tensor, Tensor]:
            k = calls[0]
            calls[0] += 1
            with _no_algorithm_search():
                terms, grad = obj(x, (k * 3 * ALIGN % core, k * 5 * ALIGN % core))
            x.grad = grad
            self.names = list(terms)
            total = sum(terms.values(), torch.zeros((), device=x.device))
            return total, torch.stack([*terms.values(), total])

        return evaluate


class _GraphRunner(_Runner):
    """Adam iterations replayed from a CUDA graph (``--cuda-graphs``).

    An iteration launches a few hundred small kernels (VGG forward and backward, Gram matrices,
    the Adam update); at video sizes on a fast GPU, launching them from Python takes about as
    long as running them. The graph is captured once per size and set of temporal weights, on
    static buffers: each frame copies its start image, content features and temporal targets
    into them and zeroes Adam's state in place, so the replayed kernels read the new frame.
    """

    def __init__(self, st: Stylizer, lr: float) -> None:
        self.st, self.lr = st, lr
        self.graph: torch.cuda.CUDAGraph | None = None
        self.grams: dict[str, Tensor] | None = None

    def _load(self, x0: Tensor, content_feats: dict[str, Tensor],
              temp: Sequence[tuple[Tensor, Tensor, float]]) -> None:
        with torch.no_grad():
            self.x.copy_(x0)
            for k, v in content_feats.items():
                self.content[k].copy_(v)
            for (tgt, m, _), (btgt, bm, _) in zip(temp, self.temp):
                btgt.copy_(tgt)
                bm.copy_(m)
            for state in self.opt.state.values():
                for v in state.values():
                    if isinstance(v, Tensor):
                        v.zero_()  # capturable Adam keeps its step count on the device too

    def start(self, x0: Tensor, content_feats: dict[str, Tensor], grams: dict[str, Tensor],
              temp: Sequence[tuple[Tensor, Tensor, float]]) -> Callable[[], Tensor]:
        if self.graph is None:
            self._capture(x0, content_feats, grams, temp)
        self._load(x0, content_feats, temp)
        graph = self.graph
        assert graph is not None

        def step() -> Tensor:
            graph.replay()
            return self.values

        return step

    def _capture(self, x0: Tensor, content_feats: dict[str, Tensor], grams: dict[str, Tensor],
                 temp: Sequence[tuple[Tensor, Tensor, float]]) -> None:
        self.grams = grams  # the graph reads these tensors: keep them alive with it
        self.x = x0.detach().clone().contiguous().requires_grad_(True)
        self.content = {k: v.detach().clone() for k, v in content_feats.items()}
        self.temp = [(t.detach().clone(), m.detach().clone(), wt) for t, m, wt in temp]
        self.opt = torch.optim.Adam([self.x], lr=self.lr, capturable=True)

        def body() -> Tensor:
            self.opt.zero_grad(set_to_none=False)
            total, values = _stacked(self, self.st.loss_terms(self.x, self.content, grams, self.temp))
            total.backward()
            self.opt.step()
            with torch.no_grad():
                self.x.clamp_(0, 1)
            return values

        # Warm up on a side stream (cuDNN picks its algorithms, cuBLAS makes its handle and
        # workspace for that stream, Adam creates its state), as torch.cuda.graph requires, then
        # capture one iteration on the same stream.
        side = torch.cuda.Stream(self.x.device)
        side.wait_stream(torch.cuda.current_stream(self.x.device))
        with torch.cuda.stream(side):
            for _ in range(3):
                body()
        torch.cuda.current_stream(self.x.device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        # thread_local: decode, flow and encode go on in their threads while this one captures.
        with torch.cuda.graph(self.graph, stream=side, capture_error_mode="thread_local"):
            self.values = body()

    def result(self) -> Tensor:
        return self.x.detach().clone()
