"""What the embedded VGG-19's 8-bit quantization costs, measured without the float original.

The file stores each kernel as 256 k-means centroids per layer; the original weight of an entry
lay somewhere in its centroid's cell (between the midpoints to the neighbouring centroids). Per
layer: the weights' RMS quantization error against their RMS, were each original uniform in its
cell. Then plausible originals are drawn that way, and the network's content features, Gram
matrices and a stylization compared with the quantized network's; for scale, the same against a
bf16 run of the shipped network."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from benchmarks.harness import Column, Context, Row, Scenario
from benchmarks.media import SHARED

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1")


def cells(table: Any) -> tuple[Any, Any]:
    """Lower and upper bounds of each centroid's cell (midpoints to its sorted neighbours)."""
    import torch

    order = torch.argsort(table)
    srt = table[order]
    mid = (srt[1:] + srt[:-1]) / 2
    lo_s = torch.cat([srt[:1] - (mid[:1] - srt[:1]), mid])
    hi_s = torch.cat([mid, srt[-1:] + (srt[-1:] - mid[-1:])])
    lo, hi = torch.empty_like(table), torch.empty_like(table)
    lo[order], hi[order] = lo_s, hi_s
    return lo, hi


def _state() -> tuple[dict[str, Any], list[str]]:
    import torch

    from videostyle.assets import embedded_weights_path
    from videostyle.gatys.features import layer_names

    return (torch.load(embedded_weights_path(), map_location="cpu", weights_only=True),
            [n for n in layer_names() if n.startswith("conv")])


def _stem(name: str) -> str:
    b, c = name[4:].split("_")
    return f"block{b}_conv{c}"


def layers(ctx: Context) -> list[Row]:
    state, convs = _state()
    rows = []
    for name in convs:
        table, q = state[f"{_stem(name)}_W_table"].float(), state[f"{_stem(name)}_W_q"].long()
        lo, hi = cells(table)
        err = float(((hi - lo)[q].pow(2) / 12).mean().sqrt())
        rms = float(table[q].pow(2).mean().sqrt())
        rows.append({"layer": name, "rms": rms, "err": err, "snr": 20 * math.log10(rms / err)})
    return rows


def network(state: dict[str, Any], convs: list[str], draw: int | None) -> Any:
    """The shipped network (``draw`` None), or one plausible original."""
    import torch

    from videostyle.gatys.features import VGGFeatures

    g = torch.Generator().manual_seed(draw or 0)
    weights = {}
    for name in convs:
        table, q = state[f"{_stem(name)}_W_table"].float(), state[f"{_stem(name)}_W_q"].long()
        if draw is None:
            w = table[q]
        else:
            lo, hi = cells(table)
            w = lo[q] + (hi - lo)[q] * torch.rand(q.shape, generator=g)
        weights[name] = (w, state[f"{_stem(name)}_b"].float())
    m = VGGFeatures(LAYERS, weights_format="caffe")
    m.load_conv_state(weights)
    return m.freeze()


def effect(ctx: Context) -> list[Row]:
    import torch

    from videostyle.config import Config, apply
    from videostyle.engines import new_stylizer
    from videostyle.gatys.losses import gram_matrix
    from videostyle.gatys.stylizer import resize, to_tensor
    from videostyle.io.images import fit_size, read_image
    from videostyle.io.media import read_frames

    state, convs = _state()
    clip, style_path = ctx.media()
    photo = SHARED / "content" / "astronaut.png"
    content = read_image(photo) if photo.exists() and not ctx.smoke else next(read_frames(clip)).image
    style, size = read_image(style_path), ctx.pick(256, 64)
    cfg = apply(Config(), {"optim.size": size, "optim.iterations": ctx.pick(50, 2), "render.precision": "fp32",
                           "render.device": "cpu"})
    h, w = fit_size(*content.shape[:2], size)
    x = resize(to_tensor(content), (h, w))
    small = (x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    base = network(state, convs, None)
    with torch.no_grad():
        ref = base(x, LAYERS)

    def stylized(net: Any, precision: str = "fp32") -> Any:
        st = new_stylizer(apply(cfg, {"render.precision": precision}), extractor=net)
        st.set_styles([style])
        return st.stylize(small)

    def psnr(a: Any, b: Any) -> float:
        return 10 * math.log10(1.0 / max(float(np.mean((a.image - b.image) ** 2)), 1e-12))

    out_ref = stylized(base)
    rows: list[Row] = [{"network": "quantized (shipped)", "content": 0.0, "grams": "0", "loss": out_ref.loss}]
    if not ctx.smoke:  # (bf16 on a CPU without bf16 units takes minutes)
        out = stylized(base, "bf16")
        rows.append({"network": "quantized, bf16 autocast (for scale)", "loss": out.loss, "psnr": psnr(out, out_ref)})
    for d in range(1, ctx.pick(3, 1) + 1):
        net = network(state, convs, d)
        with torch.no_grad():
            got = net(x, LAYERS)
        grams = [float((gram_matrix(got[n]) - gram_matrix(ref[n])).norm() / gram_matrix(ref[n]).norm())
                 for n in LAYERS if n != "relu4_2"]
        out = stylized(net)
        rows.append({"network": f"plausible original {d}", "grams": ", ".join(f"{g:.4f}" for g in grams),
                     "content": float((got["relu4_2"] - ref["relu4_2"]).norm() / ref["relu4_2"].norm()),
                     "loss": out.loss, "psnr": psnr(out, out_ref)})
    return rows


SCENARIOS = [
    Scenario("quantization-layers", "The embedded VGG-19's quantization error per layer",
             (Column("layer", "layer"), Column("rms", "weight RMS", "{:.4f}"),
              Column("err", "quantization error RMS (uniform in cell)", "{:.5f}"), Column("snr", "SNR dB", "{:.1f}")),
             layers, "Each original weight taken as uniform in its centroid's cell."),
    Scenario("quantization-effect", "Plausible float originals of the embedded VGG-19 against the shipped network",
             (Column("network", "network"), Column("content", "relu4_2 rel. change", "{:.4f}"),
              Column("grams", "Gram rel. change (relu1_1..relu5_1)"), Column("loss", "final loss", "{:.4f}"),
              Column("psnr", "PSNR vs quantized (dB)", "{:.1f}")),
             effect, "The shared astronaut photo at 256 px, Starry Night, 50 L-BFGS iterations, fp32."),
]
