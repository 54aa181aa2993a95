import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Browser } from "playwright-core";
import { builtUi, launchBrowser, noBrowser, saveScreenshot, signIn, watchPage } from "../helpers/browser.js";
import { startServer, type TestServer } from "../helpers/start-server.js";
import { FakeEngine } from "../helpers/fake-engine.js";

// The dashboard's frame in a real Chromium: served at /ui with a strict content security policy, the sign-in when
// keys are on (the key kept in sessionStorage only), admin pages only for an admin key. The pages themselves have
// their own tests; the engine is a stand-in here because no page of this test runs a model.
describe("dashboard shell", { skip: noBrowser }, () => {
  let browser: Browser;
  let server: TestServer;
  before(async () => {
    browser = await launchBrowser();
    server = await startServer({ engine: new FakeEngine(), config: { uiDir: await builtUi() } });
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test("/ui serves the page with a content security policy; / still says Ollama is running", async () => {
    const page = await fetch(`${server.baseUrl}/ui`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-security-policy") ?? "", /script-src 'self'/);
    assert.match(await page.text(), /\/ui\/assets\/app\.js/);
    const script = await fetch(`${server.baseUrl}/ui/assets/app.js`, { headers: { "accept-encoding": "gzip" } });
    assert.equal(script.status, 200);
    assert.match(script.headers.get("content-type") ?? "", /javascript/);
    assert.equal((await fetch(`${server.baseUrl}/ui/assets/..%2F..%2Fpackage.json`)).status, 404);
    assert.equal(await (await fetch(`${server.baseUrl}/`)).text(), "Ollama is running");
  });

  test("open on loopback: the pages at once, admin included", async () => {
    const page = await browser.newPage();
    const seen = watchPage(page);
    await page.goto(`${server.baseUrl}/ui`);
    await page.getByTestId("nav-admin").waitFor();
    assert.deepEqual(seen.errors, []);
    await page.close();
  });

  test("keys on: sign in, the key only in sessionStorage; an inference key sees no admin page", async () => {
    const admin = await server.app.services.keys.create({ name: "ops", scope: "admin" });
    const user = await server.app.services.keys.create({ name: "dev", scope: "inference" });
    try {
      const page = await browser.newPage();
      await page.goto(`${server.baseUrl}/ui#/admin`);
      await signIn(page, "ais_wrong_key");
      await page.getByRole("alert").waitFor();
      await saveScreenshot(page, "sign-in");
      await signIn(page, user.key);
      await page.getByTestId("signed-in-as").waitFor();
      assert.equal(await page.getByTestId("nav-admin").count(), 0);
      assert.match(await page.textContent("main") ?? "", /needs an admin key/);
      const stored = (await page.evaluate(`({ session: sessionStorage.getItem("ai-server.key"), local: JSON.stringify(localStorage), cookie: document.cookie })`)) as {
        session: string;
        local: string;
        cookie: string;
      };
      assert.equal(stored.session, user.key);
      assert.doesNotMatch(stored.local, /ais_/);
      assert.equal(stored.cookie, "");
      await page.getByTestId("sign-out").click();
      await signIn(page, admin.key);
      await page.getByTestId("nav-admin").waitFor();
      await page.close();
    } finally {
      await server.app.services.keys.revoke(admin.record.id);
      await server.app.services.keys.revoke(user.record.id);
    }
  });
});
