"""The studio's work: previews of one frame (the fast engine at once, Gatys in steps so that the
picture updates as it runs) and a queue of renders, one at a time per device. A render is the
command line's: the same config, the same output and work folder, so it resumes from either."""

from __future__ import annotations

import queue
import re
import shlex
import threading
import time
import typing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from videostyle import api
from videostyle import config as C
from videostyle.errors import VideostyleError, in_flags, worded
from videostyle.estimate import Estimating, duration
from videostyle.io import containers
from videostyle.io.workdir import work_path
from videostyle.preview import PREVIEW_ITERATIONS, PREVIEW_SIZE
from videostyle.report import FrameDone, Reporter, STIterate
from videostyle.studio.media import Item, Uploads
from videostyle.studio.store import Record

# The page's everyday settings and the config fields they fill.
SETTINGS = {"method": "fast.method", "style_strength": "style.strength", "size": "optim.size",
            "consistency": "temporal.consistency", "preserve_colors": "style.preserve_colors",
            "style_blend": "style.blend", "iterations": "optim.iterations"}
PREVIEW_STEPS = 5  # a Gatys preview shows its picture this many times as it runs


class Cancelled(Exception):
    pass


def overrides(settings: dict[str, Any]) -> dict[str, Any]:
    """The page's settings as config overrides (unknown keys refused with a "did you mean")."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if key not in SETTINGS:
            raise VideostyleError(f"unknown setting {key!r}{C.suggest(key, sorted(SETTINGS))}")
        if value is None or value == "":
            continue
        path = SETTINGS[key]
        if typing.get_origin(C.FIELDS[path].type) is tuple and not isinstance(value, list):
            value = [str(value)] if path == "style.strength" else [value]
        out[path] = value
    return out


def changed(cfg: C.Config) -> dict[str, Any]:
    """The fields of ``cfg`` that differ from the defaults (the studio's own flags), as overrides."""
    base = C.Config()
    out: dict[str, Any] = {}
    for path in C.FIELDS:
        sec, key = path.split(".")
        value = getattr(getattr(cfg, sec), key)
        if value != getattr(getattr(base, sec), key):
            out[path] = list(value) if isinstance(value, tuple) else value
    return out


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", Path(name).stem)[:40] or "clip"


# A render's states and the moves between them: the only ones ``Job.move`` makes. A queued
# render runs or is cancelled; a running one ends done, failed or cancelled; a cancelled or
# failed one may be queued again (resumed); a finished one stays.
MOVES: dict[str, frozenset[str]] = {
    "queued": frozenset({"running", "cancelled"}),
    "running": frozenset({"done", "failed", "cancelled"}),
    "cancelled": frozenset({"queued"}),
    "failed": frozenset({"queued"}),
    "done": frozenset(),
}


class StateError(VideostyleError):
    """A move a render's state does not allow (resuming a queued render, say)."""


@dataclass
class Job:
    """A render in the queue: what it renders, where, and where it is."""

    id: str
    clip: Item
    styles: list[Item]
    cfg: C.Config
    output: Path
    over: dict[str, Any]
    state: str = "queued"  # queued, running, done, failed, cancelled
    done: float = 0.0
    total: int | None = None
    seconds_left: float | None = None
    estimate: str = ""
    error: str = ""
    notices: list[str] = field(default_factory=list)
    cancel: threading.Event = field(default_factory=threading.Event)
    finished_at: float | None = None
    in_queue: bool = False  # put in the queue and not yet taken: resuming it must not put it twice

    def record(self) -> dict[str, Any]:
        """What the studio's record keeps of it: enough to list it again and to resume it."""
        return {"id": self.id, "clip": self.clip.id, "styles": [s.id for s in self.styles], "over": self.over,
                "output": self.output.name, "state": self.state, "done": self.done, "total": self.total,
                "error": self.error, "notices": self.notices[-5:], "finished_at": self.finished_at}

    @classmethod
    def from_record(cls, rec: dict[str, Any], uploads: Uploads, outputs: Path) -> Job | None:
        """The render a record describes, or None when its uploads are gone or it is not one. A
        render that was queued or running when the studio stopped comes back cancelled: its
        frames are in its work folder, and resume goes on from them."""
        try:
            clip = uploads.get(str(rec["clip"]), "clip")
            styles = [uploads.get(str(s), "style") for s in rec["styles"]]
            over = dict(rec["over"])
            cfg = C.apply(C.Config(), over, "the studio's record")
            output = outputs / str(rec["output"])
            if output.parent != outputs or rec["state"] not in MOVES:
                return None
            job = cls(str(rec["id"]), clip, styles, cfg, output, over, state=str(rec["state"]),
                      done=float(rec.get("done") or 0.0), total=rec.get("total"), error=str(rec.get("error") or ""),
                      notices=[str(n) for n in rec.get("notices") or []], finished_at=rec.get("finished_at"))
        except (KeyError, TypeError, ValueError, VideostyleError):
            return None
        if job.state in ("queued", "running"):
            job.state = "cancelled"
            job.notices.append("stopped when the studio stopped: resume it to go on from its finished frames")
        if job.state != "done" and output.is_file() and not work_path(output).exists():
            job.state, job.error = "done", ""  # (its command line, shown in the page, finished it)
            job.notices.append("finished outside the studio")
        return job

    def move(self, to: str) -> None:
        """The state ``to``, where ``MOVES`` allows it from the state now; else StateError."""
        if to not in MOVES[self.state]:
            raise StateError(f"render {self.id} is {self.state}; it cannot become {to}"
                             + (" (only a cancelled or failed render resumes)" if to == "queued" else ""))
        self.state = to

    @property
    def latest(self) -> Path:
        return self.output.with_name(f"{self.output.stem}.preview.png")

    def command(self) -> str:
        """The same render from the command line (it resumes this one's work folder)."""
        args = ["videostyle", "render", str(self.clip.path)]
        for s in self.styles:
            args += ["--style", str(s.path)]
        for path, value in self.over.items():
            if path == "style.images":
                continue
            flag = "--" + C.FIELDS[path].flag.replace("_", "-")
            if isinstance(value, bool):
                args.append(flag if value else f"--no-{flag[2:]}")
            else:
                args += [flag, ",".join(map(str, value)) if isinstance(value, list) else str(value)]
        return shlex.join(args + ["-o", str(self.output)])

    def yaml(self) -> str:
        """The render as a batch file's job."""
        job: dict[str, Any] = {"name": self.id, "input": str(self.clip.path)}
        paths = [str(s.path) for s in self.styles]
        job["style" if len(paths) == 1 else "styles"] = paths[0] if len(paths) == 1 else [paths]
        job["output"] = str(self.output)
        for path, value in self.over.items():
            if path != "style.images":
                job[C.FIELDS[path].flag] = value
        return yaml.safe_dump({"jobs": [job]}, sort_keys=False)

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "clip": self.clip.name, "styles": [s.name for s in self.styles],
                "output": self.output.name, "state": self.state, "done": self.done, "total": self.total,
                "seconds_left": self.seconds_left, "left": duration(self.seconds_left) if self.seconds_left else "",
                "estimate": self.estimate, "error": self.error, "notices": self.notices[-5:],
                "yaml": self.yaml(), "command": self.command()}


class JobReporter(Reporter):
    """A render's events into its Job, and the studio's event stream; stops the render (as
    Ctrl-C does, keeping its frames) when the job is cancelled."""

    def __init__(self, job: Job, publish: typing.Callable[[dict[str, Any]], None]) -> None:
        self.job, self.publish = job, publish
        self.last = 0.0

    def _check(self) -> None:
        if self.job.cancel.is_set():
            raise KeyboardInterrupt

    def notice(self, message: str) -> None:
        self.job.notices.append(worded(message, flags=True))

    def begin(self, total: int | None, what: str) -> None:
        self.job.total = total

    def iterate(self, it: STIterate) -> None:
        self._check()

    def estimate(self, estimate: Any) -> None:
        self.job.estimate = estimate.line(flags=True)
        self.publish({"type": "job", "job": self.job.public()})

    def progress(self, progress: Any) -> None:
        self.job.done, self.job.seconds_left = progress.done, progress.seconds_left
        now = time.monotonic()
        if now - self.last > 0.5 or progress.done == progress.total:
            self.last = now
            self.publish({"type": "job", "job": self.job.public()})
        self._check()

    def frame(self, done: FrameDone) -> None:
        self.publish({"type": "frame", "job": self.job.id, "index": done.index})
        self._check()


class Studio:
    """The studio's state: uploads, outputs, previews and the render queue."""

    def __init__(self, folder: Path, base: C.Config, upload_limit: int, storage: int = 0) -> None:
        self.folder, self.base = folder, base
        folder.mkdir(parents=True, exist_ok=True)
        self.record = Record(folder)
        earlier = self.record.load()
        self.uploads = Uploads(folder / "uploads", upload_limit, storage, base.render.max_pixels,
                               in_use=self._in_use, removed=self._removed)
        self.uploads.restore(earlier["uploads"])
        self.outputs = folder / "outputs"
        self.outputs.mkdir(parents=True, exist_ok=True)
        self.previews = folder / "previews"
        self.previews.mkdir(exist_ok=True)
        self.jobs: dict[str, Job] = {}
        for rec in earlier["jobs"]:
            job = Job.from_record(rec, self.uploads, self.outputs)
            if job is not None and job.id not in self.jobs:
                self.jobs[job.id] = job
        self.lock = threading.Lock()  # the jobs' states and their places in the queue
        self.stopping = threading.Event()  # set when the studio stops: the event streams end
        self.events: list[dict[str, Any]] = []
        self.events_lock = threading.Lock()
        self.queue: queue.Queue[Job | None] = queue.Queue()
        self.preview_lock = threading.Lock()
        self.preview_gen = 0
        self.worker = threading.Thread(target=self._work, name="videostyle-studio-renders", daemon=True)
        self.worker.start()

    # -- the record and the uploads ----------------------------------------------------------------

    def save(self) -> None:
        """The record, written now (after each upload, and each render's move)."""
        with self.lock:
            jobs = [j.record() for j in self.jobs.values()]
        with self.uploads.lock:
            uploads = [i.record() for i in self.uploads.items.values()]
        self.record.save(uploads, jobs)

    def uploaded(self, item: Item) -> None:
        self.save()
        self.publish({"type": "upload", "item": item.public()})

    def _in_use(self) -> set[str]:
        """The uploads a render may still read: those of renders not yet done."""
        return {i.id for j in list(self.jobs.values()) if j.state != "done" for i in (j.clip, *j.styles)}

    def _removed(self, item: Item) -> None:
        self.save()
        self.publish({"type": "removed", "id": item.id, "kind": item.kind})

    # -- events --------------------------------------------------------------------------------

    def publish(self, event: dict[str, Any]) -> None:
        with self.events_lock:
            event = {**event, "seq": len(self.events)}
            self.events.append(event)

    def since(self, seq: int) -> list[dict[str, Any]]:
        with self.events_lock:
            return self.events[seq:]

    # -- configs -------------------------------------------------------------------------------

    def config(self, styles: list[Item], settings: dict[str, Any]) -> tuple[C.Config, dict]:
        if not styles:
            raise VideostyleError("choose at least one style image")
        page = {"style.images": [str(s.path) for s in styles], **overrides(settings)}
        cfg = C.apply(self.base, page, "the studio's settings")
        return cfg, {**changed(self.base), **page}

    # -- previews ------------------------------------------------------------------------------

    def preview(self, clip_id: str, style_ids: list[str], t: float, settings: dict[str, Any]) -> str:
        """Start a preview of the clip's frame at ``t`` (a newer one supersedes it); its pictures
        arrive as ``preview`` events."""
        clip = self.uploads.get(clip_id, "clip")
        styles = [self.uploads.get(s, "style") for s in style_ids]
        base_o, default_o = self.base.optim, C.OptimConfig()
        size = int(settings.get("size") or base_o.size)
        settings = {**settings, "size": min(size, PREVIEW_SIZE) if size else PREVIEW_SIZE,
                    "iterations": base_o.iterations if base_o.iterations != default_o.iterations else PREVIEW_ITERATIONS}
        cfg, _ = self.config(styles, settings)
        with self.preview_lock:
            self.preview_gen += 1
            gen = self.preview_gen
        pid = f"p{gen}"
        threading.Thread(target=self._preview, args=(pid, gen, clip, t, cfg), daemon=True,
                         name="videostyle-studio-preview").start()
        return pid

    def _preview(self, pid: str, gen: int, clip: Item, t: float, cfg: C.Config) -> None:
        try:
            frame = self.uploads.frame(clip, t)
            steps = PREVIEW_STEPS if api.optimises(cfg) else 1
            # A Gatys preview runs in steps, each starting from the last picture, so that the page
            # shows it as it forms (the optimiser's history restarts at each step).
            stepped = replace(cfg, optim=replace(cfg.optim, iterations=max(1, cfg.optim.iterations // steps)))
            engine = api.Engine(stepped)
            image: np.ndarray | None = None
            for k in range(1, steps + 1):
                if gen != self.preview_gen:
                    return  # superseded by a newer preview
                image = np.array(api.stylize(frame, engine=engine, init=image, config=stepped))
                self._show(pid, image, k, steps)
        except VideostyleError as exc:
            self.publish({"type": "preview", "id": pid, "error": in_flags(exc)})
        except Exception as exc:  # a preview must not take the server down
            self.publish({"type": "preview", "id": pid, "error": f"preview failed: {exc}"})

    def _show(self, pid: str, image: np.ndarray, step: int, steps: int) -> None:
        from videostyle.io.images import write_image

        path = self.previews / f"{pid}.png"
        write_image(path, image)
        self.publish({"type": "preview", "id": pid, "step": step, "steps": steps})

    def preview_path(self, pid: str) -> Path:
        if not re.fullmatch(r"p\d+", pid):
            raise VideostyleError("no such preview")
        return self.previews / f"{pid}.png"

    # -- renders -------------------------------------------------------------------------------

    def render(self, clip_id: str, style_ids: list[str], settings: dict[str, Any]) -> Job:
        clip = self.uploads.get(clip_id, "clip")
        styles = [self.uploads.get(s, "style") for s in style_ids]
        cfg, over = self.config(styles, settings)
        over["render.preview_every"] = 1  # the page shows the latest finished frame
        cfg = C.apply(cfg, {"render.preview_every": 1}, "the studio")
        with self.lock:
            n = 1 + max((int(j[1:]) for j in self.jobs if re.fullmatch(r"r\d+", j)), default=0)
            job = Job(f"r{n}", clip, styles, cfg, self._free_output(clip, styles[0]), over)
            self.jobs[job.id] = job
        self._enqueue(job)
        return job

    def _free_output(self, clip: Item, style: Item) -> Path:
        """The first output name of this clip and style that no file and no render of this studio
        has: an earlier session's output is never reused (a render never overwrites one)."""
        stem, ext = f"{_safe(clip.name)}_{_safe(style.name)}", ".png" if clip.still else containers.DEFAULT_EXTENSION
        taken = {j.output for j in self.jobs.values()}
        k = 1
        while (out := self.outputs / f"{stem}_{k}{ext}") in taken or out.exists() or work_path(out).exists():
            k += 1
        return out

    def _enqueue(self, job: Job) -> None:
        with self.lock:
            if not job.in_queue:  # (a cancelled render still waiting in the queue is not put twice)
                job.in_queue = True
                self.queue.put(job)
        self.save()
        self.publish({"type": "job", "job": job.public()})

    def cancel(self, job_id: str) -> Job:
        job = self.job(job_id)
        with self.lock:
            if job.state not in ("queued", "running"):
                raise StateError(f"render {job_id} is {job.state}; only a queued or running render cancels")
            job.cancel.set()
            if job.state == "queued":
                job.move("cancelled")
        self.save()
        self.publish({"type": "job", "job": job.public()})
        return job

    def resume(self, job_id: str) -> Job:
        job = self.job(job_id)
        with self.lock:
            job.move("queued")  # (refused unless cancelled or failed)
            job.cancel.clear()
            job.error = ""
        self._enqueue(job)
        return job

    def job(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise VideostyleError(f"no such render: {job_id!r}")
        return job

    def _work(self) -> None:
        while True:
            job = self.queue.get()
            if job is None:
                return
            with self.lock:
                job.in_queue = False
                stopped = job.state == "queued" and job.cancel.is_set()  # the studio is stopping
                if stopped:
                    job.move("cancelled")
                elif job.state == "queued":
                    job.move("running")
            self.save()
            if job.state != "running":  # cancelled while it waited
                if stopped:
                    self.publish({"type": "job", "job": job.public()})
                continue
            self.publish({"type": "job", "job": job.public()})
            try:
                reporter = Estimating(JobReporter(job, self.publish))
                # (overwrite off: the output's name was free when the render was queued, and a
                # file that has appeared there since is someone's, not ours to replace)
                api.render(job.clip.path, job.output, config=job.cfg, reporter=reporter, overwrite=False)
                job.move("done")
                job.done = float(job.total or job.done)
            except KeyboardInterrupt:  # an image render's cancel (a video's becomes RenderInterrupted)
                job.move("cancelled")
            except VideostyleError as exc:
                job.move("cancelled" if job.cancel.is_set() else "failed")
                job.error = "" if job.cancel.is_set() else in_flags(exc)
            except Exception as exc:  # a render's bug must not take the queue down
                job.move("failed")
                job.error = f"render failed: {exc}"
            job.finished_at = time.time()
            self.save()
            self.publish({"type": "job", "job": job.public()})

    def stop_renders(self) -> None:
        """End the event streams and stop the running render as Ctrl-C does (its frames kept,
        resumable) and the queued ones; returns at once (a signal handler calls it)."""
        self.stopping.set()
        for job in list(self.jobs.values()):
            if job.state in ("queued", "running"):
                job.cancel.set()

    def stop(self, timeout: float = 60.0) -> None:
        """``stop_renders``, then end the queue's worker (waiting up to ``timeout``)."""
        self.stop_renders()
        self.queue.put(None)
        self.worker.join(timeout)
