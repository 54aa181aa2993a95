import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Browser, Locator, Page } from "playwright-core";
import { ensureFixtures, SCRIPTED_REPLY, THINKING_ANSWER, THINKING_REASONING, TOOL_ANSWER, TOOL_CALL, writeScriptedModel } from "../fixtures/models.js";
import { builtUi, launchBrowser, noBrowser, saveScreenshot, signIn, watchPage } from "../helpers/browser.js";
import { createModel, postJson, startEngineServer, type TestServer } from "../helpers/start-server.js";

// The chat playground in a real Chromium against the real server, with real llama.cpp inference (the in-process
// engine, one thread) on scripted fixture models whose greedy replies are exact texts.

/** A reply that is nothing but HTML and script injections, each piece one token (a scripted reply's tokens are unique). */
const INJECTION_PIECES = [
  '<img src=x onerror="alert(1)">',
  "<script>alert(2)</script>",
  ' <a href="javascript:alert(3)">x</a>',
  " [click](javascript:alert(4))",
  " [docs](https://example.com/docs)",
];
const INJECTION_REPLY = INJECTION_PIECES.join("");

/** Markdown with a highlighted code block and a list, for the screenshots. */
const MARKDOWN_PIECES = [
  "Here", " is", " a", " **", "tiny**", " Python", " example", ":\n\n", "```python\n", "def", " greet", "(name):\n",
  "    return", ' f"Hello, {name}!"', "\n```\n\n", "- ", "runs", " locally", "\n- ", "streams", " tokens",
];

/** A reply that never ends: its last token leads back to its first (the context shifts on and on). */
const LOOP = { reply: "Lorem ipsum dolor sit amet.", transitions: [[".", "\u2581Lorem"], ["\u2581Lorem", "\u2581ipsum"]] as const };

const WEATHER_TOOLS = JSON.stringify([
  {
    type: "function",
    function: { name: TOOL_CALL.name, description: "Weather in a city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } },
  },
]);

describe("chat playground", { skip: noBrowser }, () => {
  let browser: Browser;
  let server: TestServer;
  let dir: string;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "ai-server-chat-ui-"));
    const fixtures = await ensureFixtures();
    const files = { injection: path.join(dir, "injection.gguf"), markdown: path.join(dir, "markdown.gguf"), loop: path.join(dir, "loop.gguf") };
    await writeScriptedModel(files.injection, { reply: INJECTION_REPLY, pieces: INJECTION_PIECES, name: "injection" });
    await writeScriptedModel(files.markdown, { reply: MARKDOWN_PIECES.join(""), pieces: MARKDOWN_PIECES, name: "markdown" });
    await writeScriptedModel(files.loop, { reply: LOOP.reply, transitions: LOOP.transitions, name: "loop" });
    browser = await launchBrowser();
    server = await startEngineServer("llama-cpp", { uiDir: await builtUi() });
    await createModel(server.baseUrl, "scripted", fixtures.chat);
    await createModel(server.baseUrl, "thinker", fixtures.thinking);
    await createModel(server.baseUrl, "tool", fixtures.toolCall);
    await createModel(server.baseUrl, "injection", files.injection);
    await createModel(server.baseUrl, "markdown", files.markdown);
    await createModel(server.baseUrl, "loop", files.loop);
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A fresh browser context (its own localStorage) on the chat page, with `model` picked. */
  async function openChat(model: string): Promise<{ page: Page; seen: ReturnType<typeof watchPage> }> {
    const page = await browser.newPage();
    const seen = watchPage(page);
    await page.goto(`${server.baseUrl}/ui#/chat`);
    const select = page.getByTestId("chat-model-select");
    await select.locator(`option[value="${model}:latest"]`).waitFor({ state: "attached" });
    await select.selectOption(`${model}:latest`);
    return { page, seen };
  }

  async function setOption(page: Page, testId: string, value: string): Promise<void> {
    const field = page.getByTestId(testId);
    if (!(await field.isVisible())) await page.getByTestId("chat-settings-toggle").click();
    await field.fill(value);
  }

  /** Sends `text` with Enter and answers the /api/chat request's body. */
  async function send(page: Page, text: string): Promise<Record<string, unknown>> {
    const requested = page.waitForRequest((r) => r.url().endsWith("/api/chat") && r.method() === "POST");
    await page.getByTestId("chat-input").fill(text);
    await page.getByTestId("chat-input").press("Enter");
    return (await requested).postDataJSON() as Record<string, unknown>;
  }

  /** The `index`th assistant reply once it is done (its stats shown). */
  async function finishedReply(page: Page, index: number): Promise<Locator> {
    const reply = page.getByTestId("chat-message-assistant").nth(index);
    await reply.getByTestId("chat-stats").waitFor();
    return reply;
  }

  async function activeRequests(model: string): Promise<number | undefined> {
    const ps = (await (await fetch(`${server.baseUrl}/api/ps`)).json()) as { models: Array<{ name: string; active: number }> };
    return ps.models.find((m) => m.name === model)?.active;
  }

  test("a scripted model's exact reply, streamed through /api/chat (NDJSON), with tokens and tok/s; kept across a reload", async () => {
    const { page, seen } = await openChat("scripted");
    assert.equal(await page.getByTestId("chat-think").count(), 0, "no think toggle for a model without the thinking capability");
    await setOption(page, "chat-option-temperature", "0");
    const streamed = page.waitForResponse((r) => r.url().endsWith("/api/chat"));
    const body = await send(page, "Hi");
    assert.equal(body.stream, true);
    assert.equal(body.model, "scripted:latest");
    assert.deepEqual(body.options, { temperature: 0 });
    assert.deepEqual(body.messages, [{ role: "user", content: "Hi" }]);
    assert.match((await streamed).headers()["content-type"] ?? "", /application\/x-ndjson/);

    const reply = await finishedReply(page, 0);
    assert.equal(await reply.getByTestId("chat-answer").textContent(), SCRIPTED_REPLY);
    assert.match((await reply.getByTestId("chat-stats").textContent()) ?? "", /^\d+ tokens · [\d.,]+ tok\/s/);
    assert.equal(await page.getByTestId("chat-message-user").textContent(), "Hi");
    assert.equal(await page.getByTestId("chat-input").inputValue(), "", "the box is emptied once sent");

    await page.reload();
    await page.getByTestId("chat-message-assistant").getByTestId("chat-answer").waitFor();
    assert.equal(await page.getByTestId("chat-message-assistant").getByTestId("chat-answer").textContent(), SCRIPTED_REPLY);
    assert.equal(await page.getByTestId("chat-model-select").inputValue(), "scripted:latest");
    const stored = (await page.evaluate(`JSON.stringify({ local: localStorage, session: Object.keys(sessionStorage) })`)) as string;
    assert.match(stored, /Hello! I am a scripted model\./);
    assert.deepEqual(seen, { errors: [], dialogs: [] });
    await page.close();
  });

  test("Stop aborts the stream mid-reply: the server stops generating (/api/ps active 0), the reply stays partial", async () => {
    const { page, seen } = await openChat("loop");
    await send(page, "Tell me a story");
    const reply = page.getByTestId("chat-message-assistant").first();
    await reply.getByTestId("chat-answer").waitFor();
    assert.equal(await activeRequests("loop:latest"), 1, "the model is generating");
    await page.getByTestId("chat-stop").click();
    await reply.getByTestId("chat-stopped").waitFor();

    const deadline = Date.now() + 10_000;
    while ((await activeRequests("loop:latest")) !== 0) {
      assert.ok(Date.now() < deadline, "the server did not stop generating");
      await sleep(50);
    }
    const partial = (await reply.getByTestId("chat-answer").textContent()) ?? "";
    assert.match(partial, /^Lorem/);
    assert.equal(await reply.getByTestId("chat-stats").count(), 0, "no final line, so no stats");
    assert.equal(await page.getByTestId("chat-stop").count(), 0);
    assert.deepEqual(seen, { errors: [], dialogs: [] });
    await page.close();
  });

  test("a reply made of HTML and script injections renders as inert text: nothing runs, no live markup", async () => {
    const { page, seen } = await openChat("injection");
    await send(page, "Hi");
    const reply = await finishedReply(page, 0);
    const answer = reply.getByTestId("chat-answer");
    const text = (await answer.textContent()) ?? "";
    for (const piece of ['<img src=x onerror="alert(1)">', "<script>alert(2)</script>", '<a href="javascript:alert(3)">x</a>']) assert.ok(text.includes(piece), `shown as text: ${piece}`);

    const dom = (await reply.evaluate((element) => ({
      html: element.innerHTML,
      live: element.querySelectorAll("script, img, iframe, object, embed, style, form, svg, math").length,
      handlers: [...element.querySelectorAll("*")].flatMap((e) => [...e.attributes].filter((a) => a.name.startsWith("on")).map((a) => `${e.tagName} ${a.name}`)),
      links: [...element.querySelectorAll("a")].map((a) => ({ text: a.textContent, href: a.getAttribute("href"), target: a.getAttribute("target"), rel: a.getAttribute("rel") })),
    }))) as { html: string; live: number; handlers: string[]; links: Array<Record<string, string | null>> };
    assert.equal(dom.live, 0, dom.html);
    assert.deepEqual(dom.handlers, []);
    assert.doesNotMatch(dom.html, /<script|<img|<a\b[^>]*javascript:/i);
    assert.deepEqual(dom.links, [
      { text: "click", href: null, target: null, rel: null },
      { text: "docs", href: "https://example.com/docs", target: "_blank", rel: "noopener noreferrer" },
    ]);
    assert.deepEqual(seen, { errors: [], dialogs: [] });
    await page.close();
  });

  test("Markdown with highlighted code; screenshots in light, dark and at phone width", async () => {
    const { page, seen } = await openChat("markdown");
    await setOption(page, "chat-system", "You are concise.");
    await page.getByTestId("chat-settings-toggle").click();
    const body = await send(page, "Show me a tiny Python example");
    assert.deepEqual((body.messages as unknown[])[0], { role: "system", content: "You are concise." });
    const reply = await finishedReply(page, 0);
    const code = reply.locator("pre code.hljs.language-python");
    assert.equal(await code.textContent(), 'def greet(name):\n    return f"Hello, {name}!"');
    assert.ok((await code.locator("span.hljs-keyword").count()) > 0, "highlighted");
    assert.deepEqual(await reply.locator("li").allTextContents(), ["runs locally", "streams tokens"]);
    assert.equal(await reply.locator("strong").textContent(), "tiny");
    await saveScreenshot(page, "chat");

    await page.evaluate(`localStorage.setItem("ai-server.theme", "dark")`);
    await page.reload();
    await page.getByTestId("chat-message-assistant").locator("pre code.hljs").waitFor();
    await saveScreenshot(page, "chat-dark");

    await page.setViewportSize({ width: 390, height: 844 });
    assert.equal(await page.getByTestId("chat-conversations").isVisible(), false, "the conversations fold away on a phone");
    await page.getByTestId("chat-sidebar-toggle").click();
    await page.getByTestId("chat-conversations").waitFor();
    const width = (await page.evaluate(`document.documentElement.scrollWidth`)) as number;
    assert.ok(width <= 390, `no sideways scrolling at 390 px (${width})`);
    await page.getByTestId("chat-sidebar-toggle").click();
    await saveScreenshot(page, "chat-phone");
    assert.deepEqual(seen, { errors: [], dialogs: [] });
    await page.close();
  });

  test("a thinking model: the reasoning apart from the answer; the Think toggle sends think true or false", async () => {
    const { page, seen } = await openChat("thinker");
    const think = page.getByTestId("chat-think");
    await think.waitFor();
    assert.equal(await think.isChecked(), true);
    const first = await send(page, "Hi");
    assert.equal(first.think, true);
    const reply = await finishedReply(page, 0);
    assert.equal(((await reply.getByTestId("chat-thinking").textContent()) ?? "").includes(THINKING_REASONING), true);
    assert.equal(await reply.getByTestId("chat-answer").textContent(), THINKING_ANSWER);

    await think.uncheck();
    const second = await send(page, "Hi again");
    assert.equal(second.think, false);
    assert.deepEqual((second.messages as Array<Record<string, unknown>>)[1], { role: "assistant", content: THINKING_ANSWER, thinking: THINKING_REASONING });
    const plain = await finishedReply(page, 1);
    assert.equal(await plain.getByTestId("chat-answer").textContent(), THINKING_ANSWER);
    assert.equal(await plain.getByTestId("chat-thinking").count(), 0);
    await saveScreenshot(page, "chat-thinking");
    assert.deepEqual(seen, { errors: [], dialogs: [] });
    await page.close();
  });

  test("tools set as JSON: the call shown as such (name and arguments), its result sent back, the model's answer", async () => {
    const { page, seen } = await openChat("tool");
    await setOption(page, "chat-tools", "[{");
    await page.getByTestId("chat-input").fill("Weather in Paris?");
    await page.getByTestId("chat-input").press("Enter");
    assert.match((await page.getByTestId("chat-send-error").textContent()) ?? "", /Tools: not JSON/);
    assert.equal(await page.getByTestId("chat-send-error").getAttribute("role"), "alert");

    await page.getByTestId("chat-tools").fill(WEATHER_TOOLS);
    const body = await send(page, "Weather in Paris?");
    assert.deepEqual(body.tools, JSON.parse(WEATHER_TOOLS));
    const call = page.getByTestId("chat-message-assistant").first().getByTestId("chat-tool-call");
    await call.waitFor();
    assert.equal(await call.getByTestId("chat-tool-call-name").textContent(), TOOL_CALL.name);
    assert.deepEqual(JSON.parse((await call.getByTestId("chat-tool-call-arguments").textContent()) ?? ""), TOOL_CALL.params);

    await page.getByTestId("chat-tool-result").fill('{"forecast": "sunny"}');
    await page.getByTestId("chat-tool-result-send").click();
    const answer = await finishedReply(page, 1);
    assert.equal(await answer.getByTestId("chat-answer").textContent(), TOOL_ANSWER);
    assert.match((await page.getByTestId("chat-message-tool").textContent()) ?? "", /sunny/);
    await page.getByTestId("chat-settings-toggle").click();
    await page.setViewportSize({ width: 1280, height: 1000 }); // all of it in view: the sticky parts stay in place
    await saveScreenshot(page, "chat-tools");
    assert.deepEqual(seen, { errors: [], dialogs: [] });
    await page.close();
  });

  test("conversations: new, switch, delete; a refused request shows in the conversation as an alert", async () => {
    await createModel(server.baseUrl, "short-lived", (await ensureFixtures()).chat);
    const { page, seen } = await openChat("short-lived");
    await send(page, "First");
    await finishedReply(page, 0);
    await page.getByTestId("chat-new").click();
    assert.equal(await page.getByTestId("chat-message-assistant").count(), 0);
    assert.equal(await page.getByTestId("chat-conversation").count(), 2);
    assert.equal(await page.getByTestId("chat-model-select").inputValue(), "short-lived:latest", "a new conversation keeps the model");

    const deleted = await postJson(server.baseUrl, "/api/delete", { model: "short-lived" }, { method: "DELETE" });
    assert.equal(deleted.status, 200);
    await send(page, "Second");
    const error = page.getByTestId("chat-message-assistant").getByTestId("chat-error");
    await error.waitFor();
    assert.equal(await error.getAttribute("role"), "alert");
    assert.match((await error.textContent()) ?? "", /not found/);

    await page.getByTestId("chat-conversation").filter({ hasText: "First" }).click();
    assert.equal(await page.getByTestId("chat-message-user").textContent(), "First");
    await page.getByTestId("chat-conversation").filter({ hasText: "First" }).locator("..").getByTestId("chat-delete").click();
    assert.equal(await page.getByTestId("chat-conversation").count(), 1);
    assert.equal(await page.getByTestId("chat-message-user").textContent(), "Second");

    // A link from another page, `#/chat/<model>`, starts a conversation with that model.
    await page.goto(`${server.baseUrl}/ui#/chat/${encodeURIComponent("scripted:latest")}`);
    await page.waitForFunction(`location.hash === "#/chat"`);
    assert.equal(await page.getByTestId("chat-model-select").inputValue(), "scripted:latest");
    assert.equal(await page.getByTestId("chat-message-user").count(), 0);
    assert.equal(await page.getByTestId("chat-conversation").count(), 2);
    assert.deepEqual(seen.dialogs, []);
    await page.close();
  });

  test("keys on: the chat works with a signed-in key, which is never stored with the conversations", async () => {
    const user = await server.app.services.keys.create({ name: "chatter", scope: "inference" });
    try {
      const page = await browser.newPage();
      await page.goto(`${server.baseUrl}/ui#/chat`);
      await signIn(page, user.key);
      await page.getByTestId("chat-model-select").locator('option[value="scripted:latest"]').waitFor({ state: "attached" });
      await page.getByTestId("chat-model-select").selectOption("scripted:latest");
      await send(page, "Hi");
      const reply = await finishedReply(page, 0);
      assert.equal(await reply.getByTestId("chat-answer").textContent(), SCRIPTED_REPLY);
      await page.reload();
      await page.getByTestId("chat-answer").waitFor();
      const local = (await page.evaluate(`JSON.stringify(localStorage)`)) as string;
      assert.match(local, /scripted model/);
      assert.ok(!local.includes(user.key) && !/ais_/.test(local), "no key in localStorage");
      await page.close();
    } finally {
      await server.app.services.keys.revoke(user.record.id);
    }
  });
});
