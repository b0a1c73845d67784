"""The optimising engine's frozen specs, torch-free: which layers each loss term reads and how
much it weighs (``LossSpec``), what the optimiser does (``OptimSpec``), which network it runs on
(``NetworkSpec``), and all of it with the stylizer's own settings (``GatysSpec``). The builder
(``engines.engine_spec``) translates the Config into them once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class LossSpec:
    """Which layers each term reads and how much each term weighs (the style section of the
    config, translated by ``engines.engine_spec``)."""

    content_layers: tuple[str, ...]
    style_layers: tuple[str, ...]
    layer_weights: tuple[float, ...]  # one per style layer
    content_weight: float
    style_weight: float
    tv_weight: float

    @property
    def layers(self) -> tuple[str, ...]:
        """Every layer the extractor must return."""
        return tuple(sorted(set(self.content_layers) | set(self.style_layers)))


@dataclass(frozen=True)
class OptimSpec:
    """What the optimiser needs of the optim settings."""

    optimizer: str = "lbfgs"  # lbfgs or adam
    iterations: int = 300  # a fresh image's
    lr: float = 0.02  # Adam's, in pixel units of [0, 1] images
    init: str = "content"  # content or noise, when the caller names no start
    seed: int = 0
    pyramid_levels: int = 1
    pyramid_scale: float = 2.0
    tolerance: float = 0.0  # early stop: relative loss change per iteration (0: off)
    tolerance_window: int = 5
    fixed_tile: int | None = None  # tiles of this many px; 0: never; None: when a frame does not fit
    tile_margin: int = 80


@dataclass(frozen=True)
class NetworkSpec:
    """The feature network and where it runs: the model (vgg19, vgg19-torchvision, random), a
    weights file and its convention, the pooling, the device, torch's CPU threads (0: its
    default), channels_last and torch.compile."""

    model: str = "vgg19"
    weights: str | None = None
    weights_format: str = "auto"
    pooling: str = "max"
    device: str = "auto"
    threads: int = 0
    channels_last: bool = True
    compile: bool = False


DEFAULT_LOSS = LossSpec(("relu4_2",), ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
                        (1.0,) * 5, 1.0, 1.0, 10.0)


@dataclass(frozen=True)
class GatysSpec:
    """Everything the optimising stylizer is built from besides the style pictures."""

    loss: LossSpec = DEFAULT_LOSS
    optim: OptimSpec = field(default_factory=OptimSpec)
    network: NetworkSpec = field(default_factory=NetworkSpec)
    precision: str = "auto"
    cuda_graphs: bool = False
    memory_gb: float = 0.0
    style_scale: float = 1.0
    stroke_side: int = 512
    preserve_colors: bool = False

    def stylizer_settings(self) -> dict[str, Any]:
        """The stylizer's keyword arguments besides its network and device (``Stylizer``,
        ``Stylizer.configure``)."""
        return {"loss": self.loss, "optim": self.optim, "precision": self.precision, "cuda_graphs": self.cuda_graphs,
                "memory_gb": self.memory_gb, "style_scale": self.style_scale, "stroke_side": self.stroke_side,
                "preserve_colors": self.preserve_colors}
