/**
 * The SDKs' own retry on a 429: the `openai` and `@anthropic-ai/sdk` clients wait as Retry-After / retry-after-ms say
 * and succeed once the key's budget is back, and with retries off they raise their RateLimitError carrying the
 * headers. The limits count over a 4-second "minute" (the counter's window option), so that the test waits seconds;
 * their exponential backoff alone (0.5 s, then 1 s) would not last that long, so a success proves the headers were
 * honoured. Fake engine: HTTP behaviour.
 */
import Anthropic from "@anthropic-ai/sdk";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { after, before, test } from "node:test";
import { MemoryLimitCounter } from "../../src/limits/memory-limit-counter.js";
import { startFakeServer, type FakeServer } from "../helpers/fake-server.js";

const WINDOW_MS = 4000;
const messages = [{ role: "user" as const, content: "Hi" }];

let server: FakeServer;

/** fetch, recording each answer's status and retry-after-ms as the SDK receives them. */
function recordingFetch(seen: Array<{ status: number; retryAfterMs: string | null }>): typeof fetch {
  return async (input, init) => {
    const response = await fetch(input, init);
    seen.push({ status: response.status, retryAfterMs: response.headers.get("retry-after-ms") });
    return response;
  };
}

before(async () => {
  server = await startFakeServer();
  server.app.services.limits = new MemoryLimitCounter({ windowMs: WINDOW_MS });
});

after(() => server.close());

test("openai: a 429 is retried after Retry-After and succeeds; without retries it is a RateLimitError with the headers", async () => {
  const key = (await server.app.services.keys.create({ name: "one a window", scope: "inference", limits: { rpm: 1 } })).key;
  const seen: Array<{ status: number; retryAfterMs: string | null }> = [];
  const openai = new OpenAI({ baseURL: `${server.baseUrl}/v1`, apiKey: key, fetch: recordingFetch(seen) });
  assert.equal((await openai.chat.completions.create({ model: "chat", messages })).choices[0]?.message.content, "Hello world");

  const impatient = new OpenAI({ baseURL: `${server.baseUrl}/v1`, apiKey: key, maxRetries: 0 });
  await assert.rejects(impatient.chat.completions.create({ model: "chat", messages }), (error: unknown) => {
    assert.ok(error instanceof OpenAI.RateLimitError, String(error));
    assert.equal(error.status, 429);
    assert.equal(error.code, "rate_limited");
    assert.equal(error.type, "rate_limit_error");
    assert.equal(error.headers.get("x-ratelimit-limit-requests"), "1");
    assert.equal(error.headers.get("x-ratelimit-remaining-requests"), "0");
    assert.ok(Number(error.headers.get("retry-after-ms")) > 0);
    return true;
  });

  const completion = await openai.chat.completions.create({ model: "chat", messages });
  assert.equal(completion.choices[0]?.message.content, "Hello world", "the retry succeeded");
  const refusals = seen.filter((s) => s.status === 429);
  assert.ok(refusals.length >= 1 && refusals.length <= 2, `429s seen by the SDK: ${JSON.stringify(seen)}`);
  assert.ok(Number(refusals[0]?.retryAfterMs) > 1500, `a wait longer than the SDK's own backoff: ${JSON.stringify(seen)}`);
  assert.equal(seen.at(-1)?.status, 200);
});

test("anthropic: a 429 is retried after retry-after-ms and succeeds", async () => {
  const key = (await server.app.services.keys.create({ name: "one a window too", scope: "inference", limits: { rpm: 1 } })).key;
  const seen: Array<{ status: number; retryAfterMs: string | null }> = [];
  const anthropic = new Anthropic({ baseURL: server.baseUrl, apiKey: key, fetch: recordingFetch(seen) });
  await anthropic.messages.create({ model: "chat", max_tokens: 16, messages });
  const message = await anthropic.messages.create({ model: "chat", max_tokens: 16, messages });
  assert.equal(message.content[0]?.type === "text" && message.content[0].text, "Hello world");
  assert.ok(seen.some((s) => s.status === 429), `a 429 was retried: ${JSON.stringify(seen)}`);
  assert.equal(seen.at(-1)?.status, 200);
});
