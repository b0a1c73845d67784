"""Still image files: read as RGB uint8, write atomically (OpenCV codecs)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from videostyle import durable
from videostyle.errors import InputError, OutputError

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def is_image_path(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTS


def read_image(path: str | os.PathLike[str], what: str = "image") -> np.ndarray:
    """Read an image file as (H, W, 3) RGB uint8; alpha is dropped, 16-bit scaled down."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} {p} does not exist")
    if p.is_dir():
        raise InputError(f"{what} {p} is a directory, not an image file")
    data = np.fromfile(str(p), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise InputError(f"{what} {p} is not a readable image (PNG, JPEG, BMP, TIFF or WebP)")
    if img.dtype == np.uint16:
        img = (img / 257.0).round().astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    else:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(img)


def write_image(path: str | os.PathLike[str], image: np.ndarray) -> None:
    """Write RGB uint8 to ``path`` through a temporary file renamed on success."""
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in IMAGE_EXTS:
        raise OutputError(f"output {p}: unknown image extension {ext!r}; use .png or .jpg")
    ok, buf = cv2.imencode(ext, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OutputError(f"cannot encode {p} as {ext}")
    try:
        durable.write_bytes(p, buf.tobytes())
    except OSError as exc:
        raise OutputError(f"cannot write {p}: {exc.strerror or exc}") from None


def resize_image(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 resized to ``hw`` (antialiased bilinear, as the stylizer resizes its
    tensors, so a frame and its stylization are scaled alike)."""
    if image.shape[:2] == tuple(hw):
        return image
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float().div_(255.0)
    t = F.interpolate(t, size=hw, mode="bilinear", align_corners=False, antialias=True)
    out = t.clamp_(0, 1)[0].permute(1, 2, 0).numpy()
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)
