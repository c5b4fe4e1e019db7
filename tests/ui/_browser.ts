/**
 * A real headless Chromium for the UI tests (Debian's `chromium`, installed by `.ci/run`),
 * driven by puppeteer-core, which never downloads a browser. Screenshots go to
 * `tests/ui/artifacts/` (gitignored); with `HEDDLE_UPDATE_SCREENSHOTS=1` the ones
 * docs/ui.md shows are also written to `docs/ui/`. Without Chromium the tests are ignored
 * or, under `HEDDLE_REQUIRE_SERVICES=1`, fail (`tests/_tools.ts`).
 */
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { toolTest } from "../_tools.ts";

const CHROMIUM = Deno.env.get("HEDDLE_CHROMIUM") ?? "/usr/bin/chromium";
const ARTIFACTS = new URL("./artifacts/", import.meta.url).pathname;
const DOCS = new URL("../../docs/ui/", import.meta.url).pathname;

/** A test that needs Chromium (see `toolTest`), given a fresh browser it closes after. */
export function browserTest(name: string, fn: (browser: Browser) => Promise<void>): void {
  toolTest(name, [CHROMIUM], async () => {
    const profile = await Deno.makeTempDir({ prefix: "heddle-chromium-" });
    const browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      userDataDir: profile,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    try {
      await fn(browser);
    } finally {
      await browser.close();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    }
  });
}

/** A new page of `browser` that fails the test on any error in the page's scripts. */
export async function newPage(browser: Browser): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 860 });
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  return { page, errors };
}

/** Saves a screenshot as a test artefact, and into docs/ui/ when updating the docs. */
export async function screenshot(page: Page, name: string, forDocs = false): Promise<void> {
  await Deno.mkdir(ARTIFACTS, { recursive: true });
  const path = `${ARTIFACTS}${name}.png`;
  await page.screenshot({ path: path as `${string}.png`, fullPage: true });
  if (forDocs && Deno.env.get("HEDDLE_UPDATE_SCREENSHOTS") === "1") {
    await Deno.mkdir(DOCS, { recursive: true });
    await Deno.copyFile(path, `${DOCS}${name}.png`);
  }
}

/** The text of every element matching `selector`, in document order. */
export function texts(page: Page, selector: string): Promise<string[]> {
  return page.$$eval(selector, (els) => els.map((e) => (e.textContent ?? "").trim()));
}
