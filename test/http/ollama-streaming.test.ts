import assert from "node:assert/strict";
import { after, before, beforeEach, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { ContextOverflowError, GenerationError, ModelLoadError } from "../../src/domain/errors.js";
import { startFakeServer, type FakeServer } from "../helpers/fake-server.js";
import { postJson, readNdjson } from "../helpers/start-server.js";

// Stream framing, errors before/after the first byte, disconnects and the queue, on the fake engine.
let server: FakeServer;
before(async () => {
  // No load cooldown: the failed-load test is followed by tests whose loads must succeed.
  server = await startFakeServer({ numParallel: 1, maxQueue: 1, loadCooldownMs: 0 });
});
after(() => server.close());
beforeEach(() => {
  server.engine.script = {};
});

const chatBody = { model: "chat", messages: [{ role: "user", content: "Hi" }] };

/** Reads NDJSON objects from a streaming response one at a time. */
function lineReader(response: Response): () => Promise<Record<string, unknown> | undefined> {
  const reader = (response.body ?? new ReadableStream()).getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  return async () => {
    for (;;) {
      const newline = buffer.indexOf("\n");
      if (newline !== -1) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        return JSON.parse(line) as Record<string, unknown>;
      }
      const { value, done } = await reader.read();
      if (done) return undefined;
      buffer += decoder.decode(value, { stream: true });
    }
  };
}

interface Ps {
  models: Array<{ name: string; active: number; queued: number }>;
}

async function chatSlot(): Promise<{ active: number; queued: number } | undefined> {
  const ps = (await (await fetch(`${server.baseUrl}/api/ps`)).json()) as Ps;
  return ps.models.find((m) => m.name === "chat:latest");
}

async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 3000;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await sleep(10);
  }
}

test("an error before the first event is a normal HTTP error with the right status and a JSON body", async () => {
  const cases: Array<[Error, number]> = [
    [new ContextOverflowError("prompt of 9000 tokens exceeds the context length of 2048"), 400],
    [new GenerationError("engine exploded"), 500],
  ];
  for (const [error, status] of cases) {
    server.engine.script = { failBeforeFirst: error as ContextOverflowError };
    for (const route of ["/api/chat", "/api/generate"]) {
      const response = await postJson(server.baseUrl, route, { ...chatBody, prompt: "Hi" });
      assert.equal(response.status, status, `${route} ${error.message}`);
      assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
      assert.deepEqual(await response.json(), { error: error.message });
    }
  }
  assert.equal((await chatSlot())?.active, 0, "the lease was released");
});

test("a model that fails to load is a 500 before any byte", async () => {
  await postJson(server.baseUrl, "/api/generate", { model: "chat", keep_alive: 0 }).then((r) => r.text());
  server.engine.script = { loadError: new ModelLoadError("out of memory") };
  const response = await postJson(server.baseUrl, "/api/chat", chatBody);
  assert.equal(response.status, 500);
  assert.match(((await response.json()) as { error: string }).error, /out of memory/);
});

test("an error after the first line is written in-band as {error}; status 200; the stream ends; the slot is freed", async () => {
  server.engine.script = { tokens: ["one", "two", "three"], failAfter: { events: 1, error: new GenerationError("the engine broke") } };
  for (const route of ["/api/chat", "/api/generate"]) {
    const response = await postJson(server.baseUrl, route, { ...chatBody, prompt: "Hi" });
    assert.equal(response.status, 200);
    const lines = await readNdjson(response);
    assert.equal(lines.length, 2, route);
    assert.equal(lines[0]?.done, false);
    assert.deepEqual(lines[1], { error: "the engine broke" });
  }
  assert.equal((await chatSlot())?.active, 0);
  const stream: Record<string, unknown>[] = await readNdjson(await postJson(server.baseUrl, "/api/create", { model: "x", from: "chat" }));
  assert.equal(stream.at(-1)?.status, "success", "create streams end with success");
});

test("a client that disconnects mid-stream stops generation at once and frees the slot", async () => {
  server.engine.script = { tokens: ["tick "], endless: true, delayMs: 20 };
  const controller = new AbortController();
  const response = await postJson(server.baseUrl, "/api/chat", chatBody, { signal: controller.signal });
  const next = lineReader(response);
  assert.equal(((await next())?.message as { content: string }).content, "tick ");
  assert.equal((await chatSlot())?.active, 1);
  const abortsBefore = server.engine.aborts;
  controller.abort();
  const started = Date.now();
  await server.engine.waitForAbort(abortsBefore + 1);
  assert.ok(Date.now() - started < 1000, "the engine saw the abort promptly");
  await eventually(async () => (await chatSlot())?.active === 0 && server.engine.running === 0, "the slot is free");
});

test("a client that disconnects while queued leaves the queue; a full queue is 503 with Retry-After", async () => {
  server.engine.script = { tokens: ["tick "], endless: true, delayMs: 20 };
  const first = new AbortController();
  const next = lineReader(await postJson(server.baseUrl, "/api/chat", chatBody, { signal: first.signal }));
  await next();

  const queued = new AbortController();
  const waiting = postJson(server.baseUrl, "/api/chat", chatBody, { signal: queued.signal }).catch(() => undefined);
  await eventually(async () => (await chatSlot())?.queued === 1, "the second request is queued");

  const refused = await postJson(server.baseUrl, "/api/chat", chatBody);
  assert.equal(refused.status, 503);
  assert.equal(refused.headers.get("retry-after"), "1");
  assert.match(((await refused.json()) as { error: string }).error, /server busy/);

  queued.abort();
  await waiting;
  await eventually(async () => (await chatSlot())?.queued === 0, "the queued request left");
  first.abort();
  await eventually(async () => (await chatSlot())?.active === 0, "the slot is free");

  server.engine.script = {};
  const after = await postJson(server.baseUrl, "/api/chat", { ...chatBody, stream: false });
  assert.equal(after.status, 200, "the model serves again");
});

test("a client that disconnects from a stream:false request stops generation too", async () => {
  server.engine.script = { tokens: ["tick "], endless: true, delayMs: 20 };
  const controller = new AbortController();
  const pending = postJson(server.baseUrl, "/api/generate", { model: "chat", prompt: "Hi", stream: false }, { signal: controller.signal }).catch(() => undefined);
  await eventually(async () => server.engine.running === 1, "generation runs");
  const abortsBefore = server.engine.aborts;
  controller.abort();
  await pending;
  await server.engine.waitForAbort(abortsBefore + 1);
  await eventually(async () => (await chatSlot())?.active === 0, "the slot is free");
});
