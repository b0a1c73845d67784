"""The largest picture a file may declare: its size is read from the header (PIL for images, the
container for clips) and checked before a pixel is decoded, so that a small file that declares a
huge picture (a "decompression bomb": a 2.5 MiB PNG can declare 30000x30000, 2.7 GB of RGB) gets
one line instead of the memory it asks for."""

from __future__ import annotations

import os
import struct
import warnings
from pathlib import Path

from videostyle.errors import InputError, setting

# Fits 8K video (7680x4320 is 33 megapixels) and photos from 100-megapixel cameras; a picture of
# this size takes about 0.3 GB as RGB and a few GB through a render's float conversions.
MAX_PIXELS = 100_000_000


def header_size(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(width, height) as an image file's header declares them, read without decoding a pixel;
    None for a file PIL does not know (OpenCV may still read it, with its own limit)."""
    from PIL import Image

    # PIL's own openers, as Image.open tries them, but without its decompression-bomb check:
    # that check raises before the size is known, and the limit here is ours (--max-pixels).
    Image.init()
    with open(path, "rb") as fp:
        prefix = fp.read(16)
        for fmt in Image.ID:
            factory, accept = Image.OPEN[fmt]
            if accept is not None and not accept(prefix):
                continue
            fp.seek(0)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    im = factory(fp, os.fspath(path))
                return im.size
            except (SyntaxError, IndexError, TypeError, ValueError, OSError, struct.error):
                continue
    return None


def check_pixels(width: int, height: int, limit: int, what: str, path: str | os.PathLike[str] | None = None) -> None:
    """InputError unless ``width x height`` is at most ``limit`` pixels: "``what`` ``path``
    declares ...", or "``what`` declares ..." without a path."""
    n = int(width) * int(height)
    if limit and n > limit:
        raise InputError(f"{what}{f' {Path(path)}' if path is not None else ''} declares a {width}x{height} picture ({n / 1e6:.0f} megapixels, about "
                         f"{n * 3 / 2**30:.1f} GB decoded), over the limit of {limit / 1e6:.0f} megapixels: "
                         f"shrink it, or raise {setting('max_pixels')} if this machine has the memory")


def check_image(path: str | os.PathLike[str], limit: int = MAX_PIXELS, what: str = "image") -> None:
    """``check_pixels`` on an image file's header (nothing for a format PIL does not read)."""
    size = header_size(path)
    if size is not None:
        check_pixels(size[0], size[1], limit, what, path)
