from pathlib import Path

import pytest
import yaml

from videostyle import config as C
from videostyle.cli import main
from videostyle.errors import ConfigError

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


def test_every_field_has_help_and_a_flag():
    for fi in C.FIELDS.values():
        assert fi.help and fi.flag
