import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startFakeServer, type FakeServer } from "../helpers/fake-server.js";
import { postJson } from "../helpers/start-server.js";

let server: FakeServer;
before(async () => {
  server = await startFakeServer({ bodyLimitBytes: 4096 });
});
after(() => server.close());

test("GET and HEAD / say Ollama is running, as text/plain", async () => {
  const get = await fetch(`${server.baseUrl}/`);
  assert.equal(get.status, 200);
  assert.match(get.headers.get("content-type") ?? "", /^text\/plain/);
  assert.equal(await get.text(), "Ollama is running");
  const head = await fetch(`${server.baseUrl}/`, { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(await head.text(), "");
});

test("GET and HEAD /api/version give a realistic semver", async () => {
  const response = await fetch(`${server.baseUrl}/api/version`);
  assert.equal(response.status, 200);
  const { version } = (await response.json()) as { version: string };
  assert.match(version, /^0\.\d+\.\d+$/);
  assert.equal((await fetch(`${server.baseUrl}/api/version`, { method: "HEAD" })).status, 200);
});

test("an unknown route is a JSON 404", async () => {
  const response = await fetch(`${server.baseUrl}/api/nope`);
  assert.equal(response.status, 404);
  assert.match(response.headers.get("content-type") ?? "", /application\/json/);
  assert.deepEqual(await response.json(), { error: "GET /api/nope not found" });
});

test("curl -d bodies (application/x-www-form-urlencoded) and bodies without a content type are parsed as JSON", async () => {
  const variants: Array<Record<string, string>> = [{ "content-type": "application/x-www-form-urlencoded" }, { "content-type": "text/plain" }, {}];
  for (const headers of variants) {
    const response = await fetch(`${server.baseUrl}/api/show`, { method: "POST", headers, body: JSON.stringify({ model: "chat" }) });
    assert.equal(response.status, 200, JSON.stringify(headers));
  }
});

test("malformed JSON, a missing body and a non-object body are 400 with a JSON error", async () => {
  const cases: Array<[RequestInit, string]> = [
    [{ body: "{not json", headers: { "content-type": "application/json" } }, "invalid JSON in request body"],
    [{ body: "{not json" }, "invalid JSON in request body"],
    [{ body: "", headers: { "content-type": "application/json" } }, "missing request body"],
    [{}, "missing request body"],
    [{ body: "[1,2]", headers: { "content-type": "application/json" } }, "request body must be a JSON object"],
    [{ body: '{"__proto__": {"polluted": true}}', headers: { "content-type": "application/json" } }, "invalid JSON in request body"],
  ];
  for (const [init, error] of cases) {
    const response = await fetch(`${server.baseUrl}/api/generate`, { method: "POST", ...init });
    assert.equal(response.status, 400, JSON.stringify(init));
    assert.match(response.headers.get("content-type") ?? "", /application\/json/);
    assert.deepEqual(await response.json(), { error }, JSON.stringify(init));
  }
});

test("a JSON body over the limit is 413, and the server keeps serving", async () => {
  const response = await postJson(server.baseUrl, "/api/generate", { model: "chat", prompt: "x".repeat(10_000) });
  assert.equal(response.status, 413);
  assert.deepEqual(await response.json(), { error: "request body is too large" });
  assert.equal((await fetch(`${server.baseUrl}/api/version`)).status, 200);
});

test("wrong types name the field; unknown models are 404 and invalid names 400", async () => {
  const wrongType = await postJson(server.baseUrl, "/api/generate", { model: "chat", prompt: "x", options: { temperature: "hot" } });
  assert.equal(wrongType.status, 400);
  assert.match(((await wrongType.json()) as { error: string }).error, /^options\.temperature: /);
  const unknown = await postJson(server.baseUrl, "/api/generate", { model: "missing", prompt: "x" });
  assert.equal(unknown.status, 404);
  assert.deepEqual(await unknown.json(), { error: 'model "missing" not found, try pulling it first' });
  const invalid = await postJson(server.baseUrl, "/api/chat", { model: "../etc/passwd", messages: [] });
  assert.equal(invalid.status, 400);
  assert.match(((await invalid.json()) as { error: string }).error, /^invalid model name/);
  const noModel = await postJson(server.baseUrl, "/api/chat", { messages: [] });
  assert.equal(noModel.status, 400);
  assert.deepEqual(await noModel.json(), { error: "model is required" });
});
