"""The fast engine's transform network compiled ahead of time for this CPU (torch AOTInductor).

onnxruntime and the torch interpreter (``onnx_torch``) run the Magenta graph's ~1300 small
operators one by one. On a 640x360 frame most of their time goes to memory passes: ~200
fake-quantization steps of six operators each and instance norms spelt out operator by operator
(a profile of the interpreter: the convolutions are a sixth of it in bf16). AOTInductor fuses
those passes into a few loops between the convolutions and compiles them for this CPU, and on a
CPU with bf16 units (AMX or AVX512-BF16) the convolutions run in bf16:

* a fraction of onnxruntime's time a frame (the fast-runtimes benchmark;
  docs/benchmarks.md);
* the output equals ``onnx_torch.TorchGraph``'s with the same convolution type, byte for byte;
  against onnxruntime's it differs as the CUDA runtime's does, in detail, not in look (the
  quantization steps round a few values one level apart).

The package is built once per model, torch version, convolution type and CPU kind (about a
minute; it needs a C++ compiler) and kept in the cache folder (``$XDG_CACHE_HOME/videostyle``,
else ``~/.cache/videostyle``). Its frame height and width are dynamic (multiples of 8), so one
package serves every frame size.

Only torch and the standard library here: ``netproc`` runs this in a worker process.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import platform
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from videostyle.device import cache_dir

MULTIPLE = 8  # the network's total stride: frames are padded to a multiple of it
# The compiled sizes, in multiples of 8: 32 px (smaller frames run on the interpreter) to 8192 px.
MIN_SIDE, MAX_SIDE = 4, 1024
_ENV_LOCK = threading.Lock()  # load() changes $TMPDIR for a moment


def unavailable() -> str | None:
    """Why the network cannot be compiled here (None when it can). Cheap: reads torch's version
    from its metadata, imports nothing (the render's process may not need torch at all)."""
    from importlib import metadata

    if os.name != "posix":  # netproc forks its workers and hands them pipes by number
        return "the compiled runtime's worker processes need Linux or macOS"
    try:
        version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        return "torch is not installed"
    major_minor = tuple(int(p) for p in version.split("+")[0].split(".")[:2] if p.isdigit())
    if major_minor < (2, 6):
        return f"torch {version} has no AOTInductor packages (torch >= 2.6 needed)"
    cxx = os.environ.get("CXX") or "g++"
    if not (shutil.which(cxx) or shutil.which("c++") or shutil.which("clang++")):
        return "no C++ compiler found (install g++ or set CXX)"
    return None


def _stem(model: bytes, torch_version: str) -> str:
    """The packages' names up to the CPU capability: the model and torch (``+`` kept out)."""
    key = hashlib.sha256(model).hexdigest()[:12]
    return f"transform-{key}-torch{torch_version.replace('+', '_')}-{platform.machine().lower()}-"


def package_path(model: bytes, bf16: bool) -> Path:
    torch = importlib.import_module("torch")
    tag = f"{_stem(model, torch.__version__)}{torch.backends.cpu.get_cpu_capability().lower()}-{'bf16' if bf16 else 'fp32'}"
    return cache_dir() / f"{tag}.pt2"


def ready(model: bytes) -> bool:
    """Whether a package of this model and torch is built for this machine, without importing
    torch (a fast render's process may not need it): the CPU capability and convolution type
    are the workers' to check, and a worker that finds none of its own builds it as before."""
    from importlib import metadata

    try:
        version = metadata.version("torch")  # (without torch.__version__'s local part, "+cu130")
    except metadata.PackageNotFoundError:
        return False
    stem = _stem(model, version)
    local = stem.replace(f"torch{version}-", f"torch{version}_*-")
    return any(p for pattern in (stem, local) for p in cache_dir().glob(f"{pattern}*.pt2"))


def build_in_background() -> bool:
    """Start building the package in a process of its own, at the lowest CPU priority, that
    outlives this one (``python -m videostyle.fast.compiled``; its messages go to ``build.log``
    in the cache folder); False when a build is already under way (its lock is held)."""
    import subprocess
    import sys

    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:
        return False
    for lock in folder.glob("transform-*.lock"):
        with open(lock, "a+b") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return False  # a build holds it
    with open(folder / "build.log", "ab") as log:
        subprocess.Popen([sys.executable, "-m", "videostyle.fast.compiled"], stdin=subprocess.DEVNULL,
                         stdout=log, stderr=log, preexec_fn=_lowest_priority)
    return True


def _lowest_priority() -> None:
    """The background build's process: a process group of its own (the terminal's Ctrl-C is
    for the render, not for it), the idle scheduling class where there is one, and nice 19.
    Not a session of its own: Linux shares the CPU equally between sessions (autogroups)
    whatever their nice values, and a niced build in a new session took half of a 2-core CPU
    from the render beside it."""
    os.setpgrp()
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        pass
    os.nice(19)


def ensure(model: bytes, bf16: bool, on_build: Any = lambda: None) -> Path:
    """The package's path, built first when it is not in the cache (``on_build`` is called
    then). Processes that start at once take turns on a lock file: one builds, the others then
    find the package."""
    path = package_path(model, bf16)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a+b") as lock:
        try:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX)
        except ImportError:  # no flock (Windows): concurrent builds each write a whole package
            pass
        if not path.exists():
            why = unavailable()
            if why:
                raise RuntimeError(why)
            for stale in path.parent.glob(f".part-{path.stem}-*.pt2"):  # a build killed mid-way (ours: we hold the lock)
                stale.unlink(missing_ok=True)
            on_build()
            build(model, bf16, path)
    return path


def build(model: bytes, bf16: bool, path: Path) -> None:
    """Export the transform graph (as ``onnx_torch`` interprets it) with dynamic height and
    width and compile it with AOTInductor into ``path`` (written under a temporary name first,
    so a package is either whole or absent; two processes building at once both succeed)."""
    torch = importlib.import_module("torch")
    from videostyle.fast.onnx_torch import TorchGraph

    graph = TorchGraph(model, "cpu", dtype=torch.bfloat16 if bf16 else torch.float32)
    names = [i.name for i in graph.get_inputs()]

    class Transform(torch.nn.Module):
        def forward(self, content: Any, vec: Any) -> Any:
            return graph.trace({names[0]: content, names[1]: vec})[0]

    x = torch.rand(1, 48, 64, 3)
    vec = torch.rand(1, 100, 1, 1)
    h = torch.export.Dim("h8", min=MIN_SIDE, max=MAX_SIDE)
    w = torch.export.Dim("w8", min=MIN_SIDE, max=MAX_SIDE)
    with torch.no_grad():
        ep = torch.export.export(Transform(), (x, vec), dynamic_shapes=({1: MULTIPLE * h, 2: MULTIPLE * w}, None))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".part-{path.stem}-", suffix=".pt2", dir=path.parent)
    os.close(fd)
    try:
        # Threads: the kernels take the process's thread count when they run, not the build's.
        with torch._inductor.config.patch({"cpp.dynamic_threads": True}):
            torch._inductor.aoti_compile_and_package(ep, package_path=tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load(path: Path) -> Any:
    """The compiled network: called with (content (1, H, W, 3) float32 in [0, 1], style vector
    (1, 100, 1, 1)), returns the stylized (1, H, W, 3). Loaded with torch's C++ package loader
    directly: ``torch._inductor.aoti_load_package`` would import the compiler's Python modules
    first (1.5 s of a worker's start)."""
    torch = importlib.import_module("torch")
    # The loader unpacks the package into a new folder under $TMPDIR and deletes it only in its
    # destructor, which a worker process never reaches: every render would leave a few MB in
    # /tmp. It unpacks into a folder of ours instead, deleted once the library is loaded (the
    # loaded library and its weights stay mapped; the loader does not read the files again).
    with _ENV_LOCK:
        private = tempfile.mkdtemp(prefix="videostyle-aoti-")
        saved = os.environ.get("TMPDIR")
        os.environ["TMPDIR"] = private
        try:
            try:
                loader = torch._C._aoti.AOTIModelPackageLoader(str(path), "model", False, 1, -1)
            except TypeError:  # torch < 2.8: (path, model name)
                loader = torch._C._aoti.AOTIModelPackageLoader(str(path), "model")
        finally:
            if saved is None:
                os.environ.pop("TMPDIR", None)
            else:
                os.environ["TMPDIR"] = saved
            shutil.rmtree(private, ignore_errors=True)

    def run(content: Any, vec: Any) -> Any:
        return loader.run([content, vec])[0]

    return run


def frame_input(frame: Any) -> Any:
    """A (H, W, 3) uint8 frame tensor as the graph takes it: (1, H', W', 3) float in [0, 1],
    reflection-padded (cv2's BORDER_REFLECT_101) to a multiple of the network's stride."""
    import torch.nn.functional as F

    h, w = frame.shape[:2]
    x = frame.permute(2, 0, 1)[None].float().div_(255.0)
    ph, pw = (-h) % MULTIPLE, (-w) % MULTIPLE
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="reflect")
    return x.permute(0, 2, 3, 1).contiguous()


def fits(h: int, w: int) -> bool:
    """Whether a padded frame of h x w is within the compiled sizes."""
    return all(s % MULTIPLE == 0 and MIN_SIDE <= s // MULTIPLE <= MAX_SIDE for s in (h, w))


def _build_main() -> None:
    """``python -m videostyle.fast.compiled``: build this CPU's package (its convolution type as
    the workers choose it) unless it is there."""
    from videostyle.assets import model_bytes
    from videostyle.device import cpu_has_bf16

    path = ensure(model_bytes("arbitrary_transform.onnx"), cpu_has_bf16())
    print(f"the fast engine's network is compiled: {path}", flush=True)


if __name__ == "__main__":
    _build_main()
