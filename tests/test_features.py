import pytest
import torch

from videostyle.errors import WeightsError
from videostyle.features import (
    VGGFeatures, _torchvision_index_map, build_extractor, detect_format, extract_convs, layer_names,
)

from .conftest import tiny_extractor

LAYERS = ("relu1_1", "relu4_2", "relu5_1")


def test_named_layers_and_truncation():
    names = layer_names()
    assert names[:4] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2"]
    m = VGGFeatures(["relu3_1"], widths=(4, 8, 8, 8, 8))
    assert m.names[-1] == "relu3_1"
    assert "conv3_2" not in m.body


def test_forward_returns_requested_layers_and_is_frozen():
    m = tiny_extractor()
    x = torch.rand(1, 3, 64, 48)
    out = m(x, ["relu1_1", "relu4_2", "relu5_1"])
    assert set(out) == {"relu1_1", "relu4_2", "relu5_1"}
    assert out["relu1_1"].shape[-2:] == (64, 48)
    assert out["relu5_1"].shape[-2:] == (4, 3)
    assert all(not p.requires_grad for p in m.parameters())


def test_avg_pooling_option():
    m = VGGFeatures(["relu2_1"], pooling="avg", widths=(4, 8, 8, 8, 8))
    assert isinstance(m.body["pool1"], torch.nn.AvgPool2d)


def _fake_state(layout: str, scale: float) -> dict[str, torch.Tensor]:
    """A tiny stand-in for a VGG-19 state dict with the real key names and shapes."""
    state: dict[str, torch.Tensor] = {}
    widths, depths = (64, 128, 256, 512, 512), (2, 2, 4, 4, 4)
    in_ch = 3
    g = torch.Generator().manual_seed(0)
    convs = []
    for b, d in enumerate(depths, 1):
        for i in range(1, d + 1):
            convs.append((f"conv{b}_{i}", in_ch, widths[b - 1]))
            in_ch = widths[b - 1]
    idx_of = {v: k for k, v in _torchvision_index_map().items()}
    for name, cin, cout in convs:
        w = torch.randn(cout, cin, 3, 3, generator=g) * scale
        b = torch.randn(cout, generator=g) * 0.1
        key = f"features.{idx_of[name]}" if layout == "features" else name
        state[f"{key}.weight"], state[f"{key}.bias"] = w, b
    if layout == "features":
        state["classifier.0.weight"] = torch.zeros(4, 4)  # dropped on load
    return state


@pytest.mark.parametrize("layout,scale,fmt", [
    ("features", 0.25, "torchvision"),  # torchvision's vgg19-dcbb9e9d.pth
    ("features", 0.004, "caffe"),  # neural-style-pt's vgg19-d01eb7cb.pth
    ("named", 0.004, "caffe"),  # Gatys' vgg_conv.pth
])
def test_weight_layouts_load(tmp_path, layout, scale, fmt):
    state = _fake_state(layout, scale)
    assert detect_format(state) == fmt
    path = tmp_path / "vgg.pth"
    torch.save(state, path)
    m = build_extractor(LAYERS, weights=str(path))
    assert m.weights_format == fmt
    convs = extract_convs(state)
    assert torch.equal(m.body["conv4_2"].weight, convs["conv4_2"][0])
    out = m(torch.rand(1, 3, 32, 32), LAYERS)
    assert out["relu5_1"].shape == (1, 512, 2, 2)


def test_caffe_normalisation_is_bgr_255_minus_mean():
    m = VGGFeatures(["conv1_1"], weights_format="caffe", widths=(3, 4, 4, 4, 4))
    conv = m.body["conv1_1"]
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        for c in range(3):
            conv.weight[c, c, 1, 1] = 1.0  # identity
    x = torch.full((1, 3, 4, 4), 0.5)
    x[:, 0] = 1.0  # red
    out = m(x, ["conv1_1"])["conv1_1"][0, :, 2, 2]
    # channel 0 is blue: 0.5*255 - 103.939; channel 2 is red: 255 - 123.68
    assert torch.allclose(out, torch.tensor([127.5 - 103.939, 127.5 - 116.779, 255 - 123.68]), atol=1e-3)


def test_weights_env_var_and_missing_file(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDEOSTYLE_WEIGHTS", str(tmp_path / "missing.pth"))
    with pytest.raises(WeightsError, match="does not exist"):
        build_extractor(LAYERS)


def test_offline_without_weights_says_where_and_how(tmp_path, monkeypatch):
    monkeypatch.delenv("VIDEOSTYLE_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(WeightsError) as exc:
        build_extractor(LAYERS, download=False)
    msg = str(exc.value)
    assert str(tmp_path / "checkpoints" / "vgg19-dcbb9e9d.pth") in msg
    assert "curl" in msg and "\n" not in msg


def test_garbage_weights_file(tmp_path):
    p = tmp_path / "bad.pth"
    p.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read weights file"):
        build_extractor(LAYERS, weights=str(p))
