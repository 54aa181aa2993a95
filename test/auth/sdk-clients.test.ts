/**
 * The SDKs as users run them against a server that requires keys: the `openai` and `@anthropic-ai/sdk` clients with
 * `apiKey` set work, and a bad key raises their own AuthenticationError (a scope too narrow their
 * PermissionDeniedError). Fake engine: this is HTTP behaviour.
 */
import Anthropic from "@anthropic-ai/sdk";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { after, before, test } from "node:test";
import { startFakeServer, type FakeServer } from "../helpers/fake-server.js";

let server: FakeServer;
let key: string;
let limited: string;

before(async () => {
  server = await startFakeServer();
  key = (await server.app.services.keys.create({ name: "sdk", scope: "inference" })).key;
  limited = (await server.app.services.keys.create({ name: "chat only", scope: "inference", models: ["chat"] })).key;
});

after(async () => {
  await server.close();
});

test("openai: apiKey works on chat, embeddings and models; a bad or revoked key raises AuthenticationError", async () => {
  const openai = new OpenAI({ baseURL: `${server.baseUrl}/v1`, apiKey: key, maxRetries: 0 });
  const completion = await openai.chat.completions.create({ model: "chat", messages: [{ role: "user", content: "Hi" }] });
  assert.equal(completion.choices[0]?.message.content, "Hello world");
  const embedding = await openai.embeddings.create({ model: "embedder", input: "Hi" });
  assert.ok((embedding.data[0]?.embedding.length ?? 0) > 0);
  assert.ok((await openai.models.list()).data.length >= 3);

  const bad = new OpenAI({ baseURL: `${server.baseUrl}/v1`, apiKey: "sk-wrong", maxRetries: 0 });
  await assert.rejects(bad.chat.completions.create({ model: "chat", messages: [{ role: "user", content: "Hi" }] }), (error: unknown) => {
    assert.ok(error instanceof OpenAI.AuthenticationError, String(error));
    assert.equal(error.status, 401);
    assert.equal(error.code, "unauthorized");
    return true;
  });
});

test("openai: a key limited to one model lists only it and gets NotFoundError for another", async () => {
  const openai = new OpenAI({ baseURL: `${server.baseUrl}/v1`, apiKey: limited, maxRetries: 0 });
  assert.deepEqual((await openai.models.list()).data.map((m) => m.id), ["chat:latest"]);
  await assert.rejects(openai.embeddings.create({ model: "embedder", input: "Hi" }), OpenAI.NotFoundError);
  await assert.rejects(openai.models.retrieve("embedder"), OpenAI.NotFoundError);
});

test("anthropic: apiKey (sent as x-api-key) works on messages and count_tokens; a bad key raises AuthenticationError", async () => {
  const anthropic = new Anthropic({ baseURL: server.baseUrl, apiKey: key, maxRetries: 0 });
  const message = await anthropic.messages.create({ model: "chat", max_tokens: 32, messages: [{ role: "user", content: "Hi" }] });
  assert.equal(message.content[0]?.type === "text" && message.content[0].text, "Hello world");
  const counted = await anthropic.messages.countTokens({ model: "chat", messages: [{ role: "user", content: "Hi" }] });
  assert.ok(counted.input_tokens > 0);

  const bad = new Anthropic({ baseURL: server.baseUrl, apiKey: "sk-ant-wrong", maxRetries: 0 });
  await assert.rejects(bad.messages.create({ model: "chat", max_tokens: 32, messages: [{ role: "user", content: "Hi" }] }), (error: unknown) => {
    assert.ok(error instanceof Anthropic.AuthenticationError, String(error));
    assert.equal(error.status, 401);
    return true;
  });
  // Claude Code's way: the key as a bearer token (ANTHROPIC_AUTH_TOKEN)
  const bearer = new Anthropic({ baseURL: server.baseUrl, apiKey: null, authToken: key, maxRetries: 0 });
  assert.equal((await bearer.messages.countTokens({ model: "chat", messages: [{ role: "user", content: "Hi" }] })).input_tokens, counted.input_tokens);
});

test("anthropic: a key limited to one model gets NotFoundError for another", async () => {
  const anthropic = new Anthropic({ baseURL: server.baseUrl, apiKey: limited, maxRetries: 0 });
  await assert.rejects(anthropic.messages.create({ model: "fim", max_tokens: 8, messages: [{ role: "user", content: "Hi" }] }), Anthropic.NotFoundError);
});
