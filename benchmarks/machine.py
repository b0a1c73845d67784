"""Where and when a result was measured: the commit (and whether the tree was dirty), the CPU
(model and the instruction sets that decide its kernels), the GPU and its driver, the torch and
CUDA versions, and the date."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "neon")


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def commit() -> dict[str, Any]:
    """The checked-out commit and whether tracked files differ from it."""
    return {"commit": _git("rev-parse", "--short=7", "HEAD") or "unknown",
            "dirty": bool(_git("status", "--porcelain", "--untracked-files=no"))}


def cpu() -> dict[str, Any]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() in ("flags", "Features") and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return {"model": model, "cores": os.cpu_count() or 1, "flags": sorted(f for f in FLAGS if f in flags)}


def gpu() -> dict[str, Any] | None:
    import torch

    if not torch.cuda.is_available():
        return None
    driver = ""
    try:
        driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        pass
    return {"name": torch.cuda.get_device_name(0), "driver": driver, "cuda": torch.version.cuda}


def describe() -> dict[str, Any]:
    import torch

    return {"date": _dt.date.today().isoformat(), **commit(), "cpu": cpu(), "gpu": gpu(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "python": platform.python_version()}


def line(m: dict[str, Any]) -> str:
    """The machine in one line, as a table's heading says it."""
    c = m["cpu"]
    where = f"{c['model']}, {c['cores']} cores" + (f" ({', '.join(c['flags'])})" if c["flags"] else "")
    if m.get("gpu"):
        g = m["gpu"]
        where += f"; {g['name']} (driver {g['driver'] or '?'}, CUDA {g['cuda']})"
    return f"{where}; torch {m['torch']}"
