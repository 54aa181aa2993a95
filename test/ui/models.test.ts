import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { PULL_REPOS } from "../fixtures/pull-fixtures.js";
import { builtUi, launchBrowser, noBrowser, saveScreenshot, signIn, watchPage } from "../helpers/browser.js";
import { FakeEngine } from "../helpers/fake-engine.js";
import { startFakeInternet, type FakeInternet } from "../helpers/fake-internet.js";
import { createModel, postJson, startServer, type TestServer } from "../helpers/start-server.js";
import { PULL_TEST_SETTINGS } from "../pull/pull-helpers.js";

// The models page in a real Chromium against the real server: the list, a pull from the fake Hugging Face Hub on
// loopback (test/helpers/fake-internet.ts) with its live progress, details, copy, delete, a failed pull, a pull that
// was already running when the page opened, and what an inference key may do. The downloader, store and jobs are
// the real ones; the engine is a stand-in (FakeEngine) because nothing on this page runs a model.

/** A template with markup in it: the details page must show it as text. */
const TEMPLATE = `{{ if .System }}<|system|>{{ .System }}{{ end }}<|user|>{{ .Prompt }}<|assistant|><img src=x onerror="document.title='pwned'"><b>bold?</b>`;
const LOCAL = "scripted-local:latest";
const PULLED = "hf.co/owner/Scripted-GGUF";

interface WireJob {
  id: string;
  model: string;
  state: string;
  request: { model: string };
  choice?: { reason: string };
  error?: { message: string };
}

describe("models page", { skip: noBrowser }, () => {
  let browser: Browser;
  let internet: FakeInternet;
  let server: TestServer;
  let hfHome: string;

  before(async () => {
    browser = await launchBrowser();
    internet = await startFakeInternet();
    hfHome = await mkdtemp(path.join(os.tmpdir(), "ai-server-hf-home-"));
    server = await startServer({ engine: new FakeEngine(), config: { ...internet.config, ...PULL_TEST_SETTINGS, hfHome, uiDir: await builtUi() } });
    await createModel(server.baseUrl, LOCAL, internet.fixtures.multi.Q2_K, {
      template: TEMPLATE,
      parameters: { temperature: 0.2, stop: ["<|user|>"] },
      license: "Scripted test licence: use freely.",
    });
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    await internet?.close();
    if (hfHome) await rm(hfHome, { recursive: true, force: true });
  });

  async function modelNames(): Promise<string[]> {
    const body = (await (await fetch(`${server.baseUrl}/api/tags`)).json()) as { models: Array<{ name: string }> };
    return body.models.map((m) => m.name);
  }

  async function jobs(state?: string): Promise<WireJob[]> {
    const body = (await (await fetch(`${server.baseUrl}/api/jobs${state ? `?state=${state}` : ""}`)).json()) as { jobs: WireJob[] };
    return body.jobs;
  }

  function row(page: Page, name: string) {
    return page.getByTestId("model-list").locator(`[data-testid="models-row"][data-model="${name}"]`);
  }

  async function openModels(): Promise<{ page: Page; seen: ReturnType<typeof watchPage> }> {
    const page = await browser.newPage();
    const seen = watchPage(page);
    await page.goto(`${server.baseUrl}/ui#/models`);
    await row(page, LOCAL).waitFor();
    return { page, seen };
  }

  test("pull by name: the choice and its reason, per-file progress, then the model in the list", async () => {
    // Slow the file's bytes down so that the progress is seen on its way, not only at the end.
    const file = internet.hub.file(PULL_REPOS.scripted, "scripted-Q8_0.gguf");
    assert.ok(file);
    internet.cdn.setFaults({ bytesPerSecond: 96 * 1024 }, file.sha256);
    const { page, seen } = await openModels();
    await page.getByTestId("pull-input").fill(PULLED);
    await page.getByTestId("pull-button").click();

    const job = page.getByTestId("models-pull").getByTestId("models-job").first();
    await job.getByTestId("models-job-reason").waitFor();
    await job.getByTestId("models-job-file").first().waitFor();
    await page.waitForFunction(`[...document.querySelectorAll('[data-testid="models-job-file-progress"]')].some((bar) => bar.value > 0)`);
    assert.match((await job.getByTestId("models-job-choice").textContent()) ?? "", /scripted-Q8_0\.gguf/);
    await saveScreenshot(page, "pull-progress");

    await page.locator('[data-testid="models-job"][data-state="succeeded"]').waitFor();
    const done = (await jobs("succeeded")).find((j) => j.request.model === PULLED);
    assert.ok(done, "the job succeeded on the server");
    assert.equal(await job.getByTestId("models-job-reason").textContent(), done.choice?.reason);
    await row(page, done.model).waitFor();
    assert.ok((await modelNames()).includes(done.model));

    // The filter keeps the models whose name (or family) holds the text.
    await page.getByTestId("models-filter").fill("scripted-gguf");
    await row(page, LOCAL).waitFor({ state: "detached" });
    assert.equal(await page.getByTestId("models-row").count(), 1);
    await page.getByTestId("models-filter").fill("");
    await row(page, LOCAL).waitFor();
    await job.getByTestId("models-job-dismiss").click();
    await saveScreenshot(page, "models");

    // A phone-sized screen: the list turns into cards, nothing needs a sideways scroll.
    await page.setViewportSize({ width: 390, height: 844 });
    assert.ok((await page.evaluate("document.documentElement.scrollWidth")) as number <= 390);
    assert.deepEqual(seen.errors, []);
    internet.cdn.setFaults({}, file.sha256);
    await page.close();
  });

  test("details show the template, parameters, capabilities and metadata as text; copy, then delete the copy", async () => {
    const { page, seen } = await openModels();
    await row(page, LOCAL).getByTestId("models-row-link").click();
    const template = page.getByTestId("models-details-template");
    await template.waitFor();
    assert.equal(await template.textContent(), TEMPLATE);
    assert.equal(await page.getByTestId("models-details").locator("img, b").count(), 0, "markup in a template is text");
    assert.match((await page.getByTestId("models-details-parameters").textContent()) ?? "", /temperature\s+0\.2/);
    assert.match((await page.getByTestId("models-details-capabilities").textContent()) ?? "", /completion/);
    assert.match((await page.getByTestId("models-details-info").textContent()) ?? "", /general\.architecture/);
    assert.match((await page.getByTestId("models-details-license").textContent()) ?? "", /Scripted test licence/);
    await saveScreenshot(page, "model-details");

    await page.getByTestId("models-copy-name").fill("scripted-copy");
    await page.getByTestId("models-copy-button").click();
    await page.getByTestId("models-copy-done").waitFor();
    assert.ok((await modelNames()).includes("scripted-copy:latest"));
    await page.getByTestId("models-back").click();
    await row(page, "scripted-copy:latest").getByTestId("models-row-link").click();
    await page.getByTestId("models-details-template").waitFor();

    // The confirmation is in the page; keeping the model changes nothing.
    await page.getByTestId("models-delete").click();
    await page.getByTestId("models-delete-cancel").click();
    assert.ok((await modelNames()).includes("scripted-copy:latest"));
    await page.getByTestId("models-delete").click();
    await page.getByTestId("models-delete-confirm").click();
    await row(page, LOCAL).waitFor();
    assert.equal(await row(page, "scripted-copy:latest").count(), 0);
    const names = await modelNames();
    assert.ok(!names.includes("scripted-copy:latest"));
    assert.ok(names.includes(LOCAL));
    assert.deepEqual(seen.dialogs, [], "no window.confirm");
    assert.deepEqual(seen.errors, []);
    assert.notEqual(await page.title(), "pwned");
    await page.close();
  });

  test("a pull of a repository that does not exist shows the server's error", async () => {
    const { page } = await openModels();
    await page.getByTestId("pull-input").fill("hf.co/owner/Missing-GGUF");
    await page.getByTestId("pull-button").click();
    const failed = page.locator('[data-testid="models-job"][data-state="failed"]');
    await failed.getByRole("alert").waitFor();
    const job = (await jobs("failed")).find((j) => j.request.model === "hf.co/owner/Missing-GGUF");
    assert.ok(job?.error?.message, "the server recorded the failure");
    assert.equal(await failed.getByRole("alert").textContent(), job.error.message);
    await page.close();
  });

  test("a pull running when the page opens is listed and followed, also after a reload; cancel removes it", async () => {
    // So slow that the pull is still running (reading the file's header) while the page opens, reloads and cancels.
    const file = internet.hub.file(PULL_REPOS.multi, "multi-Q4_K_M.gguf");
    assert.ok(file);
    internet.cdn.setFaults({ bytesPerSecond: 8 * 1024 }, file.sha256);
    const started = await postJson(server.baseUrl, "/api/jobs", { type: "pull", model: PULL_REPOS.multi });
    assert.equal(started.status, 202);
    const { id } = (await started.json()) as WireJob;
    const page = await browser.newPage();
    await page.goto(`${server.baseUrl}/ui#/models`);
    const job = page.locator(`[data-testid="models-job"][data-job="${id}"]`);
    await job.waitFor();
    await page.reload();
    await job.waitFor();
    await job.getByTestId("models-pull-cancel").click();
    await page.locator(`[data-testid="models-job"][data-job="${id}"][data-state="cancelled"]`).waitFor();
    assert.equal((await fetch(`${server.baseUrl}/api/jobs/${id}`)).status, 404, "a cancelled job is removed");
    assert.ok(!(await modelNames()).some((name) => name.includes("Multi-GGUF")));
    internet.cdn.setFaults({}, file.sha256);
    await page.close();
  });

  test("an inference key sees the models and their details, without pull, copy or delete", async () => {
    const viewer = await server.app.services.keys.create({ name: "viewer", scope: "inference" });
    try {
      const page = await browser.newPage();
      await page.goto(`${server.baseUrl}/ui#/models`);
      await signIn(page, viewer.key);
      await row(page, LOCAL).waitFor();
      assert.ok(await page.getByTestId("pull-input").isDisabled());
      assert.ok(await page.getByTestId("pull-button").isDisabled());
      await page.getByTestId("models-pull").getByTestId("models-admin-note").waitFor();
      await row(page, LOCAL).getByTestId("models-row-link").click();
      await page.getByTestId("models-details-template").waitFor();
      await page.getByTestId("models-admin-note").waitFor();
      assert.equal(await page.getByTestId("models-delete").count(), 0);
      assert.equal(await page.getByTestId("models-copy-button").count(), 0);
      await page.close();
    } finally {
      await server.app.services.keys.revoke(viewer.record.id);
    }
  });
});
