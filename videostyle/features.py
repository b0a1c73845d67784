"""VGG-19 feature extractor with named layers (``relu4_2``), frozen, normalising inside ``forward``.

Weights come from torchvision's ``VGG19_Weights.IMAGENET1K_V1`` (downloaded once into torch's
hub cache), from a local file (torchvision layout or the Caffe-converted VGG-19 used by
neural-style-pt / Gatys' own code), or are seeded random (``model="random"``) for offline smoke
runs. There is no silent fallback: missing weights raise :class:`WeightsError`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from videostyle.errors import WeightsError

# Channel widths of the five VGG-19 blocks and the number of convs per block.
VGG19_WIDTHS: tuple[int, ...] = (64, 128, 256, 512, 512)
VGG19_DEPTHS: tuple[int, ...] = (2, 2, 4, 4, 4)

# ImageNet statistics for torchvision weights (RGB, [0, 1] input).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Caffe VGG-19 expects BGR in [0, 255] minus this per-channel (BGR) mean.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)

WeightsFormat = Literal["torchvision", "caffe"]
MIN_SIDE = 32  # relu5_1 sits behind four 2x poolings; below this the deep layers degenerate.


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


def detect_format(state: Mapping[str, Tensor]) -> WeightsFormat:
    """Tell torchvision's VGG-19 state dict from the Caffe-converted one.

    Keys ``conv1_1.weight`` (Gatys' ``vgg_conv.pth``) are Caffe. Keys ``features.N.weight``
    are used by both torchvision's file and neural-style-pt's ``vgg19-d01eb7cb.pth``; the first
    conv then tells them apart: Caffe's sees inputs ~255/std times larger, so its weights are
    two orders of magnitude smaller (torchvision mean |w| ~0.2, Caffe ~0.004).
    """
    if "conv1_1.weight" in state:
        return "caffe"
    w = state.get("features.0.weight")
    if w is None:
        raise WeightsError("weights file has neither features.0.weight nor conv1_1.weight: not a VGG-19 state dict")
    return "caffe" if float(w.float().abs().mean()) < 0.03 else "torchvision"


def extract_convs(state: Mapping[str, Tensor], depths: tuple[int, ...] = VGG19_DEPTHS) -> dict[str, tuple[Tensor, Tensor]]:
    """Map either key layout to ``{conv name: (weight, bias)}``, dropping the classifier."""
    convs: dict[str, tuple[Tensor, Tensor]] = {}
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


def load_state_file(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"weights file {p} does not exist; pass --weights PATH to a VGG-19 .pth file")
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
        f"{fetch_command()}  (or pass --weights PATH / set VIDEOSTYLE_WEIGHTS; "
        "--method fast stylizes without them; --model random runs offline but is not a real stylization)"
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
    """Build the frozen extractor for ``layers`` from the configured weights source."""
    if model == "random":
        return random_init(VGGFeatures(layers, pooling=pooling), seed).freeze()
    if model != "vgg19":
        raise WeightsError(f"unknown model {model!r}; use vgg19 or random")
    weights = weights or os.environ.get("VIDEOSTYLE_WEIGHTS") or None
    state = load_state_file(weights) if weights else load_torchvision_state(download=download)
    fmt: WeightsFormat
    if weights_format == "auto":
        fmt = detect_format(state)
    elif weights_format in ("torchvision", "caffe"):
        fmt = weights_format  # type: ignore[assignment]
    else:
        raise WeightsError(f"unknown weights format {weights_format!r}; use auto, torchvision or caffe")
    extractor = VGGFeatures(layers, pooling=pooling, weights_format=fmt)
    extractor.load_conv_state(extract_convs(state))
    del state
    return extractor.freeze()
