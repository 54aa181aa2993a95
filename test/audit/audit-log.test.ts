/**
 * The audit log's store on a real SQLite file and a real PostgreSQL (the same tests on both): batched writes, filters,
 * keyset paging, retention by a moved clock; and the pure parts (actions table, time filters, content bounds).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { parseWhen, toAuditQuery } from "../../src/api/admin/audit.js";
import { actionOf, modelNamed } from "../../src/audit/actions.js";
import type { AuditEntry } from "../../src/audit/audit-entry.js";
import { AuditLog } from "../../src/audit/audit-log.js";
import { bodyText, KeptOutput } from "../../src/audit/content.js";
import { InvalidRequestError } from "../../src/domain/errors.js";
import { openDatabase, type SqlDatabase } from "../../src/store/database.js";
import { DIALECTS, TestDatabases } from "../helpers/test-databases.js";

const DAY = 86_400_000;
const databases = new TestDatabases();

after(() => databases.close());

function entry(fields: Partial<AuditEntry> = {}): AuditEntry {
  return {
    time: Date.now(),
    requestId: "r",
    keyId: null,
    keyName: null,
    clientAddress: "127.0.0.1",
    method: "POST",
    route: "/api/chat",
    model: "chat:latest",
    status: 200,
    promptTokens: 3,
    cachedTokens: 1,
    completionTokens: 2,
    durationMs: 1.5,
    action: null,
    target: null,
    aborted: false,
    requestBody: null,
    output: null,
    contentTruncated: false,
    ...fields,
  };
}

/** The same behaviour on both databases. */
for (const { dialect, skip } of DIALECTS) {
  describe(`on ${dialect}`, { skip }, () => {
    let db: SqlDatabase;

    before(async () => {
      db = await openDatabase(await databases.target(dialect));
    });

    after(() => db?.close());

    async function rowCount(): Promise<number> {
      return Number((await db.get("SELECT count(*) AS n FROM audit_log"))?.n);
    }

    async function until(condition: () => Promise<boolean>): Promise<void> {
      while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 10));
    }

    test("rows are queued and written in batches: a full batch at once, the rest after the flush delay or on close", async () => {
      await db.run("DELETE FROM audit_log");
      const batches = new AuditLog(db, { retentionMs: DAY, batchSize: 3, flushMs: 60_000 });
      batches.record(entry({ requestId: "a" }));
      batches.record(entry({ requestId: "b" }));
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(await rowCount(), 0, "queued, not yet written");
      batches.record(entry({ requestId: "c" }));
      await until(async () => (await rowCount()) === 3); // a full batch is written without a flush (60 s away)
      await batches.close();
      const log = new AuditLog(db, { retentionMs: DAY, batchSize: 3, flushMs: 50 });
      log.record(entry({ requestId: "d" }));
      await until(async () => (await rowCount()) === 4); // after the flush delay
      log.record(entry({ requestId: "e" }));
      await log.close();
      assert.equal(await rowCount(), 5, "close writes what is queued");
      log.record(entry({ requestId: "f" }));
      await log.flush();
      assert.equal(await rowCount(), 5, "nothing after close");
    });

    test("a row reads back as written; a read first writes what is queued", async () => {
      await db.run("DELETE FROM audit_log");
      const log = new AuditLog(db, { retentionMs: DAY, flushMs: 60_000 });
      const written = entry({
        time: 1_700_000_000_000,
        requestId: "req-1",
        keyId: "abcd1234",
        keyName: "app",
        method: "DELETE",
        route: "/api/delete",
        status: 200,
        action: "model.delete",
        target: "old:latest",
        aborted: true,
        requestBody: '{"model":"old"}',
        output: ["one", "two"],
        contentTruncated: true,
      });
      log.record(written);
      const [read] = (await log.query({ limit: 10 })).entries;
      assert.ok(read !== undefined);
      const { id, ...rest } = read;
      assert.ok(typeof id === "number" && id > 0);
      assert.deepEqual(rest, written);
      await log.close();
    });

    test("filters: key (id or name), model, route, status (exact or class), action (or any), since/until", async () => {
      await db.run("DELETE FROM audit_log");
      const log = new AuditLog(db, { retentionMs: 1000 * DAY });
      const t0 = 1_700_000_000_000;
      log.record(entry({ time: t0, requestId: "1", keyId: "k1", keyName: "app", route: "/api/chat", status: 200 }));
      log.record(entry({ time: t0 + 1000, requestId: "2", keyId: "k2", keyName: "ops", route: "/api/keys", model: null, status: 201, action: "key.create", target: "k3" }));
      log.record(entry({ time: t0 + 2000, requestId: "3", keyId: null, route: "/v1/chat/completions", model: "other:latest", status: 401 }));
      log.record(entry({ time: t0 + 3000, requestId: "4", keyId: "k1", keyName: "app", route: "/api/delete", model: "chat:latest", status: 404 }));
      const ids = async (query: Omit<Parameters<AuditLog["query"]>[0], "limit">): Promise<string[]> =>
        (await log.query({ limit: 100, ...query })).entries.map((e) => e.requestId);
      assert.deepEqual(await ids({}), ["4", "3", "2", "1"], "newest first");
      assert.deepEqual(await ids({ key: "k1" }), ["4", "1"]);
      assert.deepEqual(await ids({ key: "ops" }), ["2"], "by name");
      assert.deepEqual(await ids({ model: "CHAT:latest" }), ["4", "1"], "model names compare case-insensitively");
      assert.deepEqual(await ids({ route: "/v1/chat/completions" }), ["3"]);
      assert.deepEqual(await ids({ status: { min: 400, max: 499 } }), ["4", "3"]);
      assert.deepEqual(await ids({ status: { min: 201, max: 201 } }), ["2"]);
      assert.deepEqual(await ids({ action: "key.create" }), ["2"]);
      assert.deepEqual(await ids({ action: "*" }), ["2"]);
      assert.deepEqual(await ids({ since: t0 + 1000, until: t0 + 2000 }), ["3", "2"]);
      assert.deepEqual(await ids({ key: "k1", status: { min: 400, max: 499 } }), ["4"], "filters combine");
      await log.close();
    });

    test("paging by cursor: every row exactly once, newest first, while new rows keep arriving", async () => {
      await db.run("DELETE FROM audit_log");
      const log = new AuditLog(db, { retentionMs: DAY });
      for (let i = 0; i < 25; i++) log.record(entry({ requestId: `old-${i}` }));
      const seen: string[] = [];
      let before: number | undefined;
      let pages = 0;
      do {
        const page = await log.query({ limit: 7, ...(before !== undefined && { before }) });
        seen.push(...page.entries.map((e) => e.requestId));
        before = page.nextBefore;
        pages++;
        // New requests between pages: they are newer than the first page, so no page shifts
        log.record(entry({ requestId: `new-${pages}` }));
      } while (before !== undefined);
      assert.equal(pages, 4);
      assert.deepEqual(seen, Array.from({ length: 25 }, (_, i) => `old-${24 - i}`));
      await log.close();
    });

    test("retention: prune removes rows older than the retention, by the clock; 0 = nothing recorded", async () => {
      await db.run("DELETE FROM audit_log");
      let now = 1_700_000_000_000;
      const log = new AuditLog(db, { retentionMs: 90 * DAY, now: () => now });
      log.record(entry({ time: now - 91 * DAY, requestId: "too old" }));
      log.record(entry({ time: now - 89 * DAY, requestId: "kept" }));
      log.record(entry({ time: now, requestId: "new" }));
      assert.equal(await log.prune(), 1);
      assert.deepEqual((await log.query({ limit: 10 })).entries.map((e) => e.requestId), ["new", "kept"]);
      now += 2 * DAY;
      assert.equal(await log.prune(), 1, "a row ages out as the clock moves");
      assert.deepEqual((await log.query({ limit: 10 })).entries.map((e) => e.requestId), ["new"]);
      await log.close();
      const off = new AuditLog(db, { retentionMs: 0 });
      assert.equal(off.enabled, false);
      off.record(entry({ requestId: "never" }));
      await off.close();
      assert.ok(!(await new AuditLog(db, { retentionMs: DAY }).query({ limit: 10 })).entries.some((e) => e.requestId === "never"));
    });

    test("a batch that cannot be written is reported, and the log goes on", async () => {
      await db.run("DELETE FROM audit_log");
      const failures: number[] = [];
      const log = new AuditLog(db, { retentionMs: DAY, onError: (_error, rows) => failures.push(rows) });
      log.record(entry({ requestId: null as unknown as string })); // NOT NULL violated
      await log.flush();
      assert.deepEqual(failures, [1]);
      log.record(entry({ requestId: "fine" }));
      assert.deepEqual((await log.query({ limit: 10 })).entries.map((e) => e.requestId), ["fine"]);
      await log.close();
    });
  });
}

test("actions come from route, method and success; targets from params, body or the answer", () => {
  assert.deepEqual(actionOf("POST", "/api/keys", 201, { params: {}, body: { name: "x" }, response: { id: "newid123" } }), { action: "key.create", target: "newid123" });
  assert.deepEqual(actionOf("DELETE", "/api/keys/:id", 200, { params: { id: "k1" }, body: undefined }), { action: "key.revoke", target: "k1" });
  assert.deepEqual(actionOf("POST", "/api/copy", 200, { params: {}, body: { source: "a", destination: "b" } }), { action: "model.copy", target: "b:latest" });
  assert.deepEqual(actionOf("POST", "/api/pull", 200, { params: {}, body: { name: "hf.co/o/r" } }), { action: "model.pull", target: "hf.co/o/r:latest" });
  assert.deepEqual(actionOf("POST", "/api/jobs", 202, { params: {}, body: { model: "https://x/y" } }), { action: "model.pull", target: "https://x/y" });
  assert.deepEqual(actionOf("DELETE", "/api/jobs/:id", 200, { params: { id: "j1" }, body: undefined }), { action: "job.cancel", target: "j1" });
  assert.equal(actionOf("DELETE", "/api/delete", 404, { params: {}, body: { model: "a" } }), undefined, "a failure changed nothing");
  assert.equal(actionOf("POST", "/api/chat", 200, { params: {}, body: { model: "a" } }), undefined);
  assert.equal(modelNamed("/api/chat", { model: "Qwen" }), "Qwen:latest");
  assert.equal(modelNamed("/api/copy", { source: "a", destination: "b" }), "a:latest");
  assert.equal(modelNamed("/api/keys", { name: "my key" }), undefined, "a key's name is no model");
  assert.equal(modelNamed("/api/chat", { model: "x".repeat(1000) })?.length, 256);
});

test("since/until: RFC 3339 times or spans back from now; anything else is a 400", () => {
  const now = Date.parse("2026-02-01T00:00:00Z");
  assert.equal(parseWhen("since", "1h", now), now - 3_600_000);
  assert.equal(parseWhen("since", "1h30m", now), now - 5_400_000);
  assert.equal(parseWhen("since", "7d", now), now - 7 * DAY);
  assert.equal(parseWhen("since", "2026-01-31T12:00:00Z", now), Date.parse("2026-01-31T12:00:00Z"));
  assert.equal(parseWhen("since", "2026-01-31T13:00:00+01:00", now), Date.parse("2026-01-31T12:00:00Z"));
  assert.equal(parseWhen("since", "2026-01-31", now), Date.parse("2026-01-31T00:00:00Z"));
  for (const bad of ["yesterday", "2026-01-31T12:00:00", "1x", "", "-1h"]) assert.throws(() => parseWhen("since", bad, now), InvalidRequestError, bad);
  assert.deepEqual(toAuditQuery({ status: "5xx", model: "chat", cursor: "42" }, now), { status: { min: 500, max: 599 }, model: "chat:latest", limit: 100, before: 42 });
  assert.throws(() => toAuditQuery({ action: "key.make" }, now), /key\.create/);
});

test("content is bounded: a long body or output is cut and says so; no body (a blob upload) is null", () => {
  assert.deepEqual(bodyText({ a: 1 }), { text: '{"a":1}', truncated: false });
  assert.deepEqual(bodyText(null), { text: null, truncated: false });
  assert.deepEqual(bodyText(undefined), { text: null, truncated: false });
  const long = bodyText({ prompt: "x".repeat(100) }, 50);
  assert.equal(long.text?.length, 50);
  assert.equal(long.truncated, true);
  const output = new KeptOutput(10);
  const first = output.generation();
  const second = output.generation();
  first("Hello");
  second("world");
  first("!!");
  assert.deepEqual(output.parts, ["Hello", "world"]);
  assert.equal(output.truncated, true);
});
