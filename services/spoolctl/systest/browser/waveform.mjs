// Opens two jobs on the spool dashboard in headless Chromium (Debian's,
// through playwright-core) for the systest package's waveform test: one
// with audio and a waveform, one silent. It prints what the page drew
// under each job's segment timeline as one JSON object on stdout, each
// job's view read in one evaluate (one moment of the page).
//
//   node waveform.mjs <dashboard URL, #key=<API key>> <job with audio> <silent job>
import { chromium } from "playwright-core";

const [url, audioJob, silentJob] = process.argv.slice(2);
const seen = { errors: [], failedRequests: [], waveformRequests: [] };
const browser = await chromium.launch({
  executablePath: process.env.SPOOL_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const open = async (job) => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("pageerror", (e) => seen.errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") seen.errors.push(m.text()); });
  page.on("response", (r) => { if (r.status() >= 400) seen.failedRequests.push(`${r.status()} ${r.request().method()} ${r.url()}`); });
  page.on("request", (r) => {
    const u = new URL(r.url());
    if (u.pathname.endsWith("/waveform")) seen.waveformRequests.push(u.pathname + u.search);
  });
  await page.goto(`${url}&job=${job}`);
  await page.waitForFunction((id) => document.querySelector("#job-title").textContent.startsWith(id + " "), job, { timeout: 30_000 });
  return page;
};
try {
  // The job with audio: wait until its waveform is painted, then read the
  // canvas column by column: how tall the bars are, in device pixels.
  let page = await open(audioJob);
  await page.waitForFunction(() => {
    const c = document.querySelector("#timeline canvas.waveform");
    if (!c || !c.width) return false;
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) return true;
    return false;
  }, null, { timeout: 30_000 });
  seen.audio = await page.evaluate(() => {
    const c = document.querySelector("#timeline canvas.waveform"), r = c.getBoundingClientRect();
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    const heights = [];
    let painted = 0;
    for (let x = 0; x < c.width; x++) {
      let h = 0;
      for (let y = 0; y < c.height; y++) if (d[(y * c.width + x) * 4 + 3] > 0) h++;
      heights.push(h / c.height);
      painted += h;
    }
    const rect = (e) => { const b = e.getBoundingClientRect(); return { text: e.textContent, left: b.left, right: b.right }; };
    return {
      painted, heights, canvasLeft: r.left, canvasRight: r.right, canvasCSSWidth: r.width,
      pieces: [...document.querySelectorAll("#timeline .pieces .piece")].map(rect),
      ticks: [...document.querySelectorAll("#timeline .vaxis .vtick")].map((e) => e.textContent),
      muted: document.querySelector("#preview").muted, controls: document.querySelector("#preview").controls,
    };
  });
  await page.close();
  // The silent job: no sound rows, no canvas.
  page = await open(silentJob);
  seen.silent = await page.evaluate(() => ({
    canvases: document.querySelectorAll("#timeline canvas").length,
    soundRows: document.querySelectorAll("#timeline .sound, #timeline .pieces").length,
    timeline: document.querySelector("#timeline").textContent,
  }));
  await page.close();
} catch (e) {
  seen.errors.push(String(e));
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
