// Opens a job on the spool dashboard in headless Chromium (Debian's,
// through playwright-core) for the systest package's inputs test, and
// prints what the page shows of the job's inputs and of its deletion as
// one JSON object on stdout, read in one evaluate (one moment of the page).
//
//   node inputs.mjs <dashboard URL, #key=<API key>> <job id>
import { chromium } from "playwright-core";

const [url, job] = process.argv.slice(2);
const seen = { errors: [], failedRequests: [] };
const browser = await chromium.launch({
  executablePath: process.env.SPOOL_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("pageerror", (e) => seen.errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") seen.errors.push(m.text()); });
  page.on("response", (r) => { if (r.status() >= 400) seen.failedRequests.push(`${r.status()} ${r.request().method()} ${r.url()}`); });
  await page.goto(`${url}&job=${job}`);
  await page.locator("#job-inputs:not([hidden])").waitFor({ timeout: 30_000 });
  await page.locator(`tr[data-id="${job}"] .tag`).waitFor({ timeout: 30_000 });
  Object.assign(seen, await page.evaluate((id) => {
    const row = document.querySelector(`tr[data-id="${id}"]`);
    return {
      inputs: document.querySelector("#job-inputs").textContent,
      uploads: [...document.querySelectorAll("#job-inputs code")].map((c) => c.textContent),
      title: document.querySelector("#job-title").textContent,
      caption: document.querySelector("#preview-caption").textContent,
      rowClass: row.className, rowState: row.children[1].textContent, tag: row.querySelector(".tag").textContent,
    };
  }, job));
} catch (e) {
  seen.errors.push(String(e));
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
