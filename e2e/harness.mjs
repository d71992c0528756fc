// What every browser test file shares: Chromium from Debian's package
// (CHROMIUM, default /usr/bin/chromium), a page whose JavaScript errors
// are collected, and the test and expect helpers with their tally.
import { chromium } from "playwright-core";

export async function launch() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox"],
  });
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console error: ${m.text()}`);
  });
  return { browser, page, errors };
}

let failed = 0;

export async function test(name, body) {
  try {
    await body();
    console.log(`ok    ${name}`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL  ${name}\n      ${e.message}`);
  }
}

export function expect(condition, message) {
  if (!condition) throw new Error(message);
}

// Prints the tally and exits: 0 when every test passed.
export function finish(what) {
  console.log(`\n${failed === 0 ? `all ${what} tests passed` : `${failed} ${what} test(s) failed`}`);
  process.exit(failed === 0 ? 0 : 1);
}
