import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import OpenAI from "openai";
import { startFakeServer, type FakeServer } from "../helpers/fake-server.js";
import { postJson } from "../helpers/start-server.js";

// GET /v1/models and /v1/models/{id} through the openai client; listing needs no inference (fake engine).
let server: FakeServer;
let openai: OpenAI;
before(async () => {
  server = await startFakeServer({ aliases: "gpt-4o=chat" });
  openai = new OpenAI({ baseURL: `${server.baseUrl}/v1`, apiKey: "unused", maxRetries: 0 });
  for (const destination of ["hf.co/someone/Some-Repo-GGUF:Q4_K_M", "team/coder:v1"]) {
    const response = await postJson(server.baseUrl, "/api/copy", { source: "chat", destination });
    assert.equal(response.status, 200);
  }
});
after(() => server.close());

test("models.list: every model in the store as {id, object, created, owned_by}", async () => {
  const models = [];
  for await (const model of openai.models.list()) models.push(model);
  const byId = new Map(models.map((m) => [m.id, m]));
  assert.deepEqual([...byId.keys()].sort(), ["chat:latest", "embedder:latest", "fim:latest", "hf.co/someone/Some-Repo-GGUF:Q4_K_M", "team/coder:v1"]);
  assert.equal(byId.get("team/coder:v1")?.owned_by, "team");
  assert.equal(byId.get("hf.co/someone/Some-Repo-GGUF:Q4_K_M")?.owned_by, "someone");
  assert.equal(byId.get("chat:latest")?.owned_by, "library");
  for (const model of models) {
    assert.equal(model.object, "model");
    assert.ok(Number.isInteger(model.created) && Math.abs(model.created - Date.now() / 1000) < 3600, "created is unix seconds");
  }
  const raw = (await (await fetch(`${server.baseUrl}/v1/models`)).json()) as { object: string };
  assert.equal(raw.object, "list");
});

test("models.retrieve: one model by any name that reaches it (slashes, colons, no tag, an alias); 404 otherwise", async () => {
  for (const id of ["hf.co/someone/Some-Repo-GGUF:Q4_K_M", "team/coder:v1", "chat", "chat:latest", "gpt-4o"]) {
    const model = await openai.models.retrieve(id);
    assert.equal(model.id, id);
    assert.equal(model.object, "model");
  }
  const unencoded = await fetch(`${server.baseUrl}/v1/models/hf.co/someone/Some-Repo-GGUF:Q4_K_M`);
  assert.equal(unencoded.status, 200, "the id may also come unencoded");
  for (const id of ["missing", "team/missing:v1", "..%2F..%2Fetc"]) {
    await assert.rejects(openai.models.retrieve(id), (error: unknown) => {
      assert.ok(error instanceof OpenAI.NotFoundError, `${id}: ${String(error)}`);
      assert.equal(error.code, "model_not_found");
      return true;
    });
  }
});
