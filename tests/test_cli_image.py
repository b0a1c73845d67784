import subprocess
import sys

import pytest

from videostyle.cli import main
from videostyle.io.images import read_image, write_image

from .conftest import pattern, stripes

FAST = ["--model", "random", "--size", "48", "--iterations", "3", "--device", "cpu", "-q"]


@pytest.fixture
def files(tmp_path):
    content, style = tmp_path / "photo.png", tmp_path / "style.jpg"
    write_image(content, pattern(60, 80))
    write_image(style, stripes(64, 64))
    return tmp_path, content, style


def test_render_image_end_to_end(files, capsys):
    tmp, content, style = files
    out = tmp / "out.png"
    assert main(["render", str(content), "--style", str(style), "-o", str(out), *FAST]) == 0
    img = read_image(out)
    assert img.shape == (36, 48, 3)
    assert "not a real stylization" in capsys.readouterr().err
    assert not list(tmp.glob(".*tmp*"))


def test_output_size_source_upscales(files):
    tmp, content, style = files
    out = tmp / "out.png"
    assert main(["render", str(content), "--style", str(style), "-o", str(out), "--output-size", "source", *FAST]) == 0
    assert read_image(out).shape == (60, 80, 3)


def test_size_enlarges_only_with_upscale(files):
    tmp, content, style = files
    fast = [a if a != "48" else "96" for a in FAST]  # --size 96 on an 80 px wide photo
    for extra, shape in (([], (60, 80, 3)), (["--upscale"], (72, 96, 3))):
        out = tmp / f"out{len(extra)}.png"
        assert main(["render", str(content), "--style", str(style), "-o", str(out), *extra, *fast]) == 0
        assert read_image(out).shape == shape


@pytest.mark.parametrize("args,code,needle", [
    (["render", "{tmp}/missing.png", "--style", "{style}"], 1, "missing.png does not exist"),
    (["render", "{content}", "--style", "{tmp}/nostyle.jpg"], 1, "style image"),
    (["render", "{tmp}/garbage.png", "--style", "{style}"], 1, "not a readable image"),
    (["render", "{tiny}", "--style", "{style}", "--size", "0"], 1, "at least 32 pixels"),
    (["render", "{content}", "--style", "{style}", "--iterations", "zero"], 2, "optim.iterations: expected an integer"),
    (["render", "{content}", "--style", "{style}", "--optimizer", "sgd"], 2, "must be one of lbfgs, adam"),
    (["render", "{content}", "--style", "{style}", "--device", "tpu"], 2, "render.device"),
    (["render", "{content}", "--style", "{style}", "-o", "{content}"], 1, "is the input file"),
    (["render", "{content}", "--style", "{style}", "-o", "{tmp}/nodir/out.png"], 1, "does not exist"),
    (["render", "{content}", "--style", "{style}", "--optimizr", "adam"], 2, "did you mean '--optimizer'"),
    (["render", "{content}"], 2, "no style image"),
])
def test_cli_errors_are_one_line(files, capsys, args, code, needle):
    tmp, content, style = files
    (tmp / "garbage.png").write_bytes(b"\x89PNG not really")
    write_image(tmp / "tiny.png", pattern(20, 20))
    argv = [a.format(tmp=tmp, content=content, style=style, tiny=tmp / "tiny.png") for a in args]
    if "--model" not in argv:
        argv += ["--model", "random", "--iterations" if "--iterations" not in argv else "--lr", "2", "-q"]
    rc = run(argv)
    err = capsys.readouterr().err.strip()
    assert rc == code
    assert needle in err
    assert "Traceback" not in err and len(err.splitlines()) == 1


def run(argv):
    """main() as the shell sees it: argparse errors exit through SystemExit."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def test_render_refuses_to_replace_an_existing_output(files, capsys):
    tmp, content, style = files
    out = tmp / "out.png"
    out.write_bytes(b"keep me")
    assert run(["render", str(content), "--style", str(style), "-o", str(out), *FAST]) == 1
    err = capsys.readouterr().err.strip()
    assert "exists" in err and "--overwrite (or -y)" in err and len(err.splitlines()) == 1
    assert out.read_bytes() == b"keep me"
    assert run(["render", str(content), "--style", str(style), "-o", str(out), "-y", *FAST]) == 0
    assert read_image(out).shape == (36, 48, 3)


def test_config_show_prints_resolved_yaml(capsys, tmp_path):
    cfgf = tmp_path / "c.yaml"
    cfgf.write_text("optim:\n  iterations: 7\nsize: 128\n")
    assert main(["config", "show", "--config", str(cfgf), "--size", "96"]) == 0
    import yaml
    data = yaml.safe_load(capsys.readouterr().out)
    assert data["optim"]["iterations"] == 7 and data["optim"]["size"] == 96


def test_python_dash_m_works():
    r = subprocess.run([sys.executable, "-m", "videostyle", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and "videostyle" in r.stdout
