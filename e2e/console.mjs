// Browser tests of the live console of `mote up`: each is a flow of an
// operator, run in Debian's Chromium (CHROMIUM, default /usr/bin/chromium)
// against `mote up APP` started here on free ports. Any JavaScript error
// on a page fails the run. Screenshots go to the folder given third.
//
//   node e2e/console.mjs MOTE APP SHOTS
import { launch, test, expect, finish } from "./harness.mjs";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { mkdirSync } from "node:fs";
import { resolve, join } from "node:path";

const [moteArg, appArg, shotsArg] = process.argv.slice(2);
if (!moteArg || !appArg || !shotsArg) {
  console.error("usage: node e2e/console.mjs MOTE APP SHOTS");
  process.exit(2);
}
const shots = resolve(shotsArg);
mkdirSync(shots, { recursive: true });

// Start the host and read its two addresses from its startup lines.
const up = spawn(resolve(moteArg), ["up", appArg, "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"], {
  stdio: ["ignore", "pipe", "inherit"],
});
const { admin, publicAddr } = await new Promise((done, fail) => {
  let admin = null;
  const lines = createInterface({ input: up.stdout });
  lines.on("line", (line) => {
    const a = line.match(/^admin on http:\/\/(\S+)/);
    if (a) admin = a[1];
    const p = line.match(/^listening on http:\/\/(\S+)/);
    if (p) done({ admin, publicAddr: p[1] });
  });
  up.on("exit", (code) => fail(new Error(`mote up exited with ${code} before listening`)));
  setTimeout(() => fail(new Error("mote up did not listen within 10 minutes")), 600_000);
});
const console_ = `http://${admin}/console/`;

const { browser, page, errors } = await launch();
page.on("response", (r) => {
  if (r.status() >= 400 && !r.url().includes("/api/try/")) errors.push(`${r.status()} for ${r.url()}`);
});

async function json(url, init) {
  const response = await fetch(url, init);
  return { status: response.status, body: await response.json() };
}
const checkoutExample = {
  items: [{ sku: "MUG-001", unit_cents: 1299, qty: 2 }],
  country: "NL",
  weight_grams: 800,
};

await test("the console's index lists every service with live figures", async () => {
  const catalog = await json(`http://${admin}/v1/services`);
  const expected = catalog.body.services.map((s) => s.name).sort();
  for (let i = 0; i < 3; i += 1) {
    const call = await json(`http://${publicAddr}/v1/shop.checkout`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(checkoutExample),
    });
    expect(call.status === 200, `a call of shop.checkout answered ${call.status}`);
  }
  await page.goto(console_);
  const names = await page.locator("#services tbody tr td:first-child").allInnerTexts();
  expect(
    JSON.stringify(names.map((n) => n.trim()).sort()) === JSON.stringify(expected),
    `listed ${names}, served ${expected}`,
  );
  const rate = page.locator('td[data-live="rate"][data-of="shop.checkout"]');
  await page.waitForFunction(
    () => {
      const cell = document.querySelector('td[data-live="p50"][data-of="shop.checkout"]');
      return cell && cell.textContent.includes("ms");
    },
    null,
    { timeout: 10_000 },
  );
  expect(Number(await rate.innerText()) > 0, "shop.checkout shows its calls per second");
  await page.screenshot({ path: join(shots, "console-index.png"), fullPage: true });
});

await test("try it on shop.checkout shows the answer and the trace of its steps", async () => {
  await page.goto(`${console_}services/shop.checkout.html`);
  const items = page.locator('[data-field="items"]');
  expect((await items.inputValue()).includes("MUG-001"), "the form holds the first example");
  await page.locator("#try-form button[type=submit]").click();
  await page.locator("#try-result").waitFor({ state: "visible" });
  expect((await page.locator("#try-status").innerText()) === "200", "the call succeeded");
  const body = JSON.parse(await page.locator("#try-body").innerText());
  expect(body.gross_cents === 3739, `answer ${JSON.stringify(body)}`);
  const spans = await page.locator("#try-trace .span-name").allInnerTexts();
  expect(spans[0].includes("shop.checkout"), `trace starts with the call: ${spans}`);
  for (const step of ["net → cart.total", "vat → tax.vat@1", "ship → shipping.quote"]) {
    expect(spans.some((s) => s.includes(step)), `the trace shows ${step}: ${spans}`);
  }
  await page.screenshot({ path: join(shots, "console-service.png"), fullPage: true });
});

await test("a declared error shows its problem and lands among the last failures", async () => {
  await page.goto(`${console_}services/shop.checkout.html`);
  await page.locator('[data-field="items"]').fill("[]");
  await page.locator("#try-form button[type=submit]").click();
  await page.waitForFunction(() => document.getElementById("try-status").textContent === "422");
  const problem = JSON.parse(await page.locator("#try-body").innerText());
  expect(problem.code === "empty_cart", `problem ${JSON.stringify(problem)}`);
  const callId = await page.locator("#try-call-id").innerText();
  expect(problem.call_id === callId, "the problem carries the call id shown");
  await page.waitForFunction(
    (id) => document.getElementById("failures").innerText.includes(id),
    callId,
    { timeout: 10_000 },
  );
  const failures = await page.locator("#failures").innerText();
  expect(failures.includes("empty_cart"), `last failures: ${failures}`);
});

await test("the public address serves no console", async () => {
  for (const path of ["/console/", "/console/api/live"]) {
    const response = await fetch(`http://${publicAddr}${path}`);
    expect(response.status === 404, `${path} answered ${response.status} on the public address`);
  }
});

await test("no JavaScript error on any console page", async () => {
  const catalog = await json(`http://${admin}/v1/services`);
  for (const service of catalog.body.services) {
    await page.goto(`${console_}services/${service.name}.html`);
  }
  expect(errors.length === 0, errors.join("\n"));
});

await browser.close();
up.kill("SIGINT");
finish("console");
