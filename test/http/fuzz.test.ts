/**
 * Fuzzing every route the server registers with malformed requests: bad JSON, wrong types, bodies near and past the
 * body limit, 10,000-level nesting, odd model names (`..`, `/`, NUL, 10k characters, RTL marks), bytes that are not
 * UTF-8 in bodies and header values, odd Content-Type and Content-Encoding values, bodies trickled byte by byte or cut
 * off, methods a route does not have, query strings everywhere, and raw HTTP node:http would not send. Every answer
 * must be a 4xx with a JSON error in the route's protocol shape (a 2xx only where the request is valid by chance:
 * the route's own schema accepts it), never a 5xx, a silence or a dropped connection; the process must not crash or
 * leak a rejection; afterwards normal requests succeed and no stray file is left in AI_SERVER_HOME. Then a smaller
 * run with keys on (401/403 paths), and a few hundred requests at `ai-server serve` as a child process.
 *
 * The server is real (port 0); the engine is the fake one (this is HTTP behaviour, no inference is needed), bounded
 * where the real engines are (fuzz-engine.ts). The generator is seeded: a failure names the seed and the request.
 */
import assert from "node:assert/strict";
import { Agent, createServer, request, type IncomingHttpHeaders, type Server } from "node:http";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import { routeAccess } from "../../src/auth/route-access.js";
import { generateCases, type FuzzCase } from "../helpers/fuzz-cases.js";
import { FuzzClient, problemWith, runAll, type FuzzResult } from "../helpers/fuzz-client.js";
import { BoundedFakeEngine } from "../helpers/fuzz-engine.js";
import { reject, type Expectation } from "../helpers/fuzz-oracle.js";
import { Random } from "../helpers/fuzz-random.js";
import { fuzzRoutes, protocolOf } from "../helpers/fuzz-routes.js";
import { writeFakeModel } from "../helpers/gguf-files.js";
import { startServeProcess } from "../helpers/serve-process.js";
import { createModel, postJson, startServer, type TestServer } from "../helpers/start-server.js";

const SEED = 17;
/** Small, so that bodies past it cost little; the child process keeps the default (32 MiB). */
const BODY_LIMIT = 1024 * 1024;

let server: TestServer;
let engine: BoundedFakeEngine;
let nowhere: Server;
const crashes: unknown[] = [];
const serverErrors: string[] = [];
const onCrash = (error: unknown): void => void crashes.push(error);

/** Every file under `dir`, relative to it. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name))).sort();
}

/** Runs the cases and returns every problem as a line naming the request. */
async function fuzz(client: FuzzClient, cases: FuzzCase[], concurrency = 6): Promise<{ problems: string[]; results: FuzzResult[]; tally: Record<string, number> }> {
  const results = await runAll(client, cases, concurrency);
  const problems: string[] = [];
  const tally: Record<string, number> = {};
  cases.forEach((fuzzCase, i) => {
    const result = results[i]!;
    tally[fuzzCase.kind] = (tally[fuzzCase.kind] ?? 0) + 1;
    const problem = problemWith(fuzzCase, result);
    if (problem !== undefined) problems.push(`#${i} [${fuzzCase.kind}] ${fuzzCase.method} ${fuzzCase.path.slice(0, 120)} (body ${describeBody(fuzzCase.body)}): ${problem}`);
  });
  return { problems, results, tally };
}

function describeBody(body: Buffer | undefined): string {
  if (body === undefined) return "none";
  return body.length > 160 ? `${body.length} bytes: ${body.subarray(0, 120).toString("utf8")}…` : JSON.stringify(body.toString("utf8"));
}

function report(problems: string[]): string {
  return `${problems.length} problem(s), seed ${SEED}:\n${problems.slice(0, 25).join("\n")}`;
}

before(async () => {
  process.on("unhandledRejection", onCrash);
  process.on("uncaughtException", onCrash);
  // The Hub and the registry: a server that knows no repository (pulls fail fast, without the internet)
  nowhere = createServer((_request, response) => void response.writeHead(404).end());
  await new Promise<void>((resolve) => nowhere.listen(0, "127.0.0.1", resolve));
  const upstream = `http://127.0.0.1:${(nowhere.address() as AddressInfo).port}`;
  engine = new BoundedFakeEngine();
  server = await startServer({
    engine,
    config: { bodyLimitBytes: BODY_LIMIT, ollamaRegistry: upstream, hfEndpoint: upstream },
    // Every 5xx the server sends, also to clients already gone (a body cut off): those never reach a client's eyes
    beforeListen: (app) =>
      app.http.addHook("onSend", async (request, reply, payload) => {
        if (reply.statusCode >= 500) serverErrors.push(`${reply.statusCode} ${request.method} ${request.url.slice(0, 100)}: ${String(payload).slice(0, 200)}`);
        return payload;
      }),
  });
  await writeFakeModel(path.join(server.home, "chat.gguf"));
  await writeFakeModel(path.join(server.home, "bert.gguf"), { architecture: "bert" });
  await createModel(server.baseUrl, "chat", path.join(server.home, "chat.gguf"));
  await createModel(server.baseUrl, "embedder", path.join(server.home, "bert.gguf"));
});

after(async () => {
  process.off("unhandledRejection", onCrash);
  process.off("uncaughtException", onCrash);
  await server.close();
  nowhere.close();
});

describe("open server (no keys)", () => {
  let filesBefore: string[];

  test("thousands of malformed requests on every route get 4xx JSON errors in the route's shape, never a 5xx", async () => {
    filesBefore = await filesUnder(server.home);
    const { routes, unknown } = fuzzRoutes(server.app.http.registeredRoutes);
    if (unknown.length > 0) console.log(`fuzzed without a schema (add them to test/helpers/fuzz-routes.ts): ${unknown.join(", ")}`);
    const cases = generateCases({ routes, bodyLimit: BODY_LIMIT }, new Random(SEED));
    assert.ok(cases.length >= 3000, `${cases.length} requests`);
    const client = new FuzzClient(server.baseUrl);
    const { problems, results, tally } = await fuzz(client, cases);
    client.close();
    const statuses: Record<number, number> = {};
    for (const r of results) if (r.status !== undefined) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    console.log(`${cases.length} requests; by kind ${JSON.stringify(tally)}; by status ${JSON.stringify(statuses)}`);
    assert.deepEqual(problems, [], report(problems));
    // The generator is not toothless: most requests are refused, and the valid-by-chance ones do reach the engine
    assert.ok((statuses[400] ?? 0) > cases.length / 2, "most requests are refused as invalid");
    assert.ok((statuses[413] ?? 0) > 20, "bodies past the limit are refused as too large");
    assert.ok(engine.requests.length > 0, "some requests were valid by chance and reached the engine");
    assert.deepEqual(serverErrors, []);
    assert.deepEqual(crashes, []);
  });

  test("a body past the limit gets its 413 while the client is still sending it, on a connection that stays usable", async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const send = (method: string, route: string, body?: Buffer): Promise<{ status: number; headers: IncomingHttpHeaders; text: string; socket: unknown }> =>
      new Promise((resolve, reject) => {
        const url = new URL(route, server.baseUrl);
        const req = request(url, { method, agent, headers: body ? { "content-type": "application/json", "content-length": String(body.length) } : {} }, (res) => {
          let text = "";
          res.on("data", (chunk: Buffer) => (text += chunk.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text, socket: req.socket }));
        });
        req.on("error", reject);
        req.end(body);
      });
    // 24 times the limit: the answer goes out on the Content-Length, long before the body is all sent
    const huge = Buffer.concat([Buffer.from('{"model":"chat","prompt":"'), Buffer.alloc(BODY_LIMIT * 24, "a"), Buffer.from('"}')]);
    const refused = await send("POST", "/api/generate", huge);
    assert.equal(refused.status, 413);
    assert.match((JSON.parse(refused.text) as { error: string }).error, /too large/);
    assert.notEqual(refused.headers.connection, "close", "the rest of the body is read and dropped, not cut off by a reset");
    const next = await send("GET", "/api/tags");
    assert.equal(next.status, 200);
    assert.equal(next.socket, refused.socket, "the same connection serves the next request");
    agent.destroy();
  });

  test("afterwards normal requests succeed and nothing was left in AI_SERVER_HOME", async () => {
    const chat = await postJson(server.baseUrl, "/api/chat", { model: "chat", messages: [{ role: "user", content: "Hi" }], stream: false });
    assert.equal(chat.status, 200);
    assert.equal(((await chat.json()) as { message: { content: string } }).message.content, "Hello world");
    const openai = await postJson(server.baseUrl, "/v1/chat/completions", { model: "chat", messages: [{ role: "user", content: "Hi" }] });
    assert.equal(openai.status, 200);
    const tags = (await (await fetch(`${server.baseUrl}/api/tags`)).json()) as { models: Array<{ name: string }> };
    assert.ok(tags.models.some((m) => m.name === "chat:latest"));
    const models = (await (await fetch(`${server.baseUrl}/v1/models`)).json()) as { data: Array<{ id: string }> };
    assert.ok(models.data.some((m) => m.id === "chat:latest" || m.id === "chat"));
    // No blob half written, no file outside the store's own; no model under an odd name
    const now = await filesUnder(server.home);
    const added = now.filter((f) => !filesBefore.includes(f));
    assert.deepEqual(added.filter((f) => !/^(ai-server\.db(-wal|-shm)?)$/.test(path.basename(f))), [], `new files: ${added.join(", ")}`);
    assert.deepEqual(now.filter((f) => path.basename(f).startsWith(".partial-")), []);
    for (const model of tags.models) assert.doesNotMatch(model.name, /\.\.|^\/|\\|\u0000/, model.name);
    assert.deepEqual(crashes, []);
  });
});

/** Who a request claims to be, and the headers that say so. */
type Credential = { who: "none" | "garbage" | "inference" | "admin" | "chat-only"; headers: Record<string, string> };

/** Keys that are not keys: malformed, lookalikes, a real key with its secret changed, bytes that are not UTF-8. */
function garbageCredential(random: Random, realKey: string): Record<string, string> {
  const flipped = realKey.slice(0, -1) + (realKey.endsWith("a") ? "b" : "a");
  const value = random.pick([
    "Bearer",
    "Bearer ",
    "Basic YWxhZGRpbjpvcGVuc2VzYW1l",
    `Bearer ${"x".repeat(8000)}`,
    "Bearer ais_",
    "Bearer ais__",
    "Bearer ais_../../etc/passwd_x",
    `Bearer ${flipped}`,
    `Bearer ${realKey.toUpperCase()}`,
    `Bearer ${realKey} extra`,
    "Bearer \xff\xfe",
    "Bearer caf\xe9",
    "Bearer ' OR 1=1 --",
    "bearer null",
    "Bearer undefined",
  ]);
  return random.chance(0.7) ? { authorization: value } : { "x-api-key": value.replace(/^bearer\s*/i, "") };
}

/** Kinds whose requests Node or Fastify may refuse before any hook runs (bad escapes, headers over 16 KiB, bytes a URL may not hold). */
const MAY_FAIL_BEFORE_ROUTING = new Set(["odd-path-segment", "query", "malformed-http", "odd-path"]);

/** The answer owed with keys on: the open server's, unless the credential is missing, wrong, or of too small a scope. */
function expectationWithKeys(fuzzCase: FuzzCase, credential: Credential): Expectation {
  if (fuzzCase.route === undefined) return credential.who === "none" || credential.who === "garbage" ? reject() : fuzzCase.expect;
  const [method = "", url = ""] = fuzzCase.route.split(" ");
  const access = routeAccess(method, url);
  const exact = !MAY_FAIL_BEFORE_ROUTING.has(fuzzCase.kind);
  if (access === "open") return fuzzCase.expect;
  if (credential.who === "none" || credential.who === "garbage") return exact ? reject(401) : reject();
  const adminOnly = access === "admin" || access === "keys";
  if (adminOnly && credential.who !== "admin") return exact ? reject(403) : reject();
  // A key limited to `chat` finds no other model (404), whatever else is wrong with the request.
  if (credential.who === "chat-only" && fuzzCase.expect.kind === "reject") return reject();
  return fuzzCase.expect;
}

describe("with keys on", () => {
  const keys = { admin: "", inference: "", chatOnly: "" };

  before(async () => {
    const create = server.app.services.keys.create.bind(server.app.services.keys);
    keys.admin = (await create({ name: "fuzz admin", scope: "admin" })).key;
    keys.inference = (await create({ name: "fuzz app", scope: "inference" })).key;
    keys.chatOnly = (await create({ name: "fuzz chat only", scope: "inference", models: ["chat"] })).key;
  });

  test("malformed requests with no key, wrong keys and keys of every scope get 401, 403 or the open server's answer", async () => {
    const random = new Random(SEED + 1);
    const { routes } = fuzzRoutes(server.app.http.registeredRoutes);
    const base = generateCases({ routes, bodyLimit: BODY_LIMIT }, random, { scale: 0.12, huge: false });
    const cases = base.map((fuzzCase) => {
      const who = random.pick(["none", "none", "garbage", "garbage", "garbage", "inference", "admin", "chat-only"] as const);
      const key = { none: undefined, garbage: undefined, inference: keys.inference, admin: keys.admin, "chat-only": keys.chatOnly }[who];
      const credential: Credential = {
        who,
        headers: who === "garbage" ? garbageCredential(random, keys.admin) : key === undefined ? {} : random.chance(0.5) ? { authorization: `Bearer ${key}` } : { "x-api-key": key },
      };
      return { ...fuzzCase, headers: { ...fuzzCase.headers, ...credential.headers }, expect: expectationWithKeys(fuzzCase, credential) };
    });
    assert.ok(cases.length >= 400, `${cases.length} requests`);
    const client = new FuzzClient(server.baseUrl);
    const { problems, results } = await fuzz(client, cases);
    client.close();
    const statuses: Record<number, number> = {};
    for (const r of results) if (r.status !== undefined) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    console.log(`${cases.length} requests with keys on; by status ${JSON.stringify(statuses)}`);
    assert.deepEqual(problems, [], report(problems));
    assert.ok((statuses[401] ?? 0) > cases.length / 4, "requests without a good key are refused");
    assert.ok((statuses[403] ?? 0) > 0, "inference keys are refused on admin routes");
    assert.deepEqual(serverErrors, []);
    assert.deepEqual(crashes, []);
  });

  test("afterwards a good key is still served, and a missing one still refused", async () => {
    const headers = { authorization: `Bearer ${keys.inference}` };
    const chat = await postJson(server.baseUrl, "/api/chat", { model: "chat", messages: [{ role: "user", content: "Hi" }], stream: false }, { headers: { ...headers, "content-type": "application/json" } });
    assert.equal(chat.status, 200);
    assert.equal((await fetch(`${server.baseUrl}/v1/models`, { headers })).status, 200);
    assert.equal((await fetch(`${server.baseUrl}/api/tags`)).status, 401);
    assert.deepEqual(crashes, []);
  });
});

describe("bodies that stop arriving (AI_SERVER_BODY_TIMEOUT)", () => {
  let slow: TestServer;
  let slowEngine: BoundedFakeEngine;
  let client: FuzzClient;

  before(async () => {
    slowEngine = new BoundedFakeEngine();
    slow = await startServer({ engine: slowEngine, config: { bodyTimeoutMs: "1s" } });
    await writeFakeModel(path.join(slow.home, "chat.gguf"));
    await createModel(slow.baseUrl, "chat", path.join(slow.home, "chat.gguf"));
    client = new FuzzClient(slow.baseUrl);
  });

  after(async () => {
    client.close();
    await slow.close();
  });

  const json = (route: string, body: unknown): FuzzCase => ({
    kind: "stall",
    method: "POST",
    path: route,
    headers: { "content-type": "application/json" },
    body: Buffer.from(JSON.stringify(body)),
    expect: reject(408),
    protocol: protocolOf(route),
    delivery: "whole",
  });
  const user = [{ role: "user", content: "Hi" }];

  test("a JSON body that stalls gets 408 in its route's shape, and the connection is closed", async () => {
    for (const stalled of [
      json("/api/chat", { model: "chat", messages: user, stream: false }),
      json("/v1/chat/completions", { model: "chat", messages: user }),
      json("/v1/messages", { model: "chat", max_tokens: 8, messages: user }),
    ]) {
      // Two of ten pieces, then nothing: the server must not wait for the rest forever
      const result = await client.sendSlowly(stalled, { chunks: 10, gapMs: 10, parts: 2 });
      assert.equal(problemWith(stalled, result), undefined, stalled.path);
      assert.equal(result.status, 408, stalled.path);
      assert.equal(result.headers.connection, "close", stalled.path);
      assert.ok(!result.timedOut, "the server closed the connection");
    }
  });

  test("a blob upload that stalls gets 408, and its partial file is removed", async () => {
    const upload: FuzzCase = { ...json(`/api/blobs/sha256:${"1".repeat(64)}`, {}), body: Buffer.alloc(200_000, 1), protocol: "ollama" };
    const result = await client.sendSlowly(upload, { chunks: 20, gapMs: 10, parts: 3 });
    assert.equal(result.status, 408, result.body.toString());
    // The upload's temp file goes once the handler sees the connection gone (no timing asserted: wait for it)
    const partials = async (): Promise<string[]> => (await filesUnder(slow.home)).filter((f) => path.basename(f).startsWith(".partial-"));
    for (let i = 0; i < 100 && (await partials()).length > 0; i++) await sleep(50);
    assert.deepEqual(await partials(), []);
  });

  test("a body that keeps moving is not cut however long it takes, nor is an answer that streams slower than the timeout", async () => {
    // Ten pieces 300 ms apart: three seconds in all, never a second without a byte
    const moving = json("/api/chat", { model: "chat", messages: user, stream: false });
    const result = await client.sendSlowly(moving, { chunks: 10, gapMs: 300 });
    assert.equal(result.status, 200, result.body.toString());
    // Once the body is in, the socket has no timeout: tokens 700 ms apart still make a whole stream
    slowEngine.script = { tokens: ["a", "b", "c"], delayMs: 700 };
    const streamed = await postJson(slow.baseUrl, "/api/chat", { model: "chat", messages: user });
    const lines = (await streamed.text()).trim().split("\n").map((line) => JSON.parse(line) as { done: boolean; message?: { content: string } });
    assert.equal(lines.at(-1)?.done, true);
    assert.equal(lines.map((l) => l.message?.content ?? "").join(""), "abc");
    slowEngine.script = {};
  });
});

describe("ai-server serve as a child process", () => {
  test("survives a few hundred malformed requests, still answers, logs no error, and exits cleanly on SIGTERM", async () => {
    const home = await mkdtemp(path.join(os.tmpdir(), "ai-server-fuzz-"));
    const upstream = `http://127.0.0.1:${(nowhere.address() as AddressInfo).port}`;
    const child = await startServeProcess({ AI_SERVER_HOME: home, AI_SERVER_ENGINE: "llama-cpp", AI_SERVER_GPU: "off", AI_SERVER_OLLAMA_REGISTRY: upstream, HF_ENDPOINT: upstream });
    try {
      const { routes } = fuzzRoutes(server.app.http.registeredRoutes);
      const limit = 32 * 1024 * 1024;
      const cases = generateCases({ routes, bodyLimit: limit }, new Random(SEED + 2), { scale: 0.1, huge: false });
      // One body past the default limit (32 MiB)
      const huge = Buffer.concat([Buffer.from('{"model":"chat","prompt":"'), Buffer.alloc(limit, "a"), Buffer.from('"}')]);
      cases.push({ kind: "huge-past-limit", method: "POST", path: "/api/generate", headers: { "content-type": "application/json" }, body: huge, expect: reject(413), protocol: "ollama", delivery: "whole" });
      assert.ok(cases.length >= 300, `${cases.length} requests`);
      const client = new FuzzClient(child.baseUrl);
      const { problems } = await fuzz(client, cases, 4);
      client.close();
      assert.deepEqual(problems, [], report(problems));
      assert.equal(child.child.exitCode, null, "still running");
      assert.equal((await fetch(`${child.baseUrl}/health`)).status, 200);
      assert.equal((await fetch(`${child.baseUrl}/api/tags`)).status, 200);
      // A 5xx, an unhandled rejection or a crash in a handler would have been logged at error level (50) or above
      const errors = child.logs.filter((line) => typeof line.level === "number" && line.level >= 50);
      assert.deepEqual(errors, []);
      child.child.kill("SIGTERM");
      assert.deepEqual(await child.exited, { code: 0, signal: null });
      assert.deepEqual((await filesUnder(home)).filter((f) => path.basename(f).startsWith(".partial-")), []);
    } finally {
      await child.kill();
      await rm(home, { recursive: true, force: true });
    }
  });
});
