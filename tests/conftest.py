"""Shared fixtures: a small stand-in feature extractor, synthetic images, tiny configs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from videostyle.config import Config, apply
from videostyle.gatys.features import VGGFeatures, random_init

torch.set_num_threads(min(2, torch.get_num_threads()))

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1")
TINY_WIDTHS = (8, 16, 16, 32, 32)


def tiny_extractor(seed: int = 0) -> VGGFeatures:
    """Same interface and layer names as VGG-19, a fraction of the channels."""
    return random_init(VGGFeatures(LAYERS, widths=TINY_WIDTHS), seed).freeze()


def tiny_config(**overrides: object) -> Config:
    base = {"model.name": "random", "optim.size": 64, "optim.iterations": 8, "optim.iterations_later": 3,
            "render.device": "cpu", "render.precision": "fp32"}
    base.update(overrides)  # type: ignore[arg-type]
    return apply(Config(), base)


def pattern(h: int, w: int, shift: int = 0, seed: int = 0) -> np.ndarray:
    """A smooth colourful test pattern, moved ``shift`` pixels to the right."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    xx = xx - shift
    img = np.stack([
        0.5 + 0.5 * np.sin(xx / 7.0 + seed),
        0.5 + 0.5 * np.cos(yy / 9.0 + xx / 13.0),
        0.5 + 0.5 * np.sin((xx + yy) / 11.0),
    ], axis=-1)
    return (img * 255).astype(np.uint8)


def stripes(h: int, w: int) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[:, ::6] = (230, 40, 30)
    img[::6, :] = (20, 40, 220)
    return img


@pytest.fixture
def extractor() -> VGGFeatures:
    return tiny_extractor()


def hide_module(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    """Make ``import module`` (and importlib.import_module) fail as if it were not installed."""
    import builtins
    import importlib

    real_import, real_import_module = builtins.__import__, importlib.import_module

    def fake_import(name: str, *args: object, **kwargs: object) -> object:
        if name == module or name.startswith(module + "."):
            raise ImportError(f"No module named {module!r}")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    def fake_import_module(name: str, *args: object) -> object:
        if name == module or name.startswith(module + "."):
            raise ImportError(f"No module named {module!r}")
        return real_import_module(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", fake_import)
    monkeypatch.setattr(importlib, "import_module", fake_import_module)
