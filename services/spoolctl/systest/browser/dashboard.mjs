// Drives the spool dashboard in headless Chromium (Debian's, through
// playwright-core) for the systest package's dashboard test, and prints
// what it saw as one JSON object on stdout.
//
//   node dashboard.mjs <dashboard URL> <job id> <screenshot.png>
//
// It says "spool-dashboard: ready" on stderr once the page is open, then
// waits for the job's row, samples its progress bar until the job is
// done, opens the job, checks that the live preview plays (hls.js), then
// that the final video plays, and takes a screenshot.
import { chromium } from "playwright-core";

const [url, job, shot] = process.argv.slice(2);
const seen = { jobAppeared: false, bar: [], previewPlayed: false, previewTime: 0, finalPlayed: false, finalTime: 0, errors: [] };
const deadline = Date.now() + 120_000;
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
  const video = page.locator("#preview");
  const playing = () => video.evaluate((v) => ({ t: v.currentTime, paused: v.paused, ready: v.readyState,
    src: v.currentSrc, err: v.error && v.error.message, caption: document.querySelector("#preview-caption").textContent }));
  let state = "";
  while (Date.now() < deadline) {
    const width = await page.locator(`tr[data-id="${job}"] .bar > div`).evaluate((d) => parseFloat(d.style.width));
    if (seen.bar.length === 0 || seen.bar[seen.bar.length - 1] !== width) seen.bar.push(width);
    state = await page.locator(`tr[data-id="${job}"] td:nth-child(2)`).textContent();
    const v = await playing();
    if (v.caption === "live preview" && v.t > 0 && !v.paused) { seen.previewPlayed = true; seen.previewTime = v.t; }
    if (v.err) seen.errors.push("video: " + v.err);
    if (["succeeded", "failed", "cancelled", "rejected"].includes(state)) break;
    await page.waitForTimeout(100);
  }
  seen.state = state;

  // The final video replaces the preview once the job has succeeded.
  while (Date.now() < deadline) {
    const v = await playing();
    if (v.caption === "final video" && v.t > 0.2) { seen.finalPlayed = true; seen.finalTime = v.t; break; }
    if (v.err) { seen.errors.push("final video: " + v.err); break; }
    await page.waitForTimeout(100);
  }
  seen.timelineBlocks = await page.locator("#timeline .seg").count();
  seen.axisTicks = await page.locator("#timeline .axis .tick").allTextContents();
  seen.widestBlock = Math.max(...await page.locator("#timeline .seg").evaluateAll((els) => els.map((e) => e.getBoundingClientRect().width)));
  seen.narrowestBlock = Math.min(...await page.locator("#timeline .seg").evaluateAll((els) => els.map((e) => e.getBoundingClientRect().width)));
  await page.screenshot({ path: shot, fullPage: true });
} catch (e) {
  seen.errors.push(String(e));
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
