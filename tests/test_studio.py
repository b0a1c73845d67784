"""The studio: a real browser (Debian's chromium, headless, driven by Selenium) uploads a clip and
a style, previews a frame, renders and downloads; the security cases against the running server.
Needs the studio extra and chromium with its driver (``.ci/run`` installs them)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import av
import numpy as np
import pytest

from videostyle import config as C
from videostyle.cli import build_parser, main
from videostyle.io.images import write_image

from .clips import make_clip
from .conftest import pattern, stripes

starlette = pytest.importorskip("starlette", reason="needs the studio extra")
uvicorn = pytest.importorskip("uvicorn", reason="needs the studio extra")

from videostyle.studio.app import create_app  # noqa: E402
from videostyle.studio.jobs import Studio  # noqa: E402

BASE = {"model.name": "random", "optim.size": 64, "optim.iterations": 4, "optim.iterations_later": 1,
        "render.device": "cpu", "render.precision": "fp32", "temporal.settle": 0.0, "encode.preset": "ultrafast"}
TOKEN = "test-token-0123456789"


class Running:
    """A studio served on a free 127.0.0.1 port, on a thread."""

    def __init__(self, folder: Path, limit: int = 64 << 20) -> None:
        self.studio = Studio(folder, C.apply(C.Config(), BASE, "test"), limit)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(create_app(self.studio, TOKEN), log_level="warning",
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        for _ in range(100):
            if self.server.started:
                break
            time.sleep(0.05)

    def url(self, path: str = "/", token: str | None = TOKEN) -> str:
        sep = "&" if "?" in path else "?"
        return f"http://127.0.0.1:{self.port}{path}" + (f"{sep}token={token}" if token is not None else "")

    def get(self, path: str, token: str | None = TOKEN) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url(path, token), timeout=30) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def post(self, path: str, data: bytes, ctype: str, token: str | None = TOKEN) -> tuple[int, dict]:
        req = urllib.request.Request(self.url(path, token), data=data, headers={"Content-Type": ctype}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            body = e.read()
            try:
                return e.code, json.loads(body)
            except json.JSONDecodeError:
                return e.code, {"raw": body.decode(errors="replace")}

    def upload(self, name: str, content: bytes, kind: str) -> tuple[int, dict]:
        boundary = "----videostyletest"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
        return self.post(f"/api/upload?kind={kind}", body, f"multipart/form-data; boundary={boundary}")

    def stop(self) -> None:
        self.studio.stop()
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def running(tmp_path):
    r = Running(tmp_path / "studio")
    yield r
    r.stop()


def _media(tmp_path: Path, frames: int = 12) -> tuple[Path, Path]:
    clip = make_clip(tmp_path / "clip.mp4", frames=frames)
    style = tmp_path / "style.png"
    write_image(style, stripes(48, 48))
    return clip, style


def _wait_job(r: Running, job_id: str, states: tuple[str, ...], timeout: float = 120) -> dict:
    end = time.time() + timeout
    while time.time() < end:
        job = r.studio.jobs[job_id].public()
        if job["state"] in states:
            return job
        time.sleep(0.1)
    raise AssertionError(f"render {job_id} still {r.studio.jobs[job_id].state}")


# -- the security cases, against the running server ------------------------------------------

def test_every_request_needs_the_token(running):
    for path in ("/", "/api/state", "/static/app.js", "/api/events", "/api/frame/x"):
        assert running.get(path, token=None)[0] == 403
        assert running.get(path, token="wrong")[0] == 403
    assert running.get("/")[0] == 200
    assert running.post("/api/render", b"{}", "application/json", token=None)[0] == 403


def test_nothing_outside_the_studio_is_served(running, tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    (running.studio.uploads.folder / "evil.mp4").symlink_to(outside)  # a link planted in the uploads
    for path in ("/static/..%2F..%2Fetc%2Fpasswd", "/static/%2e%2e/%2e%2e/etc/passwd", "/static/../app.py",
                 "/api/frame/..%2F..%2Fetc%2Fpasswd", "/api/frame/%2Fetc%2Fpasswd", "/api/frame/evil",
                 "/api/frame/evil.mp4", f"/api/frame/{outside}", "/api/jobs/..%2Fx/download",
                 "/api/preview/..%2F..%2Fsecret.png", "/api/jobs/r1/latest.png", "//etc/passwd"):
        status, body = running.get(path)
        assert status in (400, 404), path
        assert b"secret" not in body and b"root:" not in body, path


def test_bad_uploads_get_a_message_and_the_server_keeps_going(running, tmp_path):
    clip, style = _media(tmp_path)
    st, res = running.upload("../../escape.png", style.read_bytes(), "style")  # a name with a path in it
    assert st == 200 and not (tmp_path / "escape.png").exists()
    assert all(p.parent == running.studio.uploads.folder for p in running.studio.uploads.folder.rglob("*"))
    # (seeded: about one in 400 draws of random bytes reads as lrc lyrics, a subtitle stream)
    st, res = running.upload("noise.mp4", np.random.default_rng(0).bytes(4096), "clip")
    assert st == 400 and "not a readable video" in res["error"]
    st, res = running.upload("lyrics.mp4", b"[00:01.00]la la la\n[00:02.50]la\n", "clip")  # read as subtitles
    assert st == 400 and "lyrics.mp4: has no video stream" in res["error"] and "subtitle" in res["error"]
    png = (tmp_path / "still.png")
    write_image(png, pattern(48, 64))
    st, res = running.upload("holiday.mp4", png.read_bytes(), "clip")  # an image named .mp4
    assert st == 400 and "still image" in res["error"]
    data = clip.read_bytes()
    st, res = running.upload("cut.mp4", data[: len(data) // 3], "clip")  # truncated: no moov
    assert st == 400 and "holiday" not in res["error"]
    st, res = running.upload("notes.txt", b"hello", "clip")
    assert st == 400 and ".mp4" in res["error"]
    st, res = running.post("/api/render", b"not json", "application/json")
    assert st == 400 and "JSON" in res["error"]
    st, res = running.upload("clip.mp4", data, "clip")
    assert st == 200 and res["frames"] == 12  # still serving
    st, res = running.post("/api/render", json.dumps({"clip": res["id"], "styles": ["nope"]}).encode(),
                           "application/json")
    assert st == 400 and "no such style" in res["error"]


def test_an_upload_over_the_limit_is_refused(tmp_path):
    r = Running(tmp_path / "studio", limit=1 << 20)
    try:
        st, res = r.upload("big.mp4", b"\0" * (16 << 20), "clip")
        assert st == 413 and "limit" in res["error"]
        assert not list(r.studio.uploads.folder.iterdir())  # nothing half-written left
    finally:
        r.stop()


def test_the_studio_listens_on_localhost_unless_told():
    ns = build_parser().parse_args(["studio"])
    assert ns.host == "127.0.0.1"


def test_stopping_the_server_stops_a_render_resumably_from_the_cli(tmp_path):
    clip, style = _media(tmp_path, frames=40)
    r = Running(tmp_path / "studio")
    try:
        cid = r.upload("clip.mp4", clip.read_bytes(), "clip")[1]["id"]
        sid = r.upload("style.png", style.read_bytes(), "style")[1]["id"]
        st, job = r.post("/api/render", json.dumps({"clip": cid, "styles": [sid], "settings": {
            "method": "gatys", "size": 64}}).encode(), "application/json")
        assert st == 200
        end = time.time() + 60
        while r.studio.jobs[job["id"]].done < 3 and time.time() < end:
            time.sleep(0.05)
    finally:
        r.stop()  # as Ctrl-C or SIGTERM would
    j = r.studio.jobs[job["id"]]
    assert j.state == "cancelled" and not j.output.exists()
    assert list(j.output.parent.glob("*videostyle-work*"))  # its finished frames kept
    argv = j.command().split()[1:]
    assert main(argv + ["-q"]) == 0  # the same render from the command line resumes it
    with av.open(str(j.output)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 40
    again = Running(tmp_path / "studio")  # a restart lists it as done, finished outside the studio
    try:
        assert again.studio.jobs[j.id].state == "done" and "finished outside the studio" in again.studio.jobs[j.id].notices
    finally:
        again.stop()


def _raw(r: Running, path: str, host: str) -> tuple[int, dict[str, str], bytes]:
    """A GET with its own Host header (urllib sets its own)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", r.port, timeout=30)
    try:
        conn.putrequest("GET", path, skip_host=True)
        conn.putheader("Host", host)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_every_response_carries_the_security_headers(running):
    for path, token in (("/", TOKEN), ("/static/app.js", TOKEN), ("/api/state", TOKEN), ("/api/state", None),
                        ("/api/frame/nothing", TOKEN), ("/favicon.ico", None)):
        q = f"?token={token}" if token else ""
        status, headers, _ = _raw(running, path + q, f"127.0.0.1:{running.port}")
        csp = headers.get("content-security-policy", "")
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp, path
        assert headers.get("x-content-type-options") == "nosniff", path
        assert headers.get("referrer-policy") == "no-referrer", path


def test_a_foreign_host_is_refused_and_no_redirect_names_one(running):
    for host in ("evil.example", "evil.example:80", f"127.0.0.1.evil.example:{running.port}", ""):
        status, _, body = _raw(running, f"/api/state?token={TOKEN}", host)
        assert status == 421 and b"uploads" not in body, host
    for host in (f"127.0.0.1:{running.port}", f"localhost:{running.port}", "localhost", f"[::1]:{running.port}"):
        assert _raw(running, f"/api/state?token={TOKEN}", host)[0] == 200, host
    # a trailing slash is not redirected (Starlette built the Location from the Host)
    status, headers, _ = _raw(running, f"/api/state/?token={TOKEN}", f"localhost:{running.port}")
    assert status == 404 and "location" not in headers


def test_bad_query_parameters_answer_400_with_a_message(running):
    for path in ("/api/events?since=abc", "/api/events?since=-1", "/api/events?since=1e400",
                 "/api/frame/x?t=abc", "/api/frame/x?t=nan", "/api/frame/x?t=-2"):
        status, body = running.get(path)
        assert status == 400, path
        assert b"must be" in body and b"Traceback" not in body, path
    status, body = running.post("/api/upload?kind=exe", b"", "multipart/form-data; boundary=x")
    assert status == 400 and "clip or style" in body["error"]


def test_an_uploaded_name_is_kept_clean_and_short():
    from videostyle.studio.media import NAME_LENGTH, display_name

    assert display_name("../../etc/passwd.png") == "../../etc/passwd.png"  # a name, never a path
    assert display_name("a\nb\u202ec\x00d.png") == "abcd.png"  # newline, bidi override, NUL
    long = display_name("x" * 500 + ".jpeg")
    assert len(long) == NAME_LENGTH and long.endswith("….jpeg")
    assert display_name("\n\t") == "upload"


# -- in a real browser -------------------------------------------------------------------------

def _chrome():
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium")
    binary, driver = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
    if not binary or not driver:
        pytest.skip("needs Debian's chromium and chromium-driver")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(driver), options=opts)


def _until(cond, timeout: float = 120):
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    end = time.time() + timeout
    while time.time() < end:
        try:
            v = cond()
        except (NoSuchElementException, StaleElementReferenceException):  # the page is redrawing it
            v = None
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_in_a_browser_upload_preview_render_download(running, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    clip, style = _media(tmp_path)
    shots = Path(os.environ.get("VIDEOSTYLE_SCREENSHOTS", tmp_path))
    method, size, frames = "gatys", "64", 12
    if "VIDEOSTYLE_SCREENSHOTS" in os.environ:  # the docs' pictures: the shipped samples, the fast engine
        from videostyle.samples import CLIP, SAMPLES

        clip, style, method, size, frames = CLIP, SAMPLES / "cafe_terrace.jpg", "fast", "256", 100
    browser = _chrome()
    try:
        browser.get(running.url("/"))
        _until(lambda: browser.find_element(By.ID, "status").text == "connected", 30)
        browser.find_element(By.ID, "clip-file").send_keys(str(clip))
        _until(lambda: browser.find_elements(By.CSS_SELECTOR, "#clip option"), 30)
        browser.find_element(By.ID, "style-file").send_keys(str(style))
        _until(lambda: browser.find_elements(By.CSS_SELECTOR, "#styles .style"), 30)
        Select(browser.find_element(By.ID, "method")).select_by_value(method)
        box = browser.find_element(By.ID, "size")
        box.clear()
        box.send_keys(size)
        browser.execute_script("const s = document.getElementById('scrub'); s.value = s.max / 2;"
                               "s.dispatchEvent(new Event('input'));")  # scrub to the middle
        browser.find_element(By.ID, "preview-btn").click()
        _until(lambda: browser.find_element(By.ID, "preview").get_attribute("data-done") == "1", 60)
        assert browser.execute_script("return document.getElementById('preview').naturalWidth") == int(size)
        browser.save_screenshot(str(shots / "studio_preview.png"))
        browser.find_element(By.ID, "render-btn").click()
        state = lambda: browser.find_element(By.CSS_SELECTOR, ".job .state").text  # noqa: E731
        _until(lambda: state() == "done", 120)
        assert browser.find_element(By.CSS_SELECTOR, ".job progress").get_attribute("value") == "1"
        assert "100%" in browser.find_element(By.CSS_SELECTOR, ".job .left").text
        browser.save_screenshot(str(shots / "studio_render.png"))
        href = browser.find_element(By.CSS_SELECTOR, ".job .download").get_attribute("href")
        assert "videostyle render" in browser.find_element(By.CSS_SELECTOR, ".job .cmd").get_attribute("textContent")
    finally:
        browser.quit()
    with urllib.request.urlopen(href, timeout=30) as resp:
        (tmp_path / "got.mp4").write_bytes(resp.read())
    with av.open(str(tmp_path / "got.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == frames


def test_in_a_browser_a_file_over_the_limit_is_refused_before_it_is_sent(tmp_path):
    from selenium.webdriver.common.by import By

    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (2 << 20))
    r = Running(tmp_path / "studio", limit=1 << 20)
    browser = _chrome()
    try:
        browser.get(r.url("/"))
        _until(lambda: browser.find_element(By.ID, "status").text == "connected", 30)
        browser.find_element(By.ID, "clip-file").send_keys(str(big))
        said = _until(lambda: browser.find_element(By.ID, "upload-error").text, 30)
        # the page's own words (naming the file), not the server's answer to a body it was sent
        assert said == "big.mp4 is larger than the studio's upload limit (1 MiB; start it with --max-upload MB)"
        assert not r.studio.uploads.items and not list(r.studio.uploads.folder.iterdir())
    finally:
        browser.quit()
        r.stop()


def test_in_a_browser_a_name_with_html_is_shown_as_text_and_never_runs(running, tmp_path):
    """A style uploaded as ``<img src=x onerror=...>.png`` and one as ``<script>...</script>.png``:
    the page shows both names as text, and neither script runs (on the page's load, nor when the
    event stream brings the upload to an open page)."""
    from selenium.webdriver.common.by import By

    png = tmp_path / "s.png"
    write_image(png, stripes(48, 48))
    names = ["<img src=x onerror=window.pwned=1>.png", "<script>window.pwned=2</script>.png"]
    assert running.upload(names[0], png.read_bytes(), "style")[0] == 200
    browser = _chrome()
    try:
        browser.get(running.url("/"))
        _until(lambda: browser.find_element(By.ID, "status").text == "connected", 30)
        assert running.upload(names[1], png.read_bytes(), "style")[0] == 200  # pushed to the open page
        labels = _until(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#styles label")) == 2 and
                        browser.find_elements(By.CSS_SELECTOR, "#styles label"), 30)
        assert [lb.text.strip() for lb in labels] == names
        time.sleep(0.5)  # (an onerror fires once the broken image has failed)
        assert browser.execute_script("return window.pwned === undefined")
        assert not browser.find_elements(By.CSS_SELECTOR, "#styles img[src='x'], #styles script")
        browser.get(running.url("/"))  # a fresh load lists both from /api/state
        _until(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#styles label")) == 2, 30)
        time.sleep(0.5)
        assert browser.execute_script("return window.pwned === undefined")
    finally:
        browser.quit()


def test_closing_the_browser_does_not_stop_a_render_and_a_failure_shows(running, tmp_path):
    from selenium.webdriver.common.by import By

    clip, style = _media(tmp_path, frames=24)
    cid = running.upload("clip.mp4", clip.read_bytes(), "clip")[1]["id"]
    sid = running.upload("style.png", style.read_bytes(), "style")[1]["id"]
    browser = _chrome()
    try:
        browser.get(running.url("/"))
        _until(lambda: browser.find_elements(By.CSS_SELECTOR, "#clip option"), 30)
        browser.find_element(By.ID, "render-btn").click()  # (the fast engine by default)
        _until(lambda: browser.find_elements(By.CSS_SELECTOR, ".job"), 30)
    finally:
        browser.quit()
    job_id = next(iter(running.studio.jobs))
    assert _wait_job(running, job_id, ("done", "failed"))["state"] == "done"
    running.studio.uploads.get(cid).path.unlink()  # the clip is gone before its render starts
    st, job = running.post("/api/render", json.dumps({"clip": cid, "styles": [sid]}).encode(), "application/json")
    failed = _wait_job(running, job["id"], ("done", "failed"))
    assert failed["state"] == "failed" and "does not exist" in failed["error"] and "\n" not in failed["error"]


def test_the_command_prints_its_address_and_stops_on_sigterm(tmp_path):
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "videostyle", "studio", "--no-browser", "--folder",
                             str(tmp_path / "s"), "--model", "random"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        url = line.split()[2]
        assert url.startswith("http://127.0.0.1:") and "token=" in url
        with urllib.request.urlopen(url, timeout=30) as r:
            assert r.status == 200 and b"videostyle studio" in r.read()
        with pytest.raises(urllib.error.HTTPError) as no:
            urllib.request.urlopen(url.split("?")[0], timeout=30)
        assert no.value.code == 403
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 143
    finally:
        if proc.poll() is None:
            proc.kill()


def test_sigterm_with_an_event_stream_open_stops_within_seconds_keeping_the_frames(tmp_path):
    """A page open (its event stream) and a render running: SIGTERM ends the stream, stops the
    render resumably and the server, exit 143 within 5 s, with the line that says so."""
    import signal
    import subprocess
    import sys

    clip, style = _media(tmp_path, frames=60)
    proc = subprocess.Popen([sys.executable, "-m", "videostyle", "studio", "--no-browser", "--folder",
                             str(tmp_path / "s"), "--model", "random", "--size", "64", "--iterations", "4",
                             "--iterations-later", "2", "--settle", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().split()[2]  # type: ignore[union-attr]
        base, token = url.split("/?token=")

        def post(path: str, data: bytes, ctype: str) -> dict:
            req = urllib.request.Request(f"{base}{path}{'&' if '?' in path else '?'}token={token}", data=data,
                                         headers={"Content-Type": ctype}, method="POST")
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.loads(r.read())

        def form(name: str, content: bytes) -> tuple[bytes, str]:
            b = "----vs"
            return ((f"--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
                     f"Content-Type: application/octet-stream\r\n\r\n").encode() + content + f"\r\n--{b}--\r\n".encode(),
                    f"multipart/form-data; boundary={b}")

        cid = post("/api/upload?kind=clip", *form("clip.mp4", clip.read_bytes()))["id"]
        sid = post("/api/upload?kind=style", *form("style.png", style.read_bytes()))["id"]
        job = post("/api/render", json.dumps({"clip": cid, "styles": [sid], "settings": {"method": "gatys"}}).encode(),
                   "application/json")
        stream = urllib.request.urlopen(f"{base}/api/events?token={token}", timeout=60)  # the open page
        frames = 0
        while frames < 3:  # a few frames done
            line = stream.readline().decode()
            if line.startswith("data: "):
                ev = json.loads(line[6:])
                if ev.get("type") == "job" and ev["job"]["id"] == job["id"]:
                    frames = ev["job"]["done"]
        t0 = time.time()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 143
        assert time.time() - t0 < 5
        err = proc.stderr.read()  # type: ignore[union-attr]
        assert "1 render(s) keep their finished frames" in err and "Traceback" not in err
        work = tmp_path / "s" / "outputs" / f".{job['output']}.videostyle-work"
        assert work.is_dir() and not (tmp_path / "s" / "outputs" / job["output"]).exists()
        stream.close()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_an_image_renders_as_an_image(running, tmp_path):
    write_image(tmp_path / "photo.png", pattern(48, 64))
    _, style = _media(tmp_path, frames=2)
    st, item = running.upload("photo.png", (tmp_path / "photo.png").read_bytes(), "clip")
    assert st == 200 and item["still"]
    sid = running.upload("style.png", style.read_bytes(), "style")[1]["id"]
    st, job = running.post("/api/render", json.dumps({"clip": item["id"], "styles": [sid],
                                                      "settings": {"method": "gatys"}}).encode(), "application/json")
    assert _wait_job(running, job["id"], ("done", "failed"))["state"] == "done"
    st, data = running.get(f"/api/jobs/{job['id']}/download")
    assert st == 200 and data[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_render_state_moves_only_as_the_state_machine_allows():
    from videostyle.studio.jobs import MOVES, Job, StateError

    states = ["queued", "running", "done", "failed", "cancelled"]
    allowed = {("queued", "running"), ("queued", "cancelled"), ("running", "done"), ("running", "failed"),
               ("running", "cancelled"), ("cancelled", "queued"), ("failed", "queued")}
    assert {(a, b) for a, tos in MOVES.items() for b in tos} == allowed
    for a in states:
        for b in states:
            job = Job("r1", None, [], None, Path("o.mp4"), {}, state=a)  # type: ignore[arg-type]
            if (a, b) in allowed:
                job.move(b)
                assert job.state == b
            else:
                with pytest.raises(StateError, match=f"render r1 is {a}; it cannot become {b}"):
                    job.move(b)
                assert job.state == a


def test_one_render_one_place_in_the_queue_and_outputs_never_overwritten(running, tmp_path):
    """A render queued behind another is refused a resume; cancelled while it waits and resumed,
    it renders once. A new render beside an earlier session's output takes the next free name
    and leaves that file as it was, byte for byte and inode for inode."""
    clip, style = _media(tmp_path, frames=6)
    cid = running.upload("clip.mp4", clip.read_bytes(), "clip")[1]["id"]
    sid = running.upload("style.png", style.read_bytes(), "style")[1]["id"]
    old = running.studio.outputs / "clip_style_1.mp4"  # an earlier session's output
    old.write_bytes(b"an earlier render")
    before = (old.read_bytes(), old.stat().st_ino)
    body = json.dumps({"clip": cid, "styles": [sid], "settings": {"method": "gatys"}}).encode()
    first = running.post("/api/render", body, "application/json")[1]
    second = running.post("/api/render", body, "application/json")[1]
    assert first["output"] == "clip_style_2.mp4" and second["output"] == "clip_style_3.mp4"
    st, answer = running.post(f"/api/jobs/{second['id']}/resume", b"", "application/json")
    assert st == 400 and "is queued" in answer["error"] and "only a cancelled or failed render resumes" in answer["error"]
    assert running.post(f"/api/jobs/{second['id']}/cancel", b"", "application/json")[1]["state"] == "cancelled"
    assert running.post(f"/api/jobs/{second['id']}/resume", b"", "application/json")[1]["state"] == "queued"
    for j in (first, second):
        assert _wait_job(running, j["id"], ("done", "failed"))["state"] == "done"
    time.sleep(1.0)  # (a second run, were there one, would have started by now)
    states = [e["job"]["state"] for e in running.studio.since(0)
              if e["type"] == "job" and e["job"]["id"] == second["id"]]
    moves = [b for a, b in zip([None, *states], states) if a != b]  # (progress repeats a state)
    assert moves == ["queued", "cancelled", "queued", "running", "done"]
    assert (old.read_bytes(), old.stat().st_ino) == before
    st, answer = running.post(f"/api/jobs/{first['id']}/resume", b"", "application/json")
    assert st == 400 and "is done" in answer["error"]
