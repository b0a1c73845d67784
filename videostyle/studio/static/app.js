// videostyle studio: one page, no build step. Every request carries the session token.
"use strict";
const TOKEN = document.body.dataset.token;
const $ = (id) => document.getElementById(id);
const api = (path) => path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(TOKEN);
const uploads = { clip: [], style: [] };
let chosenStyles = [];
let currentPreview = null;
let uploadLimit = Infinity;  // bytes, from /api/state
const previewEvents = {};  // the latest event of each preview (one may come before its id does)

async function call(path, options = {}) {
  const r = await fetch(api(path), options);
  const data = await r.json().catch(() => ({ error: "the studio answered " + r.status }));
  if (!r.ok) throw new Error(data.error || ("error " + r.status));
  return data;
}

function clip() { return uploads.clip.find((c) => c.id === $("clip").value); }

function settings() {
  const s = { method: $("method").value, style_strength: $("style_strength").value, size: parseInt($("size").value, 10),
              preserve_colors: $("preserve_colors").checked };
  if ($("consistency").value !== "") s.consistency = parseFloat($("consistency").value);
  if ($("style_blend").value.trim()) s.style_blend = $("style_blend").value.split(",").map(Number);
  return s;
}

// An upload arriving now is chosen; one listed from an earlier session (chosen = false) waits to be.
function addUpload(item, chosen = true) {
  const list = uploads[item.kind];
  if (list.some((x) => x.id === item.id)) return;
  list.push(item);
  if (item.kind === "clip") {
    const o = document.createElement("option");
    o.value = item.id; o.dataset.id = item.id; o.textContent = `${item.name} (${item.width}x${item.height}, ${(item.duration || 0).toFixed(1)} s)`;
    $("clip").appendChild(o);
    if (chosen) { $("clip").value = item.id; onClip(); }
  } else {
    if (chosen) chosenStyles.push(item.id);
    // Every label is built from nodes and text: a name is data, never HTML.
    const d = document.createElement("label"); d.className = "style"; d.dataset.id = item.id;
    const img = document.createElement("img"); img.src = api("/api/frame/" + encodeURIComponent(item.id)); img.alt = "";
    const box = document.createElement("input"); box.type = "checkbox"; box.checked = chosen; box.dataset.id = item.id;
    d.append(img, box, document.createTextNode(" " + item.name));
    box.addEventListener("change", (e) => {
      chosenStyles = chosenStyles.filter((x) => x !== item.id);
      if (e.target.checked) chosenStyles.push(item.id);
    });
    $("styles").appendChild(d);
  }
}

// An upload the studio removed to make room (--max-storage): gone from the lists.
function removeUpload(id, kind) {
  uploads[kind] = uploads[kind].filter((x) => x.id !== id);
  chosenStyles = chosenStyles.filter((x) => x !== id);
  for (const el of document.querySelectorAll(kind === "clip" ? "#clip option" : "#styles label")) {
    if (el.dataset.id === id) el.remove();
  }
  if (kind === "clip") onClip();
}

// The page opens with the newest clip and the newest style chosen (earlier ones are listed).
function chooseNewest(items) {
  const newest = (kind) => items.filter((u) => u.kind === kind).pop();
  const c = newest("clip"), st = newest("style");
  if (c) { $("clip").value = c.id; onClip(); }
  if (st) {
    chosenStyles = [st.id];
    for (const box of document.querySelectorAll("#styles input")) box.checked = box.dataset.id === st.id;
  }
}

async function upload(kind, file) {
  $("upload-error").textContent = "";
  if (file.size > uploadLimit) {  // say so now rather than after sending it all
    $("upload-error").textContent = file.name + " is larger than the studio's upload limit (" +
      Math.floor(uploadLimit / 1048576) + " MiB; start it with --max-upload MB)";
    return;
  }
  const form = new FormData(); form.append("file", file);
  try { addUpload(await call("/api/upload?kind=" + kind, { method: "POST", body: form })); }
  catch (e) { $("upload-error").textContent = e.message; }
}

function onClip() {
  const c = clip(); if (!c) return;
  $("scrub").max = Math.max(0, (c.duration || 0) - 1 / (c.fps || 24)).toFixed(2);
  showFrame();
}

function showFrame() {
  const c = clip(); if (!c) return;
  const t = parseFloat($("scrub").value);
  $("time").textContent = t.toFixed(2) + " s";
  $("frame").src = api(`/api/frame/${c.id}?t=${t}`);
}

async function preview() {
  $("action-error").textContent = "";
  const c = clip();
  try {
    if (!c) throw new Error("upload a clip first");
    const r = await call("/api/preview", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ clip: c.id, styles: chosenStyles, t: parseFloat($("scrub").value), settings: settings() }) });
    currentPreview = r.id; $("preview-caption").textContent = "preview: starting…";
    if (previewEvents[r.id]) showPreview(previewEvents[r.id]);
  } catch (e) { $("action-error").textContent = e.message; }
}

async function render() {
  $("action-error").textContent = "";
  const c = clip();
  try {
    if (!c) throw new Error("upload a clip first");
    showJob(await call("/api/render", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ clip: c.id, styles: chosenStyles, settings: settings() }) }));
  } catch (e) { $("action-error").textContent = e.message; }
}

function showJob(job) {
  let el = $("job-" + job.id);
  if (!el) {
    el = document.createElement("div"); el.className = "job"; el.id = "job-" + job.id;
    el.innerHTML = `<b class="title"></b> <span class="state"></span><br><progress max="1" value="0"></progress>
      <span class="left"></span><div class="estimate"></div><img class="latest" alt="latest frame" hidden>
      <button class="cancel">Cancel</button><button class="resume">Resume</button>
      <a class="download" hidden>Download</a><p class="error"></p>
      <details><summary>Same render from the command line</summary><pre class="cmd"></pre><pre class="yaml"></pre></details>`;
    el.querySelector(".cancel").onclick = () => call(`/api/jobs/${job.id}/cancel`, { method: "POST" }).then(showJob);
    el.querySelector(".resume").onclick = () => call(`/api/jobs/${job.id}/resume`, { method: "POST" }).then(showJob)
      .catch((e) => { el.querySelector(".error").textContent = e.message; });
    $("jobs").prepend(el);
  }
  const pct = job.total ? job.done / job.total : 0;
  el.querySelector(".title").textContent = `${job.clip} in ${job.styles.join(" + ")} → ${job.output}`;
  el.querySelector(".state").textContent = job.state;
  el.querySelector(".state").dataset.state = job.state;
  el.querySelector("progress").value = pct;
  el.querySelector(".left").textContent = `${Math.floor(100 * pct)}%` + (job.left ? `, ${job.left} left` : "");
  el.querySelector(".estimate").textContent = job.estimate;
  el.querySelector(".error").textContent = job.error;
  el.querySelector(".cmd").textContent = job.command;
  el.querySelector(".yaml").textContent = job.yaml;
  el.querySelector(".cancel").hidden = !["queued", "running"].includes(job.state);
  el.querySelector(".resume").hidden = !["cancelled", "failed"].includes(job.state);
  const dl = el.querySelector(".download");
  dl.hidden = job.state !== "done"; dl.href = api(`/api/jobs/${job.id}/download`);
}

function refreshLatest(jobId) {
  const img = document.querySelector(`#job-${jobId} .latest`);
  if (img) { img.hidden = false; img.src = api(`/api/jobs/${jobId}/latest.png?v=${Date.now()}`); }
}

function listen(since) {
  const es = new EventSource(api("/api/events?since=" + since));
  es.onopen = () => { $("status").textContent = "connected"; };
  es.onerror = () => { $("status").textContent = "reconnecting…"; };
  es.onmessage = (m) => {
    const ev = JSON.parse(m.data);
    if (ev.type === "job") showJob(ev.job);
    else if (ev.type === "frame") refreshLatest(ev.job);
    if (ev.type === "job" && ev.job.state === "done") refreshLatest(ev.job.id);
    else if (ev.type === "upload") addUpload(ev.item);
    else if (ev.type === "removed") removeUpload(ev.id, ev.kind);
    else if (ev.type === "preview") { previewEvents[ev.id] = ev; if (ev.id === currentPreview) showPreview(ev); }
  };
}

function showPreview(ev) {
  if (ev.error) { $("action-error").textContent = ev.error; return; }
  $("preview").src = api(`/api/preview/${ev.id}.png?v=${ev.step}`);
  $("preview-caption").textContent = ev.step < ev.steps ? `preview: step ${ev.step} of ${ev.steps}…` : "preview: done";
  $("preview").dataset.done = ev.step === ev.steps ? "1" : "";
}

$("clip-file").addEventListener("change", (e) => { if (e.target.files[0]) upload("clip", e.target.files[0]); });
$("style-file").addEventListener("change", (e) => { for (const f of e.target.files) upload("style", f); });
$("clip").addEventListener("change", onClip);
$("scrub").addEventListener("input", showFrame);
$("preview-btn").addEventListener("click", preview);
$("render-btn").addEventListener("click", render);
call("/api/state").then((s) => { uploadLimit = s.upload_limit; s.uploads.forEach((u) => addUpload(u, false)); chooseNewest(s.uploads); s.jobs.forEach(showJob); listen(s.seq); })
  .catch((e) => { $("status").textContent = e.message; });
