"""Run the fast engine's ONNX graphs with PyTorch: on CUDA without onnxruntime-gpu, and in bf16.

The two Magenta graphs use a small set of operators (convolutions, reflection pads, instance
norm spelt out as GlobalAveragePool/Sub/Mul/Sqrt/Reciprocal, nearest upsampling, and the
QuantizeLinear/DequantizeLinear pairs of their 8-bit quantization). This module interprets
exactly those, node by node, with torch ops:

* every node whose inputs are all constants (the int8 weights' DequantizeLinear, mostly) is
  folded once at load time;
* a QuantizeLinear followed by its DequantizeLinear is one fake-quantization step
  (round half to even, saturate, rescale), which is what onnxruntime computes for the pair
  on its reference path, so that the fp32 output matches onnxruntime's to float rounding;
* ``dtype=torch.bfloat16`` (or float16) runs the convolutions in that type and everything
  else, the quantization steps included, in fp32.

The interface mirrors the part of ``onnxruntime.InferenceSession`` that ``fast.py`` uses
(``get_inputs()`` and ``run(None, feeds)``), so either runtime serves the same stylizer.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

QRANGE = {np.dtype(np.uint8): (0, 255), np.dtype(np.int8): (-128, 127)}


@dataclass(frozen=True)
class Input:
    """What ``get_inputs()`` returns per input, as onnxruntime's NodeArg does."""

    name: str


class UnsupportedGraph(RuntimeError):
    """The graph uses an operator or attribute this interpreter does not implement."""


def _attrs(node: Any) -> dict[str, Any]:
    helper = importlib.import_module("onnx.helper")
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def _move_last(x: torch.Tensor, dims: list[int]) -> tuple[torch.Tensor, list[int] | None]:
    """Permute ``dims`` to the end (for F.pad); returns the inverse permutation too."""
    rest = [d for d in range(x.dim()) if d not in dims]
    perm = rest + dims
    if perm == list(range(x.dim())):
        return x, None
    inv = [perm.index(d) for d in range(x.dim())]
    return x.permute(perm), inv


class TorchGraph:
    """One ONNX graph interpreted with torch ops on ``device``."""

    def __init__(self, data: bytes, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 fused_quant: bool | None = None, graphs: bool | None = None) -> None:
        onnx = importlib.import_module("onnx")
        numpy_helper = importlib.import_module("onnx.numpy_helper")
        model = onnx.load_from_string(data)
        graph = model.graph
        self.device = torch.device(device)
        self.dtype = dtype
        # torch's fused fake-quantization kernel: one launch instead of six, but on the CPU it
        # is twice as slow as the plain ops (it also computes a mask for autograd).
        self.fused_quant = self.device.type == "cuda" if fused_quant is None else fused_quant
        # CUDA graphs (on CUDA by default), one per input shape.
        self.graphs = self.device.type == "cuda" if graphs is None else graphs
        self._graphs: dict[Any, Any] = {}
        self._lock = threading.Lock()
        inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        self._inputs = [Input(i.name) for i in graph.input if i.name not in inits]
        self._outputs = [o.name for o in graph.output]
        # Constants: numpy arrays (integer types kept, for the quantization steps' ranges).
        consts: dict[str, np.ndarray] = dict(inits)
        nodes = list(graph.node)
        readers: dict[str, list[int]] = {}  # the nodes that read each value, by position
        for j, node in enumerate(nodes):
            for name in node.input:
                readers.setdefault(name, []).append(j)
        self._steps: list[tuple[Callable[..., torch.Tensor], list[str], str]] = []
        fused: set[int] = set()
        for i, node in enumerate(nodes):
            if i in fused:
                continue
            ins = list(node.input)
            if all(n in consts or n == "" for n in ins):
                consts[node.output[0]] = self._fold(node, [consts.get(n) for n in ins])
                continue
            if node.op_type == "QuantizeLinear":
                # Fuse with the DequantizeLinear that is its only consumer, when there is one.
                nxt = readers.get(node.output[0], [])
                if len(nxt) == 1 and nodes[nxt[0]].op_type == "DequantizeLinear":
                    dq = nodes[nxt[0]]
                    scale, zp = consts[node.input[1]], consts[node.input[2]]
                    dscale, dzp = consts[dq.input[1]], consts[dq.input[2]]
                    if not (np.array_equal(scale, dscale) and np.array_equal(zp, dzp)):
                        raise UnsupportedGraph(f"{node.name}: quantize/dequantize pair with different parameters")
                    self._steps.append((self._fake_quant(scale, zp), [ins[0]], dq.output[0]))
                    fused.add(nxt[0])
                    continue
            self._steps.append((self._op(node, consts), [n for n in ins if n not in consts], node.output[0]))
        # Free each intermediate after its last reader: at 1080p the graph's ~500 activations,
        # up to 265 MB each, would take tens of GB otherwise.
        last: dict[str, int] = {}
        for k, (_, names, _) in enumerate(self._steps):
            for n in names:
                last[n] = k
        keep = set(self._outputs)
        self._drop = [sorted({n for n in names if last.get(n) == k and n not in keep})
                      for k, (_, names, _) in enumerate(self._steps)]
        # Constants that steps read at run time, as tensors on the device.
        self._consts = {k: torch.as_tensor(np.asarray(v, np.float32), device=self.device)
                        for k, v in consts.items() if k in self._outputs}

    # -- folding (numpy, once)

    @staticmethod
    def _fold(node: Any, vals: list[np.ndarray | None]) -> np.ndarray:
        op = node.op_type
        a = _attrs(node)
        if op == "DequantizeLinear":
            x, scale, zp = vals[0], vals[1], vals[2] if len(vals) > 2 else None
            axis = a.get("axis", 1)
            shape = [1] * x.ndim
            if np.ndim(scale) == 1:
                shape[axis] = -1
            s = np.reshape(scale, shape) if np.ndim(scale) else scale
            z = np.reshape(zp, shape).astype(np.float32) if zp is not None and np.ndim(zp) else (
                np.float32(zp) if zp is not None else np.float32(0))
            return ((x.astype(np.float32) - z) * s).astype(np.float32)
        raise UnsupportedGraph(f"constant {op} node {node.name} is not supported")

    # -- run-time steps

    def _fake_quant(self, scale: np.ndarray, zp: np.ndarray) -> Callable[..., torch.Tensor]:
        if np.ndim(scale) != 0:
            raise UnsupportedGraph("per-channel activation quantization is not supported")
        lo, hi = QRANGE[np.asarray(zp).dtype]
        s, z = float(scale), float(zp)
        zi = int(z)
        if self.fused_quant:
            def fused(x: torch.Tensor) -> torch.Tensor:
                # One kernel for round(x / s) + z, saturate, - z, * s (round half to even).
                return torch.fake_quantize_per_tensor_affine(x.float(), s, zi, lo, hi)

            return fused

        def step(x: torch.Tensor) -> torch.Tensor:
            x = x.float()
            return (torch.clamp(torch.round(x / s) + z, lo, hi) - z) * s

        return step

    def _c(self, consts: Mapping[str, np.ndarray], name: str) -> torch.Tensor:
        return torch.tensor(np.asarray(consts[name], np.float32), device=self.device)

    def _binary(self, node: Any, consts: Mapping[str, np.ndarray], fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        a_name, b_name = node.input
        if b_name in consts:
            b = self._c(consts, b_name)
            return lambda x: fn(x, b)
        if a_name in consts:
            a = self._c(consts, a_name)
            return lambda y: fn(a, y)
        return fn

    def _op(self, node: Any, consts: Mapping[str, np.ndarray]) -> Callable[..., torch.Tensor]:
        build = _BUILDERS.get(node.op_type)
        if build is None:
            raise UnsupportedGraph(f"operator {node.op_type} ({node.name}) is not supported")
        return build(self, node, consts, _attrs(node))

    # -- the onnxruntime-like interface

    def get_inputs(self) -> list[Input]:
        return list(self._inputs)

    @torch.inference_mode()
    def forward(self, feeds: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
        return self.trace(feeds)

    def trace(self, feeds: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
        """``forward`` outside inference mode, for ``torch.export`` (videostyle.fast.compiled)."""
        env: dict[str, torch.Tensor] = dict(self._consts)
        env.update(feeds)
        for (fn, names, out), drop in zip(self._steps, self._drop):
            env[out] = fn(*(env[n] for n in names))
            for n in drop:
                del env[n]
        return [env[o] for o in self._outputs]

    def _replay(self, feeds: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
        """``forward`` as a CUDA graph, captured once per input shape (a video's frames share
        one): one launch instead of the ~1500 kernels the graph's small ops make."""
        key = tuple(sorted((k, tuple(v.shape)) for k, v in feeds.items()))
        entry = self._graphs.get(key)
        if entry is None:
            if len(self._graphs) >= 4:  # another frame size: drop the oldest capture
                self._graphs.pop(next(iter(self._graphs)))
            static = {k: v.clone() for k, v in feeds.items()}
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                self.forward(static)  # warm-up: cuDNN picks its kernels outside the capture
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                outs = self.forward(static)
            entry = self._graphs[key] = (graph, static, outs)
        graph, static, outs = entry
        for k, v in feeds.items():
            static[k].copy_(v)
        graph.replay()
        return outs

    def run(self, output_names: Any, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """onnxruntime's ``run``: numpy in, numpy out (all outputs; ``output_names`` is ignored).
        Thread-safe: calls from several threads take turns (on CUDA they share the captured
        graphs' buffers)."""
        del output_names
        t = {k: torch.from_numpy(np.ascontiguousarray(v, np.float32)) for k, v in feeds.items()}
        return self.run_tensors(t, lambda outs: [o.float().cpu().numpy() for o in outs])

    def run_tensors(self, feeds: Mapping[str, torch.Tensor],
                    take: Callable[[list[torch.Tensor]], Any] = lambda outs: outs) -> Any:
        """The outputs for tensors on any device, handed to ``take`` while this call holds the
        graph (its outputs are the captured graph's buffers: ``take`` copies what it keeps)."""
        with self._lock:
            t = {k: v.to(self.device, non_blocking=True) for k, v in feeds.items()}
            return take(self._replay(t) if self.graphs else self.forward(t))


# ---------------------------------------------------------------- op builders
# Each builds the torch function of one ONNX node from its constant inputs and attributes.

Builder = Callable[["TorchGraph", Any, Mapping[str, np.ndarray], dict[str, Any]], Callable[..., torch.Tensor]]


def _conv(g: TorchGraph, node: Any, consts: Mapping[str, np.ndarray], a: dict[str, Any]) -> Callable[..., torch.Tensor]:
    w = g._c(consts, node.input[1])
    b = g._c(consts, node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if node.input[1] not in consts or (len(node.input) > 2 and node.input[2] and node.input[2] not in consts):
        raise UnsupportedGraph(f"{node.name}: convolution with run-time weights")
    if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise UnsupportedGraph(f"{node.name}: auto_pad {a['auto_pad']}")
    pads = list(a.get("pads", [0, 0, 0, 0]))
    stride, dil, groups = a.get("strides", [1, 1]), a.get("dilations", [1, 1]), a.get("group", 1)
    pre: list[int] | None = None
    if pads[:2] != pads[2:]:
        # TensorFlow's SAME padding at stride 2 is asymmetric (one more at the end):
        # zero-pad explicitly, then convolve unpadded.
        pre = [pads[1], pads[3], pads[0], pads[2]]
        pads = [0, 0, 0, 0]
    dt = g.dtype
    wl = w.to(dt)
    bl = b.to(dt) if b is not None else None

    def conv(x: torch.Tensor) -> torch.Tensor:
        if pre is not None:
            x = F.pad(x, pre)
        return F.conv2d(x.to(dt), wl, bl, stride, pads[:2], dil, groups).float()

    return conv


def _pad(g: TorchGraph, node: Any, consts: Mapping[str, np.ndarray], a: dict[str, Any]) -> Callable[..., torch.Tensor]:
    mode = a.get("mode", "constant")
    if mode not in ("reflect", "constant", "edge"):
        raise UnsupportedGraph(f"{node.name}: pad mode {mode}")
    pads = [int(p) for p in consts[node.input[1]]]
    n = len(pads) // 2
    dims = [d for d in range(n) if pads[d] or pads[d + n]]

    def pad(x: torch.Tensor) -> torch.Tensor:
        y, inv = _move_last(x, dims)
        spec: list[int] = []
        for d in reversed(dims):
            spec += [pads[d], pads[d + n]]
        if mode == "reflect" and len(dims) in (1, 2) and y.dim() - len(dims) < 2:
            # F.pad's reflect wants a batch and a channel dimension before the padded ones.
            y = y.reshape((1,) * (2 - (y.dim() - len(dims))) + tuple(y.shape))
            out = F.pad(y, spec, mode="reflect").reshape(tuple(x.shape[d] for d in range(x.dim()) if d not in dims)
                                                       + tuple(y.shape[-len(dims) + i] + pads[d] + pads[d + n]
                                                               for i, d in enumerate(dims)))
        else:
            out = F.pad(y, spec, mode=mode if mode != "edge" else "replicate")
        return out.permute(inv) if inv else out

    return pad


def _reshape(g: TorchGraph, node: Any, consts: Mapping[str, np.ndarray], a: dict[str, Any]) -> Callable[..., torch.Tensor]:
    shape = [int(s) for s in consts[node.input[1]]]

    def reshape(x: torch.Tensor) -> torch.Tensor:
        return x.reshape([x.shape[i] if s == 0 else s for i, s in enumerate(shape)])

    return reshape


def _clip(g: TorchGraph, node: Any, consts: Mapping[str, np.ndarray], a: dict[str, Any]) -> Callable[..., torch.Tensor]:
    lo = float(consts[node.input[1]]) if len(node.input) > 1 and node.input[1] else None
    hi = float(consts[node.input[2]]) if len(node.input) > 2 and node.input[2] else None
    return lambda x: torch.clamp(x, lo, hi)


def _resize(g: TorchGraph, node: Any, consts: Mapping[str, np.ndarray], a: dict[str, Any]) -> Callable[..., torch.Tensor]:
    scales = consts[node.input[2]] if len(node.input) > 2 and node.input[2] else None
    if (a.get("mode") != "nearest" or a.get("coordinate_transformation_mode") != "asymmetric"
            or a.get("nearest_mode") != "floor" or scales is None or len(node.input) > 3
            or list(scales[:2]) != [1, 1]):
        raise UnsupportedGraph(f"{node.name}: only nearest/asymmetric/floor resizes by scale are supported")
    sh, sw = float(scales[2]), float(scales[3])
    if sh == 1 and sw == 1:
        return lambda x: x
    # torch's "nearest" is ONNX's asymmetric/floor.
    return lambda x: F.interpolate(x, scale_factor=(sh, sw), mode="nearest")


def _dequantize(g: TorchGraph, node: Any, consts: Mapping[str, np.ndarray],
                a: dict[str, Any]) -> Callable[..., torch.Tensor]:
    # A dequantization of a run-time int tensor (a Quantize with several consumers).
    if np.ndim(consts[node.input[1]]) != 0:
        raise UnsupportedGraph(f"{node.name}: per-channel dequantization of an activation")
    scale, zp = float(consts[node.input[1]]), float(consts[node.input[2]])
    return lambda q: (q - zp) * scale


def _quantize(g: TorchGraph, node: Any, consts: Mapping[str, np.ndarray], a: dict[str, Any]) -> Callable[..., torch.Tensor]:
    scale, zp = consts[node.input[1]], consts[node.input[2]]
    if np.ndim(scale) != 0:
        raise UnsupportedGraph(f"{node.name}: per-channel quantization of an activation")
    lo, hi = QRANGE[np.asarray(zp).dtype]
    s, z = float(scale), float(zp)
    return lambda x: torch.clamp(torch.round(x.float() / s) + z, lo, hi)


def _unary(fn: Callable[[torch.Tensor], torch.Tensor]) -> Builder:
    return lambda g, node, consts, a: fn


def _binary(fn: Callable[..., torch.Tensor]) -> Builder:
    return lambda g, node, consts, a: g._binary(node, consts, fn)


_BUILDERS: dict[str, Builder] = {
    "Conv": _conv, "Pad": _pad, "Reshape": _reshape, "Clip": _clip, "Resize": _resize,
    "DequantizeLinear": _dequantize, "QuantizeLinear": _quantize,
    "Transpose": lambda g, node, consts, a: (lambda x: x.permute(a["perm"])),
    "Relu": _unary(torch.relu), "Sigmoid": _unary(torch.sigmoid), "Sqrt": _unary(torch.sqrt),
    "Reciprocal": _unary(torch.reciprocal),
    "GlobalAveragePool": _unary(lambda x: x.mean(dim=tuple(range(2, x.dim())), keepdim=True)),
    "Add": _binary(torch.add), "Sub": _binary(torch.sub), "Mul": _binary(torch.mul), "Div": _binary(torch.div),
}
