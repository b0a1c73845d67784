"""The config's flags: one per field, in groups (the everyday ones first), with metavars that say
what goes there; argparse that fails in one line; a Namespace turned into config overrides."""

from __future__ import annotations

import argparse
import typing
from typing import Any

from videostyle import config as C


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors in one line with exit code 2 (no usage dump)."""

    def error(self, message: str) -> typing.NoReturn:
        hint = ""
        if message.startswith("unrecognized arguments:"):
            bad = next((a for a in message.split(":", 1)[1].split() if a.startswith("--")), None)
            if bad:
                known = [s for a in self._all_actions() for s in a.option_strings if s.startswith("--")]
                hint = C.suggest(bad.split("=")[0], known)
        self.exit(2, f"videostyle: error: {message}{hint} (see {self.prog} --help)\n")

    def _all_actions(self) -> list[argparse.Action]:
        actions = list(self._actions)
        for a in self._actions:
            if isinstance(a, argparse._SubParsersAction):
                for sp in a.choices.values():
                    actions += sp._actions
        return actions


# How ``render --help`` groups the config flags: the everyday ones first, the expert ones
# (flow internals, runtimes, threads) last. Every flag is in exactly one group (tested).
FLAG_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("everyday options", ("style", "method", "size", "iterations", "iterations_later", "consistency",
                          "style_strength", "style_blend", "preserve_colors", "start", "duration", "max_frames",
                          "device", "codec", "crf", "workers", "chains")),
    ("style and art direction", ("paint", "paint_style_weight", "style_transition", "mask", "mask_feather", "mask_follow", "style_scale",
                                 "stroke_side", "content_weight", "style_weight", "tv_weight")),
    ("video and temporal options", ("temporal_weight", "temporal_frames", "settle", "loop", "scene_cut",
                                    "init_later", "stop_loss_ratio", "coarse_later")),
    ("optimiser options", ("optimizer", "lr", "init", "init_image", "seed", "upscale", "pyramid_levels",
                           "pyramid_scale", "tolerance", "tolerance_window", "tile", "tile_margin")),
    ("fast engine options", ("fast_strength", "fast_blend", "refine_iterations")),
    ("output options", ("preset", "output_size", "even", "preview_every")),
    ("input options", ("fps", "fill_gaps", "start_number", "audio", "strict", "hdr", "max_pixels")),
    ("model options", ("model", "weights", "weights_format", "pooling", "content_layers", "style_layers",
                       "layer_weights")),
    ("expert: optical flow", ("flow", "flow_scale", "pyr_scale", "levels", "winsize", "flow_iterations", "poly_n",
                              "poly_sigma", "dis_preset", "flow_check", "photometric_threshold", "fast_flow")),
    ("expert: runtimes, threads and memory", ("precision", "channels_last", "memory", "threads", "stage_threads",
                                              "flow_workers", "fast_runtime", "tiling", "tile_overlap",
                                              "compile", "cuda_graphs", "chunk_frames", "ray_address",
                                              "overlap")),
)

# What goes after a flag, where its type alone does not say it.
METAVARS = {
    "style": "IMAGE[@TIME]", "style_strength": "S[@TIME]", "style_blend": "W", "style_transition": "SECONDS",
    "mask": "MASK[=STYLE]", "content_layers": "LAYER", "style_layers": "LAYER", "layer_weights": "W",
    "temporal_frames": "GAP", "init_image": "PATH", "weights": "PATH", "start": "SECONDS", "duration": "SECONDS",
    "settle": "SECONDS", "device": "DEVICE", "tile": "PX|auto|off", "preset": "PRESET", "ray_address": "ADDRESS",
    "memory": "GB", "chains": "K|auto", "mask_feather": "PX", "stroke_side": "PX", "tile_margin": "PX", "size": "PX",
    "consistency": "0..1", "scene_cut": "FRACTION", "fps": "FPS", "audio": "PATH", "paint": "TIME=IMAGE",
}


def _metavar(fi: C.FieldInfo) -> str | None:
    if fi.choices:
        return "{" + ",".join(map(str, fi.choices)) + "}"
    if fi.flag in METAVARS:
        return METAVARS[fi.flag]
    base = typing.get_args(fi.type)[0] if typing.get_origin(fi.type) is tuple else fi.type
    if fi.flag.endswith("weight"):
        return "W"
    return {int: "N", float: "X"}.get(base, "VALUE")  # type: ignore[call-overload]


def add_config_flags(p: argparse.ArgumentParser) -> None:
    """One flag per config field, generated from the dataclasses (the single source of
    defaults), in FLAG_GROUPS' groups."""
    for title, flags in FLAG_GROUPS:
        g = p.add_argument_group(title)
        for name in flags:
            _add_flag(g, C.FLAT[name])


def _add_flag(g: argparse._ArgumentGroup, fi: C.FieldInfo) -> None:
    flag = "--" + fi.flag.replace("_", "-")
    default = fi.default if fi.default != () else "none"
    helptext = f"{fi.help} (default: {default}; config: {fi.path})"
    kw: dict[str, Any] = {"dest": f"cfg::{fi.path}", "default": argparse.SUPPRESS, "help": helptext}
    if fi.type is bool:
        g.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
    elif typing.get_origin(fi.type) is tuple:
        g.add_argument(flag, action="append", metavar=_metavar(fi), **kw)
    else:
        g.add_argument(flag, metavar=_metavar(fi), **kw)


def overrides_from_args(ns: argparse.Namespace) -> dict[str, Any]:
    """Explicitly given config flags as ``{section.key: value}``."""
    out: dict[str, Any] = {}
    for key, value in vars(ns).items():
        if not key.startswith("cfg::"):
            continue
        path = key[5:]
        fi = C.FIELDS[path]
        if typing.get_origin(fi.type) is tuple and path != "style.images":  # style paths may hold commas
            value = [v for item in value for v in str(item).split(",") if v.strip()]
        out[path] = value
    return out


def resolve_config(ns: argparse.Namespace) -> C.Config:
    cfg = C.Config()
    if getattr(ns, "config", None):
        cfg = C.load(ns.config, cfg)
    return C.apply(cfg, overrides_from_args(ns), "command line")
