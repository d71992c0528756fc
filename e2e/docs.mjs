// Browser tests of a `mote docs` site: each is a flow of a user, run in
// Debian's Chromium (CHROMIUM, default /usr/bin/chromium). Any JavaScript
// error on a page fails the run. Screenshots of the index and a service
// page go to the folder given second.
//
//   node e2e/docs.mjs SITE SHOTS
import { launch, test, expect, finish } from "./harness.mjs";
import { readdirSync, mkdirSync } from "node:fs";
import { resolve, join } from "node:path";
import { pathToFileURL } from "node:url";

const [siteArg, shotsArg] = process.argv.slice(2);
if (!siteArg || !shotsArg) {
  console.error("usage: node e2e/docs.mjs SITE SHOTS");
  process.exit(2);
}
const site = resolve(siteArg);
const shots = resolve(shotsArg);
mkdirSync(shots, { recursive: true });
const url = (path) => pathToFileURL(join(site, path)).href;
const services = readdirSync(join(site, "services"))
  .filter((f) => f.endsWith(".html"))
  .map((f) => f.slice(0, -".html".length))
  .sort();

const { browser, page, errors } = await launch();

await test("the index lists every service", async () => {
  await page.goto(url("index.html"));
  const names = await page.locator("#services tbody tr td:first-child").allInnerTexts();
  expect(
    JSON.stringify(names.map((n) => n.trim()).sort()) === JSON.stringify(services),
    `listed ${names}, pages ${services}`,
  );
  await page.screenshot({ path: join(shots, "docs-index.png"), fullPage: true });
});

await test("search finds a service by name and by summary", async () => {
  await page.goto(url("index.html"));
  const search = page.locator("#search");
  expect(await search.isVisible(), "the search box shows once its script runs");
  await search.fill("tax.vat");
  let shown = await page.locator("#services tbody tr:visible td:first-child").allInnerTexts();
  expect(
    JSON.stringify(shown.map((s) => s.trim()).sort()) === JSON.stringify(["tax.vat@1", "tax.vat@2"]),
    `"tax.vat" shows ${shown}`,
  );
  await search.fill("tax.vat@1");
  shown = await page.locator("#services tbody tr:visible td:first-child").allInnerTexts();
  expect(shown.length === 1 && shown[0].trim() === "tax.vat@1", `"tax.vat@1" shows ${shown}`);
  await search.fill("shipping cost");
  shown = await page.locator("#services tbody tr:visible td:first-child").allInnerTexts();
  expect(shown.map((s) => s.trim()).includes("shipping.quote"), `"shipping cost" shows ${shown}`);
  await search.fill("no such thing at all");
  expect(await page.locator("#no-match").isVisible(), "an empty result says so");
});

await test("the graph's nodes link to the service pages", async () => {
  await page.goto(url("index.html"));
  await page.locator('svg.graph a[href="services/tax.vat@1.html"]').click();
  expect(page.url().endsWith("/services/tax.vat@1.html"), `landed on ${page.url()}`);
  const title = await page.locator("h1").innerText();
  expect(title.includes("tax.vat"), `heading ${title}`);
});

await test("a service page shows its schema fields and errors", async () => {
  await page.goto(url("services/tax.vat@1.html"));
  const input = await page.locator("#input table").innerText();
  expect(input.includes("net_cents") && input.includes("country"), `input table: ${input}`);
  const errorTable = await page.locator("#errors table").innerText();
  expect(errorTable.includes("zero_amount") && errorTable.includes("422"), `errors: ${errorTable}`);
  await page.screenshot({ path: join(shots, "docs-service.png"), fullPage: true });
});

await test("pages link to their callers and callees", async () => {
  await page.goto(url("services/tax.vat@1.html"));
  await page.locator('#neighbours a[href="shop.checkout.html"]').click();
  const title = await page.locator("h1").innerText();
  expect(title.includes("shop.checkout"), `heading ${title}`);
  const flow = await page.locator("#flow").innerText();
  expect(flow.includes("tax.vat"), "the flow names its steps' services");
});

await test("no JavaScript error on any page", async () => {
  for (const name of services) {
    await page.goto(url(`services/${name}.html`));
  }
  expect(errors.length === 0, errors.join("\n"));
});

await browser.close();
finish("browser");
