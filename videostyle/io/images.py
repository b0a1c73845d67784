"""Still image files: read as RGB uint8, write atomically (OpenCV codecs); frames as arrays:
sizes, uint8 conversion, colour transfer. No torch here: a --method fast render never imports it."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from videostyle.errors import InputError, OutputError, setting
from videostyle.io import durable
from videostyle.io.limits import MAX_PIXELS, check_image

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def is_image_path(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTS


def read_image(path: str | os.PathLike[str], what: str = "image", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file as (H, W, 3) RGB uint8; alpha is dropped, 16-bit scaled down. A file
    whose header declares more than ``max_pixels`` is refused before it is decoded."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} {p} does not exist")
    if p.is_dir():
        raise InputError(f"{what} {p} is a directory, not an image file")
    check_image(p, max_pixels, what)
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


def read_alpha(path: str | os.PathLike[str], max_pixels: int = MAX_PIXELS) -> np.ndarray | None:
    """An image file's alpha channel as (H, W) float32 in [0, 1], or None when it has none (or
    one that is opaque everywhere)."""
    check_image(path, max_pixels, "image")
    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None or img.ndim != 3 or img.shape[2] != 4:
        return None
    a = img[..., 3].astype(np.float32) / (65535.0 if img.dtype == np.uint16 else 255.0)
    return None if a.min() >= 1.0 else a


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


# ---------------------------------------------------------------- frames as arrays (no torch here)

MIN_SIDE = 32  # relu5_1 sits behind four 2x poolings; below this the deep layers degenerate.


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[0, 1] floats to uint8, rounded half to even and saturated."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.float32 and image.ndim == 3 and image.shape[2] == 3:
        # OpenCV's conversion (after cutting negatives, which it would mirror): a tenth of
        # numpy's time at 1080p, where it runs once a frame.
        return cv2.convertScaleAbs(cv2.max(image, 0.0), alpha=255.0)
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def fit_size(h: int, w: int, max_side: int, upscale: bool = False) -> tuple[int, int]:
    """Scale (h, w) down so the longer side is at most ``max_side`` (0 = unchanged), keeping the
    aspect ratio. Upscales only when asked (``upscale``): detail the source does not have cannot
    be painted, but a large print or screen may want the strokes at its size."""
    if max_side <= 0 or max_side == max(h, w) or (max_side > max(h, w) and not upscale):
        return h, w
    s = max_side / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


def check_size(h: int, w: int, what: str) -> None:
    if min(h, w) < MIN_SIDE:
        raise InputError(
            f"{what} is {w}x{h}; the network needs at least {MIN_SIDE} pixels on each side: use a larger image or "
            f"{setting('size')}"
        )


_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)


def preserve_colors(stylized: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Luminance of ``stylized`` with the chroma of ``content`` (neural-style's -original_colors)."""
    s = stylized.astype(np.float32)
    c = content.astype(np.float32) / 255.0 if content.dtype == np.uint8 else content.astype(np.float32)
    m = _YCC
    y = s @ m[0]
    cc = c @ m[1:].T
    ycc = np.concatenate([y[..., None], cc], axis=-1)
    return np.clip(ycc @ np.linalg.inv(m).T, 0.0, 1.0).astype(np.float32)
