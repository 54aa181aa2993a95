/**
 * Stored Responses API responses belong to the key that made them: another key finds none (not by GET, DELETE,
 * previous_response_id nor item_reference), as if they did not exist; an admin key not limited to models sees them.
 * Fake engine: this is HTTP behaviour.
 */
import assert from "node:assert/strict";
import OpenAI from "openai";
import { after, before, test } from "node:test";
import { startFakeServer, type FakeServer } from "../helpers/fake-server.js";

let server: FakeServer;
let owner: OpenAI;
let other: OpenAI;
let admin: OpenAI;

const client = (apiKey: string): OpenAI => new OpenAI({ baseURL: `${server.baseUrl}/v1`, apiKey, maxRetries: 0 });

before(async () => {
  server = await startFakeServer();
  const keys = server.app.services.keys;
  owner = client((await keys.create({ name: "owner", scope: "inference" })).key);
  other = client((await keys.create({ name: "other", scope: "inference" })).key);
  admin = client((await keys.create({ name: "admin", scope: "admin" })).key);
});

after(async () => {
  await server.close();
});

const notFound = (error: unknown): boolean => error instanceof OpenAI.NotFoundError;

test("another key cannot read, continue, reference or delete a key's stored response; the owner and an admin can", async () => {
  const response = await owner.responses.create({ model: "chat", input: "Hi" });
  const itemId = response.output[0]!.id!;

  await assert.rejects(other.responses.retrieve(response.id), notFound);
  await assert.rejects(other.responses.create({ model: "chat", input: "More", previous_response_id: response.id }), notFound);
  await assert.rejects(other.responses.create({ model: "chat", input: [{ type: "item_reference", id: itemId }] }), notFound);
  await assert.rejects(other.responses.delete(response.id), notFound);

  assert.equal((await owner.responses.retrieve(response.id)).id, response.id);
  const continued = await owner.responses.create({ model: "chat", input: [{ type: "item_reference", id: itemId }, { role: "user", content: "More" }], previous_response_id: response.id });
  assert.equal(continued.status, "completed");
  assert.equal((await admin.responses.retrieve(continued.id)).id, continued.id, "an admin key sees every response");
  await owner.responses.delete(response.id);
  await assert.rejects(owner.responses.retrieve(response.id), notFound);
});
