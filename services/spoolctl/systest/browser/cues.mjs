// Opens a finished job on the spool dashboard in headless Chromium (Debian's,
// through playwright-core) for the systest package's prompt-marks test, and
// prints what its segment timeline shows of the job's prompts as one JSON
// object on stdout, read in one evaluate (one moment of the page).
//
//   node cues.mjs <dashboard URL, #key=<API key>> <job id>
import { chromium } from "playwright-core";

const [url, job] = process.argv.slice(2);
const seen = { marks: [], cueBars: [], errors: [] };
const browser = await chromium.launch({
  executablePath: process.env.SPOOL_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("pageerror", (e) => seen.errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") seen.errors.push(m.text()); });
  await page.goto(`${url}&job=${job}`);
  await page.locator("#timeline .prompts .cue-mark").first().waitFor({ timeout: 30_000 });
  Object.assign(seen, await page.evaluate(() => {
    const row = document.querySelector("#timeline .prompts").getBoundingClientRect();
    return {
      marks: [...document.querySelectorAll("#timeline .prompts .cue-mark")].map((m) => ({
        text: m.textContent, title: m.title, x: (m.getBoundingClientRect().left - row.left) / row.width })),
      cueBars: [...document.querySelectorAll("#timeline .seg.cue")].map((b) => ({ seg: b.textContent, title: b.title })),
    };
  }));
} catch (e) {
  seen.errors.push(String(e));
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
