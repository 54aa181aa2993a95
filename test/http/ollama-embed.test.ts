import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { EmbedRequest } from "../../src/domain/embedding.js";
import { startFakeServer, type FakeServer } from "../helpers/fake-server.js";
import { postJson } from "../helpers/start-server.js";

// HTTP behaviour of /api/embed and /api/embeddings on the fake engine; real vectors are in real-inference.test.ts.
let server: FakeServer;
before(async () => {
  server = await startFakeServer();
});
after(() => server.close());

test("/api/embed: a string or a list of strings, one vector each, with durations and token count", async () => {
  const one = (await (await postJson(server.baseUrl, "/api/embed", { model: "embedder", input: "hello" })).json()) as Record<string, unknown>;
  assert.equal(one.model, "embedder");
  assert.equal((one.embeddings as number[][]).length, 1);
  assert.ok(Number.isInteger(one.total_duration) && Number.isInteger(one.load_duration));
  assert.equal(one.prompt_eval_count, 1);
  const many = (await (await postJson(server.baseUrl, "/api/embed", { model: "embedder", input: ["a", "b c"], dimensions: 2, truncate: false })).json()) as Record<string, unknown>;
  assert.equal((many.embeddings as number[][]).length, 2);
  assert.equal((many.embeddings as number[][])[0]?.length, 2);
  assert.deepEqual(server.engine.last("embed"), { inputs: ["a", "b c"], truncate: false, dimensions: 2 } satisfies EmbedRequest);
});

test("/api/embed: truncate defaults to true; empty input answers embeddings: []", async () => {
  await postJson(server.baseUrl, "/api/embed", { model: "embedder", input: ["x"] });
  assert.equal(server.engine.last("embed")?.truncate, true);
  for (const input of [[], "", undefined]) {
    const body = (await (await postJson(server.baseUrl, "/api/embed", { model: "embedder", input })).json()) as Record<string, unknown>;
    assert.deepEqual(body.embeddings, [], JSON.stringify(input));
  }
});

test("/api/embed: chat models may embed; bad input types are 400; unknown models 404", async () => {
  const chat = await postJson(server.baseUrl, "/api/embed", { model: "chat", input: "hi" });
  assert.equal(chat.status, 200);
  const bad = await postJson(server.baseUrl, "/api/embed", { model: "embedder", input: 42 });
  assert.equal(bad.status, 400);
  assert.deepEqual(await bad.json(), { error: "input: expected a string or an array of strings" });
  assert.equal((await postJson(server.baseUrl, "/api/embed", { model: "nope", input: "x" })).status, 404);
});

test("/api/embeddings (legacy): {embedding: [...]}; empty prompt → []", async () => {
  const body = (await (await postJson(server.baseUrl, "/api/embeddings", { model: "embedder", prompt: "hello" })).json()) as Record<string, unknown>;
  assert.deepEqual(Object.keys(body), ["embedding"]);
  assert.equal((body.embedding as number[]).length, 4);
  const empty = (await (await postJson(server.baseUrl, "/api/embeddings", { model: "embedder", prompt: "" })).json()) as Record<string, unknown>;
  assert.deepEqual(empty, { embedding: [] });
});
