/**
 * Two real replicas (the whole app, each on its own home and port) on one real PostgreSQL (AI_SERVER_DATABASE_URL):
 * whatever one of them changes, the other serves on its very next request — models, keys and their revocation,
 * stored Responses and their continuation, the audit log, pull jobs with their progress. The engine is the fake one
 * (no answer here depends on inference); the Hub and CDN of the pull are the fakes on loopback.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { PULL_REPOS } from "../fixtures/pull-fixtures.js";
import { FakeEngine } from "../helpers/fake-engine.js";
import { startFakeInternet, type FakeInternet } from "../helpers/fake-internet.js";
import { writeFakeModel } from "../helpers/gguf-files.js";
import { postgresSkipReason } from "../helpers/postgres-server.js";
import { sha256File, startServer, type TestServer } from "../helpers/start-server.js";
import { TestDatabases } from "../helpers/test-databases.js";
import { filesIn, PULL_TEST_SETTINGS, waitFor } from "../pull/pull-helpers.js";
import { dataPaths } from "../../src/store/open-store.js";

const ADMIN = "shared-state-admin-key-0123456789abcdefghijklmnop";
const skip = postgresSkipReason() ?? false;

interface Replica extends TestServer {
  engine: FakeEngine;
}

const databases = new TestDatabases();
let internet: FakeInternet;
let a: Replica;
let b: Replica;

async function startReplica(databaseUrl: string): Promise<Replica> {
  const engine = new FakeEngine();
  const server = await startServer({ engine, config: { databaseUrl, adminKey: ADMIN, ...internet.config, ...PULL_TEST_SETTINGS } });
  return { ...server, engine };
}

/** A request with a key (the admin's unless another is given); the answer's status and JSON body. */
async function call(replica: TestServer, method: string, route: string, body?: unknown, key = ADMIN): Promise<{ status: number; body: any }> {
  const response = await fetch(`${replica.baseUrl}${route}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined && { "content-type": "application/json" }) },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text === "" ? undefined : (JSON.parse(text) as unknown) };
}

/** Puts a file's bytes in a replica's blob store (each replica keeps its own weights). */
async function upload(replica: TestServer, file: string): Promise<string> {
  const digest = await sha256File(file);
  const response = await fetch(`${replica.baseUrl}/api/blobs/${digest}`, { method: "POST", headers: { authorization: `Bearer ${ADMIN}` }, body: await readFile(file) });
  assert.ok(response.status === 201 || response.status === 200, `upload: ${response.status}`);
  return digest;
}

const names = async (replica: TestServer): Promise<string[]> => (await call(replica, "GET", "/api/tags")).body.models.map((m: { name: string }) => m.name);

describe("two replicas on one PostgreSQL", { skip }, () => {
  before(async () => {
    internet = await startFakeInternet();
    const { url } = await databases.target("postgres");
    a = await startReplica(url ?? "");
    b = await startReplica(url ?? "");
    // Both replicas hold the same weights (each has its own blob store); the name is created on A only
    const file = path.join(a.home, "chat.gguf");
    await writeFakeModel(file);
    await upload(a, file);
    await upload(b, file);
    const created = await call(a, "POST", "/api/create", { model: "chat", files: { "model.gguf": await sha256File(file) }, stream: false });
    assert.equal(created.status, 200);
  });

  after(async () => {
    await a?.close();
    await b?.close();
    await internet?.close();
    await databases.close();
  });

  test("a model created, copied or deleted on A is listed, shown and served by B on its next request", async () => {
    assert.deepEqual(await names(b), ["chat:latest"]);
    const shown = await call(b, "POST", "/api/show", { model: "chat" });
    assert.equal(shown.status, 200);
    const chat = await call(b, "POST", "/api/chat", { model: "chat", messages: [{ role: "user", content: "Hi" }], stream: false });
    assert.equal(chat.status, 200);
    assert.equal(chat.body.message.content, "Hello world");
    assert.equal(b.engine.requests.length, 1, "B served it");

    assert.equal((await call(a, "POST", "/api/copy", { source: "chat", destination: "Copy" })).status, 200);
    assert.deepEqual((await names(b)).sort(), ["Copy:latest", "chat:latest"]);
    assert.equal((await call(a, "DELETE", "/api/delete", { model: "COPY" })).status, 200);
    assert.deepEqual(await names(b), ["chat:latest"]);
    assert.equal((await call(b, "POST", "/api/show", { model: "copy" })).status, 404);
  });

  test("a key created on A authenticates on B at once; revoked on A, it gets 401 on B from the very next request", async () => {
    const created = await call(a, "POST", "/api/keys", { name: "app", scope: "inference" });
    assert.equal(created.status, 201);
    const key = created.body.key as string;
    assert.equal((await call(b, "GET", "/api/tags", undefined, key)).status, 200);
    assert.deepEqual((await call(b, "GET", "/api/keys")).body.keys.map((k: { name: string }) => k.name).sort(), ["admin (AI_SERVER_ADMIN_KEY)", "app"]);
    assert.equal((await call(a, "DELETE", `/api/keys/${created.body.id}`)).status, 200);
    const refused = await call(b, "GET", "/api/tags", undefined, key);
    assert.equal(refused.status, 401);
    assert.match(refused.body.error, /was revoked/);
  });

  test("a Response stored on A is read on B and continued there (previous_response_id), and each sees the other's", async () => {
    const onA = new OpenAI({ baseURL: `${a.baseUrl}/v1`, apiKey: ADMIN, maxRetries: 0 });
    const onB = new OpenAI({ baseURL: `${b.baseUrl}/v1`, apiKey: ADMIN, maxRetries: 0 });
    const first = await onA.responses.create({ model: "chat", input: "Remember the word 'teal'." });
    assert.equal((await onB.responses.retrieve(first.id)).id, first.id);
    b.engine.script = { tokens: ["It was teal."] };
    const second = await onB.responses.create({ model: "chat", input: "Which word?", previous_response_id: first.id });
    const conversation = b.engine.last("chat")?.messages.map((m) => ("content" in m ? m.content : ""));
    assert.deepEqual(conversation, ["Remember the word 'teal'.", "Hello world", "Which word?"], "B continued A's conversation");
    assert.equal((await onA.responses.retrieve(second.id)).output_text, "It was teal.");
    await onA.responses.delete(second.id);
    await assert.rejects(onB.responses.retrieve(second.id), (error: unknown) => error instanceof OpenAI.NotFoundError);
  });

  test("the audit log written by both replicas is read from either", async () => {
    const marker = `audit-${Date.now()}`;
    await fetch(`${a.baseUrl}/api/tags`, { headers: { authorization: `Bearer ${ADMIN}`, "x-request-id": `${marker}-a` } });
    await fetch(`${b.baseUrl}/api/tags`, { headers: { authorization: `Bearer ${ADMIN}`, "x-request-id": `${marker}-b` } });
    // Each replica writes its rows in batches (within 100 ms); a read writes its own replica's queue first
    for (const reader of [a, b]) {
      await waitFor("both replicas' rows", async () => {
        const ids = (await call(reader, "GET", "/api/audit?route=/api/tags&limit=1000")).body.entries.map((e: { request_id: string }) => e.request_id);
        return ids.includes(`${marker}-a`) && ids.includes(`${marker}-b`);
      });
    }
  });

  test("a pull started on A is listed with its progress on B, followed to its end there, and its model is B's too", async () => {
    const file = internet.hub.file(PULL_REPOS.multi, "multi-F16.gguf");
    assert.ok(file);
    internet.cdn.setFaults({ bytesPerSecond: 200_000 }, file.sha256);
    const started = await call(a, "POST", "/api/jobs", { type: "pull", model: "owner/Multi-GGUF:F16" });
    assert.equal(started.status, 202);
    const id = started.body.id as string;
    assert.equal((await call(b, "GET", `/api/jobs/${id}`)).status, 200, "listed on B as soon as A answered");
    await waitFor("progress on B", async () => {
      const job = (await call(b, "GET", "/api/jobs")).body.jobs.find((j: { id: string }) => j.id === id);
      return job?.state === "running" && job.files.some((f: { completed: number }) => f.completed > 0);
    });
    // B's event stream follows the job that A runs, to its end
    const events = fetch(`${b.baseUrl}/api/jobs/${id}/events`, { headers: { authorization: `Bearer ${ADMIN}` } }).then((r) => r.text());
    internet.cdn.clearFaults();
    const text = await events;
    assert.match(text.trim().split("\n\n").at(-1) ?? "", /"state":"succeeded"/);
    assert.equal((await call(b, "GET", `/api/jobs/${id}`)).body.state, "succeeded");
    assert.ok((await names(b)).includes("owner/Multi-GGUF:F16"));
  });

  test("a pull cancelled on B stops on A, which runs it, and its partial data there is removed", async () => {
    const file = internet.hub.file(PULL_REPOS.multi, "multi-Q8_0.gguf");
    assert.ok(file);
    internet.cdn.setFaults({ bytesPerSecond: 100_000 }, file.sha256);
    try {
      const started = await call(a, "POST", "/api/jobs", { type: "pull", model: "owner/Multi-GGUF:Q8_0" });
      const id = started.body.id as string;
      await waitFor("the download on A", async () => (await call(a, "GET", `/api/jobs/${id}`)).body.files?.some((f: { completed: number }) => f.completed > 0) === true);
      assert.equal((await call(b, "DELETE", `/api/jobs/${id}`)).status, 200);
      assert.equal((await call(b, "GET", `/api/jobs/${id}`)).status, 404);
      await waitFor("A to stop it", async () => (await call(a, "GET", `/api/jobs/${id}`)).status === 404);
      assert.ok(!(await names(a)).includes("owner/Multi-GGUF:Q8_0"));
      const left = await filesIn(dataPaths(a.home).downloads);
      assert.ok(!left.some((name) => name.includes(file.sha256.replace(/^sha256:/, ""))), `partial data left: ${left.join(", ")}`);
    } finally {
      internet.cdn.clearFaults();
    }
  });
});
