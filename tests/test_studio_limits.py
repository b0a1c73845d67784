"""The studio across restarts and at its limits: the record lists earlier uploads and renders
again (a render stopped with the studio resumes from its frames), a picture is checked by its
header's size before it is decoded (studio and command line, with the peak memory measured), a
body without a length is cut at the limit as it arrives, and the storage limit removes the
oldest upload no render needs."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from videostyle.io.images import write_image
from videostyle.io.limits import header_size

from .clips import make_clip
from .conftest import stripes

pytest.importorskip("starlette", reason="needs the studio extra")
from videostyle.studio import media  # noqa: E402
from videostyle.studio.jobs import Job  # noqa: E402
from videostyle.studio.store import RECORD  # noqa: E402

from .test_studio import TOKEN, Running, _wait_job  # noqa: E402


def bomb_png(path: Path, width: int = 30000, height: int = 30000) -> Path:
    """A PNG as a decompression bomb is made: a valid header declaring ``width x height`` RGB,
    and rows of zeros that deflate a thousandfold (2.5 MiB for 30000x30000)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    z = zlib.compressobj(9)
    row = b"\0" * (1 + 3 * width)
    body = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def _peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def _form(name: str, content: bytes) -> tuple[bytes, str]:
    b = "----vs"
    return ((f"--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
             "Content-Type: application/octet-stream\r\n\r\n").encode() + content + f"\r\n--{b}--\r\n".encode(),
            f"multipart/form-data; boundary={b}")


def _media(tmp_path: Path, frames: int = 6) -> tuple[Path, Path]:
    clip = make_clip(tmp_path / "clip.mp4", frames=frames)
    style = tmp_path / "style.png"
    write_image(style, stripes(48, 48))
    return clip, style


def _noise_pngs(tmp_path: Path, n: int, side: int) -> list[bytes]:
    """``n`` PNGs of noise, ``side`` px square (noise: they do not compress, so their sizes are alike)."""
    out = []
    for k in range(n):
        img = tmp_path / f"s{k}.png"
        write_image(img, (np.random.default_rng(k).random((side, side, 3)) * 255).astype(np.uint8))
        out.append(img.read_bytes())
    return out


def _render(r: Running, cid: str, sid: str) -> dict:
    body = json.dumps({"clip": cid, "styles": [sid], "settings": {"method": "gatys"}}).encode()
    st, job = r.post("/api/render", body, "application/json")
    assert st == 200, job
    return job


def test_a_restart_lists_the_earlier_uploads_and_renders_and_resumes_a_stopped_one(tmp_path):
    clip, style = _media(tmp_path)
    r = Running(tmp_path / "studio")
    try:
        cid = r.upload("clip.mp4", clip.read_bytes(), "clip")[1]["id"]
        sid = r.upload("style.png", style.read_bytes(), "style")[1]["id"]
        done = _render(r, cid, sid)
        assert _wait_job(r, done["id"], ("done", "failed"))["state"] == "done"
        running, waiting = _render(r, cid, sid), _render(r, cid, sid)
        _wait_job(r, running["id"], ("running",))
        while r.studio.jobs[running["id"]].done < 1:
            time.sleep(0.05)
    finally:
        r.stop()  # (as SIGTERM does: the running render stops keeping its frames, the queued one too)
    out = r.studio.outputs / done["output"]
    before = (out.read_bytes(), out.stat().st_ino)
    record = tmp_path / "studio" / RECORD
    data = json.loads(record.read_text())
    assert [j["state"] for j in data["jobs"]] == ["done", "cancelled", "cancelled"]
    data["jobs"][2]["state"] = "running"  # as a SIGKILL would have left it
    record.write_text(json.dumps(data))

    again = Running(tmp_path / "studio")
    try:
        st, state = again.get("/api/state")
        state = json.loads(state)
        assert {u["id"] for u in state["uploads"]} == {cid, sid}
        jobs = {j["id"]: j for j in state["jobs"]}
        assert jobs[done["id"]]["state"] == "done" and jobs[done["id"]]["output"] == done["output"]
        assert jobs[running["id"]]["state"] == jobs[waiting["id"]]["state"] == "cancelled"
        assert any("stopped when the studio stopped" in n for n in jobs[waiting["id"]]["notices"])
        work = again.studio.outputs / f".{running['output']}.videostyle-work"
        assert work.is_dir()  # its finished frames, for the resume
        st, res = again.post(f"/api/jobs/{running['id']}/resume", b"", "application/json")
        assert st == 200 and res["state"] in ("queued", "running")
        assert _wait_job(again, running["id"], ("done", "failed"))["state"] == "done"
        assert (again.studio.outputs / running["output"]).is_file() and not work.exists()
        new = _render(again, cid, sid)  # a new render: a new id and a free name, nothing overwritten
        assert new["id"] not in {done["id"], running["id"], waiting["id"]}
        assert new["output"] not in {done["output"], running["output"], waiting["output"]}
        assert _wait_job(again, new["id"], ("done", "failed"))["state"] == "done"
        assert (out.read_bytes(), out.stat().st_ino) == before
    finally:
        again.stop()


def test_an_unreadable_record_gets_one_line(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / RECORD).write_text("{not json")
    res = subprocess.run([sys.executable, "-m", "videostyle", "studio", "--no-browser", "--folder", str(folder)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert RECORD in res.stderr and "move it away" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_a_picture_is_checked_by_its_header_before_it_is_decoded(tmp_path):
    """A 2.5 MiB PNG declaring 30000x30000 (2.5 GB of RGB): the studio refuses it as a style with
    its peak memory unmoved, and the command line refuses it as a style and as the content with
    one line, in the memory of a small render."""
    bomb = bomb_png(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 4 << 20 and header_size(bomb) == (30000, 30000)
    proc = subprocess.Popen([sys.executable, "-m", "videostyle", "studio", "--no-browser", "--folder",
                             str(tmp_path / "s"), "--model", "random"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().split()[2]  # type: ignore[union-attr]
        host, token = url.split("//")[1].split("/")[0], url.split("token=")[1]
        conn = http.client.HTTPConnection(host, timeout=60)
        conn.request("GET", f"/api/state?token={token}")
        conn.getresponse().read()
        before = _peak_mib(proc.pid)
        conn.request("POST", f"/api/upload?kind=style&token={token}", *_form_args("huge.png", bomb.read_bytes()))
        res = conn.getresponse()
        answer = json.loads(res.read())
        assert res.status == 400 and "declares a 30000x30000 picture" in answer["error"], answer
        assert "--max-pixels" in answer["error"]
        assert _peak_mib(proc.pid) - before < 200  # (decoding it would take 2,500)
        assert not [p for p in (tmp_path / "s" / "uploads").iterdir()]
    finally:
        proc.terminate()
        proc.wait(30)

    write_image(tmp_path / "photo.png", stripes(48, 64))
    for args in (["photo.png", "--style", "bomb.png"], ["bomb.png", "--style", "photo.png"]):
        # (VmHWM, the peak of this program's memory: ru_maxrss would carry the peak of the
        # process it was forked from, here the test run's)
        code = ("import sys\nfrom videostyle.cli import main\n"
                "try:\n    rc = main(sys.argv[1:])\nexcept SystemExit as e:\n    rc = e.code\n"
                "hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0].split()[1]\n"
                "print('peak', int(hwm) // 1024, file=sys.stderr)\n"
                "sys.exit(rc)\n")
        res = subprocess.run([sys.executable, "-c", code, "render", *args, "-o", "out.png", "--model", "random",
                              "--size", "64", "--iterations", "2"], cwd=tmp_path, capture_output=True, text=True,
                             timeout=300)
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
        said = [line for line in lines if "declares" in line]
        assert len(said) == 1 and "bomb.png declares a 30000x30000 picture" in said[0] and "--max-pixels" in said[0]
        assert int(lines[-1].split()[1]) < 1500, lines  # MiB: a small render's, not the 13,900 of decoding it
        assert not (tmp_path / "out.png").exists()


def _form_args(name: str, content: bytes) -> tuple[bytes, dict[str, str]]:
    body, ctype = _form(name, content)
    return body, {"Content-Type": ctype}


def test_a_clip_is_checked_by_its_header_before_a_frame_is_decoded(tmp_path):
    from videostyle.errors import InputError
    from videostyle.io.media import probe

    clip = make_clip(tmp_path / "clip.mp4", frames=2, size=(96, 64), audio=())
    write_image(tmp_path / "x.png", stripes(32, 32))
    with pytest.raises(InputError, match=r"input .*clip.mp4 declares a 96x64 picture .* raise max_pixels"):
        probe(clip, max_pixels=96 * 64 - 1)
    assert probe(clip, max_pixels=96 * 64).width == 96
    res = subprocess.run([sys.executable, "-m", "videostyle", "render", str(clip), "--style", str(tmp_path / "x.png"),
                          "--max-pixels", "1000", "-o", str(tmp_path / "out.mp4")], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 1 and "declares a 96x64 picture" in res.stderr and "Traceback" not in res.stderr


def test_a_body_without_a_length_is_cut_at_the_limit_as_it_arrives(tmp_path, monkeypatch):
    """A chunked upload over --max-upload: 413 with the message, and the file part never held a
    byte over the limit (the bytes are counted as they arrive, not after a spool to disk)."""
    limit = 1 << 20
    most = []
    write = media.Incoming.write

    def counted(self, data):
        write(self, data)
        most.append(self.size)

    monkeypatch.setattr(media.Incoming, "write", counted)
    r = Running(tmp_path / "studio", limit=limit)
    try:
        head, ctype = _form("big.mp4", b"")
        opening, closing = head.split(b"\r\n--")[0], b"\r\n--" + head.split(b"\r\n--")[1]

        def body():
            yield opening
            for _ in range(64):  # 8 MiB in 128 KiB pieces
                yield b"\0" * (128 << 10)
            yield closing

        conn = http.client.HTTPConnection("127.0.0.1", r.port, timeout=60)
        conn.request("POST", f"/api/upload?kind=clip&token={TOKEN}", body=body(), headers={"Content-Type": ctype},
                     encode_chunked=True)
        res = conn.getresponse()
        answer = json.loads(res.read())
        assert res.status == 413 and "upload limit" in answer["error"]
        assert most and max(most) <= limit
        assert not list(r.studio.uploads.folder.iterdir())
    finally:
        r.stop()


def test_the_storage_limit_removes_the_oldest_upload_no_render_needs(tmp_path):
    """Four styles of about 30 KB in a 100 KB limit: the fourth removes the oldest that no
    render needs (the page hears of it); with every upload needed, an upload is refused."""
    clip, _ = _media(tmp_path)
    images = _noise_pngs(tmp_path, 4, 100)
    size = max(len(b) for b in images)
    r = Running(tmp_path / "studio")
    r.studio.uploads.storage = len(clip.read_bytes()) + 3 * size + size // 2
    uploads = r.studio.uploads

    def needed_by_a_render(style_id: str) -> None:  # (a cancelled render: resumable, so it needs its files)
        n = len(r.studio.jobs) + 1
        r.studio.jobs[f"r{n}"] = Job(f"r{n}", uploads.get(cid), [uploads.get(style_id)], None,  # type: ignore[arg-type]
                                     tmp_path / f"o{n}.mp4", {}, state="cancelled")

    try:
        cid = r.upload("clip.mp4", clip.read_bytes(), "clip")[1]["id"]
        ids = [r.upload(f"s{k}.png", images[k], "style")[1]["id"] for k in range(3)]
        needed_by_a_render(ids[0])
        st, item = r.upload("s3.png", images[3], "style")
        assert st == 200
        left = set(r.studio.uploads.items)
        assert ids[0] in left and ids[1] not in left and ids[2] in left and item["id"] in left and cid in left
        assert {e["id"] for e in r.studio.since(0) if e["type"] == "removed"} == {ids[1]}
        assert not list(r.studio.uploads.folder.glob(f"{ids[1]}.*"))
        needed_by_a_render(ids[2])
        needed_by_a_render(item["id"])  # now every upload is needed
        st, answer = r.upload("s1.png", images[1], "style")
        assert st == 413 and "renders still need" in answer["error"] and "--max-storage" in answer["error"]
        json.loads((tmp_path / "studio" / RECORD).read_text())  # (the record follows)
    finally:
        r.stop()


def test_in_a_browser_a_restarted_studio_lists_its_uploads_and_drops_a_removed_one(tmp_path):
    """The page of a restarted studio lists the earlier styles with the newest chosen; a style
    the storage limit removes leaves the page as the event arrives."""
    from selenium.webdriver.common.by import By

    from .test_studio import _chrome, _until

    clip, _ = _media(tmp_path)
    images = _noise_pngs(tmp_path, 3, 64)
    r = Running(tmp_path / "studio")
    try:
        ids = [r.upload(f"s{k}.png", images[k], "style")[1]["id"] for k in range(2)]
        cid = r.upload("clip.mp4", clip.read_bytes(), "clip")[1]["id"]  # (the newest: s0 is the oldest)
    finally:
        r.stop()
    again = Running(tmp_path / "studio")
    again.studio.uploads.storage = len(clip.read_bytes()) + sum(map(len, images)) - len(images[0]) // 2
    browser = _chrome()
    try:
        browser.get(again.url("/"))
        labels = _until(lambda: browser.find_elements(By.CSS_SELECTOR, "#styles label"), 30)
        assert [lb.get_attribute("data-id") for lb in labels] == ids
        boxes = browser.find_elements(By.CSS_SELECTOR, "#styles input")
        assert [b.is_selected() for b in boxes] == [False, True]  # the newest chosen
        assert browser.find_element(By.ID, "clip").get_attribute("value") == cid
        st, item = again.upload("s2.png", images[2], "style")  # makes room: s0 goes
        assert st == 200 and ids[0] not in again.studio.uploads.items
        _until(lambda: [lb.get_attribute("data-id") for lb in browser.find_elements(
            By.CSS_SELECTOR, "#styles label")] == [ids[1], item["id"]], 30)
    finally:
        browser.quit()
        again.stop()


def test_ctrl_c_with_an_event_stream_open_stops_within_seconds(tmp_path):
    """Ctrl-C (SIGINT) as SIGTERM: with a page's event stream open, the studio ends it and exits
    130 within 5 s, without a traceback."""
    import signal
    import urllib.request

    proc = subprocess.Popen([sys.executable, "-m", "videostyle", "studio", "--no-browser", "--folder",
                             str(tmp_path / "s"), "--model", "random"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().split()[2]  # type: ignore[union-attr]
        base, token = url.split("/?token=")
        stream = urllib.request.urlopen(f"{base}/api/events?token={token}", timeout=30)
        assert stream.readline().startswith(b":")  # (the stream is open)
        t0 = time.time()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 130 and time.time() - t0 < 5
        assert "Traceback" not in proc.stderr.read()  # type: ignore[union-attr]
        stream.close()
    finally:
        if proc.poll() is None:
            proc.kill()
