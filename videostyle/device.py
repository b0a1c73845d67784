"""Facts about the machine a render runs on, in one place: the device and precision a setting
resolves to, whether the CPU has bf16 units, whether a GPU driver may be present, and the cache
folder. torch is imported only by the functions that need it, so a fast render that runs on the
CPU starts without it."""

from __future__ import annotations

import importlib
import os
import platform
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from videostyle.errors import ConfigError, setting

if TYPE_CHECKING:
    import torch


def cache_dir() -> Path:
    """Where built artefacts are kept: ``$XDG_CACHE_HOME/videostyle``, else ``~/.cache/videostyle``."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "videostyle"


def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic units (AMX or AVX512-BF16): without them oneDNN
    emulates bf16 convolutions, slower than fp32."""
    torch = importlib.import_module("torch")
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, c, lambda: False)() for c in checks)


def int8_saturates(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether int8 dot products saturate on this CPU: x86-64 without VNNI (AVX512-VNNI,
    AVX-VNNI or AMX), whose AVX2 int8 kernels add pairs of products in 16 bits. A CPU whose
    flags cannot be read counts as saturating (the safe answer)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return True
    return not {"avx512_vnni", "avx_vnni", "amx_int8"} & set(flags)


def gpu_driver() -> bool:
    """Whether a GPU driver may be here, without importing torch (two seconds of a fast render's
    start): a CUDA, ROCm or WSL device node on Linux; elsewhere, always (torch is asked)."""
    if not sys.platform.startswith("linux"):
        return True
    return any(os.path.exists(p) for p in ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/dev/dxg"))


def resolve_device(name: str) -> torch.device:
    """``render.device`` as a torch device; a CUDA device that is not there is refused."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"{setting('device', name)}: CUDA is not available on this machine; use {setting('device', 'cpu')}")
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"{setting('device', name)}: only {torch.cuda.device_count()} CUDA device(s) present")
        return dev
    if name == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"{setting('device', repr(name))}: use auto, cpu, cuda or cuda:N")


def device_name(name: str) -> str:
    """``name`` resolved as ``resolve_device`` does ("cpu", "cuda:N"), with torch imported only
    when a GPU may be used."""
    if name == "cpu" or (name == "auto" and not gpu_driver()):
        return "cpu"
    return str(resolve_device(name))


def resolve_precision(name: str, device: torch.device, pixels: int = 512 * 512) -> torch.dtype | None:
    """Autocast dtype, or None for fp32. ``auto``: bf16 on a CPU with native bf16 (faster
    there); on CUDA tf32 below HD and bf16 from 720p up (faster only at large sizes)."""
    import torch

    if name == "fp32":
        return None
    if name == "bf16":
        return torch.bfloat16
    if name == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if pixels >= 720 * 1280 else None
    return torch.bfloat16 if cpu_has_bf16() else None
