/**
 * Authentication on every route the server registers: no key, a wrong key, a revoked one, an expired one, the wrong
 * scope, a model the key may not use, and the right key (by both headers), each route's answer checked. Fake engine:
 * this is HTTP behaviour, no inference is needed.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { routeAccess } from "../../src/auth/route-access.js";
import type { RequestContext } from "../../src/inference/request-context.js";
import { openDatabase } from "../../src/store/database.js";
import { dataPaths } from "../../src/store/open-store.js";
import { FakeEngine } from "../helpers/fake-engine.js";
import { startFakeServer, type FakeServer } from "../helpers/fake-server.js";
import { writeFakeModel } from "../helpers/gguf-files.js";
import { createModel, startServer, type TestServer } from "../helpers/start-server.js";

/** How to call a route so that the right key gets a known answer; `model` is the body field naming a model. */
interface Recipe {
  path: string | (() => Promise<string>);
  body?: Record<string, unknown> | (() => Promise<Record<string, unknown>>);
  /** The right key's status (or statuses: a second upload of a blob finds it stored). */
  status: number | number[];
  model?: string;
}

const user = [{ role: "user", content: "Hi" }];
const noDigest = `sha256:${"0".repeat(64)}`;
const blob = Buffer.from("some bytes");
const blobDigest = `sha256:${createHash("sha256").update(blob).digest("hex")}`;

let server: FakeServer;
let nowhere: Server;
const keys: Record<"admin" | "inference" | "inferenceChat" | "adminChat" | "revoked" | "expired", string> = {
  admin: "",
  inference: "",
  inferenceChat: "",
  adminChat: "",
  revoked: "",
  expired: "",
};
const contexts: RequestContext[] = [];

/** Each registered route's recipe; a route without one (a new one) is still checked for 401/403, not for its answer. */
const recipes: Record<string, Recipe> = {
  "GET /": { path: "/", status: 200 },
  "GET /health": { path: "/health", status: 200 },
  "GET /ready": { path: "/ready", status: 200 },
  "GET /metrics": { path: "/metrics", status: 200 },
  "GET /api/version": { path: "/api/version", status: 200 },
  "GET /api/tags": { path: "/api/tags", status: 200 },
  "POST /api/show": { path: "/api/show", body: { model: "chat" }, status: 200, model: "model" },
  "GET /api/ps": { path: "/api/ps", status: 200 },
  "POST /api/generate": { path: "/api/generate", body: { model: "chat", prompt: "Hi", stream: false }, status: 200, model: "model" },
  "POST /api/chat": { path: "/api/chat", body: { model: "chat", messages: user, stream: false }, status: 200, model: "model" },
  "POST /api/embed": { path: "/api/embed", body: { model: "embedder", input: "Hi" }, status: 200, model: "model" },
  "POST /api/embeddings": { path: "/api/embeddings", body: { model: "embedder", prompt: "Hi" }, status: 200, model: "model" },
  "POST /api/tokenize": { path: "/api/tokenize", body: { model: "chat", content: "Hi" }, status: 200, model: "model" },
  "POST /api/detokenize": { path: "/api/detokenize", body: { model: "chat", tokens: [1, 2] }, status: 200, model: "model" },
  "POST /v1/chat/completions": { path: "/v1/chat/completions", body: { model: "chat", messages: user }, status: 200, model: "model" },
  "POST /v1/completions": { path: "/v1/completions", body: { model: "chat", prompt: "Hi" }, status: 200, model: "model" },
  "POST /v1/embeddings": { path: "/v1/embeddings", body: { model: "embedder", input: "Hi" }, status: 200, model: "model" },
  // The embedder is no reranker: a 400 from the handler, past authentication
  "POST /v1/rerank": { path: "/v1/rerank", body: { model: "embedder", query: "q", documents: ["a"] }, status: 400, model: "model" },
  "POST /rerank": { path: "/rerank", body: { model: "embedder", query: "q", documents: ["a"] }, status: 400, model: "model" },
  "GET /v1/models": { path: "/v1/models", status: 200 },
  "GET /v1/models/*": { path: "/v1/models/chat", status: 200 },
  "POST /v1/responses": { path: "/v1/responses", body: { model: "chat", input: "Hi" }, status: 200, model: "model" },
  "GET /v1/responses/*": { path: "/v1/responses/resp_none", status: 404 },
  "DELETE /v1/responses/*": { path: "/v1/responses/resp_none", status: 404 },
  "POST /v1/messages": { path: "/v1/messages", body: { model: "chat", max_tokens: 16, messages: user }, status: 200, model: "model" },
  "POST /v1/messages/count_tokens": { path: "/v1/messages/count_tokens", body: { model: "chat", messages: user }, status: 200, model: "model" },
  "POST /api/create": { path: "/api/create", body: { model: "made", from: "chat", stream: false }, status: 200, model: "model" },
  "POST /api/copy": { path: "/api/copy", body: { source: "chat", destination: "copied" }, status: 200, model: "source" },
  "DELETE /api/delete": { path: "/api/delete", body: async () => ({ model: await aCopy() }), status: 200, model: "model" },
  "POST /api/pull": { path: "/api/pull", body: { model: "nobody/nothing", stream: false }, status: 404, model: "model" },
  "POST /api/jobs": { path: "/api/jobs", body: { type: "pull", model: "nobody/nothing" }, status: 202, model: "model" },
  "GET /api/jobs": { path: "/api/jobs", status: 200 },
  "GET /api/jobs/:id": { path: "/api/jobs/abc123", status: 404 },
  "GET /api/jobs/:id/events": { path: "/api/jobs/abc123/events", status: 404 },
  "DELETE /api/jobs/:id": { path: "/api/jobs/abc123", status: 404 },
  "HEAD /api/blobs/:digest": { path: `/api/blobs/${noDigest}`, status: 404 },
  "POST /api/blobs/:digest": { path: `/api/blobs/${blobDigest}`, status: [201, 200] },
  "GET /api/blobs/:digest": { path: `/api/blobs/${noDigest}`, status: 404 },
  "POST /api/keys": { path: "/api/keys", body: { name: "made by the matrix", scope: "inference" }, status: 201 },
  "GET /api/keys": { path: "/api/keys", status: 200 },
  "DELETE /api/keys/:id": { path: async () => `/api/keys/${(await createKey({ name: "to revoke", scope: "inference" })).id}`, status: 200 },
};

let copies = 0;
/** A fresh copy of `chat` for a delete to remove (made through the store: not a request under test). */
async function aCopy(): Promise<string> {
  const name = `victim-${++copies}`;
  await server.app.services.store.copy("chat", name);
  return name;
}

async function createKey(input: Parameters<FakeServer["app"]["services"]["keys"]["create"]>[0]): Promise<{ id: string; key: string }> {
  const { key, record } = await server.app.services.keys.create(input);
  return { id: record.id, key };
}

/** One request as a client sends it: the key in `Authorization: Bearer` or `x-api-key`. */
async function call(method: string, route: string, options: { key?: string; header?: "bearer" | "x-api-key"; model?: string } = {}): Promise<Response> {
  const recipe = recipes[route];
  const [, pattern = ""] = route.split(" ");
  const target = recipe ? (typeof recipe.path === "string" ? recipe.path : await recipe.path()) : pattern.replace(/:\w+/g, "x").replace("*", "x");
  let body: unknown = recipe?.body === undefined ? undefined : typeof recipe.body === "function" ? await recipe.body() : recipe.body;
  if (options.model !== undefined && recipe?.model !== undefined) body = { ...(body as object), [recipe.model]: options.model };
  const headers: Record<string, string> = {};
  if (options.key !== undefined) headers[options.header === "x-api-key" ? "x-api-key" : "authorization"] = options.header === "x-api-key" ? options.key : `Bearer ${options.key}`;
  if (route === "POST /api/blobs/:digest") return fetch(`${server.baseUrl}${target}`, { method, headers, body: blob });
  if (method === "GET" || method === "HEAD") return fetch(`${server.baseUrl}${target}`, { method, headers });
  headers["content-type"] = "application/json";
  return fetch(`${server.baseUrl}${target}`, { method, headers, body: JSON.stringify(body ?? {}) });
}

/** The routes to walk: every registered one, but CORS's preflight route (tested on its own). */
function routes(): Array<{ method: string; url: string; route: string }> {
  return server.app.http.registeredRoutes
    .filter((r) => r.method !== "OPTIONS")
    .map((r) => ({ ...r, route: `${r.method} ${r.url}` }));
}

/** The recipe of a route, HEAD taking GET's. */
function recipeRoute(method: string, url: string): string {
  return method === "HEAD" && recipes[`HEAD ${url}`] === undefined ? `GET ${url}` : `${method} ${url}`;
}

async function errorOf(response: Response, url: string): Promise<{ message: string; type?: string; code?: string }> {
  if (response.headers.get("content-type")?.includes("json") !== true) return { message: "" };
  const body = (await response.json()) as { error: unknown; type?: string };
  if (url.startsWith("/v1/messages")) {
    assert.equal(body.type, "error", "Anthropic's error shape");
    const error = body.error as { type: string; message: string };
    return { message: error.message, type: error.type };
  }
  if (url.startsWith("/v1/") || url === "/rerank") {
    const error = body.error as { type: string; message: string; code: string };
    return { message: error.message, type: error.type, code: error.code };
  }
  assert.equal(typeof body.error, "string", "Ollama's error shape");
  return { message: body.error as string };
}

before(async () => {
  // The fake server's models, on a server whose pulls fail fast (no internet) and that records each request's context
  // The Hub and the registry: a server that knows no repository
  nowhere = createServer((_request, response) => void response.writeHead(404).end());
  await new Promise<void>((resolve) => nowhere.listen(0, "127.0.0.1", resolve));
  const upstream = `http://127.0.0.1:${(nowhere.address() as AddressInfo).port}`;
  const engine = new FakeEngine();
  const started = await startServer({
    engine,
    config: { ollamaRegistry: upstream, hfEndpoint: upstream, aliases: "fast=chat" },
    beforeListen: (app) => app.http.addHook("onResponse", async (request) => void contexts.push(request.requestContext)),
  });
  server = { ...started, engine, chatFile: path.join(started.home, "chat.gguf") };
  await writeFakeModel(server.chatFile);
  await writeFakeModel(path.join(server.home, "bert.gguf"), { architecture: "bert" });
  await writeFakeModel(path.join(server.home, "fim.gguf"), { infill: true });
  await createModel(server.baseUrl, "chat", server.chatFile);
  await createModel(server.baseUrl, "embedder", path.join(server.home, "bert.gguf"));
  await createModel(server.baseUrl, "fim", path.join(server.home, "fim.gguf"));
  keys.admin = (await createKey({ name: "admin", scope: "admin" })).key;
  keys.inference = (await createKey({ name: "app", scope: "inference", limits: { rpm: 100_000, tpm: 10_000_000, maxParallel: 64 } })).key; // limits that never bite: the matrix calls every route
  keys.inferenceChat = (await createKey({ name: "chat only", scope: "inference", models: ["chat"] })).key;
  keys.adminChat = (await createKey({ name: "chat admin", scope: "admin", models: ["chat"] })).key;
  const revoked = await createKey({ name: "revoked", scope: "admin" });
  await server.app.services.keys.revoke(revoked.id);
  keys.revoked = revoked.key;
  const expired = await createKey({ name: "expired", scope: "admin", expiresAt: new Date(Date.now() + 3_600_000) });
  keys.expired = expired.key;
  // Time passing, as another process would see it: the expiry moved into the past through a second connection (as
  // every write to the keys does, it raises their version in the same transaction)
  const other = await openDatabase({ file: dataPaths(server.home).database, url: server.app.services.config.databaseUrl });
  await other.transaction(async (tx) => {
    await tx.run("UPDATE api_keys SET expires_at = ? WHERE id = ?", [Date.now() - 1000, expired.id]);
    await tx.run("UPDATE state_versions SET version = version + 1 WHERE name = 'api_keys'");
  });
  await other.close();
});

after(async () => {
  await server.close();
  nowhere.close();
});

describe("every route", () => {
  test("without a key: 401 with WWW-Authenticate and the protocol's error shape, but on the open routes", async () => {
    for (const { method, url, route } of routes()) {
      const access = routeAccess(method, url);
      const response = await call(method, recipeRoute(method, url));
      if (access === "open") {
        assert.notEqual(response.status, 401, route);
        continue;
      }
      assert.equal(response.status, 401, route);
      assert.match(response.headers.get("www-authenticate") ?? "", /^Bearer/, route);
      if (method === "HEAD") continue;
      const error = await errorOf(response, url);
      assert.match(error.message, /API key is required/, route);
      if (url.startsWith("/v1/") || url === "/rerank") assert.equal(error.type, "authentication_error", route);
      if (error.code !== undefined) assert.equal(error.code, "unauthorized", route);
    }
  });

  test("a wrong, a revoked and an expired key: 401 saying which", async () => {
    for (const { method, url, route } of routes()) {
      if (routeAccess(method, url) === "open") continue;
      const cases = [
        { key: "ais_abcdefgh_" + "x".repeat(43), message: /invalid API key/ },
        { key: keys.revoked, message: /was revoked/ },
        { key: keys.expired, message: /expired at/ },
      ];
      for (const { key, message } of cases) {
        const response = await call(method, recipeRoute(method, url), { key });
        assert.equal(response.status, 401, `${route} ${String(message)}`);
        if (method !== "HEAD") assert.match((await errorOf(response, url)).message, message, route);
      }
    }
  });

  test("an inference key on an admin route: 403; a key limited to models on the keys routes: 403", async () => {
    for (const { method, url, route } of routes()) {
      const access = routeAccess(method, url);
      if (access !== "admin" && access !== "keys") continue;
      const response = await call(method, recipeRoute(method, url), { key: keys.inference });
      assert.equal(response.status, 403, route);
      if (method !== "HEAD") assert.match((await errorOf(response, url)).message, /needs an admin key/, route);
      if (access === "keys") assert.equal((await call(method, route, { key: keys.adminChat })).status, 403, `${route} with a key limited to models`);
    }
  });

  test("a key limited to models naming another one: 404 as if it did not exist, and the model is untouched", async () => {
    let checked = 0;
    for (const { method, url, route } of routes()) {
      const recipe = recipes[recipeRoute(method, url)];
      if (recipe?.model === undefined) continue;
      const key = routeAccess(method, url) === "inference" ? keys.inferenceChat : keys.adminChat;
      const response = await call(method, route, { key, model: "fim" });
      assert.equal(response.status, 404, route);
      const error = await errorOf(response, url);
      assert.match(error.message, /model "fim" not found/, route);
      if (error.code !== undefined) assert.equal(error.code, "model_not_found", route);
      checked++;
    }
    assert.ok(checked >= 20, `routes naming a model: ${checked}`);
    assert.ok(server.app.services.store.get("fim"), "the delete was refused before it ran");
  });

  test("the right key, by Authorization: Bearer and by x-api-key: each route's own answer", async () => {
    for (const header of ["bearer", "x-api-key"] as const) {
      for (const { method, url, route } of routes()) {
        const access = routeAccess(method, url);
        const key = access === "inference" || access === "metrics" ? keys.inference : keys.admin;
        const recipe = recipes[recipeRoute(method, url)];
        const response = await call(method, recipeRoute(method, url), { key, header });
        const text = await response.text();
        if (recipe === undefined) assert.ok(response.status !== 401 && response.status !== 403, `${route} (${header}): ${response.status} ${text}`);
        else assert.ok([recipe.status].flat().includes(response.status), `${route} (${header}): ${response.status} ${text}`);
      }
    }
  });

  test("a key limited to a model reaches it by any spelling and through an alias; a limited admin key changes only its models", async () => {
    assert.equal((await call("POST", "POST /api/generate", { key: keys.inferenceChat, model: "CHAT:latest" })).status, 200);
    assert.equal((await call("POST", "POST /api/generate", { key: keys.inferenceChat, model: "fast" })).status, 200, "the alias of chat");
    assert.equal((await call("POST", "POST /api/show", { key: keys.inferenceChat })).status, 200);
    assert.equal((await call("POST", "POST /api/copy", { key: keys.adminChat })).status, 404, "copied:latest is not one of its models");
  });
});

test("a route that does not exist: 401 without a key, 404 with one", async () => {
  assert.equal((await fetch(`${server.baseUrl}/api/nothing`)).status, 401);
  assert.equal((await fetch(`${server.baseUrl}/api/nothing`, { headers: { authorization: `Bearer ${keys.inference}` } })).status, 404);
});

test("a CORS preflight needs no key, and a refusal carries the CORS headers a page needs to read it", async () => {
  const origin = "http://localhost:3000";
  const preflight = await fetch(`${server.baseUrl}/v1/chat/completions`, {
    method: "OPTIONS",
    headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type" },
  });
  assert.ok(preflight.status < 300, String(preflight.status));
  const refused = await fetch(`${server.baseUrl}/v1/models`, { headers: { origin } });
  assert.equal(refused.status, 401);
  assert.equal(refused.headers.get("access-control-allow-origin"), origin);
});

test("lists show a key limited to models only those: /api/tags, /v1/models, /v1/models/{id}, /api/ps", async () => {
  const get = async (route: string, key: string): Promise<unknown> => (await fetch(`${server.baseUrl}${route}`, { headers: { authorization: `Bearer ${key}` } })).json();
  const tags = (await get("/api/tags", keys.inferenceChat)) as { models: Array<{ name: string }> };
  assert.deepEqual(tags.models.map((m) => m.name), ["chat:latest"]);
  const all = (await get("/api/tags", keys.inference)) as { models: Array<{ name: string }> };
  assert.ok(all.models.length >= 3, "an unlimited key sees every model");
  const models = (await get("/v1/models", keys.inferenceChat)) as { data: Array<{ id: string }> };
  assert.deepEqual(models.data.map((m) => m.id), ["chat:latest"]);
  assert.equal((await fetch(`${server.baseUrl}/v1/models/embedder`, { headers: { authorization: `Bearer ${keys.inferenceChat}` } })).status, 404);
  await call("POST", "POST /api/embed", { key: keys.admin }); // loads embedder
  await call("POST", "POST /api/chat", { key: keys.admin }); // loads chat
  const running = (await get("/api/ps", keys.admin)) as { models: Array<{ name: string }> };
  assert.ok(running.models.some((m) => m.name === "embedder:latest"), "embedder is loaded");
  const limited = (await get("/api/ps", keys.inferenceChat)) as { models: Array<{ name: string }> };
  assert.deepEqual(limited.models.map((m) => m.name), ["chat:latest"]);
});

test("an authenticated request's principal is its key's: id, name, scope, models, limits, address", async () => {
  contexts.length = 0;
  await call("GET", "GET /api/tags", { key: keys.inference });
  const principal = contexts.at(-1)?.principal;
  assert.equal(principal?.name, "app");
  assert.equal(principal?.scope, "inference");
  assert.match(principal?.keyId ?? "", /^[a-z0-9]{8}$/);
  assert.ok(keys.inference.startsWith(`ais_${principal?.keyId}_`));
  assert.deepEqual(principal?.limits, { rpm: 100_000, tpm: 10_000_000, maxParallel: 64 });
  assert.equal(principal?.models, undefined);
  assert.equal(principal?.clientAddress, "127.0.0.1");
  await call("GET", "GET /api/tags", { key: keys.inferenceChat });
  assert.deepEqual(contexts.at(-1)?.principal.models, ["chat:latest"]);
});

test("a revoked key stops working at once; the keys routes never show a secret", async () => {
  const created = (await (await fetch(`${server.baseUrl}/api/keys`, {
    method: "POST",
    headers: { authorization: `Bearer ${keys.admin}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "short-lived", scope: "inference", models: ["chat"], rpm: 5, expires: "30d" }),
  })).json()) as { id: string; key: string; models: string[]; rpm: number; expires_at: string; status: string };
  assert.match(created.key, /^ais_[a-z0-9]{8}_/);
  assert.deepEqual([created.models, created.rpm, created.status], [["chat:latest"], 5, "active"]);
  assert.ok(Date.parse(created.expires_at) > Date.now() + 29 * 86_400_000);
  assert.equal((await call("GET", "GET /api/tags", { key: created.key })).status, 200);
  const revoked = await fetch(`${server.baseUrl}/api/keys/${created.id}`, { method: "DELETE", headers: { authorization: `Bearer ${keys.admin}` } });
  assert.equal(((await revoked.json()) as { status: string }).status, "revoked");
  assert.equal((await call("GET", "GET /api/tags", { key: created.key })).status, 401);
  const listed = await (await fetch(`${server.baseUrl}/api/keys`, { headers: { authorization: `Bearer ${keys.admin}` } })).text();
  assert.ok(!listed.includes(created.key.slice(13)), "no secret in the list");
  assert.doesNotMatch(listed, /"key"|"hash"/);
  const unknown = await fetch(`${server.baseUrl}/api/keys/nosuchid`, { method: "DELETE", headers: { authorization: `Bearer ${keys.admin}` } });
  assert.equal(unknown.status, 404);
  const bad = await fetch(`${server.baseUrl}/api/keys`, {
    method: "POST",
    headers: { authorization: `Bearer ${keys.admin}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "x", scope: "inference", expires: "yesterday" }),
  });
  assert.equal(bad.status, 400);
});

test("/metrics answers without a key when AI_SERVER_METRICS_OPEN is set", async () => {
  const open = await startFakeServer({ metricsOpen: "1" });
  try {
    await open.app.services.keys.create({ name: "k", scope: "admin" });
    assert.equal((await fetch(`${open.baseUrl}/metrics`)).status, 200);
    assert.equal((await fetch(`${open.baseUrl}/api/tags`)).status, 401);
  } finally {
    await open.close();
  }
});

describe("when keys are required", () => {
  test("with no key on loopback the server is open, whatever placeholder key a client sends", async () => {
    const open = await startFakeServer();
    try {
      for (const headers of [{}, { authorization: "Bearer ollama" }, { "x-api-key": "sk-nothing" }] as Array<Record<string, string>>) {
        assert.equal((await fetch(`${open.baseUrl}/api/tags`, { headers })).status, 200);
        assert.equal((await fetch(`${open.baseUrl}/api/jobs`, { headers })).status, 200, "the anonymous client is admin");
      }
      // The first key turns authentication on at once; revoking the last one turns it off
      const { record } = await open.app.services.keys.create({ name: "first", scope: "admin" });
      assert.equal((await fetch(`${open.baseUrl}/api/tags`)).status, 401);
      await open.app.services.keys.revoke(record.id);
      assert.equal((await fetch(`${open.baseUrl}/api/tags`)).status, 200);
    } finally {
      await open.close();
    }
  });

  test("AI_SERVER_AUTH=on requires a key with none created; a non-loopback address requires one unless AI_SERVER_ALLOW_OPEN=1", async () => {
    for (const [config, required] of [
      [{ auth: "on" }, true],
      [{ host: "0.0.0.0:0" }, true],
      [{ host: "0.0.0.0:0", allowOpen: "1" }, false],
    ] as const) {
      const server = await startFakeServerWith(config);
      try {
        assert.equal((await fetch(`${server.baseUrl}/api/version`)).status, required ? 401 : 200, JSON.stringify(config));
        assert.equal((await fetch(`${server.baseUrl}/health`)).status, 200);
      } finally {
        await server.close();
      }
    }
  });

  test("AI_SERVER_ADMIN_KEY is an admin key from the start, stored hashed", async () => {
    const secret = "an-admin-key-for-unattended-deployments-0123456789";
    const withKey = await startFakeServerWith({ adminKey: secret });
    try {
      assert.equal((await fetch(`${withKey.baseUrl}/api/jobs`)).status, 401);
      assert.equal((await fetch(`${withKey.baseUrl}/api/jobs`, { headers: { authorization: `Bearer ${secret}` } })).status, 200);
      const listed = (await (await fetch(`${withKey.baseUrl}/api/keys`, { headers: { "x-api-key": secret } })).json()) as { keys: Array<{ name: string; scope: string; from_setting: boolean }> };
      assert.deepEqual(listed.keys.map((k) => [k.name, k.scope, k.from_setting]), [["admin (AI_SERVER_ADMIN_KEY)", "admin", true]]);
    } finally {
      await withKey.close();
    }
  });
});

/** The app on the fake engine with `config` from the start, and no model. */
function startFakeServerWith(config: Record<string, string>): Promise<TestServer> {
  return startServer({ engine: new FakeEngine(), config });
}
