"""The threads of a video render: producer stages (decode, flow) that run ahead of the stylizer
through bounded queues, and the encoding stage behind it; each has an inline twin for
``--no-stage-threads``. One stop event ends them all: producers stop at their next put, the
encoder saves what was already handed to it (finished work) and then stops."""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class Stopped(Exception):
    """The render is stopping: raised to a stage waiting on its queue."""


class _End:
    """Queue sentinel: the producer finished (``error`` set when it failed)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


class Stage(threading.Thread):
    """A daemon thread draining ``items`` into a bounded queue; its errors reach the consumer,
    raised from :meth:`items_out`."""

    def __init__(self, name: str, items: Iterator[Any], maxsize: int, stop: threading.Event) -> None:
        super().__init__(name=f"videostyle-{name}", daemon=True)
        self.q: queue.Queue[Any] = queue.Queue(maxsize=maxsize)
        self.items = items
        self.stop_event = stop

    def _put(self, item: Any) -> None:
        while not self.stop_event.is_set():
            try:
                self.q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        raise Stopped

    def run(self) -> None:
        try:
            for item in self.items:
                self._put(item)
            self._put(_End())
        except Stopped:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            try:
                self._put(_End(exc))
            except Stopped:
                pass

    def _get(self) -> Any:
        while True:
            try:
                return self.q.get(timeout=0.1)
            except queue.Empty:
                if self.stop_event.is_set():
                    raise Stopped from None

    def items_out(self) -> Iterator[Any]:
        """The items, in order; raises the producer's error, or Stopped once the render stops."""
        while True:
            item = self._get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item


class Inline:
    """An executor that runs each call at once (one flow worker, no threads)."""

    def __enter__(self) -> Inline:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - re-raised by result()
            fut.set_exception(exc)
        return fut


class Encoder:
    """The encoding stage: ``handle(item)`` for each finished frame, on its own thread.

    Its queue is small on purpose: frames waiting in it are not on disk yet, and a SIGKILL loses
    them. An error stops the render (``stop`` is set) and is raised by the next put or close."""

    def __init__(self, handle: Callable[[Any], None], stop: threading.Event, maxsize: int = 2) -> None:
        self.handle, self.stop = handle, stop
        self.q: queue.Queue[Any] = queue.Queue(maxsize=maxsize)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="videostyle-encode", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        # On stop, the frames already queued are still handled: they are finished work.
        try:
            while True:
                try:
                    item = self.q.get(timeout=0.1)
                except queue.Empty:
                    if self.stop.is_set():
                        return
                    continue
                if isinstance(item, _End):
                    return
                self.handle(item)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self.error = exc
            self.stop.set()

    def put(self, item: Any) -> None:
        while True:
            if self.error is not None:
                raise self.error
            try:
                self.q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        """Handle everything queued, then end; raises the stage's error."""
        while self.thread.is_alive():
            try:
                self.q.put(_End(), timeout=0.1)
                break
            except queue.Full:
                continue
        self.thread.join()
        if self.error is not None:
            raise self.error

    def halt(self) -> None:
        """After ``stop``: wait while the frames already queued are saved."""
        self.thread.join(timeout=60)


class InlineEncoder:
    """The encoding stage's inline twin: each put is handled at once."""

    error: BaseException | None = None

    def __init__(self, handle: Callable[[Any], None]) -> None:
        self.put = handle

    def close(self) -> None:
        pass

    def halt(self) -> None:
        pass


class Saver:
    """Finished frames written to the work folder on ``workers`` threads, behind the encoding
    stage: compressing a PNG (OpenCV tries every filter and level) takes longer than encoding
    the frame from 720p up. At most ``depth`` frames wait.
    ``flush`` waits for them all and raises the first error: the render calls it before a
    chunk closes, whose last frames a resume warm-starts from. With ``workers`` 0 each frame is
    saved at once (the inline twin)."""

    def __init__(self, save: Callable[[Any], None], workers: int, depth: int = 0) -> None:
        self.save = save
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="videostyle-save") if workers > 0 else Inline()
        self.depth = depth or 2 * max(workers, 1)
        self.pending: deque[Future[Any]] = deque()

    def put(self, item: Any) -> None:
        self.pending.append(self.pool.submit(self.save, item))
        while self.pending and (len(self.pending) > self.depth or self.pending[0].done()):
            self.pending.popleft().result()

    def flush(self) -> None:
        while self.pending:
            self.pending.popleft().result()

    def close(self) -> None:
        """Flush, then end the threads (raises the first error)."""
        try:
            self.flush()
        finally:
            self.halt()

    def halt(self) -> None:
        """Wait while the frames already handed over are saved (finished work), errors aside."""
        for fut in self.pending:
            fut.exception()
        self.pending.clear()
        if isinstance(self.pool, ThreadPoolExecutor):
            self.pool.shutdown(wait=True)


def join(threads: list[threading.Thread]) -> None:
    for th in threads:
        th.join(timeout=5)
