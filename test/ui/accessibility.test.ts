import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { writeScriptedModel } from "../fixtures/models.js";
import { builtUi, launchBrowser, noBrowser, watchPage } from "../helpers/browser.js";
import { FakeEngine } from "../helpers/fake-engine.js";
import { createModel, startServer, type TestServer } from "../helpers/start-server.js";

// The whole dashboard in a real Chromium, for what every page must do alike: usable with the keyboard alone (a skip
// link, the nav links, focus on the new page's heading, the chat's controls in order), on a phone-sized screen, in
// both colour themes, and without a single request to anywhere but the server itself (no CDN: it works offline).
// The pages' own behaviour has its own tests; here the engine is a stand-in (FakeEngine, its replies "Hello world")
// because only the page frames and their controls matter.

/** Each page (and sub-page) and what shows that it is there. */
const PAGES = [
  { route: "models", ready: "model-list" },
  { route: "models/scripted:latest", ready: "models-details" },
  { route: "running", ready: "running-chart-queue" },
  { route: "chat", ready: "chat-input" },
  { route: "admin/keys", ready: "admin-keys" },
  { route: "admin/audit", ready: "admin-audit" },
] as const;

describe("dashboard accessibility", { skip: noBrowser }, () => {
  let browser: Browser;
  let server: TestServer;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "ai-server-a11y-ui-"));
    const model = path.join(dir, "scripted.gguf");
    await writeScriptedModel(model, { reply: "Hello from the model.", name: "scripted" });
    browser = await launchBrowser();
    server = await startServer({ engine: new FakeEngine(), config: { uiDir: await builtUi() } });
    await createModel(server.baseUrl, "scripted", model);
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** The value of a JavaScript expression in the page (the tests' TypeScript has no DOM types: code as text). */
  const inPage = <T>(page: Page, expression: string): Promise<T> => page.evaluate(expression) as Promise<T>;

  /** What has the keyboard focus: its data-testid, else its tag and text. */
  const focused = (page: Page): Promise<string> =>
    inPage(
      page,
      `(() => {
        const element = document.activeElement;
        if (!element) return "(none)";
        return element.getAttribute("data-testid") ?? element.tagName.toLowerCase() + ":" + (element.textContent ?? "").trim().slice(0, 40);
      })()`,
    );

  /** Waits until the focus is on the page's heading that reads `text` (waitForFunction would need eval, which the CSP refuses). */
  const headingFocused = (page: Page, text: string): Promise<void> => page.locator("main h1:focus").filter({ hasText: text }).waitFor();

  /** Presses `key` until the element with data-testid `testId` has the focus; answers what had it on the way. */
  const pressUntil = async (page: Page, key: "Tab" | "Shift+Tab", testId: string, most = 40): Promise<string[]> => {
    const seen: string[] = [];
    for (let i = 0; i < most; i++) {
      await page.keyboard.press(key);
      const now = await focused(page);
      seen.push(now);
      if (now === testId) return seen;
    }
    assert.fail(`${key} × ${most} never reached ${testId}: ${seen.join(" → ")}`);
  };

  /** Opens a route by its nav link, from the keyboard: back up to the link with Shift+Tab, then Enter. */
  const followNavLink = async (page: Page, path: string): Promise<void> => {
    await pressUntil(page, "Shift+Tab", `nav-${path}`);
    await page.keyboard.press("Enter");
    await page.waitForURL((url) => url.hash === `#/${path}`);
  };

  const overflow = (page: Page): Promise<number> => inPage(page, "document.documentElement.scrollWidth - document.documentElement.clientWidth");

  test("the keyboard alone: skip link, every nav link, the focus on each new page, the chat's controls in order", async () => {
    const page = await browser.newPage();
    const seen = watchPage(page);
    await page.goto(`${server.baseUrl}/ui#/models`);
    await page.getByTestId("model-list").waitFor();

    // The first Tab shows the skip link; Enter on it moves the focus to the page's heading.
    await page.keyboard.press("Tab");
    assert.equal(await focused(page), "skip-to-content");
    const box = await page.getByTestId("skip-to-content").boundingBox();
    assert.ok(box && box.y >= 0 && box.height > 0, `the focused skip link is on screen: ${JSON.stringify(box)}`);
    await page.keyboard.press("Enter");
    assert.equal(await focused(page), "h1:Models");
    assert.equal(await inPage(page, "location.hash"), "#/models", "the skip link leaves the route as it is");

    // Each page from its nav link; the focus lands on its heading.
    await followNavLink(page, "running");
    await headingFocused(page, "Running");
    await followNavLink(page, "admin");
    await headingFocused(page, "Admin");

    // Chat: the focus in the page; Tab reaches the model picker, the message box and (once there is text) Send.
    await followNavLink(page, "chat");
    await page.getByTestId("chat-input").waitFor();
    await page.locator('[data-testid="chat-model-select"]:enabled').waitFor();
    assert.ok(await inPage(page, `document.activeElement?.closest("main") != null`), `the focus is in the page: ${await focused(page)}`);
    const toSelect = await pressUntil(page, "Tab", "chat-model-select");
    const toInput = await pressUntil(page, "Tab", "chat-input");
    assert.ok(!toSelect.includes("chat-input") && !toInput.includes("chat-send"), `Tab order: ${[...toSelect, ...toInput].join(" → ")}`);
    await page.keyboard.type("Hello?");
    await pressUntil(page, "Tab", "chat-send", 3);
    await page.keyboard.press("Enter");
    await page.getByTestId("chat-message-assistant").filter({ hasText: "Hello world" }).waitFor();

    await followNavLink(page, "models");
    await headingFocused(page, "Models");
    assert.deepEqual(seen.errors, []);
    await page.close();
  });

  test("a phone-sized screen (390×844) shows every page without scrolling sideways", async () => {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
    const seen = watchPage(page);
    for (const { route, ready } of PAGES) {
      await page.goto(`${server.baseUrl}/ui#/${route}`);
      await page.getByTestId(ready).waitFor();
      const wider = await overflow(page);
      assert.ok(wider <= 0, `#/${route} is ${wider} px wider than the screen`);
    }
    assert.deepEqual(seen.errors, []);
    await page.close();
  });

  test("light and dark: each theme has its own colours; the toggle goes auto → light → dark → auto and is remembered", async () => {
    const context = await browser.newContext({ colorScheme: "light" });
    const page = await context.newPage();
    const seen = watchPage(page);
    const background = (): Promise<string> => inPage(page, "getComputedStyle(document.body).backgroundColor");
    /** Waits until the page applies `theme` (the toggle's state reaches the page after it renders). */
    const themeIs = (theme: string): Promise<void> => page.locator(`html[data-theme="${theme}"]`).waitFor({ state: "attached" });
    await page.goto(`${server.baseUrl}/ui#/models`);
    await page.getByTestId("model-list").waitFor();
    await themeIs("auto");
    const auto = await background();

    await page.getByTestId("theme-toggle").click();
    await themeIs("light");
    const light = await background();
    assert.equal(light, auto, "auto follows the system's light scheme");

    await page.getByTestId("theme-toggle").click();
    await themeIs("dark");
    const dark = await background();
    assert.notEqual(dark, light);
    assert.equal(await page.getByTestId("theme-toggle").getAttribute("aria-label"), "Colour theme: dark");
    for (const { route, ready } of PAGES) {
      await page.goto(`${server.baseUrl}/ui#/${route}`);
      await page.getByTestId(ready).waitFor();
      assert.equal(await background(), dark, `#/${route} is dark`);
    }
    await page.reload();
    await page.getByTestId("admin-audit").waitFor();
    await themeIs("dark"); // the choice outlives a reload

    // Back to auto, from the keyboard this time.
    await page.getByTestId("theme-toggle").focus();
    await page.keyboard.press("Enter");
    await themeIs("auto");
    assert.equal(await background(), light);
    await page.emulateMedia({ colorScheme: "dark" });
    assert.equal(await background(), dark, "auto follows the system's dark scheme");
    assert.deepEqual(seen.errors, []);
    await context.close();
  });

  test("no network at run time: every request of a visit to every page goes to the server itself", async () => {
    const page = await browser.newPage();
    const seen = watchPage(page);
    const requested: string[] = [];
    page.on("request", (request) => requested.push(request.url()));
    for (const { route, ready } of PAGES) {
      await page.goto(`${server.baseUrl}/ui#/${route}`);
      await page.getByTestId(ready).waitFor();
      if (route === "chat") {
        await page.getByTestId("chat-input").fill("Hello?");
        await page.getByTestId("chat-send").click();
        await page.getByTestId("chat-message-assistant").filter({ hasText: "Hello world" }).waitFor();
      }
    }
    // Requests for data: URLs (the empty icon) do not leave the page.
    const elsewhere = requested.filter((url) => !url.startsWith(`${server.baseUrl}/`) && !url.startsWith("data:"));
    assert.deepEqual(elsewhere, []);
    assert.ok(requested.some((url) => url.endsWith("/api/whoami")) && requested.some((url) => /\/ui\/assets\/.+\.js$/.test(url)), requested.join("\n"));
    assert.deepEqual(seen.errors, []);
    await page.close();
  });

  test("each page loads its code when first opened: the models page does not load the chat's", async () => {
    const page = await browser.newPage();
    const scripts: string[] = [];
    page.on("request", (request) => {
      if (request.resourceType() === "script") scripts.push(new URL(request.url()).pathname);
    });
    await page.goto(`${server.baseUrl}/ui#/models`);
    await page.getByTestId("model-list").waitFor();
    assert.ok(scripts.some((p) => /\/assets\/models-[A-Z0-9]+\.js$/.test(p)), scripts.join(", "));
    assert.ok(!scripts.some((p) => /\/assets\/chat-/.test(p)), `the chat page's code was loaded with the models page: ${scripts.join(", ")}`);
    await page.getByTestId("nav-chat").click();
    await page.getByTestId("chat-input").waitFor();
    assert.ok(scripts.some((p) => /\/assets\/chat-[A-Z0-9]+\.js$/.test(p)), scripts.join(", "));
    await page.close();
  });
});
