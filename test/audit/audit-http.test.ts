/**
 * The audit log over the real HTTP server: rows for inference and admin calls with their fields, refusals, a stream
 * cut short, no text unless AI_SERVER_AUDIT_CONTENT=1, filters and paging through GET /api/audit, retention at start,
 * and the route's admin-only access. The fake engine stands in for inference: this is HTTP behaviour; what is checked
 * of generation is the usage the server reports, whatever produced it.
 */
import assert from "node:assert/strict";
import { readFile, mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { WireAuditEntry } from "../../src/api/admin/audit.js";
import { buildApp } from "../../src/app.js";
import { AuditLog } from "../../src/audit/audit-log.js";
import { loadConfig } from "../../src/config/load.js";
import { openDatabase } from "../../src/store/database.js";
import { dataPaths } from "../../src/store/open-store.js";
import { FakeEngine } from "../helpers/fake-engine.js";
import { startFakeServer, type FakeServer } from "../helpers/fake-server.js";

let server: FakeServer;
let nowhere: Server;
const keys = { admin: "", adminId: "", app: "", appId: "", chatAdmin: "" };

interface AuditPage {
  entries: WireAuditEntry[];
  next_cursor: string | null;
}

function request(target: string, init: RequestInit & { key?: string; id?: string; json?: unknown } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (init.key !== undefined) headers.set("authorization", `Bearer ${init.key}`);
  if (init.id !== undefined) headers.set("x-request-id", init.id);
  if (init.json !== undefined) headers.set("content-type", "application/json");
  return fetch(`${server.baseUrl}${target}`, { ...init, headers, ...(init.json !== undefined && { body: JSON.stringify(init.json) }) });
}

async function auditPage(query = "", key = keys.admin, base = server.baseUrl): Promise<AuditPage> {
  const response = await fetch(`${base}/api/audit${query}`, { headers: key === "" ? {} : { authorization: `Bearer ${key}` } });
  assert.equal(response.status, 200, await response.clone().text());
  return (await response.json()) as AuditPage;
}

/** The entry of a request by its id, waiting for it (a disconnected client's entry comes when the server notices). */
async function entryOf(requestId: string, base = server.baseUrl, key = keys.admin): Promise<WireAuditEntry> {
  for (let tries = 0; tries < 500; tries++) {
    const found = (await auditPage("?limit=1000", key, base)).entries.find((e) => e.request_id === requestId);
    if (found) return found;
    await sleep(20);
  }
  throw new Error(`no audit entry for request ${requestId}`);
}

async function createKey(body: Record<string, unknown>, key?: string, id?: string): Promise<{ id: string; key: string }> {
  const response = await request("/api/keys", { method: "POST", json: body, ...(key !== undefined && { key }), ...(id !== undefined && { id }) });
  assert.equal(response.status, 201);
  return (await response.json()) as { id: string; key: string };
}

before(async () => {
  // Pulls go nowhere: a Hub and a registry that know no repository
  nowhere = createServer((_request, response) => void response.writeHead(404).end());
  await new Promise<void>((resolve) => nowhere.listen(0, "127.0.0.1", resolve));
  const upstream = `http://127.0.0.1:${(nowhere.address() as AddressInfo).port}`;
  server = await startFakeServer({ ollamaRegistry: upstream, hfEndpoint: upstream });
  // The first key is made by the open server's anonymous client; then keys are required
  const admin = await createKey({ name: "admin", scope: "admin" }, undefined, "first-key");
  keys.admin = admin.key;
  keys.adminId = admin.id;
  const app = await createKey({ name: "app", scope: "inference" }, keys.admin);
  keys.app = app.key;
  keys.appId = app.id;
  keys.chatAdmin = (await createKey({ name: "chat admin", scope: "admin", models: ["chat"] }, keys.admin)).key;
});

after(async () => {
  await server.close();
  nowhere.close();
});

describe("rows", () => {
  test("an inference call: key, address, route pattern (no query), model, status, tokens, duration, request id", async () => {
    const response = await request("/v1/chat/completions?trace=1", {
      method: "POST",
      key: keys.app,
      id: "chat-1",
      json: { model: "chat", messages: [{ role: "user", content: "Hi" }] },
    });
    assert.equal(response.status, 200);
    const { usage } = (await response.json()) as { usage: { prompt_tokens: number; completion_tokens: number } };
    const entry = await entryOf("chat-1");
    assert.equal(entry.key_id, keys.appId);
    assert.equal(entry.key_name, "app");
    assert.equal(entry.client_address, "127.0.0.1");
    assert.equal(entry.method, "POST");
    assert.equal(entry.route, "/v1/chat/completions");
    assert.equal(entry.model, "chat:latest");
    assert.equal(entry.status, 200);
    assert.equal(entry.prompt_tokens, usage.prompt_tokens);
    assert.equal(entry.completion_tokens, usage.completion_tokens);
    assert.ok(entry.completion_tokens > 0);
    assert.ok(entry.duration_ms > 0);
    assert.ok(Math.abs(Date.parse(entry.time) - Date.now()) < 60_000, entry.time);
    assert.deepEqual([entry.action, entry.target, entry.aborted, entry.request_body, entry.output], [null, null, false, null, null]);
  });

  test("a call that runs no generation: the model its body names, normalised", async () => {
    assert.equal((await request("/api/show", { method: "POST", key: keys.app, id: "show-1", json: { model: "Chat" } })).status, 200);
    const entry = await entryOf("show-1");
    assert.equal(entry.model, "Chat:latest");
    assert.equal(entry.prompt_tokens + entry.completion_tokens, 0);
    assert.equal((await entryOf("first-key")).model, null, "a key's name is no model");
  });

  test("admin changes: each with its action and target, and who made it", async () => {
    // The first key, made while the server was open: no key made it
    const first = await entryOf("first-key");
    assert.deepEqual([first.action, first.target, first.key_id, first.key_name, first.status], ["key.create", keys.adminId, null, null, 201]);
    // The models the fake server made at start: blobs uploaded, then created
    const created = (await auditPage("?action=model.create")).entries.map((e) => e.target).sort();
    assert.deepEqual(created, ["chat:latest", "embedder:latest", "fim:latest"]);
    assert.ok((await auditPage("?action=blob.upload")).entries.every((e) => /^sha256:[0-9a-f]{64}$/.test(e.target ?? "")));

    const admin = { key: keys.admin };
    assert.equal((await request("/api/copy", { method: "POST", ...admin, id: "copy-1", json: { source: "chat", destination: "copied" } })).status, 200);
    assert.equal((await request("/api/delete", { method: "DELETE", ...admin, id: "delete-1", json: { model: "copied" } })).status, 200);
    const job = await request("/api/jobs", { method: "POST", ...admin, id: "job-1", json: { type: "pull", model: "nobody/nothing" } });
    assert.equal(job.status, 202);
    const jobId = ((await job.json()) as { id: string }).id;
    assert.equal((await request(`/api/jobs/${jobId}`, { method: "DELETE", ...admin, id: "cancel-1" })).status, 200);
    const victim = await createKey({ name: "short-lived", scope: "inference" }, keys.admin, "key-2");
    assert.equal((await request(`/api/keys/${victim.id}`, { method: "DELETE", ...admin, id: "revoke-1" })).status, 200);
    assert.equal((await request("/api/jobs/abc123", { method: "DELETE", ...admin, id: "cancel-404" })).status, 404);

    const expect: Array<[string, string, string, string, string | null]> = [
      ["copy-1", "POST", "/api/copy", "model.copy", "copied:latest"],
      ["delete-1", "DELETE", "/api/delete", "model.delete", "copied:latest"],
      ["job-1", "POST", "/api/jobs", "model.pull", "nobody/nothing:latest"],
      ["cancel-1", "DELETE", "/api/jobs/:id", "job.cancel", jobId],
      ["key-2", "POST", "/api/keys", "key.create", victim.id],
      ["revoke-1", "DELETE", "/api/keys/:id", "key.revoke", victim.id],
    ];
    for (const [id, method, route, action, target] of expect) {
      const entry = await entryOf(id);
      assert.deepEqual([entry.method, entry.route, entry.action, entry.target], [method, route, action, target], id);
      assert.deepEqual([entry.key_id, entry.key_name], [keys.adminId, "admin"], id);
      assert.ok(entry.status < 300, id);
    }
    assert.equal((await entryOf("copy-1")).model, "chat:latest", "a copy's model is its source");
    const failed = await entryOf("cancel-404");
    assert.deepEqual([failed.status, failed.action, failed.target, failed.route], [404, null, null, "/api/jobs/:id"], "a failed change made none");
  });

  test("refused requests are recorded: no key, a wrong key (401), a wrong scope (403)", async () => {
    await request("/api/chat", { method: "POST", id: "nokey-1", json: { model: "chat", messages: [] } });
    await request("/api/tags", { key: "ais_abcdefgh_" + "x".repeat(43), id: "badkey-1" });
    await request("/api/jobs", { key: keys.app, id: "scope-1" });
    const [none, bad, scope] = [await entryOf("nokey-1"), await entryOf("badkey-1"), await entryOf("scope-1")];
    // Refused before its body was read: no model
    assert.deepEqual([none.status, none.key_id, none.route, none.model], [401, null, "/api/chat", null]);
    assert.deepEqual([bad.status, bad.key_id, bad.route], [401, null, "/api/tags"]);
    assert.deepEqual([scope.status, scope.key_id, scope.key_name], [403, keys.appId, "app"]);
  });

  test("not recorded: probes, scrapes, HEAD, CORS preflights, routes that do not exist", async () => {
    const ids = ["root", "health", "ready", "metrics", "head", "preflight", "nothing"].map((name) => `unaudited-${name}`);
    await request("/", { id: ids[0] });
    await request("/health", { id: ids[1] });
    await request("/ready", { id: ids[2] });
    await request("/metrics", { key: keys.admin, id: ids[3] });
    await request(`/api/blobs/sha256:${"0".repeat(64)}`, { method: "HEAD", key: keys.admin, id: ids[4] });
    await request("/v1/chat/completions", {
      method: "OPTIONS",
      id: ids[5],
      headers: { origin: "http://localhost:3000", "access-control-request-method": "POST" },
    });
    await request("/api/nothing", { key: keys.admin, id: ids[6] });
    // A request after them, so that theirs would have been written by the time its row is
    await request("/api/tags", { key: keys.app, id: "after-unaudited" });
    await entryOf("after-unaudited");
    const recorded = new Set((await auditPage("?limit=1000")).entries.map((e) => e.request_id));
    for (const id of ids) assert.ok(!recorded.has(id), id);
  });
});

describe("streams cut short", () => {
  test("a client that leaves mid-stream: recorded with the status it got, aborted", async () => {
    server.engine.script = { endless: true, delayMs: 5 };
    try {
      const controller = new AbortController();
      const aborts = server.engine.aborts;
      const response = await request("/api/chat", {
        method: "POST",
        key: keys.app,
        id: "cut-1",
        json: { model: "chat", messages: [{ role: "user", content: "Go on" }] },
        signal: controller.signal,
      });
      assert.equal(response.status, 200);
      const reader = response.body?.getReader();
      await reader?.read();
      controller.abort();
      await server.engine.waitForAbort(aborts + 1);
      const entry = await entryOf("cut-1");
      assert.deepEqual([entry.status, entry.aborted, entry.route, entry.model], [200, true, "/api/chat", "chat:latest"]);
    } finally {
      server.engine.script = {};
    }
  });

  test("a client that leaves before the first token: 499, aborted", async () => {
    server.engine.script = { delayMs: 60_000 };
    try {
      const controller = new AbortController();
      const aborts = server.engine.aborts;
      const response = request("/v1/chat/completions", {
        method: "POST",
        key: keys.app,
        id: "cut-2",
        json: { model: "chat", stream: true, messages: [{ role: "user", content: "Go on" }] },
        signal: controller.signal,
      });
      while (server.engine.running === 0) await sleep(5);
      controller.abort();
      await assert.rejects(response);
      await server.engine.waitForAbort(aborts + 1);
      const entry = await entryOf("cut-2");
      assert.deepEqual([entry.status, entry.aborted, entry.route], [499, true, "/v1/chat/completions"]);
    } finally {
      server.engine.script = {};
    }
  });
});

describe("content", () => {
  const prompt = "PROMPT-MARKER-7f3a";
  const said = "OUTPUT-MARKER-9c2b";

  /**
   * Whether the database holds `text` anywhere: SQLite's files (the main file and its write-ahead log), or every row
   * of every table of PostgreSQL's (the suite run with AI_SERVER_TEST_DATABASE_URL).
   */
  async function databaseHolds(target: FakeServer, text: string): Promise<boolean> {
    await target.app.services.audit.flush();
    const db = target.app.services.database;
    if (db.dialect === "postgres") {
      const tables = await db.all("SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()");
      for (const { name } of tables) {
        const rows = await db.all(`SELECT CAST(t AS TEXT) AS row FROM ${String(name)} t`);
        if (rows.some((row) => String(row.row).includes(text))) return true;
      }
      return false;
    }
    const file = dataPaths(target.home).database;
    const parts = await Promise.all([file, `${file}-wal`].map((f) => readFile(f).catch(() => Buffer.alloc(0))));
    return parts.some((bytes) => bytes.includes(text));
  }

  test("by default no prompt or output text is written, anywhere in the database", async () => {
    server.engine.script = { tokens: [said] };
    try {
      const response = await request("/api/chat", { method: "POST", key: keys.app, id: "private-1", json: { model: "chat", stream: false, messages: [{ role: "user", content: prompt }] } });
      assert.match(await response.text(), new RegExp(said));
      const entry = await entryOf("private-1");
      assert.deepEqual([entry.request_body, entry.output, entry.content_truncated], [null, null, false]);
      assert.equal(await databaseHolds(server, prompt), false);
      assert.equal(await databaseHolds(server, said), false);
    } finally {
      server.engine.script = {};
    }
  });

  test("with AI_SERVER_AUDIT_CONTENT=1: the request body and each generation's text, bounded", async () => {
    const keeping = await startFakeServer({ auditContent: "1" });
    try {
      keeping.engine.script = { tokens: [said, "!"] };
      const response = await fetch(`${keeping.baseUrl}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-request-id": "kept-1" },
        body: JSON.stringify({ model: "chat", n: 2, messages: [{ role: "user", content: prompt }] }),
      });
      assert.equal(response.status, 200);
      const entry = await entryOf("kept-1", keeping.baseUrl, "");
      assert.match(entry.request_body ?? "", new RegExp(prompt));
      assert.deepEqual(JSON.parse(entry.request_body ?? "null"), { model: "chat", n: 2, messages: [{ role: "user", content: prompt }] });
      assert.deepEqual(entry.output, [`${said}!`, `${said}!`], "one text per generation");
      assert.equal(entry.content_truncated, false);
      assert.equal(await databaseHolds(keeping, prompt), true, "the check above can see text when there is some");

      keeping.engine.script = {};
      const long = "y".repeat(100 * 1024);
      await fetch(`${keeping.baseUrl}/api/generate`, {
        method: "POST",
        headers: { "x-request-id": "kept-2" },
        body: JSON.stringify({ model: "chat", stream: false, prompt: long }),
      });
      const cut = await entryOf("kept-2", keeping.baseUrl, "");
      assert.equal(cut.request_body?.length, 64 * 1024);
      assert.equal(cut.content_truncated, true);
      assert.deepEqual(cut.output, ["Hello world"]);
    } finally {
      await keeping.close();
    }
  });
});

describe("GET /api/audit", () => {
  test("filters: key (id or name), model, route, status, action, since/until", async () => {
    const everything = (await auditPage("?limit=1000")).entries;
    const check = async (query: string, keep: (e: WireAuditEntry) => boolean): Promise<void> => {
      const got = (await auditPage(`${query}&limit=1000`)).entries.map((e) => e.id);
      const want = everything.filter(keep).map((e) => e.id);
      assert.ok(want.length > 0, `${query} matches something`);
      // Rows written since `everything` was read (the GET /api/audit calls themselves) may come on top
      assert.deepEqual(got.filter((id) => id <= (everything[0]?.id ?? 0)), want, query);
    };
    await check(`?key=${keys.appId}`, (e) => e.key_id === keys.appId);
    await check("?key=app", (e) => e.key_name === "app");
    await check("?model=CHAT", (e) => e.model?.toLowerCase() === "chat:latest");
    await check("?route=/v1/chat/completions", (e) => e.route === "/v1/chat/completions");
    await check("?status=4xx", (e) => e.status >= 400 && e.status < 500);
    await check("?status=201", (e) => e.status === 201);
    await check("?action=key.create", (e) => e.action === "key.create");
    await check("?action=*", (e) => e.action !== null);
    await check("?key=app&status=2xx&route=/api/chat", (e) => e.key_name === "app" && e.status < 300 && e.route === "/api/chat");
    await check("?since=1h", () => true);
    assert.deepEqual((await auditPage("?until=2000-01-01T00:00:00Z")).entries, []);
    assert.deepEqual((await auditPage(`?since=${new Date(Date.now() + 60_000).toISOString()}`)).entries, []);
  });

  test("bad filters: 400 naming the parameter, in Ollama's error shape", async () => {
    for (const [query, message] of [
      ["?status=abc", /status/],
      ["?status=600", /status/],
      ["?limit=1001", /limit/],
      ["?limit=0", /limit/],
      ["?since=yesterday", /since/],
      ["?action=key.make", /action/],
      ["?cursor=abc", /cursor/],
      ["?models=chat", /models/],
    ] as const) {
      const response = await fetch(`${server.baseUrl}/api/audit${query}`, { headers: { authorization: `Bearer ${keys.admin}` } });
      assert.equal(response.status, 400, query);
      const body = (await response.json()) as { error: string };
      assert.match(body.error, message, query);
    }
  });

  test("paging: limit (default 100) and a cursor; every row once, newest first, while new rows keep arriving", async () => {
    for (let i = 0; i < 110; i++) await request("/api/version", { key: keys.app });
    const unlimited = await auditPage();
    assert.equal(unlimited.entries.length, 100, "100 by default");
    assert.notEqual(unlimited.next_cursor, null);
    const first = await auditPage("?limit=25");
    assert.equal(first.entries.length, 25);
    const top = first.entries[0]?.id ?? 0;
    const seen = first.entries.map((e) => e.id);
    let cursor = first.next_cursor;
    while (cursor !== null) {
      // Each page's own GET /api/audit, and a request between pages, add rows newer than the first page
      await request("/api/version", { key: keys.app });
      const page = await auditPage(`?limit=25&cursor=${cursor}`);
      assert.ok(page.entries.length <= 25);
      seen.push(...page.entries.map((e) => e.id));
      cursor = page.next_cursor;
    }
    assert.deepEqual(seen, [...seen].sort((a, b) => b - a), "newest first");
    assert.equal(new Set(seen).size, seen.length, "no row twice");
    const all = (await auditPage("?limit=1000")).entries.filter((e) => e.id <= top).map((e) => e.id);
    assert.deepEqual(seen, all, "no row missed");
    assert.ok(seen.length > 110);
  });

  test("admin only: 401 without a key, 403 with an inference key or an admin key limited to models", async () => {
    assert.equal((await fetch(`${server.baseUrl}/api/audit`)).status, 401);
    assert.equal((await request("/api/audit", { key: keys.app })).status, 403);
    const limited = await request("/api/audit", { key: keys.chatAdmin });
    assert.equal(limited.status, 403);
    assert.match(((await limited.json()) as { error: string }).error, /limited to some models/);
    assert.equal((await request("/api/audit", { key: keys.admin })).status, 200);
  });
});

describe("retention", () => {
  test("rows older than AI_SERVER_AUDIT_RETENTION are removed at start; 0 keeps no audit log", async () => {
    const home = await mkdtemp(path.join(os.tmpdir(), "ai-server-audit-home-"));
    try {
      // Rows a server wrote 100 days and 1 day ago
      const db = await openDatabase({ file: dataPaths(home).database });
      const day = 86_400_000;
      const writer = new AuditLog(db, { retentionMs: 1000 * day });
      const row = { keyId: null, keyName: null, clientAddress: "10.0.0.1", method: "GET", route: "/api/tags", model: null, status: 200 };
      const counts = { promptTokens: 0, cachedTokens: 0, completionTokens: 0, durationMs: 1, action: null, target: null, aborted: false };
      const content = { requestBody: null, output: null, contentTruncated: false };
      writer.record({ time: Date.now() - 100 * day, requestId: "old-row", ...row, ...counts, ...content });
      writer.record({ time: Date.now() - day, requestId: "recent-row", ...row, ...counts, ...content });
      await writer.close();
      await db.close();
      for (const [retention, expected] of [["2160h", ["recent-row"]], ["0", []]] as const) {
        const config = loadConfig({}, { home, host: "127.0.0.1:0", logLevel: "silent", threads: 1, auditRetentionMs: retention });
        const app = await buildApp(config, { engine: new FakeEngine() });
        const base = await app.http.listen({ host: "127.0.0.1", port: 0 });
        try {
          const page = await auditPage("?limit=1000", "", base);
          assert.deepEqual(page.entries.map((e) => e.request_id).filter((id) => id.endsWith("-row")), expected, `retention ${retention}`);
          if (retention === "0") assert.deepEqual(page.entries, [], "nothing recorded, its own requests included");
        } finally {
          const closing = app.close();
          app.http.server.closeAllConnections();
          await closing;
        }
      }
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
});
