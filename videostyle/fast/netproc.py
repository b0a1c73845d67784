"""The fast engine's compiled network (``videostyle.fast.compiled``) in worker processes.

Why processes: AOTInductor's compiled kernels hold Python's GIL for the whole call. In the
render's own process that stalls the decode, flow, blend and encode threads whenever they need
the GIL, and the render left a third of the cores' time unused (docs/benchmarks.md). A worker
process has a GIL of its own.

One ``python -m videostyle.fast.netproc`` imports torch and forks the other workers; each has a pipe
pair as its stdin and stdout, and frames cross as uint8 (a quarter of float32's bytes).
Messages, both ways: one type byte, a 4-byte length, the payload.

* parent -> worker ``F``: height, width (2 x uint32), the style vector (100 float32), the RGB
  uint8 frame; the worker answers ``O`` with the stylized RGB uint8 frame (same size).
* worker -> parent, once at start: ``B`` (building the package: about a minute, once), then
  ``R`` (ready: JSON with the convolution type and package) or ``E`` (a one-line reason).

A worker ends when its stdin closes (the parent closed it, or died). Their stderr goes to a file
in the temporary folder, read back for the message when one fails.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from videostyle.device import cpu_has_bf16

HEAD = struct.Struct("<cI")
SIZE = struct.Struct("<II")
VEC = 100  # the style vector's length


class WorkerError(RuntimeError):
    """A worker could not start (no compiler, a failed build) or ended mid-render."""


def _send(out: IO[bytes], kind: bytes, *parts: bytes) -> None:
    out.write(HEAD.pack(kind, sum(len(p) for p in parts)))
    for p in parts:
        out.write(p)
    out.flush()


def _recv(inp: IO[bytes]) -> tuple[bytes, bytes] | None:
    """The next message, or None when the other side has gone (or this side closed the pipe
    under a waiting reader: ``close`` while a render stops)."""
    try:
        head = inp.read(HEAD.size)
        if len(head) < HEAD.size:
            return None
        kind, n = HEAD.unpack(head)
        body = inp.read(n)
    except (OSError, ValueError):
        return None
    if len(body) < n:
        return None
    return kind, body


class _Worker:
    """The parent's end of one worker: its request and answer pipes."""

    def __init__(self, send: IO[bytes], recv: IO[bytes], log: str) -> None:
        self.send, self.recv, self.log = send, recv, log
        self.info: dict[str, Any] | None = None

    def wait_ready(self, on_build: Callable[[], None]) -> dict[str, Any]:
        if self.info is not None:
            return self.info
        while True:
            msg = _recv(self.recv)
            if msg is None:
                raise WorkerError(self.reason("ended before it was ready"))
            kind, body = msg
            if kind == b"B":
                on_build()
            elif kind == b"R":
                self.info = json.loads(body)
                return self.info
            else:
                raise WorkerError(f"the fast engine's compiled network failed to start: {body.decode(errors='replace')}")

    def run(self, frame: np.ndarray, vec: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        try:
            _send(self.send, b"F", SIZE.pack(h, w), np.ascontiguousarray(vec, np.float32).tobytes(),
                  np.ascontiguousarray(frame, np.uint8).tobytes())
        except (BrokenPipeError, OSError):
            raise WorkerError(self.reason("ended")) from None
        msg = _recv(self.recv)
        if msg is None or msg[0] != b"O":
            raise WorkerError(self.reason("ended") if msg is None else msg[1].decode(errors="replace"))
        return np.frombuffer(msg[1], np.uint8).reshape(h, w, 3)

    def reason(self, what: str) -> str:
        try:
            lines = [ln for ln in Path(self.log).read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            lines = []
        tail = f": {lines[-1].strip()}" if lines else ""
        return f"the fast engine's network process {what}{tail}"


class _Processes:
    """``count`` workers from one ``python -m videostyle.fast.netproc``: it imports torch (two
    core-seconds) and then forks the others, before it has run anything (no threads of torch's
    yet), so they start without importing it again. The parent made their pipes and handed them
    down; each worker ends when its request pipe closes."""

    def __init__(self, count: int, threads: int, precision: str) -> None:
        fd, self.log = tempfile.mkstemp(prefix="videostyle-net-", suffix=".log")
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        theirs: list[int] = []  # the forked workers' ends: request read, answer write
        ours: list[tuple[int, int]] = []  # ours: request write, answer read
        for _ in range(count - 1):
            req_r, req_w = os.pipe()
            ans_r, ans_w = os.pipe()
            theirs += [req_r, ans_w]
            ours.append((req_w, ans_r))
        spec = ",".join(map(str, theirs))
        try:
            with os.fdopen(fd, "wb") as err:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "videostyle.fast.netproc", str(threads), precision, spec],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env, pass_fds=theirs,
                    start_new_session=True)  # Ctrl-C reaches the parent only: it closes the pipes
        finally:
            for f in theirs:
                os.close(f)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.workers = [_Worker(self.proc.stdin, self.proc.stdout, self.log)]
        self.workers += [_Worker(os.fdopen(w, "wb"), os.fdopen(r, "rb"), self.log) for w, r in ours]

    def close(self) -> None:
        for w in self.workers:
            try:
                w.send.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=2)  # they end at once on EOF, unless busy (a build)
        except subprocess.TimeoutExpired:
            # Still busy (a build, say, interrupted): the whole session goes, the forked workers
            # and the compiler's processes with it, so nothing builds on after the render.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                self.proc.kill()
            self.proc.wait()
        for w in self.workers:
            w.recv.close()
        try:
            os.unlink(self.log)
        except OSError:
            pass


class NetworkProcesses:
    """``workers`` processes running the compiled transform network, ``threads`` CPU threads
    each; ``precision``: the convolutions' type (auto: bf16 where the CPU has bf16 units, else
    fp32). ``run`` is thread-safe (each call takes an idle worker). The processes start at once
    (a second or two: they import torch); the first call waits for them. When the package has to
    be built one of them builds it (``on_build`` is called) while the others wait."""

    def __init__(self, workers: int, threads: int, precision: str = "auto",
                 on_build: Callable[[], None] = lambda: None) -> None:
        self.on_build = on_build
        self._procs = _Processes(max(1, workers), threads, precision)
        self._workers = self._procs.workers
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._ready = False
        self._lock = threading.Lock()
        self._closed = False
        self.served = False  # a frame came back (a later failure is not a start-up failure)
        self._finalizer = weakref.finalize(self, self._procs.close)

    def _start(self) -> None:
        with self._lock:
            if self._ready:
                return
            told = threading.Event()
            errors: list[WorkerError] = []

            def once() -> None:  # one notice, whichever worker builds
                if not told.is_set():
                    told.set()
                    self.on_build()

            def wait(w: _Worker) -> None:
                try:
                    w.wait_ready(once)
                except WorkerError as e:
                    errors.append(e)

            waiters = [threading.Thread(target=wait, args=(w,), daemon=True) for w in self._workers]
            for t in waiters:
                t.start()
            for t in waiters:
                t.join()
            if errors:
                raise errors[0]
            for w in self._workers:
                self._idle.put(w)
            self._ready = True

    @property
    def info(self) -> dict[str, Any]:
        """The workers' ``R`` message: the convolutions' type and the package."""
        self._start()
        return dict(self._workers[0].info or {})

    def run(self, frame: np.ndarray, vec: np.ndarray) -> np.ndarray:
        """The stylized RGB uint8 frame of an RGB uint8 frame of any size."""
        if self._closed:
            raise WorkerError("the fast engine's network processes were closed")
        self._start()
        w = self._idle.get()
        try:
            out = w.run(frame, vec)
        finally:
            self._idle.put(w)
        self.served = True
        return out

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """End the workers (a build under way too); calls waiting on them fail at once."""
        self._closed = True
        self._finalizer()


# -- the worker's side


def _serve(threads: int, precision: str, fds: list[int]) -> None:
    import logging

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when a render stops
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    import torch

    # The other workers: forked now, before torch has run anything (it starts its thread pools
    # at the first operation), each onto its own pipes as standard input and output.
    pairs = [(fds[i], fds[i + 1]) for i in range(0, len(fds), 2)]
    mine: tuple[int, int] | None = None
    forked: list[int] = []  # the first worker's: reaped before it exits
    for pair in pairs:
        pid = os.fork()
        if pid == 0:
            mine, forked = pair, []
            break
        forked.append(pid)
    if mine is not None:
        os.dup2(mine[0], 0)
        os.dup2(mine[1], 1)
    for f in fds:
        os.close(f)
    out = sys.stdout.buffer
    inp = sys.stdin.buffer
    sys.stdout = sys.stderr  # nothing but messages on the pipe
    try:
        from videostyle.fast import compiled
        from videostyle.assets import model_bytes
        from videostyle.fast.onnx_torch import TorchGraph

        if threads:
            torch.set_num_threads(threads)
        bf16 = cpu_has_bf16() if precision == "auto" else precision == "bf16"
        model = model_bytes("arbitrary_transform.onnx")
        path = compiled.ensure(model, bf16, on_build=lambda: _send(out, b"B"))
        net = compiled.load(path)
        dtype = torch.bfloat16 if bf16 else torch.float32
        interp: list[Any] = []  # frames outside the compiled sizes: the same graph, interpreted
    except Exception as e:  # noqa: BLE001 - whatever failed, the parent gets one line
        msg = str(e) if type(e) is RuntimeError else f"{type(e).__name__}: {e}"
        _send(out, b"E", (msg.splitlines() or [type(e).__name__])[0].encode())
        return
    _send(out, b"R", json.dumps({"dtype": "bf16" if bf16 else "fp32", "package": str(path),
                                 "pid": os.getpid()}).encode())
    while True:
        msg = _recv(inp)
        if msg is None:  # the parent is done (or gone): nothing to save, skip torch's teardown
            for pid in forked:  # their pipes closed too
                os.waitpid(pid, 0)
            out.flush()
            os._exit(0)
        body = msg[1]
        h, w = SIZE.unpack_from(body)
        off = SIZE.size
        vec = torch.frombuffer(bytearray(body[off:off + 4 * VEC]), dtype=torch.float32).reshape(1, VEC, 1, 1)
        off += 4 * VEC
        with torch.inference_mode():
            x = compiled.frame_input(torch.frombuffer(bytearray(body[off:]), dtype=torch.uint8).reshape(h, w, 3))
            if compiled.fits(*x.shape[1:3]):
                y = net(x, vec)
            else:
                if not interp:
                    interp.append(TorchGraph(model, "cpu", dtype=dtype))
                g = interp[0]
                names = [i.name for i in g.get_inputs()]
                y = g.forward({names[0]: x, names[1]: vec})[0]
            y = y[0, :h, :w].clamp(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)
        _send(out, b"O", y.contiguous().numpy().tobytes())


if __name__ == "__main__":
    _serve(int(sys.argv[1]), sys.argv[2], [int(f) for f in sys.argv[3].split(",") if f])
