import { existsSync } from "node:fs";
import { mkdir, mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
// @ts-expect-error: a plain ES module of the build, without types
import { buildUi } from "../../scripts/build-ui.mjs";

/**
 * The browser tests' tools: the distribution's Chromium (playwright-core drives it; its own browser downloads cannot
 * work here), the dashboard built once per test process from ui/ (so a test always sees the source it runs with),
 * and screenshots.
 */

const CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome", "/usr/bin/google-chrome-stable"];

/** The browser to drive: AI_SERVER_TEST_CHROMIUM, else the distribution's; undefined when there is none. */
export function chromiumPath(): string | undefined {
  const configured = process.env.AI_SERVER_TEST_CHROMIUM;
  if (configured) return configured;
  return CANDIDATES.find((candidate) => existsSync(candidate));
}

/** For `test(name, { skip: noBrowser }, …)`: the reason the browser tests cannot run here, or false. */
export const noBrowser: string | false = chromiumPath() === undefined ? "no Chromium here (install Debian's chromium package, or set AI_SERVER_TEST_CHROMIUM)" : false;

export async function launchBrowser(): Promise<Browser> {
  const executablePath = chromiumPath();
  if (!executablePath) throw new Error(String(noBrowser));
  return chromium.launch({ executablePath, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
}

let built: Promise<string> | undefined;

/** The dashboard built from ui/ into a temp folder (once per process): pass it as the `uiDir` setting. */
export function builtUi(): Promise<string> {
  built ??= (async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "ai-server-ui-"));
    await buildUi(dir);
    return dir;
  })();
  return built;
}

/**
 * Saves a full-page screenshot named `<name>.png` in AI_SERVER_SCREENSHOTS (the README's come from
 * `AI_SERVER_SCREENSHOTS=docs/screenshots`), else in a temp folder; returns its path.
 */
export async function saveScreenshot(page: Page, name: string): Promise<string> {
  const dir = process.env.AI_SERVER_SCREENSHOTS ?? path.join(os.tmpdir(), "ai-server-screenshots");
  await mkdir(dir, { recursive: true });
  const file = path.join(path.resolve(dir), `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/**
 * Collects what would show that the page ran something it should not: uncaught errors and failed console messages
 * (a script a model injected would usually throw or log), and dialogs (alert/confirm/prompt) which are dismissed.
 */
export function watchPage(page: Page): { errors: string[]; dialogs: string[] } {
  const seen = { errors: [] as string[], dialogs: [] as string[] };
  page.on("pageerror", (error) => seen.errors.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error") seen.errors.push(message.text());
  });
  page.on("dialog", (dialog) => {
    seen.dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  return seen;
}

/** Signs in through the dashboard's own form (the key kept in the tab's sessionStorage, as a person's would be). */
export async function signIn(page: Page, key: string): Promise<void> {
  await page.getByTestId("sign-in-key").fill(key);
  await page.getByTestId("sign-in-button").click();
}

/** How many pixels the page is wider than the viewport (0 when nothing scrolls sideways). */
export async function horizontalOverflow(page: Page): Promise<number> {
  return (await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")) as number;
}
