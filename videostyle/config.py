"""One source of defaults: frozen dataclasses, filled from YAML files, batch jobs and CLI flags.

Every field carries its help text, flag name and valid range in ``metadata``; the CLI builds
its flags from them, YAML files use the same names (``optim.iterations`` or the flat flag
name ``iterations``), and unknown keys fail with a "did you mean".
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from videostyle.errors import ConfigError, setting
from videostyle.io.limits import MAX_PIXELS
from videostyle.yaml_lists import keyframe_list, painting_list, region_list, suggest


def opt(default: Any, help: str, *, choices: tuple[Any, ...] | None = None, lo: float | None = None,
        hi: float | None = None, flag: str | None = None) -> Any:
    """A config field: default, help text, optional choices / numeric range, CLI flag name."""
    kwargs: dict[str, Any] = {"metadata": {"help": help, "choices": choices, "lo": lo, "hi": hi, "flag": flag}}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples for sequence defaults")
    return field(default=default, **kwargs)


@dataclass(frozen=True)
class ModelConfig:
    name: str = opt("vgg19", "feature network: vgg19 (original VGG-19, embedded), vgg19-torchvision "
                    "(torchvision's, downloaded once) or random (speed floors, not a real stylization)",
                    choices=("vgg19", "vgg19-torchvision", "random"), flag="model")
    weights: str | None = opt(None, "local VGG-19 weights file (.pth), torchvision or Caffe layout")
    weights_format: str = opt("auto", "input convention of the weights", choices=("auto", "torchvision", "caffe"))
    pooling: str = opt("max", "pooling in the feature network", choices=("max", "avg"))


@dataclass(frozen=True)
class StyleConfig:
    images: tuple[str, ...] = opt((), "style image(s); IMAGE@SECONDS or IMAGE@f:FRAME makes keyframes",
                                  flag="style")
    blend: tuple[float, ...] = opt((), "blend weights of the style images", flag="style_blend")
    transitions: tuple[float, ...] = opt((), "seconds each style keyframe eases in over, smoothstep "
                                         "(0 = linear from the previous keyframe)", lo=0.0,
                                         flag="style_transition")
    strength: tuple[str, ...] = opt((), "style strength: VALUE, or keyframes VALUE@SECONDS / VALUE@f:FRAME "
                                    "(e.g. 1@0 3@8.5); scales the style weight and the fast engine's strength",
                                    flag="style_strength")
    paintings: tuple[str, ...] = opt((), "painted keyframe: TIME=IMAGE (TIME f:FRAME or seconds): that frame is "
                                     "the painting, and the frames around it follow it (repeatable)", flag="paint")
    paint_style_weight: float = opt(0.25, "with --paint and --style: the style images' weight beside the "
                                    "painting's (1) in the style target", lo=0.0)
    masks: tuple[str, ...] = opt((), "region mask: MASK=STYLE (that style there) or MASK (keeps the content); "
                                 "image or video, white = in", flag="mask")
    mask_feather: float = opt(4.0, "feather of the mask edges (Gaussian sigma, px)", lo=0.0)
    mask_follow: str = opt("off", "carry still masks along the source's optical flow", choices=("off", "flow"))
    scale: float = opt(1.0, "style image scale relative to the output size", lo=0.05, hi=4.0, flag="style_scale")
    stroke_side: int = opt(512, "long side (px) at which strokes form; larger outputs go coarse-to-fine from it "
                           "(0 = off)", lo=0)
    content_weight: float = opt(1.0, "content loss weight", lo=0.0)
    style_weight: float = opt(1.0, "style loss weight (1 = balanced; 0.3 light, 3 strong)", lo=0.0)
    tv_weight: float = opt(10.0, "total variation weight", lo=0.0)
    content_layers: tuple[str, ...] = opt(("relu4_2",), "content layers")
    style_layers: tuple[str, ...] = opt(("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"), "style layers")
    layer_weights: tuple[float, ...] = opt((), "per-style-layer weights")
    preserve_colors: bool = opt(False, "keep the content's colours (style on luminance only)")


@dataclass(frozen=True)
class OptimConfig:
    optimizer: str = opt("lbfgs", "optimiser", choices=("lbfgs", "adam"))
    iterations: int = opt(300, "iterations (image, first video frame, scene cuts)", lo=1)
    iterations_later: int = opt(20, "iterations for later video frames", lo=0)
    lr: float = opt(0.02, "Adam learning rate", lo=0.0)
    init: str = opt("content", "initial image", choices=("content", "noise", "image"))
    init_image: str | None = opt(None, "initial image file (with --init image)")
    seed: int = opt(0, "random seed")
    size: int = opt(512, "stylized size: longer side in pixels (0 = source size)", lo=0)
    upscale: bool = opt(False, "let --size enlarge a smaller source")
    pyramid_levels: int = opt(1, "coarse-to-fine levels (1 = off)", lo=1, hi=6)
    pyramid_scale: float = opt(2.0, "size ratio between pyramid levels", lo=1.1, hi=4.0)
    coarse_later: int = opt(0, "later frames: iterations at half size before the full-size ones (0 = off)", lo=0)
    tolerance: float = opt(0.0, "early stop: relative loss change per iteration (0 = off)", lo=0.0)
    tolerance_window: int = opt(5, "early stop: window of iterations", lo=1)
    stop_loss_ratio: float = opt(1.0, "later frames stop at this x the first frame's final loss (0 = off)", lo=0.0)
    tile: str = opt("auto", "optimise in tiles of N px (a multiple of 16), auto (when a frame does not fit "
                    "--memory) or off")
    tile_margin: int = opt(80, "context around each tile in px (multiple of 16)", lo=0)

    @property
    def fixed_tile(self) -> int | None:
        """``tile`` as a number: None for auto, 0 for off; raises ValueError for anything else."""
        t = str(self.tile).strip().lower()
        return None if t == "auto" else 0 if t in ("off", "0") else int(t)


@dataclass(frozen=True)
class TemporalConfig:
    init_later: str = opt("prev-warped", "init of later frames", choices=("content", "prev", "prev-warped"))
    weight: float = opt(0.0, "temporal loss weight (0 = off; 30 = Ruder et al.'s balance)", lo=0.0,
                        flag="temporal_weight")
    frames: tuple[int, ...] = opt((1,), "temporal loss frame gaps, e.g. 1,2,4", flag="temporal_frames")
    consistency: float | None = opt(None, "0..1: 0 = each frame fresh (boils), 1 = most stable; sets the "
                                    "warm start, --temporal-weight and --fast-blend", lo=0.0, hi=1.0)
    loop: int = opt(0, "looping clip: render the first K frames again from the last frame's output (0 = off)",
                    lo=0)
    settle: float = opt(1.0, "seconds at the start rendered again backwards from the frame after them, so that "
                        "the first frame is a link of the chain (0 = off)", lo=0.0)
    scene_cut: float = opt(0.4, "scene cut when the reliable fraction falls below this", lo=0.0, hi=1.0)


@dataclass(frozen=True)
class FlowConfig:
    method: str = opt("farneback", "optical flow method", choices=("farneback", "dis"), flag="flow")
    scale: float = opt(1.0, "flow resolution relative to the stylized size", lo=0.1, hi=1.0, flag="flow_scale")
    pyr_scale: float = opt(0.5, "Farneback pyramid scale", lo=0.1, hi=0.9)
    levels: int = opt(3, "Farneback pyramid levels", lo=1, hi=10)
    winsize: int = opt(15, "Farneback window size", lo=3)
    flow_iterations: int = opt(3, "Farneback iterations per level", lo=1)
    poly_n: int = opt(5, "Farneback polynomial neighbourhood", choices=(5, 7))
    poly_sigma: float = opt(1.2, "Farneback polynomial sigma", lo=0.1)
    dis_preset: str = opt("medium", "DIS preset", choices=("ultrafast", "fast", "medium"))
    check: str = opt("round-trip", "flow reliability check", choices=("round-trip", "photometric"), flag="flow_check")
    photometric_threshold: float = opt(0.08, "photometric check: colour difference threshold (0..1)", lo=0.0, hi=1.0)
    workers: int = opt(0, "flow: frames computed at once (0 = auto: 1 on CPU renders, up to 4 on GPU or with the "
                          "fast engine)",
                       lo=0, hi=32, flag="flow_workers")


@dataclass(frozen=True)
class EncodeConfig:
    codec: str = opt("auto", "output video codec (auto: one that keeps the source's alpha and depth in the "
                     "container, else h264; vp9 for WebM, dnxhr for MXF)",
                     choices=("auto", "h264", "hevc", "vp9", "av1", "prores", "dnxhr"))
    crf: int = opt(18, "constant rate factor", lo=0, hi=63)
    preset: str = opt("medium", "encoder preset")
    output_size: str = opt("stylized", "output resolution", choices=("stylized", "source"))
    even: str = opt("crop", "make odd sizes even by", choices=("crop", "pad"))
    start_number: int = opt(0, "image-sequence output: the first frame's number when the input is a video "
                            "(a sequence input keeps its own numbers)", lo=0)


@dataclass(frozen=True)
class FastConfig:
    method: str = opt("gatys", "engine: gatys (optimisation), fast (feed-forward), hybrid (fast init + gatys)",
                      choices=("gatys", "fast", "hybrid"), flag="method")
    strength: float = opt(1.0, "fast: style strength 0..1 (times --style-strength, up to 1)", lo=0.0, hi=1.0,
                          flag="fast_strength")
    blend: float = opt(0.65, "fast video: weight of the warped previous output on reliable pixels", lo=0.0, hi=1.0,
                       flag="fast_blend")
    flow: str = opt("lite", "fast video: the blend's optical flow: lite, flow (the flow section's), dis or dis-half",
                    choices=("lite", "flow", "dis", "dis-half"), flag="fast_flow")
    runtime: str = opt("auto", "fast: the network's runtime: auto, onnxruntime, torch or compiled",
                       choices=("auto", "onnxruntime", "torch", "compiled"), flag="fast_runtime")
    refine_iterations: int = opt(60, "hybrid: iterations refining the fast result", lo=0)
    tiling: str = opt("whole", "fast: whole frames (reshaped graph) or 384 px tiles", choices=("whole", "tiles"))
    tile_overlap: int = opt(64, "fast: overlap of 384 px tiles", lo=0, hi=192)


@dataclass(frozen=True)
class RenderConfig:
    device: str = opt("auto", "device: auto, cpu, cuda or cuda:N")
    precision: str = opt("auto", "precision", choices=("auto", "fp32", "bf16", "fp16"))
    channels_last: bool = opt(True, "channels_last memory format")
    memory: float = opt(0.0, "memory budget in GB for --tile auto (0 = half the RAM; CUDA: its free memory)", lo=0.0)
    start: float = opt(0.0, "video: start time (s)", lo=0.0)
    duration: float = opt(0.0, "video: duration (s, 0 = to the end)", lo=0.0)
    max_frames: int = opt(0, "video: at most this many frames (0 = all)", lo=0)
    strict: bool = opt(False, "refuse a video with packets that do not decode (default: skip them and hold "
                       "the frame before, as ffmpeg does)")
    hdr: str = opt("convert", "HDR (PQ, HLG) input: convert to SDR for the network and back, or refuse",
                   choices=("convert", "refuse"))
    fps: float = opt(24.0, "image-sequence input: frames per second", lo=0.001)
    fill_gaps: str = opt("refuse", "image-sequence input: a missing frame number is refused, or its slot holds "
                         "the frame before", choices=("refuse", "hold"))
    audio: str | None = opt(None, "soundtrack file for the output (an image sequence has none; replaces a "
                            "video's own audio)")
    threads: int = opt(0, "torch CPU threads (0 = default)", lo=0)
    stage_threads: bool = opt(True, "decode, flow and encode on background threads")
    workers: int = opt(1, "parallel segments rendered on Ray (1 = this process only)", lo=1)
    ray_address: str | None = opt(None, "Ray cluster address (default: start a local cluster)")
    overlap: int = opt(12, "parallel: frames each segment starts early, cross-faded at the seam", lo=0)
    chains: str = opt("auto", "segments optimised together as one batch on this device, as --workers splits the "
                      "clip (auto: as many as the device gains from, measured once per size; 1 on a CPU)")
    compile: bool = opt(False, "torch.compile the feature network")
    cuda_graphs: bool = opt(False, "CUDA: replay the Adam iteration from a captured CUDA graph")
    chunk_frames: int = opt(240, "video: frames per encoded chunk of the work folder", lo=1)
    preview_every: int = opt(0, "write a preview PNG every N frames (0 = off)", lo=0)
    max_pixels: int = opt(MAX_PIXELS, "largest picture an input may declare, in pixels, checked from its header "
                          "before decoding (default 100 megapixels: 8K video is 33)", lo=1)

    @property
    def fixed_chains(self) -> int:
        """``chains`` as a number, 0 for auto; raises ValueError for anything else."""
        c = str(self.chains).strip().lower()
        return 0 if c == "auto" else int(c)


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
        if key == "paintings":
            out["style.paintings"] = painting_list(value, where)
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
    from videostyle.temporal.keyframes import check as check_keyframes

    check_keyframes(cfg.style.images, cfg.style.transitions, cfg.style.strength, cfg.style.blend, where)
    from videostyle.temporal.paint import parse as parse_painting

    for spec in cfg.style.paintings:
        parse_painting(spec)
    for m in cfg.style.masks:
        mask, sep, style = m.partition("=")
        if not mask or (sep and not style):
            raise ConfigError(f"{where}style.masks: expected MASK or MASK=STYLE, got {m!r}")
    if cfg.temporal.loop and cfg.render.workers > 1:
        raise ConfigError(f"{where}{setting('loop')} needs a single-process render: leave out {setting('workers')} (the loop pass "
                          "continues from the last segment's last frame)")
    try:
        chains = cfg.render.fixed_chains or (0 if str(cfg.render.chains).strip().lower() == "auto" else -1)
    except ValueError:
        chains = -1
    if chains < 0 or chains > 64:
        raise ConfigError(f"{where}render.chains: use auto or a number of chains from 1 to 64, got {cfg.render.chains!r}")
    if chains > 1:
        for clash, name, why in ((cfg.temporal.loop, "loop", "the loop pass continues from the clip's last frame"),
                                 (bool(cfg.style.paintings), "paint", "a painted render's chains are its passes"),
                                 (cfg.render.cuda_graphs, "cuda_graphs", "a graph replays one frame's iteration")):
            if clash:
                raise ConfigError(f"{where}{setting('chains', chains)} does not go with {setting(name)} ({why}); "
                                  f"leave one out")
    if cfg.style.masks and cfg.render.cuda_graphs:
        raise ConfigError(f"{where}{setting('mask')} does not go with {setting('cuda_graphs')} (regions are optimised eagerly)")
    if any("@" in str(v) for v in cfg.style.strength) and cfg.render.cuda_graphs:
        raise ConfigError(f"{where}{setting('style_strength')} keyframes do not go with {setting('cuda_graphs')} (the graph holds "
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
            raise ConfigError(f"{where}{setting('tile')} and {setting('cuda_graphs')} do not go together (a tiled step is many graphs)")


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
    """Load a config file over ``base`` (defaults when None); a bare name that is no file here
    (``preview``) is a preset shipped in the package (``videostyle/configs``)."""
    if not Path(path).exists():
        from videostyle.samples import preset

        path = preset(str(path)) or path
    return apply(base or Config(), flatten(read_yaml(path), str(path)), str(path))


def to_dict(cfg: Config) -> dict[str, dict[str, Any]]:
    """Plain nested dict (tuples as lists) suitable for YAML/JSON."""
    def plain(v: Any) -> Any:
        return list(v) if isinstance(v, tuple) else v
    return {sec: {k: plain(v) for k, v in dataclasses.asdict(getattr(cfg, sec)).items()} for sec in SECTIONS}


def dump_yaml(cfg: Config) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=None)
