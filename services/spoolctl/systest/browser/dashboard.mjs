// Drives the spool dashboard in headless Chromium (Debian's, through
// playwright-core) for the systest package's dashboard test, and prints
// what it saw as one JSON object on stdout.
//
//   node dashboard.mjs <dashboard URL, #key=<API key>> <job id> <screenshot.png>
//
// It says "spool-dashboard: ready" on stderr once the page is open, then
// waits for the job's row, samples its progress bar until the job is
// done, opens the job, checks that the live preview plays (hls.js), then
// that the final video plays, and takes a screenshot. Every sample is one
// snapshot of the page, read in a single evaluate: the page re-renders
// between any two calls, so two reads would be two different moments.
// It records every console error and every failed request (an HTTP error
// status, or a request that failed other than by the page aborting it).
import { chromium } from "playwright-core";

const [url, job, shot] = process.argv.slice(2);
const seen = { jobAppeared: false, bar: [], previewPlayed: false, previewTime: 0, finalPlayed: false, finalTime: 0, errors: [],
  failedRequests: [] };
// Generous: a loaded 2-core machine may run the job for minutes.
const deadline = Date.now() + 300_000;
const left = () => Math.max(1000, deadline - Date.now());

const browser = await chromium.launch({
  executablePath: process.env.SPOOL_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("pageerror", (e) => seen.errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") seen.errors.push(m.text()); });
  page.on("response", (r) => { if (r.status() >= 400) seen.failedRequests.push(`${r.status()} ${r.request().method()} ${r.url()}`); });
  page.on("requestfailed", (r) => {
    const why = (r.failure() || {}).errorText || "failed";
    if (why !== "net::ERR_ABORTED") seen.failedRequests.push(`${why} ${r.method()} ${r.url()}`); // aborted: by the page itself
  });
  await page.goto(url);
  // The test submits the job only now, so that a slow browser start cannot
  // hide the job's progress.
  console.error("spool-dashboard: ready");
  const row = page.locator(`tr[data-id="${job}"]`);
  await row.waitFor({ timeout: left() });
  seen.jobAppeared = true;

  // Open the job at once, so that the preview plays while it runs, and
  // sample the bar's width in the jobs table meanwhile.
  await row.click();
  // sample is one snapshot of the page: the job's row (bar and state) and
  // the player.
  const sample = () => page.evaluate((id) => {
    const tr = document.querySelector(`tr[data-id="${id}"]`);
    const bar = tr && tr.querySelector(".bar > div");
    const v = document.querySelector("#preview");
    return { width: bar ? parseFloat(bar.style.width) : null, state: tr ? tr.children[1].textContent : "",
      t: v.currentTime, paused: v.paused, err: v.error && v.error.message,
      caption: document.querySelector("#preview-caption").textContent };
  }, job);
  const record = (s) => {
    if (s.width !== null && (seen.bar.length === 0 || seen.bar[seen.bar.length - 1] !== s.width)) seen.bar.push(s.width);
    if (s.state) seen.state = s.state;
  };
  const over = (state) => ["succeeded", "failed", "cancelled", "rejected"].includes(state);
  while (Date.now() < deadline) {
    const s = await sample();
    record(s);
    if (s.caption === "live preview" && s.t > 0 && !s.paused) { seen.previewPlayed = true; seen.previewTime = s.t; }
    if (s.err) seen.errors.push("video: " + s.err);
    if (over(s.state)) break;
    await page.waitForTimeout(100);
  }

  // The final video replaces the preview once the job has succeeded.
  while (Date.now() < deadline) {
    const s = await sample();
    if (s.caption === "final video" && s.t > 0.2) { seen.finalPlayed = true; seen.finalTime = s.t; break; }
    if (s.err) { seen.errors.push("final video: " + s.err); break; }
    await page.waitForTimeout(100);
  }
  // One more sample once the job has ended: the row as it stays.
  record(await sample());
  Object.assign(seen, await page.evaluate(() => {
    const segs = [...document.querySelectorAll("#timeline .seg")].map((e) => e.getBoundingClientRect().width);
    return { timelineBlocks: segs.length, widestBlock: Math.max(...segs), narrowestBlock: Math.min(...segs),
      axisTicks: [...document.querySelectorAll("#timeline .axis .tick")].map((e) => e.textContent) };
  }));
  await page.screenshot({ path: shot, fullPage: true });
} catch (e) {
  seen.errors.push(String(e));
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
