"""Style keyframes: which style images (and how strongly) each frame of a video is painted with.

A style given as ``IMAGE@TIME`` is a keyframe: at ``TIME`` (seconds of the source, or ``f:N``
for frame N) the frame is painted in that image alone. Between two keyframes the weights move
from one image to the next, linearly across the whole gap, or, when the later keyframe has a
transition of ``b`` seconds, held until ``b`` seconds before it and then eased in with a
smoothstep. Before the first keyframe its image holds; after the last, the last one does.

Strength keyframes (``VALUE@TIME``) scale the style term the same way, always linearly.

The engines blend what they blend anyway: Gram targets for the optimiser, style vectors for
the feed-forward network. A style change is not a scene cut: warm starts carry on through it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from videostyle.errors import ConfigError

_TIME = re.compile(r"^(?:f:(\d+)|(\d+(?:\.\d*)?|\.\d+)s?)$")


@dataclass(frozen=True)
class At:
    """A keyframe's place: ``seconds`` of the source, or source ``frame`` N (0-based)."""

    seconds: float | None = None
    frame: int | None = None

    def resolve(self, fps: float) -> float:
        """Seconds of the source (a frame keyframe at ``frame / fps``)."""
        if self.frame is not None:
            return self.frame / fps
        assert self.seconds is not None
        return self.seconds


def parse_time(text: str) -> At | None:
    """``8.5``, ``8.5s`` or ``f:120``; None when ``text`` is none of these."""
    m = _TIME.match(text.strip())
    if not m:
        return None
    return At(frame=int(m.group(1))) if m.group(1) is not None else At(seconds=float(m.group(2)))


def split(spec: str) -> tuple[str, At | None]:
    """``"b.jpg@8.5"`` -> ``("b.jpg", At(8.5))``; a path without a time suffix (or with an ``@``
    that is part of its name) comes back whole with None."""
    path, sep, when = spec.rpartition("@")
    if sep and path:
        at = parse_time(when)
        if at is not None:
            return path, at
    return spec, None


def style_paths(images: Sequence[str]) -> list[str]:
    """The image paths of ``style.images`` entries, without their keyframe times."""
    return [split(s)[0] for s in images]


def check(images: Sequence[str], transitions: Sequence[float], strength: Sequence[str], blend: Sequence[float],
          where: str = "") -> None:
    """Config errors: keyframed and plain styles mixed, times out of order, transitions that do
    not match the keyframes, strength keyframes that do not parse."""
    times = [split(s)[1] for s in images]
    keyed = [t is not None for t in times]
    if any(keyed) and not all(keyed):
        raise ConfigError(f"{where}style.images: give every style a time (IMAGE@SECONDS or IMAGE@f:FRAME) "
                          "or none; got " + ", ".join(images))
    if any(keyed) and blend:
        raise ConfigError(f"{where}style.blend does not go with keyframed styles (IMAGE@TIME): the keyframes "
                          "set the blend over time")
    if transitions and not any(keyed):
        raise ConfigError(f"{where}style.transitions needs keyframed styles (IMAGE@TIME)")
    if transitions and len(transitions) not in (1, len(images)):
        raise ConfigError(f"{where}style.transitions: give one value, or one per keyframe ({len(images)}); "
                          f"got {len(transitions)}")
    for item in strength:
        value, _, when = str(item).rpartition("@")
        if len(strength) == 1 and "@" not in str(item):
            value, when = str(item), "0"
        if not value or parse_time(when) is None or not _is_number(value):
            raise ConfigError(f"{where}style.strength: expected one VALUE, or keyframes VALUE@SECONDS / "
                              f"VALUE@f:FRAME (e.g. 1@0 2@8.5), got {item!r}")
        if float(value) < 0:
            raise ConfigError(f"{where}style.strength: values must be >= 0, got {item!r}")


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def smoothstep(u: float) -> float:
    u = min(max(u, 0.0), 1.0)
    return u * u * (3.0 - 2.0 * u)


@dataclass(frozen=True)
class Schedule:
    """Style weights and strength per frame. ``times``: keyframe seconds, ascending, one per
    style image (empty: no keyframes, the static ``blend`` holds); ``transitions``: seconds each
    keyframe eases in over (0: linear from the previous keyframe); ``strength``: (seconds,
    value) keys, ascending (empty: 1)."""

    n_styles: int
    blend: tuple[float, ...] = ()
    times: tuple[float, ...] = ()
    transitions: tuple[float, ...] = ()
    strength: tuple[tuple[float, float], ...] = ()

    @property
    def keyed(self) -> bool:
        return bool(self.times) or bool(self.strength)

    def weights(self, t: float) -> np.ndarray:
        """Normalised weights of the style images at ``t`` seconds."""
        n = self.n_styles
        if not self.times:
            w = np.asarray(self.blend if self.blend else [1.0] * n, np.float64)
            return w / w.sum()
        w = np.zeros(n, np.float64)
        order = sorted(range(n), key=lambda i: self.times[i])
        if t <= self.times[order[0]]:
            w[order[0]] = 1.0
            return w
        for a, b in zip(order, order[1:]):
            ta, tb = self.times[a], self.times[b]
            if t < tb:
                span = tb - ta
                tr = min(self.transitions[b] if self.transitions else 0.0, span)
                if tr > 0:
                    u = smoothstep((t - (tb - tr)) / tr)
                else:
                    u = (t - ta) / span if span > 0 else 1.0
                w[a], w[b] = 1.0 - u, u
                return w
        w[order[-1]] = 1.0
        return w

    def strength_at(self, t: float) -> float:
        keys = self.strength
        if not keys:
            return 1.0
        if t <= keys[0][0]:
            return keys[0][1]
        for (ta, va), (tb, vb) in zip(keys, keys[1:]):
            if t < tb:
                return va + (vb - va) * (t - ta) / (tb - ta) if tb > ta else vb
        return keys[-1][1]


def schedule(images: Sequence[str], blend: Sequence[float], transitions: Sequence[float],
             strength: Sequence[str], fps: float) -> Schedule:
    """The schedule of a (checked) config's style section; ``fps`` places ``f:N`` keyframes."""
    fps = fps if fps and fps > 0 else 25.0
    times = [split(s)[1] for s in images]
    secs = tuple(t.resolve(fps) for t in times) if times and all(times) else ()
    trans = tuple(transitions) * len(images) if len(transitions) == 1 else tuple(transitions)
    keys = []
    for item in strength:
        value, _, when = str(item).rpartition("@")
        if "@" not in str(item):
            value, when = str(item), "0"
        at = parse_time(when)
        assert at is not None
        keys.append((at.resolve(fps), float(value)))
    return Schedule(len(images), tuple(blend), secs, trans if secs else (), tuple(sorted(keys)))


@dataclass(frozen=True)
class Keys:
    """A style section's keyframes as given (``style.images`` with their times, ``blend``,
    ``transitions``, ``strength``), before a source's frame rate places them (``at``)."""

    images: tuple[str, ...] = ()
    blend: tuple[float, ...] = ()
    transitions: tuple[float, ...] = ()
    strength: tuple[str, ...] = ()

    @property
    def paths(self) -> list[str]:
        """The style images' paths, without their keyframe times."""
        return style_paths(self.images)

    def at(self, fps: float) -> Schedule:
        """The schedule at ``fps`` (0: a still's, which places ``f:N`` keyframes at 25 fps)."""
        return schedule(self.images, self.blend, self.transitions, self.strength, fps)
