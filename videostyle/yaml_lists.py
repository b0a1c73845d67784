"""The list forms of a YAML config, as the flat settings they stand for (``styles``,
``paintings``, ``regions``), and the "did you mean" every unknown key gets."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from videostyle.errors import ConfigError


def suggest(key: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""



def keyframe_list(value: Any, where: str) -> dict[str, Any]:
    """YAML's ``styles: [{at: 0, image: a.jpg}, {at: 8.5, image: b.jpg, blend: 2, strength: 3}]``
    as style.images (IMAGE@AT), style.transitions (each ``blend``, seconds) and style.strength
    (when a keyframe has one; the others get 1)."""
    if not isinstance(value, list) or not value or not all(isinstance(v, Mapping) for v in value):
        raise ConfigError(f"{where}styles: expected a list of keyframes like {{at: 0, image: a.jpg}}, got {value!r}")
    images, transitions, strength = [], [], []
    keys = ["at", "image", "blend", "strength"]
    for k in value:
        unknown = [str(x) for x in k if str(x) not in keys]
        if unknown:
            raise ConfigError(f"{where}styles: unknown key {unknown[0]}" + suggest(unknown[0], keys))
        if "image" not in k or "at" not in k:
            raise ConfigError(f"{where}styles: each keyframe needs `at` (seconds or f:FRAME) and `image`, got {dict(k)!r}")
        images.append(f"{k['image']}@{k['at']}")
        transitions.append(k.get("blend", 0.0))
        strength.append(f"{k.get('strength', 1.0)}@{k['at']}")  # (a keyframe without one: 1)
    out: dict[str, Any] = {"style.images": images}
    if any(transitions):
        out["style.transitions"] = transitions
    if any("strength" in k for k in value):
        out["style.strength"] = strength
    return out


def painting_list(value: Any, where: str) -> list[str]:
    """YAML's ``paintings: [{at: f:120, image: painted_0120.png}]`` as style.paintings (TIME=IMAGE)."""
    if not isinstance(value, list) or not value or not all(isinstance(v, Mapping) for v in value):
        raise ConfigError(f"{where}paintings: expected a list like [{{at: f:120, image: painted_0120.png}}], "
                          f"got {value!r}")
    out = []
    for p in value:
        unknown = [str(x) for x in p if str(x) not in ("at", "image")]
        if unknown:
            raise ConfigError(f"{where}paintings: unknown key {unknown[0]}" + suggest(unknown[0], ["at", "image"]))
        if "at" not in p or "image" not in p:
            raise ConfigError(f"{where}paintings: each painting needs `at` (f:FRAME or seconds) and `image`, "
                              f"got {dict(p)!r}")
        out.append(f"{p['at']}={p['image']}")
    return out


def region_list(value: Any, where: str) -> list[str]:
    """YAML's ``regions: [{mask: sky.png, style: a.jpg}, {mask: person.png}]`` as style.masks."""
    if not isinstance(value, list) or not value or not all(isinstance(v, Mapping) for v in value):
        raise ConfigError(f"{where}regions: expected a list like [{{mask: sky.png, style: a.jpg}}], got {value!r}")
    out = []
    for r in value:
        unknown = [str(x) for x in r if str(x) not in ("mask", "style")]
        if unknown:
            raise ConfigError(f"{where}regions: unknown key {unknown[0]}" + suggest(unknown[0], ["mask", "style"]))
        if "mask" not in r:
            raise ConfigError(f"{where}regions: each region needs a mask, got {dict(r)!r}")
        out.append(f"{r['mask']}={r['style']}" if r.get("style") else str(r["mask"]))
    return out
