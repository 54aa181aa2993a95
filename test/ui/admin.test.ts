import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { builtUi, horizontalOverflow, launchBrowser, noBrowser, saveScreenshot, signIn, watchPage } from "../helpers/browser.js";
import { FakeEngine } from "../helpers/fake-engine.js";
import { startServer, type TestServer } from "../helpers/start-server.js";

// The Admin pages in a real Chromium against the real server: the first key made on an open server, signing in with
// an admin key, keys created (the secret shown once), listed and revoked, the audit log with its filters and paging,
// and the refusal for an inference key. No page here runs a model, so the engine is a stand-in.
describe("dashboard: Admin pages", { skip: noBrowser }, () => {
  let browser: Browser;
  let server: TestServer;
  let adminKey: string;
  before(async () => {
    browser = await launchBrowser();
    server = await startServer({ engine: new FakeEngine(), config: { uiDir: await builtUi() } });
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  const get = (path: string, key?: string): Promise<Response> =>
    fetch(`${server.baseUrl}${path}`, key === undefined ? {} : { headers: { authorization: `Bearer ${key}` } });
  /** Page errors other than the browser's note of a refused request (the first /api/whoami of a sign-in is a 401). */
  const pageErrors = (seen: { errors: string[] }): string[] => seen.errors.filter((e) => !/Failed to load resource: the server responded with a status of 401/.test(e));
  /**
   * Waits until the audit table shows only rows that match `only` (a CSS condition on the row, e.g.
   * `[data-status^="4"]`), at least one of them.
   */
  const rowsAre = async (page: Page, only: string): Promise<void> => {
    await page.locator(`[data-testid="admin-audit-row"]:not(${only})`).first().waitFor({ state: "detached" });
    await page.locator(`[data-testid="admin-audit-row"]${only}`).first().waitFor();
  };
  const signInAt = async (page: Page, key: string, route: string): Promise<void> => {
    await page.goto(`${server.baseUrl}/ui#/${route}`);
    await signIn(page, key);
    await page.getByTestId("signed-in-as").waitFor();
  };

  test("an open server says so; its first key, an admin one, turns keys on and keeps this tab signed in", async () => {
    const page = await browser.newPage();
    const seen = watchPage(page);
    await page.goto(`${server.baseUrl}/ui#/admin`);
    await page.getByTestId("admin-open-server").waitFor();
    assert.equal(await page.getByTestId("admin-key-scope").inputValue(), "admin", "the first key is offered as an admin key");
    await page.getByTestId("admin-key-name").fill("first-admin");
    await page.getByTestId("admin-key-create").click();
    const secret = (await page.getByTestId("admin-key-new-secret").textContent())?.trim() ?? "";
    assert.match(secret, /^ais_/);
    assert.equal((await get("/api/tags")).status, 401, "keys are on now");
    assert.equal((await get("/api/keys", secret)).status, 200);
    assert.equal(await page.evaluate(`sessionStorage.getItem("ai-server.key")`), secret);
    await page.getByTestId("admin-key-secret-done").click();
    assert.equal(await page.getByTestId("signed-in-as").textContent(), "first-admin (admin)");
    await page.getByTestId("admin-keys").getByTestId("admin-key-row").first().waitFor();
    assert.equal(await page.getByTestId("admin-open-server").count(), 0);
    assert.doesNotMatch((await page.textContent("body")) ?? "", new RegExp(secret), "the secret is not shown again");
    assert.deepEqual(seen.errors, []);
    adminKey = secret;
    await page.close();
  });

  test("keys on: sign in; create an inference key and see its secret once; it is listed; revoke it", async () => {
    const ops = await server.app.services.keys.create({ name: "ops", scope: "admin" });
    const page = await browser.newPage();
    const seen = watchPage(page);
    await signInAt(page, ops.key, "admin/keys");
    await page.getByTestId("admin-keys").waitFor();

    await page.getByTestId("admin-key-name").fill("ci-bot");
    await page.getByTestId("admin-key-scope").selectOption("inference");
    await page.getByTestId("admin-key-models").fill("qwen3, llama3.2:3b");
    await page.getByTestId("admin-key-rpm").fill("60");
    await page.getByTestId("admin-key-max-parallel").fill("2");
    await page.getByTestId("admin-key-expires").fill("30d");
    await page.getByTestId("admin-key-create").click();
    const secret = (await page.getByTestId("admin-key-new-secret").textContent())?.trim() ?? "";
    assert.match(secret, /^ais_/);
    assert.equal((await get("/api/tags", secret)).status, 200, "the new key works");
    await page.getByTestId("admin-key-secret-done").click();
    assert.equal(await page.getByTestId("admin-key-new-secret").count(), 0);
    assert.doesNotMatch((await page.textContent("body")) ?? "", new RegExp(secret), "the secret is not shown again");

    const row = page.getByTestId("admin-key-row").filter({ hasText: "ci-bot" });
    await row.waitFor();
    const rowText = (await row.textContent()) ?? "";
    assert.match(rowText, /inference/);
    assert.match(rowText, /qwen3:latest, llama3\.2:3b/, "the models as the store names them");
    assert.match(rowText, /60 req\/min, 2 at once/);
    assert.equal(await row.getByTestId("admin-key-status").textContent(), "active");
    await saveScreenshot(page, "admin-keys");

    await row.getByTestId("admin-key-revoke").click();
    await row.getByTestId("admin-key-revoke-cancel").click();
    assert.equal(await row.getByTestId("admin-key-status").textContent(), "active", "cancel keeps the key");
    await row.getByTestId("admin-key-revoke").click();
    await row.getByTestId("admin-key-revoke-confirm").click();
    await row.getByTestId("admin-key-status").filter({ hasText: "revoked" }).waitFor();
    assert.equal(await row.getByTestId("admin-key-revoke").count(), 0);
    const listed = (await (await get("/api/keys", ops.key)).json()) as { keys: Array<{ name: string; status: string }> };
    assert.equal(listed.keys.find((k) => k.name === "ci-bot")?.status, "revoked");
    assert.equal((await get("/api/tags", secret)).status, 401, "the revoked key is refused");
    // On a phone-sized screen the tables scroll in their own box; the page keeps the screen's width.
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = await horizontalOverflow(page);
    assert.ok(overflow <= 0, `the page is ${overflow} px wider than the screen`);
    assert.deepEqual(pageErrors(seen), []);
    await page.close();
  });

  test("the audit log lists requests, filters them by status and route, and pages to older ones", async () => {
    // More requests than one page holds (50), and a refused one.
    for (let i = 0; i < 55; i++) assert.equal((await get("/api/version", adminKey)).status, 200);
    assert.equal((await get("/api/tags", "ais_not_a_key")).status, 401);
    const page = await browser.newPage();
    const seen = watchPage(page);
    await signInAt(page, adminKey, "admin/keys");
    await page.getByTestId("admin-tab-audit").click();
    const rows = page.getByTestId("admin-audit").getByTestId("admin-audit-row");
    await rows.first().waitFor();
    assert.equal(await rows.count(), 50);
    await page.getByTestId("admin-audit-older").click();
    await rows.nth(50).waitFor();

    await page.getByTestId("admin-audit-filter-status").fill("4xx");
    await page.getByTestId("admin-audit-apply").click();
    await rowsAre(page, '[data-status^="4"]');
    const refused = await rows.evaluateAll((all) => all.map((row) => `${row.getAttribute("data-status")} ${row.getAttribute("data-route")}`));
    assert.ok(refused.includes("401 /api/tags"), refused.join(", "));

    await page.getByTestId("admin-audit-filter-status").fill("");
    await page.getByTestId("admin-audit-filter-route").fill("/api/keys");
    await page.getByTestId("admin-audit-apply").click();
    await rowsAre(page, '[data-route="/api/keys"]');
    assert.equal(await page.getByTestId("admin-audit-older").count(), 0, "one page holds them all");
    await page.getByTestId("admin-audit-filter-action").selectOption("key.create");
    await page.getByTestId("admin-audit-apply").click();
    await rowsAre(page, '[data-action="key.create"]');
    await page.getByTestId("admin-audit-filter-route").fill("");
    await page.getByTestId("admin-audit-filter-action").selectOption("*");
    await page.getByTestId("admin-audit-apply").click();
    await rowsAre(page, ':is([data-action="key.create"], [data-action="key.revoke"])');
    await rows.filter({ hasText: "key.revoke" }).first().waitFor();
    await saveScreenshot(page, "admin-audit");
    await page.getByTestId("admin-audit-clear").click();
    await rows.nth(49).waitFor();
    await rows.nth(50).waitFor({ state: "detached" });
    assert.deepEqual(pageErrors(seen), []);
    await page.close();
  });

  test("an inference key: no Admin page in the dashboard, and the keys API answers 403", async () => {
    const user = await server.app.services.keys.create({ name: "dev", scope: "inference" });
    const page = await browser.newPage();
    await signInAt(page, user.key, "admin/keys");
    assert.equal(await page.getByTestId("nav-admin").count(), 0);
    assert.match((await page.textContent("main")) ?? "", /needs an admin key/);
    assert.equal(await page.getByTestId("admin-keys").count(), 0);
    await page.goto(`${server.baseUrl}/ui#/admin/audit`);
    await page.getByRole("alert").waitFor();
    assert.equal(await page.getByTestId("admin-audit").count(), 0);
    assert.equal((await get("/api/keys", user.key)).status, 403);
    assert.equal((await get("/api/audit", user.key)).status, 403);
    await page.close();
  });
});
