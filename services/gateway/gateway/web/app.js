// The spool dashboard: jobs with live progress, and per job the media it
// is made from, its segment timeline (which worker and GPU made each
// segment, and when; for a job with audio, its segments over the waveform
// of their sound), the live preview while it runs and the final video,
// both with their sound.
// A job whose objects were deleted is marked, its lineage still shown. It uses only the gateway's
// API; the preview plays the HLS playlist through hls.js.
//
// The API wants a key. The dashboard takes it from its URL's fragment,
// #key=<key>[&job=<id>] (spoolctl dev prints such a link; a fragment is
// sent to no server), or from the key field, keeps it for the tab in
// sessionStorage, takes it off the address bar, and never shows it. The
// players get signed URLs from /status and need no key.
"use strict";

const $ = (s) => document.querySelector(s);
const keyInput = $("#key");
localStorage.removeItem("spool.token"); // where an older dashboard kept a token
const apiKey = () => sessionStorage.getItem("spool.key") || "";
const showKeyState = () => { keyInput.placeholder = apiKey() ? "key set: paste another to change it" : "paste an API key"; };
keyInput.addEventListener("change", () => {
  if (keyInput.value.trim()) sessionStorage.setItem("spool.key", keyInput.value.trim());
  keyInput.value = "";
  showKeyState();
  refreshJobs();
  refreshJob();
});

// fragment reads #key=...&job=... (or the older #<job>): it keeps the key
// and returns the job to open, and leaves only the job in the address.
function fragment() {
  const raw = location.hash.slice(1);
  if (!raw.includes("=")) return decodeURIComponent(raw);
  const f = new URLSearchParams(raw);
  if (f.get("key")) sessionStorage.setItem("spool.key", f.get("key"));
  const job = f.get("job") || "";
  history.replaceState(null, "", location.pathname + location.search + (job ? "#" + encodeURIComponent(job) : ""));
  return job;
}

async function api(path, as = "json") {
  const headers = apiKey() ? { Authorization: "Bearer " + apiKey() } : {};
  const r = await fetch(path, { headers });
  if (!r.ok) {
    let msg = r.status + " " + r.statusText, code = "";
    try { const e = await r.json(); msg = e.message || msg; code = e.code || ""; } catch (_) {}
    const err = new Error(msg); err.status = r.status; err.code = code; throw err;
  }
  return as === "json" ? r.json() : as === "text" ? r.text() : r.arrayBuffer();
}

const terminal = (s) => ["succeeded", "failed", "cancelled", "rejected"].includes(s);
let selected = null;

function bar(p) {
  return `<div class="bar"><div style="width:${Math.round(100 * p)}%"></div></div>`;
}

async function refreshHealth() {
  try {
    const h = await fetch("/health").then((r) => r.json());
    $("#health").textContent = h.ok ? "NATS, Postgres and MinIO up" :
      "down: " + Object.entries(h.checks).filter(([, v]) => v !== "ok").map(([k, v]) => `${k} (${v})`).join(", ");
  } catch (e) { $("#health").textContent = "the gateway is unreachable"; }
}

async function refreshJobs() {
  let list;
  try { list = await api("/jobs?limit=50"); } catch (e) { $("#jobs-empty").hidden = false; $("#jobs-empty").textContent = plain(e); return; }
  const body = $("#jobs tbody");
  body.innerHTML = "";
  $("#jobs-empty").hidden = list.jobs.length > 0;
  for (const j of list.jobs) {
    const tr = document.createElement("tr");
    tr.className = `job state-${j.state}` + (j.id === selected ? " selected" : "") + (j.deleted_at ? " deleted" : "");
    tr.dataset.id = j.id;
    const mark = j.deleted_at ? `<span class="tag" title="its video and files were deleted at ${new Date(j.deleted_at).toLocaleString()}">deleted</span>` : "";
    tr.innerHTML = `<td>${j.id}${mark}</td><td>${j.state}</td><td>${bar(j.progress)}</td><td>${j.segments_done}/${j.segments_total || "∞"}</td>`;
    tr.addEventListener("click", () => select(j.id));
    body.appendChild(tr);
  }
}

// plain turns an API error into words for a person; "not yet" (404
// not_ready: the next refresh will find it) is no error to show.
function plain(e) {
  if (e.code === "not_ready") return "";
  if (e.status === 401) return "The gateway wants an API key: paste one in the key field above (spoolctl dev prints a link with one).";
  if (e.status === 404) return "No such job.";
  return "Could not reach spool: " + e.message;
}

async function select(id) {
  if (selected !== id) { selected = id; preview.reset(); }
  $("#job-pane").hidden = false;
  refreshJob();
}

async function refreshJob() {
  if (!selected) return;
  const id = selected;
  let j, lin;
  try { [j, lin] = await Promise.all([api("/status/" + id), api(`/jobs/${id}/lineage`)]); }
  catch (e) { $("#job-error").textContent = plain(e); $("#job-error").hidden = !plain(e); return; }
  $("#job-title").textContent = `${j.id} · ${j.state}${j.deleted_at ? " · deleted" : ""} · ${j.width}×${j.height} · ${j.frames}${j.frames_total ? ` of ${j.frames_total}` : j.live ? " (live)" : ""} frames at ${j.fps} fps`;
  const err = $("#job-error");
  err.hidden = !j.error_message;
  err.textContent = j.error_message ? `This job ${j.state === "rejected" ? "was rejected" : "failed"}: ${j.error_message}` : "";
  inputs(j);
  timeline(lin.segments, j);
  segmentsTable(lin.segments);
  if (j.deleted_at) preview.gone(j.deleted_at);
  else if (j.state === "succeeded" && j.download_url) preview.final(j.download_url);
  else if (j.preview_url) preview.follow(j.preview_url);
}

// inputs says what media the job is made from: the uploads its spec names
// (image, video to extend, audio, a talking head's reference), how an
// image, video or reference is fitted to the frame, and whether the video
// starts with the input.
function inputs(j) {
  const el = $("#job-inputs"), i = j.inputs;
  el.hidden = !i;
  el.innerHTML = "";
  if (!i) return;
  el.append("Made from ");
  const parts = [];
  if (i.image) parts.push(["image", i.image, `fitted by ${i.fit}`]);
  if (i.video) parts.push(["video", i.video, `fitted by ${i.fit}` + (i.include_input ? ", which the output starts with" : ", extended")]);
  if (i.audio) parts.push(["audio", i.audio, ""]);
  if (i.reference) parts.push(["reference", i.reference, `fitted by ${i.fit}`]);
  parts.forEach(([role, id, how], n) => {
    if (n > 0) el.append(n === parts.length - 1 ? " and " : ", ");
    const code = document.createElement("code");
    code.textContent = id;
    code.title = `upload ${id}`;
    el.append(`${role} `, code);
    if (how) el.append(` (${how})`);
  });
  el.append(".");
}

function segmentsTable(segs) {
  const body = $("#segments tbody");
  body.innerHTML = "";
  for (const s of segs) {
    const a = s.attempts.find((x) => x.Attempt === s.committed_attempt) || s.attempts[s.attempts.length - 1] || {};
    const t = a.Timings || {}, w = a.Worker || {};
    const tr = document.createElement("tr");
    tr.innerHTML = `<td>${s.index}</td><td>${s.frames}</td><td>${s.attempts.map((x) => x.Outcome).join(" → ") || s.state}</td>` +
      `<td>${w.WorkerID || ""}</td><td>${w.GPUName || (w.WorkerID ? "cpu" : "")}</td>` +
      `<td>${t.DenoiseMS || 0} ms</td><td>${t.DecodeMS || 0} ms</td><td>${t.EncodeMS || 0} ms</td><td>${t.UploadMS || 0} ms</td>`;
    body.appendChild(tr);
  }
}

// timeline draws each attempt as a bar on its worker's lane, from its start
// to its end; job is the job's status, whose cues say where each prompt of
// its timeline took over (see promptMarks).
function timeline(segs, job) {
  const el = $("#timeline");
  const bars = [];
  for (const s of segs) for (const a of s.attempts) {
    if (!a.StartedAt) continue;
    const start = Date.parse(a.StartedAt), end = a.FinishedAt ? Date.parse(a.FinishedAt) : Date.now();
    bars.push({ seg: s.index, lane: (a.Worker && a.Worker.WorkerID) || "?", gpu: a.Worker && a.Worker.GPUName, start, end, outcome: a.Outcome });
  }
  el.innerHTML = "";
  if (!bars.length) {
    el.innerHTML = `<p class="muted">No segment has started yet.</p>`;
    soundRows(el, segs, job);
    return;
  }
  const t0 = Math.min(...bars.map((b) => b.start)), t1 = Math.max(...bars.map((b) => b.end)), span = Math.max(t1 - t0, 1);
  const lanes = [...new Set(bars.map((b) => b.lane))].sort();
  // The segments where a new prompt begins (the first prompt's, segment 0,
  // is not a change).
  const starts = new Map(((job && job.cues) || []).filter((c) => c.segment > 0).map((c) => [c.segment, c]));
  // Lanes leave 9rem for the worker's name and 1rem at the right for the
  // label of a short last bar.
  const x = (t) => `calc(9rem + (100% - 10rem) * ${(t - t0) / span})`;
  const w = (d) => `calc((100% - 10rem) * ${Math.max(d / span, 0.005)})`;
  for (const lane of lanes) {
    const div = document.createElement("div");
    div.className = "lane";
    const gpu = bars.find((b) => b.lane === lane).gpu;
    div.innerHTML = `<span class="name">${lane}${gpu ? " · " + gpu : ""}</span>`;
    for (const b of bars.filter((x) => x.lane === lane)) {
      const s = document.createElement("div");
      s.className = "seg";
      s.style.left = x(b.start);
      s.style.width = w(b.end - b.start);
      s.title = `segment ${b.seg}: ${b.outcome}, ${((b.end - b.start) / 1000).toFixed(1)} s from ${new Date(b.start).toLocaleTimeString()}`;
      const cue = starts.get(b.seg);
      if (cue) {
        s.classList.add("cue");
        s.title += ` · ${cueText(cue)}`;
      }
      s.textContent = b.seg;
      if (b.outcome !== "done") s.style.background = "#d6a045";
      div.appendChild(s);
    }
    el.appendChild(div);
  }
  // The time axis: seconds since the first segment started, and its clock time.
  const axis = document.createElement("div");
  axis.className = "axis";
  axis.innerHTML = `<span class="name">${new Date(t0).toLocaleTimeString()}</span>`;
  for (const f of [0, 0.25, 0.5, 0.75, 1]) {
    const tick = document.createElement("span");
    tick.className = f === 1 ? "tick end" : "tick";
    tick.style.left = x(t0 + f * span);
    tick.textContent = `${((f * span) / 1000).toFixed(1)} s`;
    axis.appendChild(tick);
  }
  el.appendChild(axis);
  promptMarks(el, job);
  soundRows(el, segs, job);
}

// cueText says where a cue of the timeline took over, and where it asked to.
function cueText(c) {
  return `prompt “${c.prompt}” from ${c.landed_s.toFixed(2)} s (frame ${c.landed_frame}, segment ${c.segment}); ` +
    `asked for ${c.requested_s.toFixed(2)} s (frame ${c.requested_frame})`;
}

// promptMarks adds a row on the video's own time axis (seconds of video, not
// of work) with a mark where each prompt of a multi-prompt timeline takes
// over: on a segment boundary, the one nearest to the time the cue asked
// for. Its segment's bar above carries the same mark.
function promptMarks(el, job) {
  const cues = (job && job.cues) || [];
  if (cues.length < 2) return;
  const last = cues[cues.length - 1].landed_s;
  const span = job.frames ? job.frames / job.fps : Math.max(last * 1.2, 1); // a live job: up to past its last cue
  const row = document.createElement("div");
  row.className = "prompts";
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = "prompts (video time)";
  row.appendChild(name);
  for (const c of cues) {
    const m = document.createElement("span");
    m.className = "cue-mark";
    m.style.left = `calc(9rem + (100% - 10rem) * ${Math.min(c.landed_s / span, 1)})`;
    m.textContent = `${c.landed_s.toFixed(2)} s`;
    m.title = cueText(c);
    row.appendChild(m);
  }
  el.appendChild(row);
}

// soundRows adds, for a job with audio, rows on the video's own time axis
// (seconds of video, not of work, as the prompt marks): each segment over
// the frames it adds, then the waveform of the job's audio, then the axis,
// so that a segment sits over its sound. The waveform is drawn once intake
// has made it (job.audio.waveform).
function soundRows(el, segs, job) {
  const a = job && job.audio;
  const span = a && (a.duration_s || job.frames / job.fps);
  if (!(span > 0)) return;
  const at = (s) => `calc(9rem + (100% - 10rem) * ${Math.min(Math.max(s / span, 0), 1)})`;
  const row = (cls, name) => {
    const r = document.createElement("div");
    r.className = cls;
    r.innerHTML = `<span class="name">${name}</span>`;
    el.appendChild(r);
    return r;
  };
  const pieces = row("pieces", "segments (video time)");
  for (const s of segs) {
    const from = s.first_frame + (s.overlap || 0), to = s.first_frame + s.frames;
    if (to <= from) continue;
    const p = document.createElement("div");
    p.className = "piece" + (s.state === "done" ? "" : " pending");
    p.style.left = at(from / job.fps);
    p.style.width = `calc((100% - 10rem) * ${(to - from) / job.fps / span})`;
    p.textContent = s.index;
    p.title = `segment ${s.index}: frames ${from}–${to - 1}, ${(from / job.fps).toFixed(2)}–${(to / job.fps).toFixed(2)} s of video (${s.state})`;
    pieces.appendChild(p);
  }
  const sound = row("sound", "sound");
  sound.title = `audio ${a.upload}`;
  if (a.waveform) {
    const c = document.createElement("canvas");
    c.className = "waveform";
    c.dataset.job = job.id;
    sound.appendChild(c);
    waveform.show(c, a.waveform);
  } else {
    const note = terminal(job.state) ? "no waveform: the job ended before its audio was taken in" : "the waveform comes once the audio is taken in";
    sound.insertAdjacentHTML("beforeend", `<span class="wave-note">${note}</span>`);
  }
  const axis = row("vaxis", "video time");
  for (const f of [0, 0.25, 0.5, 0.75, 1]) {
    const tick = document.createElement("span");
    tick.className = f === 1 ? "vtick end" : "vtick";
    tick.style.left = at(f * span);
    tick.textContent = `${(f * span).toFixed(1)} s`;
    axis.appendChild(tick);
  }
}

// waveform draws a job's waveform on a canvas: as many bars as the canvas
// is wide in CSS pixels, each the loudest sound of its slice of the video,
// from GET /jobs/{id}/waveform?buckets=<that width>. The timeline is
// redrawn every refresh, so the peaks are kept per URL and width, and a
// new canvas is painted at once from them.
const waveform = {
  key: "", peaks: null,
  show(canvas, url) {
    const width = Math.round(canvas.getBoundingClientRect().width);
    if (width < 1) return;
    const key = `${url}?buckets=${Math.min(width, 10000)}`;
    if (key === this.key) {
      if (this.peaks) this.paint(canvas, this.peaks);
      return;
    }
    this.key = key;
    this.peaks = null;
    api(key).then((w) => {
      if (this.key !== key) return;
      this.peaks = w.peaks;
      const now = document.querySelector(`#timeline canvas.waveform[data-job="${canvas.dataset.job}"]`);
      if (now) this.paint(now, w.peaks);
    }, () => { if (this.key === key) this.key = ""; }); // asked again at the next refresh
  },
  paint(canvas, peaks) {
    const r = canvas.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(r.width * dpr);
    canvas.height = Math.round(r.height * dpr);
    const g = canvas.getContext("2d");
    g.setTransform(dpr * r.width / peaks.length, 0, 0, dpr, 0, 0); // one unit a bucket across, a CSS pixel down
    g.fillStyle = "#5a6478";
    const mid = r.height / 2;
    peaks.forEach((p, i) => {
      const h = Math.max(p * r.height, 0.5);
      g.fillRect(i, mid - h / 2, 1, h);
    });
  },
};

// preview plays the job's HLS preview while it runs, through hls.js (the
// maintained player bundled at build time), and the final MP4 once there is
// one. Browsers that play HLS themselves (Safari) get the playlist directly.
// Both are signed URLs, which expire: each /status hands out fresh ones, and
// a player keeps its own until it nears its end.
const preview = {
  video: $("#preview"), hls: null, url: null, exp: 0, finalURL: null,
  caption(text) { $("#preview-caption").textContent = text; },
  // gone shows that the job's video was deleted (its lineage stays).
  gone(at) {
    if (this.finalURL === "deleted") return;
    this.reset();
    this.finalURL = "deleted";
    this.caption(`deleted at ${new Date(at).toLocaleString()}: its video and preview are gone`);
  },
  // start plays the video with its sound. A browser that allows no autoplay
  // with sound leaves it to the viewer's ▶ (the controls), and says so.
  start(what) {
    this.video.play().catch((e) => {
      if (e && e.name === "NotAllowedError") this.caption(`${what}: press ▶ to play it with its sound`);
    });
  },
  reset() {
    if (this.hls) this.hls.destroy();
    this.hls = null; this.url = null; this.exp = 0; this.finalURL = null;
    this.video.removeAttribute("src"); this.video.load();
    this.caption("live preview");
  },
  final(url) {
    if (this.finalURL) return;
    if (this.hls) { this.hls.destroy(); this.hls = null; }
    this.finalURL = url;
    this.video.src = url;
    this.caption("final video");
    this.start("final video");
  },
  follow(playlistURL) {
    const u = new URL(playlistURL, location.href), exp = Number(u.searchParams.get("exp")) || 0;
    // The same playlist, signed again: keep playing, unless the signature
    // the player holds is about to expire.
    if (this.finalURL || (this.url === u.pathname && this.exp * 1000 - Date.now() > 120000)) return;
    if (this.hls) { this.hls.destroy(); this.hls = null; }
    this.url = u.pathname;
    this.exp = exp;
    if (window.Hls && Hls.isSupported()) {
      const hls = new Hls();
      hls.on(Hls.Events.MANIFEST_PARSED, () => this.start("live preview"));
      hls.on(Hls.Events.ERROR, (_, d) => {
        if (!d.fatal) return;
        this.caption("preview: " + (d.response && d.response.code === 403 ? "its signed URL expired" : d.details));
        if (d.type === Hls.ErrorTypes.NETWORK_ERROR) hls.startLoad();
        else if (d.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
      });
      hls.loadSource(playlistURL);
      hls.attachMedia(this.video);
      this.hls = hls;
    } else if (this.video.canPlayType("application/vnd.apple.mpegurl")) {
      this.video.src = playlistURL;
      this.start("live preview");
    } else {
      this.caption(window.Hls ? "this browser cannot play the preview (no Media Source Extensions)"
        : "the preview player is not in this build: run make build");
    }
  },
};

const fromHash = fragment();
showKeyState();
refreshHealth();
refreshJobs();
setInterval(refreshHealth, 10000);
setInterval(refreshJobs, 1000);
setInterval(refreshJob, 1500);
if (fromHash) select(fromHash);
