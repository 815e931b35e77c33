// Plays finished jobs on the spool dashboard in headless Chromium (Debian's,
// through playwright-core) for the systest package's sound test, and
// prints what each player played and heard as one JSON object on stdout.
//
//   node sound.mjs <dashboard URL, #key=<API key>> <job with audio> <silent job>
//
// A finished job's page plays its final MP4; to play the live preview
// (HLS through the bundled hls.js) as it does while a job runs, the
// preview views hide the job's download_url (and video_url) from its
// /status, nothing else.
// The player is started by the dashboard itself (Chromium is told to
// allow autoplay with sound, and not to mute its tabs): the script never
// touches the player but to listen. It listens to what the element plays
// through video.captureStream() and a Web Audio AnalyserNode, the RMS of
// its last 2048 samples every 50 ms with the video's time then, from when
// it plays to its end (a page may capture only media of its own origin:
// the preview, not the final MP4 from MinIO), and reads the element's
// decoded byte counts, its audio tracks, the codecs hls.js found (BUFFER_CODECS),
// the SourceBuffers it made, and every hls.js ERROR event.
import { chromium } from "playwright-core";

const [url, talkJob, silentJob] = process.argv.slice(2);
const seen = { errors: [], failedRequests: [] };
const browser = await chromium.launch({
  executablePath: process.env.SPOOL_CHROMIUM || "/usr/bin/chromium",
  ignoreDefaultArgs: ["--mute-audio"],
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required",
    "--enable-blink-features=AudioVideoTracks"],
});

// hooks records, before any script of the page runs, the SourceBuffers
// made and, for every Hls the page makes, the codecs it buffers and its
// errors (fatal or not).
const hooks = () => {
  const s = (window.__sound = { sourceBuffers: [], codecs: [], hlsErrors: [], hlsPlayers: 0, fragsBuffered: 0 });
  const add = MediaSource.prototype.addSourceBuffer;
  MediaSource.prototype.addSourceBuffer = function (mime) { s.sourceBuffers.push(mime); return add.call(this, mime); };
  let H;
  Object.defineProperty(window, "Hls", {
    configurable: true, enumerable: true, get: () => H,
    set(v) {
      H = v;
      const load = v.prototype.loadSource;
      v.prototype.loadSource = function (u) {
        s.hlsPlayers++;
        this.on(v.Events.BUFFER_CODECS, (_, d) => {
          for (const [k, t] of Object.entries(d)) if (t && t.codec !== undefined) s.codecs.push(`${k} ${t.container || ""} ${t.codec}`);
        });
        this.on(v.Events.FRAG_BUFFERED, () => s.fragsBuffered++);
        this.on(v.Events.ERROR, (_, d) => s.hlsErrors.push(`${d.type} ${d.details}${d.fatal ? " (fatal)" : ""}` +
          (d.error ? ": " + d.error.message : "")));
        return load.call(this, u);
      };
    },
  });
};

// listen waits until the dashboard's player plays, then listens to it to
// its end and reads what it decoded.
const listen = () => new Promise((resolve) => {
  const v = document.querySelector("#preview");
  const out = { rms: [], at: [], from: 0, to: 0, wallFrom: performance.now() };
  let over = false;
  const done = (why) => {
    if (over) return;
    over = true;
    clearInterval(tick);
    clearTimeout(limit);
    const h = (typeof preview !== "undefined" && preview.hls) || null, src = v.currentSrc;
    Object.assign(out, {
      why, to: v.currentTime, wallS: (performance.now() - out.wallFrom) / 1000, paused: v.paused, ended: v.ended,
      muted: v.muted, volume: v.volume, caption: document.querySelector("#preview-caption").textContent,
      src: !src ? "none" : src.startsWith("blob:") ? "blob" : new URL(src).origin === location.origin ? "same origin" : "other origin",
      audioDecodedBytes: v.webkitAudioDecodedByteCount, videoDecodedBytes: v.webkitVideoDecodedByteCount,
      mediaAudioTracks: v.audioTracks ? v.audioTracks.length : -1, hlsAudioTracks: h ? h.audioTracks.length : -1,
      error: v.error && `${v.error.code} ${v.error.message}`, ...window.__sound,
    });
    resolve(out);
  };
  let ctx = null, an = null, buf = null, stream = null;
  const tick = setInterval(() => {
    if (v.error) return done("media error");
    if (!an) {
      if (v.paused || v.currentTime <= 0) return;
      // Playing: tap what the element plays without changing its output
      // (which a page may not do to media of another origin).
      // Where playback began, even if it began before this listener ran
      // (a loaded machine runs the page's autoplay first).
      out.from = v.played.length ? v.played.start(0) : v.currentTime;
      out.wallFrom = performance.now();
      out.sampleRate = 0;
      try {
        stream = v.captureStream();
        out.capturedAudioTracks = stream.getAudioTracks().length;
      } catch (e) {
        out.captureError = String(e);
        out.capturedAudioTracks = -1;
      }
      if (out.capturedAudioTracks > 0) {
        ctx = new AudioContext();
        an = ctx.createAnalyser();
        an.fftSize = 2048;
        buf = new Float32Array(an.fftSize);
        const mute = ctx.createGain();
        mute.gain.value = 0; // the analyser is pulled through it; the element plays as it did
        ctx.createMediaStreamSource(stream).connect(an).connect(mute).connect(ctx.destination);
        out.sampleRate = ctx.sampleRate;
      } else {
        an = "none";
      }
      return;
    }
    if (an !== "none") {
      an.getFloatTimeDomainData(buf);
      let sum = 0;
      for (const x of buf) sum += x * x;
      out.rms.push(Math.sqrt(sum / buf.length));
      out.at.push(v.currentTime);
    }
    if (v.ended) done("ended");
  }, 50);
  const limit = setTimeout(() => done("timeout"), 30_000);
});

// play opens job on the dashboard and listens to its player; asPreview
// hides the job's final video so that the dashboard plays its preview.
const play = async (job, asPreview) => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("pageerror", (e) => seen.errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") seen.errors.push(m.text()); });
  page.on("response", (r) => { if (r.status() >= 400) seen.failedRequests.push(`${r.status()} ${r.request().method()} ${r.url()}`); });
  page.on("requestfailed", (r) => {
    const why = (r.failure() || {}).errorText || "failed";
    if (why !== "net::ERR_ABORTED") seen.failedRequests.push(`${why} ${r.method()} ${r.url()}`);
  });
  await page.addInitScript(hooks);
  if (asPreview) {
    await page.route((u) => u.pathname === `/status/${job}`, async (route) => {
      // The dashboard polls /status: a poll still in flight when the page
      // closes has its response disposed, which is no failure of the test.
      try {
        const r = await route.fetch();
        const j = await r.json();
        delete j.download_url;
        delete j.video_url;
        await route.fulfill({ response: r, json: j });
      } catch (e) {
        if (page.isClosed()) return;
        throw e;
      }
    });
  }
  await page.goto(`${url}&job=${job}`);
  const heard = await page.evaluate(listen);
  await page.close();
  return heard;
};

try {
  seen.talkPreview = await play(talkJob, true);
  seen.silentPreview = await play(silentJob, true);
  seen.talkFinal = await play(talkJob, false);
} catch (e) {
  seen.errors.push(String(e));
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
