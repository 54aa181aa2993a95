/**
 * Every request has an id (the client's x-request-id when sane, else a new one) sent back in `x-request-id`, and a
 * context that follows it into generation: the tokens it spent and the model it used are known when it ends, on
 * every protocol. Fake engine: no inference needed.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { workDone, type RequestContext } from "../../src/inference/request-context.js";
import { FakeEngine } from "../helpers/fake-engine.js";
import { writeFakeModel } from "../helpers/gguf-files.js";
import { createModel, postJson, startServer, type TestServer } from "../helpers/start-server.js";
import path from "node:path";

let server: TestServer;
const engine = new FakeEngine();
const seen: { url: string; context: RequestContext }[] = [];

before(async () => {
  server = await startServer({
    engine,
    // On the response's close, as the rate limits and the audit log see it (it fires too when the client leaves).
    beforeListen: (app) =>
      app.http.addHook("onRequest", async (request, reply) => {
        reply.raw.once("close", () => void seen.push({ url: request.url, context: request.requestContext }));
      }),
  });
  const file = path.join(server.home, "chat.gguf");
  await writeFakeModel(file);
  await createModel(server.baseUrl, "chat", file);
});

after(async () => {
  await server.close();
});

test("a sane x-request-id is kept and echoed; anything else gets a fresh id", async () => {
  const kept = await fetch(`${server.baseUrl}/api/version`, { headers: { "x-request-id": "trace-42.a:b" } });
  assert.equal(kept.headers.get("x-request-id"), "trace-42.a:b");
  const replaced = await fetch(`${server.baseUrl}/api/version`, { headers: { "x-request-id": "bad id\twith spaces" } });
  assert.match(replaced.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
  const fresh = await fetch(`${server.baseUrl}/api/version`);
  assert.match(fresh.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
});

test("the request's context knows the model and the tokens spent, streamed or not, on both APIs", async () => {
  seen.length = 0;
  await (await postJson(server.baseUrl, "/api/chat", { model: "chat", messages: [{ role: "user", content: "Hi" }] })).text();
  await (await postJson(server.baseUrl, "/v1/chat/completions", { model: "chat", n: 2, messages: [{ role: "user", content: "Hi" }] })).text();
  await new Promise((resolve) => setTimeout(resolve, 50)); // the close events of both responses
  const chat = seen.find((s) => s.url === "/api/chat")?.context;
  const openai = seen.find((s) => s.url === "/v1/chat/completions")?.context;
  assert.equal(chat?.model, "chat:latest");
  assert.ok((chat?.usage.completionTokens ?? 0) > 0, "tokens counted");
  assert.equal(openai?.usage.completionTokens, 2 * (chat?.usage.completionTokens ?? 0), "both choices counted");
  assert.equal(chat?.principal.keyId, null, "anonymous on an open server");
});

test("embeddings charge the tokens they read; a stream the client leaves is charged what it was sent", async () => {
  seen.length = 0;
  await (await postJson(server.baseUrl, "/api/embed", { model: "chat", input: ["one two three"] })).text();
  await (await postJson(server.baseUrl, "/v1/embeddings", { model: "chat", input: "one two", encoding_format: "float" })).text();
  assert.ok((seen.find((s) => s.url === "/api/embed")?.context.usage.promptTokens ?? 0) > 0);
  assert.ok((seen.find((s) => s.url === "/v1/embeddings")?.context.usage.promptTokens ?? 0) > 0);

  engine.script = { endless: true, delayMs: 5 };
  const abort = new AbortController();
  const response = await postJson(server.baseUrl, "/api/chat", { model: "chat", messages: [{ role: "user", content: "Hi" }] }, { signal: abort.signal });
  const reader = response.body!.getReader();
  await reader.read(); // the first line: some output was sent
  abort.abort();
  await reader.read().catch(() => undefined);
  for (let i = 0; i < 100 && !seen.some((s) => s.url === "/api/chat"); i++) await new Promise((r) => setTimeout(r, 20));
  const cut = seen.find((s) => s.url === "/api/chat")?.context;
  engine.script = {};
  if (cut) await workDone(cut); // the generation stops just after the client's close, then counts what it spent
  assert.ok((cut?.usage.completionTokens ?? 0) > 0, "the pieces already sent are counted");
});
