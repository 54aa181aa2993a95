/**
 * Rate limits over real HTTP: a key's requests and tokens per minute and requests running at once, refused with 429
 * in each protocol's shape with Retry-After, retry-after-ms and the x-ratelimit-* headers; a client that disconnects
 * mid-stream frees its slot; an open server's per-address limits from the settings. The fake engine (HTTP behaviour
 * only: its usage is 3 prompt tokens plus one token per piece of text); the per-key tests count on a clock the test
 * drives, so the waits are exact and nobody waits.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import type { Limits } from "../../src/auth/principal.js";
import { MemoryLimitCounter } from "../../src/limits/memory-limit-counter.js";
import { FakeEngine } from "../helpers/fake-engine.js";
import { startFakeServer, type FakeServer } from "../helpers/fake-server.js";
import { writeFakeModel } from "../helpers/gguf-files.js";
import { parsePrometheusText, valueOf } from "../helpers/prometheus-text.js";
import { postJson, startServer, type TestServer } from "../helpers/start-server.js";

const user = [{ role: "user", content: "Hi" }];
const openaiChat = { model: "chat", messages: user };
const ollamaChat = { model: "chat", messages: user, stream: false };
const anthropicMessage = { model: "chat", max_tokens: 16, messages: user };

let server: FakeServer;
let adminKey: string;
let now = 1_000_000;

/** A key with these limits, made through the key store (the admin routes are tested elsewhere). */
async function keyWith(limits: Limits, name = "limited"): Promise<string> {
  return (await server.app.services.keys.create({ name, scope: "inference", limits })).key;
}

function post(route: string, key: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return postJson(server.baseUrl, route, body, { ...init, headers: { "content-type": "application/json", authorization: `Bearer ${key}` } });
}

function rateHeaders(response: Response): Record<string, string | null> {
  const names = ["retry-after", "retry-after-ms", ...["limit", "remaining", "reset"].flatMap((what) => [`x-ratelimit-${what}-requests`, `x-ratelimit-${what}-tokens`])];
  return Object.fromEntries(names.map((name) => [name, response.headers.get(name)]));
}

async function rateLimitedCount(limit: string): Promise<number> {
  const response = await fetch(`${server.baseUrl}/metrics`, { headers: { authorization: `Bearer ${adminKey}` } });
  assert.equal(response.status, 200);
  return valueOf(parsePrometheusText(await response.text()), "ai_server_rate_limited_requests_total", { limit }) ?? 0;
}

/** Reads a streamed body until its first chunk. */
async function firstChunk(response: Response): Promise<string> {
  assert.equal(response.status, 200);
  const reader = response.body!.getReader();
  const { value } = await reader.read();
  return new TextDecoder().decode(value);
}

before(async () => {
  server = await startFakeServer();
  // Counting on the test's clock: Retry-After is exact and a minute passes when the test says so
  server.app.services.limits = new MemoryLimitCounter({ now: () => now });
  adminKey = (await server.app.services.keys.create({ name: "admin", scope: "admin" })).key;
});

after(() => server.close());

beforeEach(() => {
  server.engine.script = {};
});

describe("requests per minute", () => {
  test("a key with rpm 2: two requests with the x-ratelimit headers, the third 429 in OpenAI's shape with the right Retry-After", async () => {
    const key = await keyWith({ rpm: 2 });
    const before429 = await rateLimitedCount("rpm");
    const first = await post("/v1/chat/completions", key, openaiChat);
    assert.equal(first.status, 200);
    assert.deepEqual(rateHeaders(first), {
      "retry-after": null,
      "retry-after-ms": null,
      "x-ratelimit-limit-requests": "2",
      "x-ratelimit-limit-tokens": null,
      "x-ratelimit-remaining-requests": "1",
      "x-ratelimit-remaining-tokens": null,
      "x-ratelimit-reset-requests": "30s",
      "x-ratelimit-reset-tokens": null,
    });
    const second = await post("/v1/chat/completions", key, openaiChat);
    assert.equal(second.status, 200);
    assert.equal(second.headers.get("x-ratelimit-remaining-requests"), "0");
    assert.equal(second.headers.get("x-ratelimit-reset-requests"), "1m0s");

    const third = await post("/v1/chat/completions", key, openaiChat);
    assert.equal(third.status, 429);
    assert.deepEqual(rateHeaders(third), {
      "retry-after": "30",
      "retry-after-ms": "30000",
      "x-ratelimit-limit-requests": "2",
      "x-ratelimit-limit-tokens": null,
      "x-ratelimit-remaining-requests": "0",
      "x-ratelimit-remaining-tokens": null,
      "x-ratelimit-reset-requests": "1m0s",
      "x-ratelimit-reset-tokens": null,
    });
    assert.ok(third.headers.get("x-request-id"), "the usual headers are kept");
    const { error } = (await third.json()) as { error: { message: string; type: string; code: string; param: unknown } };
    assert.equal(error.type, "rate_limit_error");
    assert.equal(error.code, "rate_limited");
    assert.equal(error.param, null);
    assert.match(error.message, /rate limit of 2 requests per minute reached for API key "\w+"; try again in 30s/);
    assert.equal(await rateLimitedCount("rpm"), before429 + 1, "counted in the metrics");

    now += 29_999;
    assert.equal((await post("/v1/chat/completions", key, openaiChat)).status, 429, "a millisecond early");
    now += 1;
    const later = await post("/v1/chat/completions", key, openaiChat);
    assert.equal(later.status, 200, "after Retry-After");
    assert.equal(later.headers.get("x-ratelimit-remaining-requests"), "0");
  });

  test("in Ollama's and Anthropic's shapes, with the same headers", async () => {
    const ollamaKey = await keyWith({ rpm: 1 });
    assert.equal((await post("/api/chat", ollamaKey, ollamaChat)).status, 200);
    const ollama = await post("/api/chat", ollamaKey, ollamaChat);
    assert.equal(ollama.status, 429);
    assert.equal(ollama.headers.get("retry-after"), "60");
    assert.equal(ollama.headers.get("retry-after-ms"), "60000");
    assert.equal(ollama.headers.get("x-ratelimit-limit-requests"), "1");
    const ollamaBody = (await ollama.json()) as { error: string };
    assert.match(ollamaBody.error, /rate limit of 1 requests per minute reached/);

    const anthropicKey = await keyWith({ rpm: 1 });
    const anthropicRequest = (): Promise<Response> =>
      postJson(server.baseUrl, "/v1/messages", anthropicMessage, { headers: { "content-type": "application/json", "x-api-key": anthropicKey, "anthropic-version": "2023-06-01" } });
    assert.equal((await anthropicRequest()).status, 200);
    const anthropic = await anthropicRequest();
    assert.equal(anthropic.status, 429);
    assert.equal(anthropic.headers.get("retry-after"), "60");
    assert.equal(anthropic.headers.get("x-ratelimit-remaining-requests"), "0");
    const anthropicBody = (await anthropic.json()) as { type: string; error: { type: string; message: string } };
    assert.equal(anthropicBody.type, "error");
    assert.equal(anthropicBody.error.type, "rate_limit_error");
    assert.match(anthropicBody.error.message, /rate limit of 1 requests per minute/);
  });

  test("probes, metrics and the root are not counted; a key without limits gets no headers", async () => {
    const key = await keyWith({ rpm: 1 });
    for (let i = 0; i < 3; i++) {
      for (const route of ["/health", "/ready", "/"]) assert.equal((await fetch(`${server.baseUrl}${route}`, { headers: { authorization: `Bearer ${key}` } })).status, 200, route);
    }
    const counted = await fetch(`${server.baseUrl}/api/tags`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(counted.status, 200, "its one request of the minute is still there");
    assert.equal(counted.headers.get("x-ratelimit-remaining-requests"), "0");

    const unlimited = await post("/v1/chat/completions", await keyWith({}, "unlimited"), openaiChat);
    assert.equal(unlimited.status, 200);
    assert.deepEqual(Object.values(rateHeaders(unlimited)).filter((v) => v !== null), []);
  });
});

describe("tokens per minute", () => {
  test("charged with each request's real counts when it ends (whole or streamed), then 429 while the minute's budget is spent", async () => {
    const key = await keyWith({ tpm: 10 });
    const before429 = await rateLimitedCount("tpm");
    const first = await post("/v1/chat/completions", key, openaiChat);
    assert.equal(first.status, 200);
    assert.equal(first.headers.get("x-ratelimit-limit-tokens"), "10");
    assert.equal(first.headers.get("x-ratelimit-remaining-tokens"), "10");
    assert.equal(first.headers.get("x-ratelimit-reset-tokens"), "0s");
    const { usage } = (await first.json()) as { usage: { total_tokens: number } };
    assert.equal(usage.total_tokens, 5, "3 prompt tokens and 2 generated ones");

    const streamed = await post("/v1/chat/completions", key, { ...openaiChat, stream: true });
    assert.equal(streamed.headers.get("x-ratelimit-remaining-tokens"), "5", "the first request's 5 tokens are spent");
    assert.equal(streamed.headers.get("x-ratelimit-reset-tokens"), "30s");
    assert.match(await streamed.text(), /\[DONE\]/);

    const refused = await post("/v1/chat/completions", key, openaiChat);
    assert.equal(refused.status, 429);
    assert.deepEqual(rateHeaders(refused), {
      "retry-after": "6",
      "retry-after-ms": "6000",
      "x-ratelimit-limit-requests": null,
      "x-ratelimit-limit-tokens": "10",
      "x-ratelimit-remaining-requests": null,
      "x-ratelimit-remaining-tokens": "0",
      "x-ratelimit-reset-tokens": "1m0s",
      "x-ratelimit-reset-requests": null,
    });
    const { error } = (await refused.json()) as { error: { message: string; code: string } };
    assert.equal(error.code, "rate_limited");
    assert.match(error.message, /rate limit of 10 tokens per minute reached for API key "\w+"; try again in 6s/);
    assert.equal(await rateLimitedCount("tpm"), before429 + 1);

    now += 6_000;
    const after = await post("/v1/chat/completions", key, openaiChat);
    assert.equal(after.status, 200, "one token back: the next request may run");
    assert.equal(after.headers.get("x-ratelimit-remaining-tokens"), "1");
  });

  test("a long generation overdraws the budget and the key waits until the debt is repaid", async () => {
    const key = await keyWith({ tpm: 10 });
    server.engine.script = { tokens: Array.from({ length: 27 }, () => "x ") };
    assert.equal((await post("/api/chat", key, ollamaChat)).status, 200);
    const refused = await post("/api/chat", key, ollamaChat);
    assert.equal(refused.status, 429);
    // 30 tokens spent of 10: 20 in debt, and one more needed, at 10 a minute
    assert.equal(refused.headers.get("retry-after-ms"), "126000");
    assert.equal(refused.headers.get("retry-after"), "126");
    assert.equal(refused.headers.get("x-ratelimit-reset-tokens"), "3m0s");
  });
});

describe("requests running at once", () => {
  test("max_parallel 1: an endless stream holds the slot after its handler returned; its client disconnecting frees it", async () => {
    const key = await keyWith({ maxParallel: 1 });
    server.engine.script = { tokens: ["tick "], endless: true, delayMs: 20 };
    const before429 = await rateLimitedCount("max_parallel");
    const client = new AbortController();
    const stream = await post("/v1/chat/completions", key, { ...openaiChat, stream: true }, { signal: client.signal });
    assert.match(await firstChunk(stream), /tick/);

    const refused = await post("/v1/chat/completions", key, openaiChat);
    assert.equal(refused.status, 429);
    assert.equal(refused.headers.get("retry-after"), "1");
    assert.equal(refused.headers.get("retry-after-ms"), "1000");
    const { error } = (await refused.json()) as { error: { message: string; type: string } };
    assert.equal(error.type, "rate_limit_error");
    assert.match(error.message, /already has 1 request\(s\) running, its max_parallel limit/);
    assert.equal(await rateLimitedCount("max_parallel"), before429 + 1);
    const other = await keyWith({ maxParallel: 1 }, "another");
    assert.equal((await post("/api/tags", other, {}, { method: "GET", body: null })).status, 200, "another key has its own slots");

    const abortsBefore = server.engine.aborts;
    client.abort();
    await server.engine.waitForAbort(abortsBefore + 1);
    server.engine.script = {};
    const next = await post("/v1/chat/completions", key, openaiChat);
    assert.equal(next.status, 200, `the slot is free again: ${next.status} ${await next.text()}`);
  });

  test("max_parallel 1: a stream that ends normally frees its slot; a refused request leaves nothing held", async () => {
    const key = await keyWith({ maxParallel: 1 });
    for (let i = 0; i < 3; i++) {
      const streamed = await post("/api/chat", key, { ...ollamaChat, stream: true });
      assert.equal(streamed.status, 200, `stream ${i}`);
      assert.match(await streamed.text(), /"done":true/);
    }
    for (let i = 0; i < 3; i++) {
      const failing = await post("/api/chat", key, { model: "absent", messages: user, stream: false });
      assert.equal(failing.status, 404, "an error response ends the request too");
    }
    assert.equal((await post("/api/chat", key, ollamaChat)).status, 200);
  });
});

describe("an open server", () => {
  let open: TestServer;
  let engine: FakeEngine;

  before(async () => {
    engine = new FakeEngine();
    open = await startServer({ engine, config: { openRpm: 3, openMaxParallel: 1, openTpm: 1_000_000 } });
    // The model goes in through the store, so that setting up spends none of the address's requests
    const file = path.join(open.home, "chat.gguf");
    await writeFakeModel(file);
    const { store } = open.app.services;
    await store.create({ name: "chat", modelDigest: (await store.blobs.importFile(file)).digest });
  });

  after(() => open.close());

  test("per client address from AI_SERVER_OPEN_RPM / _TPM / _MAX_PARALLEL, with the real clock", async () => {
    for (let i = 0; i < 5; i++) assert.equal((await fetch(`${open.baseUrl}/health`)).status, 200);
    engine.script = { tokens: ["tick "], endless: true, delayMs: 20 };
    const client = new AbortController();
    const stream = await postJson(open.baseUrl, "/api/chat", { model: "chat", messages: user }, { signal: client.signal });
    assert.match(await firstChunk(stream), /tick/);
    assert.equal(stream.headers.get("x-ratelimit-limit-requests"), "3");
    assert.equal(stream.headers.get("x-ratelimit-remaining-requests"), "2");
    assert.equal(stream.headers.get("x-ratelimit-limit-tokens"), "1000000");

    const parallel = await postJson(open.baseUrl, "/v1/chat/completions", openaiChat);
    assert.equal(parallel.status, 429);
    assert.match(((await parallel.json()) as { error: { message: string } }).error.message, /client [\d.:a-f]+ already has 1 request\(s\) running/);

    const abortsBefore = engine.aborts;
    client.abort();
    await engine.waitForAbort(abortsBefore + 1);
    engine.script = {};
    assert.equal((await postJson(open.baseUrl, "/v1/chat/completions", openaiChat)).status, 200, "request 2 of the minute");
    const third = await postJson(open.baseUrl, "/api/chat", ollamaChat);
    assert.equal(third.status, 200, "request 3");
    assert.equal(third.headers.get("x-ratelimit-remaining-requests"), "0");

    const fourth = await postJson(open.baseUrl, "/api/chat", ollamaChat);
    assert.equal(fourth.status, 429);
    const waitMs = Number(fourth.headers.get("retry-after-ms"));
    assert.ok(waitMs > 0 && waitMs <= 20_000, `one request back at 3 a minute: within 20 s (${waitMs} ms)`);
    assert.equal(fourth.headers.get("retry-after"), String(Math.ceil(waitMs / 1000)));
    assert.match(((await fourth.json()) as { error: string }).error, /rate limit of 3 requests per minute reached for client/);
  });
});
