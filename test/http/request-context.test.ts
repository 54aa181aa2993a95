/**
 * Every request has an id (the client's x-request-id when sane, else a new one) sent back in `x-request-id`, and a
 * context that follows it into generation: the tokens it spent and the model it used are known when it ends, on
 * every protocol. Fake engine: no inference needed.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { RequestContext } from "../../src/inference/request-context.js";
import { FakeEngine } from "../helpers/fake-engine.js";
import { writeFakeModel } from "../helpers/gguf-files.js";
import { createModel, postJson, startServer, type TestServer } from "../helpers/start-server.js";
import path from "node:path";

let server: TestServer;
const seen: { url: string; context: RequestContext }[] = [];

before(async () => {
  server = await startServer({
    engine: new FakeEngine(),
    beforeListen: (app) => app.http.addHook("onResponse", async (request) => void seen.push({ url: request.url, context: request.requestContext })),
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
  const chat = seen.find((s) => s.url === "/api/chat")?.context;
  const openai = seen.find((s) => s.url === "/v1/chat/completions")?.context;
  assert.equal(chat?.model, "chat:latest");
  assert.ok((chat?.usage.completionTokens ?? 0) > 0, "tokens counted");
  assert.equal(openai?.usage.completionTokens, 2 * (chat?.usage.completionTokens ?? 0), "both choices counted");
  assert.equal(chat?.principal.keyId, null, "anonymous on an open server");
});
