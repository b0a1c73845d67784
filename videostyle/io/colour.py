"""What a source's pictures hold beyond 8-bit RGB, and the way between them and the network's
picture.

The network works on display-referred sRGB at 8 bits a channel (what VGG-19 was trained on).
A source may hold more: 10, 12 or 16 bits, an alpha channel, colour tags other than BT.709, an
HDR transfer (PQ or HLG) or OpenEXR's linear light. ``Picture`` says what a stream holds;
``to_display`` turns a decoded frame into the network's picture and the source's alpha, unchanged;
``from_display`` turns a stylized picture and that alpha back into the output's pixels, at its
depth, with its matrix and range, and through the inverse of the HDR operator.

Alpha travels beside the colour, never through the network, as the integer samples the source
held (shifted up to 16 bits, so any depth fits and shifts back exactly) or, from OpenEXR, as
floats. Transparent pixels (alpha 0) hold whatever their encoder left, often black or noise: the
network would take it for content and let it bleed into the edges, so their colour is filled in
from the nearest visible pixels before stylizing (``fill_transparent``), and a premultiplied
source (OpenEXR) is divided by its alpha first. docs/guide/alpha-and-colour.md has a picture.

The HDR operator (PQ and HLG to the network's sRGB and back) is named ``OPERATOR``: BT.2408's
reference white (203 cd/m²) becomes SDR white, the BT.2020 primaries become BT.709's, and the
highlights above ``KNEE`` of SDR white roll off along a Reinhard shoulder on max(R, G, B), which
keeps hues and is exactly invertible, so the stylized picture goes back to PQ or HLG by its inverse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import av
import cv2
import numpy as np

# AVColorPrimaries / AVColorTransferCharacteristic / AVColorSpace / AVColorRange values.
UNSPECIFIED = 2
BT709 = 1
BT2020 = 9
PQ, HLG = 16, 18  # SMPTE ST 2084, ARIB STD-B67
MPEG, JPEG = 1, 2  # limited and full range
_NAMES = {1: "BT.709", 4: "BT.470M", 5: "BT.601", 6: "BT.601", 7: "SMPTE 240M", 8: "linear", 9: "BT.2020",
          13: "sRGB", 14: "BT.2020", 15: "BT.2020", 16: "PQ", 18: "HLG", 12: "Display P3", 11: "DCI-P3"}

OPERATOR = "BT.2408 203 cd/m2 white, BT.2020->BT.709, Reinhard shoulder on max(RGB) above 0.75"
REFERENCE_WHITE = 203.0  # cd/m², BT.2408: HDR's diffuse white, where SDR's 100% lands
KNEE = 0.75  # of SDR white: below it the mapping is the identity
HLG_PEAK = 1000.0  # cd/m², the nominal display of BT.2100's HLG reference OOTF
PQ_PEAK = 10000.0

_2020_TO_709 = np.array([[1.6605, -0.5876, -0.0728],
                         [-0.1246, 1.1329, -0.0083],
                         [-0.0182, -0.1006, 1.1187]], np.float32)  # BT.2087, linear light
_709_TO_2020 = np.linalg.inv(_2020_TO_709).astype(np.float32)


@dataclass(frozen=True)
class Picture:
    """What a stream's pictures hold: bits per colour sample (32: float), alpha (and whether the
    colour is premultiplied by it), chroma subsampling and the four colour tags."""

    depth: int = 8
    alpha: bool = False
    premultiplied: bool = False  # colour multiplied by alpha (OpenEXR's convention)
    chroma: str = "420"  # 420, 422 or 444 (RGB formats are 444)
    primaries: int = UNSPECIFIED
    trc: int = UNSPECIFIED
    matrix: int = UNSPECIFIED
    range: int = 0
    linear: bool = False  # OpenEXR's linear light (read through the sRGB transfer)

    @property
    def hdr(self) -> str | None:
        return {PQ: "pq", HLG: "hlg"}.get(self.trc)

    def describe(self) -> str:
        """"10-bit 4:2:2, BT.2020 PQ, alpha" and the like."""
        depth = "float" if self.depth == 32 else f"{self.depth}-bit"
        tags = " ".join(dict.fromkeys(_NAMES[t] for t in (self.primaries, self.trc) if t in _NAMES))
        return ", ".join(x for x in (f"{depth} {self.chroma[0]}:{self.chroma[1]}:{self.chroma[2]}", tags,
                                     "alpha" if self.alpha else "") if x)


def of_frame(frame: av.VideoFrame, linear: bool = False) -> Picture:
    """The Picture of a decoded frame (its format and tags)."""
    fmt = frame.format
    comps = fmt.components
    alpha = any(c.is_alpha for c in comps)
    depth = 32 if fmt.name.endswith("f32le") or fmt.name.endswith("f16le") else max(c.bits for c in comps)
    m = re.search(r"4[124][024]", fmt.name)
    chroma = m.group(0) if m and not fmt.is_rgb else ("422" if fmt.name.startswith(("nv16", "nv20", "p2"))
                                                      else "420" if fmt.name.startswith(("nv", "p0", "p1"))
                                                      else "444")
    return Picture(depth=depth, alpha=alpha, premultiplied=linear and alpha, chroma=chroma,
                   primaries=int(frame.color_primaries), trc=int(frame.color_trc), matrix=int(frame.colorspace),
                   range=int(frame.color_range), linear=linear)


# -- transfers ---------------------------------------------------------------------------------

def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1's transfer: linear light 0..1 to sRGB 0..1 (clipped)."""
    c = np.clip(linear, 0.0, 1.0)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * np.power(c, 1 / 2.4) - 0.055).astype(np.float32)


def srgb_decode(c: np.ndarray) -> np.ndarray:
    """The inverse: sRGB 0..1 to linear light."""
    return np.where(c <= 0.04045, c / 12.92, np.power((c + 0.055) / 1.055, 2.4)).astype(np.float32)


_M1, _M2 = 2610 / 16384, 2523 / 4096 * 128
_C1, _C2, _C3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32


def pq_eotf(e: np.ndarray) -> np.ndarray:
    """SMPTE ST 2084: signal 0..1 to cd/m²."""
    p = np.power(np.clip(e, 0.0, 1.0), 1 / _M2)
    return (PQ_PEAK * np.power(np.maximum(p - _C1, 0.0) / (_C2 - _C3 * p), 1 / _M1)).astype(np.float32)


def pq_oetf(nits: np.ndarray) -> np.ndarray:
    """Its inverse: cd/m² to signal 0..1."""
    y = np.power(np.clip(nits / PQ_PEAK, 0.0, 1.0), _M1)
    return np.power((_C1 + _C2 * y) / (1 + _C3 * y), _M2).astype(np.float32)


_HA, _HB, _HC = 0.17883277, 0.28466892, 0.55991073
_HLG_GAMMA = 1.2  # BT.2100's system gamma at the 1000 cd/m² reference display
_LUMA_2020 = np.array([0.2627, 0.6780, 0.0593], np.float32)


def hlg_eotf(e: np.ndarray) -> np.ndarray:
    """BT.2100 HLG: signal to display cd/m² (inverse OETF, then the reference OOTF at 1000 cd/m²)."""
    e = np.clip(e, 0.0, 1.0)
    scene = np.where(e <= 0.5, e * e / 3, (np.exp((e - _HC) / _HA) + _HB) / 12).astype(np.float32)
    ys = np.maximum(scene @ _LUMA_2020, 1e-12)[..., None]
    return (HLG_PEAK * np.power(ys, _HLG_GAMMA - 1) * scene).astype(np.float32)


def hlg_oetf(nits: np.ndarray) -> np.ndarray:
    """Its inverse: display cd/m² to signal (inverse OOTF, then the OETF)."""
    d = np.clip(nits / HLG_PEAK, 0.0, 1.0)
    yd = np.maximum(d @ _LUMA_2020, 1e-12)[..., None]
    scene = d * np.power(yd, (1 - _HLG_GAMMA) / _HLG_GAMMA)
    scene = np.clip(scene, 0.0, 1.0)
    return np.where(scene <= 1 / 12, np.sqrt(3 * scene),
                    _HA * np.log(np.maximum(12 * scene - _HB, 1e-12)) + _HC).astype(np.float32)


def _shoulder(x: np.ndarray) -> np.ndarray:
    """Identity below KNEE; above, a Reinhard roll-off towards 1 with slope 1 at the knee."""
    t = np.maximum(x - KNEE, 0.0) / (1 - KNEE)
    return np.where(x <= KNEE, x, KNEE + (1 - KNEE) * t / (1 + t))


def _unshoulder(y: np.ndarray, peak: float) -> np.ndarray:
    s = np.clip((y - KNEE) / (1 - KNEE), 0.0, 1.0 - 1e-6)
    return np.minimum(np.where(y <= KNEE, y, KNEE + (1 - KNEE) * s / (1 - s)), peak)


def hdr_to_display(signal: np.ndarray, transfer: str) -> np.ndarray:
    """(H, W, 3) PQ or HLG signal 0..1 (BT.2020) to the network's sRGB 0..1 (BT.709), by OPERATOR."""
    nits = pq_eotf(signal) if transfer == "pq" else hlg_eotf(signal)
    rel = np.maximum((nits / REFERENCE_WHITE) @ _2020_TO_709.T, 0.0)  # out of BT.709's gamut: clipped
    m = rel.max(axis=-1, keepdims=True)
    scale = np.where(m > KNEE, _shoulder(m) / np.maximum(m, 1e-12), 1.0)
    return srgb_encode(rel * scale)


def display_to_hdr(srgb: np.ndarray, transfer: str) -> np.ndarray:
    """The inverse of ``hdr_to_display``: sRGB 0..1 back to the PQ or HLG signal 0..1."""
    peak = (PQ_PEAK if transfer == "pq" else HLG_PEAK) / REFERENCE_WHITE
    rel = srgb_decode(np.clip(srgb, 0.0, 1.0))
    m = rel.max(axis=-1, keepdims=True)
    scale = np.where(m > KNEE, _unshoulder(m, peak) / np.maximum(m, 1e-12), 1.0)
    nits = np.maximum((rel * scale) @ _709_TO_2020.T, 0.0) * REFERENCE_WHITE
    return pq_oetf(nits) if transfer == "pq" else hlg_oetf(nits)


# -- alpha -------------------------------------------------------------------------------------

def _plane(frame: av.VideoFrame, index: int, depth: int) -> np.ndarray:
    p = frame.planes[index]
    dt = np.dtype(np.uint8 if depth <= 8 else "<u2")
    return np.frombuffer(p, dt).reshape(p.height, p.line_size // dt.itemsize)[:, :p.width]


def read_alpha(frame: av.VideoFrame, pic: Picture) -> np.ndarray:
    """The frame's alpha as the source holds it: integer samples shifted up to 16 bits (uint16), or
    float32 from a float format."""
    fmt = frame.format
    if pic.depth == 32:
        return np.ascontiguousarray(frame.to_ndarray(format="gbrapf32le")[..., 3])
    if fmt.is_planar and len(frame.planes) == 4:
        return (_plane(frame, 3, pic.depth).astype(np.uint16) << (16 - pic.depth)).astype(np.uint16)
    return np.ascontiguousarray(frame.to_ndarray(format="rgba64le")[..., 3])  # packed: 16-bit, shifted


def alpha_at(alpha: np.ndarray, depth: int) -> np.ndarray:
    """Alpha at ``depth`` bits (32: float 0..1), exact for a source of that depth or less."""
    if depth == 32:
        return alpha.astype(np.float32) if alpha.dtype != np.uint16 else (alpha / 65535.0).astype(np.float32)
    if alpha.dtype != np.uint16:  # float to integer samples
        return np.round(np.clip(alpha, 0.0, 1.0) * (2 ** depth - 1)).astype(np.uint8 if depth <= 8 else np.uint16)
    a = alpha >> (16 - depth)
    return a.astype(np.uint8 if depth <= 8 else np.uint16)


def opacity(alpha: np.ndarray) -> np.ndarray:
    """Alpha as float 0..1."""
    return alpha.astype(np.float32) / 65535.0 if alpha.dtype == np.uint16 else alpha.astype(np.float32)


def fill_transparent(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``rgb`` with the colour of fully transparent pixels pushed in from the visible ones (a
    push-pull pyramid): the network sees no hidden black or noise, and no dark halo grows into
    soft edges."""
    hole = opacity(alpha) <= 0.0
    if not hole.any() or hole.all():
        return rgb
    levels = []
    img, w = rgb.astype(np.float32) * (~hole)[..., None], (~hole).astype(np.float32)
    while min(img.shape[:2]) > 1:
        levels.append((img, w))
        h2, w2 = (img.shape[0] + 1) // 2, (img.shape[1] + 1) // 2
        img = cv2.resize(img, (w2, h2), interpolation=cv2.INTER_AREA)
        w = cv2.resize(w, (w2, h2), interpolation=cv2.INTER_AREA)
    filled = img / np.maximum(w, 1e-8)[..., None]
    for img, w in reversed(levels):
        up = cv2.resize(filled, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
        mean = img / np.maximum(w, 1e-8)[..., None]  # (0 where nothing is visible: the blend takes ``up``)
        c = np.minimum(w, 1)[..., None]
        filled = mean * c + up * (1 - c)
    out = rgb.copy()
    out[hole] = np.clip(np.round(filled[hole]), 0, 255).astype(np.uint8)
    return out


# -- frames ------------------------------------------------------------------------------------

def to_display(frame: av.VideoFrame, pic: Picture) -> tuple[np.ndarray, np.ndarray | None]:
    """A decoded frame as the network's picture, (H, W, 3) sRGB uint8, and the source's alpha
    (None without one)."""
    rng = {"src_color_range": JPEG} if pic.range == JPEG and not frame.format.name.startswith("yuvj") else {}
    alpha = read_alpha(frame, pic) if pic.alpha else None
    if pic.hdr is None and not pic.linear:
        # SDR at any depth: FFmpeg's scaler straight to 8-bit RGB, in the source's matrix and range
        # (the alpha, read apart, is dropped there).
        rgb = frame.reformat(format="rgb24", **rng).to_ndarray() if rng else frame.to_ndarray(format="rgb24")
    else:
        if pic.depth == 32:
            f = frame.to_ndarray(format="gbrapf32le" if pic.alpha else "gbrpf32le")[..., :3].astype(np.float32)
            if pic.premultiplied and alpha is not None:
                a = opacity(alpha)[..., None]
                f = np.where(a > 0, f / np.maximum(a, 1e-12), 0.0)
            c = srgb_encode(f) if pic.linear else np.clip(f, 0.0, 1.0)
        else:
            c = frame.reformat(format="rgb48le", **rng).to_ndarray().astype(np.float32) / 65535.0
            if pic.hdr is not None:
                c = hdr_to_display(c, pic.hdr)
        rgb = np.round(c * 255.0).astype(np.uint8)
    return (fill_transparent(rgb, alpha) if alpha is not None else rgb), alpha


def from_display(rgb: np.ndarray, alpha: np.ndarray | None, pic: Picture, pix_fmt: str) -> av.VideoFrame:
    """A stylized (H, W, 3) sRGB uint8 picture (and the source's alpha, None to drop it) as a frame
    in the output's ``pix_fmt``, with ``pic``'s matrix, range and tags; the alpha plane is written
    as the source held it, not through swscale (which rounds it)."""
    tags = dict(dst_colorspace=pic.matrix if pic.matrix not in (0, UNSPECIFIED) else BT709,
                dst_color_range=pic.range or MPEG, dst_color_trc=pic.trc, dst_color_primaries=pic.primaries)
    if pic.depth <= 8 and pic.hdr is None and alpha is None:
        src = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    else:
        c = rgb.astype(np.float32) / 255.0
        if pic.hdr is not None:
            c = display_to_hdr(c, pic.hdr)
        deep = np.round(c * 65535.0).astype(np.uint16)
        src = av.VideoFrame.from_ndarray(np.ascontiguousarray(deep), format="rgb48le")
    # The RGB is already in the output's primaries and transfer: said so, or FFmpeg's swscale
    # would convert it from BT.709 to the tags it is given.
    src.color_primaries, src.color_trc = pic.primaries, pic.trc
    out = src.reformat(format=pix_fmt, threads=0, **tags)
    if alpha is None:
        return out
    if len(out.planes) == 4:
        depth = max(c.bits for c in out.format.components)
        a = np.ascontiguousarray(alpha_at(alpha, depth))
        plane = out.planes[3]
        row = plane.line_size // a.itemsize
        buf = np.zeros((plane.height, row), a.dtype)
        buf[:, :plane.width] = a
        plane.update(buf.astype("<u2" if a.itemsize == 2 else np.uint8).tobytes())
    return out
