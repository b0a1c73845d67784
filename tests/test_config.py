import typing
from pathlib import Path

import numpy as np
import pytest
import yaml

from videostyle import config as C
from videostyle.cli import build_parser, main, resolve_config
from videostyle.errors import ConfigError, VideostyleError
from videostyle.io.images import write_image

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_default_yaml_is_the_dataclass_defaults():
    assert C.load(CONFIGS / "default.yaml") == C.Config()


@pytest.mark.parametrize("name", ["preview.yaml", "quality.yaml"])
def test_presets_load(name):
    cfg = C.load(CONFIGS / name)
    assert cfg != C.Config()


def test_round_trip_through_yaml(tmp_path):
    cfg = C.apply(C.Config(), {"optim.iterations": 42, "temporal.frames": [1, 4], "style.images": ["a.jpg"],
                               "style.preserve_colors": True, "flow.method": "dis"})
    p = tmp_path / "c.yaml"
    p.write_text(C.dump_yaml(cfg))
    assert C.load(p) == cfg


@pytest.mark.parametrize("text,needle", [
    ("optim:\n  iteratons: 5\n", "unknown key optim.iteratons; did you mean 'iterations'?"),
    ("optm:\n  iterations: 5\n", "did you mean 'optim'?"),
    ("iterations_latr: 5\n", "did you mean 'iterations_later'?"),
    ("optim:\n  iterations: many\n", "optim.iterations: expected an integer"),
    ("optim:\n  iterations: 0\n", "optim.iterations: must be >= 1"),
    ("temporal:\n  scene_cut: 2\n", "temporal.scene_cut: must be <= 1.0"),
    ("flow:\n  method: lucas\n", "flow.method: must be one of farneback, dis"),
    ("render:\n  channels_last: maybe\n", "render.channels_last: expected true or false"),
    ("- a\n- b\n", "must hold a mapping"),
    ("optim: [1\n", "not valid YAML"),
    ("style:\n  images: [a.jpg, b.jpg]\n  blend: [1]\n", "style.blend has 1 weights for 2 style images"),
    ("!!python/object:os.system {}\n", "not valid YAML"),
])
def test_validation_errors_name_file_and_key(tmp_path, text, needle):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as exc:
        C.load(p)
    assert needle in str(exc.value)
    if "YAML" not in needle and "mapping" not in needle:
        assert str(p) in str(exc.value)


def test_flat_and_nested_keys_are_the_same():
    a = C.apply(C.Config(), C.flatten({"size": 128, "iterations_later": 7, "model": "random", "style": "x.jpg"}))
    b = C.apply(C.Config(), C.flatten({"optim": {"size": 128, "iterations_later": 7}, "model": {"name": "random"},
                                       "style": {"images": ["x.jpg"]}}))
    assert a == b


def test_flags_win_over_file(tmp_path, capsys):
    p = tmp_path / "c.yaml"
    p.write_text("optim:\n  iterations: 5\n  size: 300\n")
    assert main(["config", "show", "--config", str(p), "--iterations", "9"]) == 0
    data = yaml.safe_load(capsys.readouterr().out)
    assert data["optim"]["iterations"] == 9 and data["optim"]["size"] == 300


# Values for the fields that take free text (the others are derived from their type and range).
TEXT = {"model.weights": "w.pth", "optim.init_image": "i.png", "render.ray_address": "auto", "encode.preset": "slow",
        "render.device": "cpu", "style.images": "a.png", "style.content_layers": "relu3_1",
        "style.style_layers": "relu2_1", "style.layer_weights": "0.5,1,1,1,2", "optim.tile": "512",
        "optim.tile_margin": "64", "style.strength": "1@0,2@f:24", "render.audio": "music.flac",
        "style.paintings": "f:12=p.png", "render.chains": "4"}
# Flags that need another one beside them to be valid.
BESIDE = {"style.transitions": ["--style", "a.png@0", "--style", "b.png@4"]}


def _other_value(fi: C.FieldInfo) -> tuple[list[str], object]:
    """Command-line words that set ``fi`` to a value other than its default, and that value."""
    flag = "--" + fi.flag.replace("_", "-")
    if fi.type is bool:
        return ([f"--no-{flag[2:]}"] if fi.default else [flag]), not fi.default
    if typing.get_origin(fi.type) is tuple:
        item = typing.get_args(fi.type)[0]
        text = TEXT.get(fi.path, {int: "3", float: "0.5"}.get(item, "x"))
        return [flag, text], tuple(item(t) for t in text.split(","))
    if fi.choices:
        choice = next(c for c in fi.choices if c != fi.default)
        return [flag, str(choice)], choice
    if fi.path in TEXT:
        text = TEXT[fi.path]
        return [flag, text], fi.type(text) if fi.type in (int, float) else text
    if fi.type is int:
        v = fi.default + 1 if fi.hi is None or fi.default + 1 <= fi.hi else fi.default - 1
        return [flag, str(v)], v
    lo = fi.lo if fi.lo is not None else 0.0
    v = (lo + fi.hi) / 2 if fi.hi is not None else fi.default + 0.5
    v = v if v != fi.default else (lo + fi.default) / 2
    return [flag, repr(v)], v


@pytest.mark.parametrize("path", list(C.FIELDS))
def test_every_field_is_set_by_its_flag(path):
    """Each config field has help text and a flag on the command line that reaches the Config."""
    fi = C.FIELDS[path]
    words, value = _other_value(fi)
    assert fi.help and value != fi.default
    ns = build_parser().parse_args(["render", "in.mp4", *words, *BESIDE.get(path, [])])
    section, name = path.split(".")
    assert getattr(getattr(resolve_config(ns), section), name) == value


def test_render_help_puts_the_everyday_options_first_with_plain_metavars(capsys):
    import pytest as _pytest

    from videostyle import cli
    from videostyle.config import FLAT

    grouped = [f for _, flags in cli.FLAG_GROUPS for f in flags]
    assert sorted(grouped) == sorted(FLAT) and len(grouped) == len(set(grouped))  # each flag in one group
    with _pytest.raises(SystemExit):
        cli.main(["render", "--help"])
    text = capsys.readouterr().out
    assert "CFG::" not in text and "cfg::" not in text
    assert text.index("everyday options") < text.index("optimiser options") < text.index("expert: optical flow")
    assert "--iterations N" in text and "--start SECONDS" in text and "--style IMAGE[@TIME]" in text
    assert text.splitlines()[0] == "usage: videostyle render INPUT --style IMAGE [-o OUTPUT] [options]"


def test_an_error_names_settings_as_flags_on_the_command_line_and_as_keywords_in_the_api(tmp_path, capsys):
    import videostyle as vs
    from videostyle.errors import NO_STYLE

    assert str(ConfigError(NO_STYLE)) == "no style image given; pass style=IMAGE"
    assert ConfigError(NO_STYLE).on_command_line() == "no style image given; pass --style IMAGE"
    write_image(tmp_path / "c.png", np.zeros((32, 32, 3), np.uint8))
    write_image(tmp_path / "s.png", np.zeros((32, 32, 3), np.uint8))
    (tmp_path / "out.png").write_bytes(b"taken")
    with pytest.raises(VideostyleError, match=r"exists; pass overwrite=True to replace it$"):
        vs.render(tmp_path / "c.png", tmp_path / "out.png", style=tmp_path / "s.png", model="random", size=32)
    base = ["render", str(tmp_path / "c.png"), "--model", "random", "--size", "32"]
    assert main(base) == 2
    assert capsys.readouterr().err.strip() == "videostyle: error: no style image given; pass --style IMAGE"
    assert main([*base, "--style", str(tmp_path / "s.png"), "-o", str(tmp_path / "out.png")]) != 0
    assert capsys.readouterr().err.strip().endswith("exists; pass --overwrite (or -y) to replace it")
