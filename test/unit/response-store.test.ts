/**
 * ResponseStore on a real SQLite database (the server's, migrations included) in a temp directory, with a clock the
 * test moves: what is stored comes back whole, by response and by item id; the retention hides and prunes; a
 * retention of 0 stores nothing; delete forgets a response and its items; a reopened database still has them.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { openDatabase, type Db } from "../../src/store/database.js";
import { ResponseStore, type StoredResponse } from "../../src/store/response-store.js";

const HOUR = 3_600_000;
let dir: string;
const opened: Db[] = [];
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "response-store-"));
});
after(async () => {
  for (const db of opened) if (db.open) db.close();
  await rm(dir, { recursive: true, force: true });
});

function database(name: string): Db {
  const db = openDatabase(path.join(dir, name));
  opened.push(db);
  return db;
}

function response(id: string, createdAt: number, output: unknown[] = []): StoredResponse {
  return {
    id,
    createdAt: new Date(createdAt),
    model: "m",
    status: "completed",
    request: { model: "m", instructions: "be brief" },
    input: [{ type: "message", role: "user", content: "Hi" }],
    output,
    response: { id, object: "response", output },
  };
}

test("a stored response comes back whole, its items by id; unknown ids are undefined", () => {
  let now = 1_000_000_000_000;
  const store = new ResponseStore(database("whole.db"), { retentionMs: HOUR, now: () => now });
  const message = { id: "msg_1", type: "message", role: "assistant", content: [{ type: "output_text", text: "Hello" }] };
  const saved = { ...response("resp_1", now, [message]), previousResponseId: "resp_0" };
  store.save(saved, [{ id: "msg_1", item: message }]);
  now += 1000;
  assert.deepEqual(store.get("resp_1"), saved);
  assert.deepEqual(store.item("msg_1"), message);
  assert.equal(store.get("resp_2"), undefined);
  assert.equal(store.item("msg_2"), undefined);
  assert.equal(store.enabled, true);
});

test("past the retention a response and its items are never served, and prune removes them", () => {
  let now = 2_000_000_000_000;
  const db = database("retention.db");
  const store = new ResponseStore(db, { retentionMs: HOUR, now: () => now });
  store.save(response("resp_old", now), [{ id: "fc_old", item: { id: "fc_old", type: "function_call" } }]);
  now += HOUR / 2;
  store.save(response("resp_new", now), [{ id: "fc_new", item: { id: "fc_new", type: "function_call" } }]);
  now += HOUR / 2 + 1; // resp_old is now just past the retention, resp_new half way
  assert.equal(store.get("resp_old"), undefined);
  assert.equal(store.item("fc_old"), undefined);
  assert.equal(store.delete("resp_old"), false, "an expired response counts as none");
  assert.ok(store.get("resp_new"));
  assert.ok(store.item("fc_new"));
  const rows = (): unknown => db.prepare("SELECT (SELECT count(*) FROM responses) AS responses, (SELECT count(*) FROM response_items) AS items").get();
  assert.deepEqual(rows(), { responses: 2, items: 2 }, "expired rows are hidden before they are pruned");
  assert.equal(store.prune(), 1);
  assert.deepEqual(rows(), { responses: 1, items: 1 });
  assert.ok(store.get("resp_new"));
});

test("a retention of 0 stores nothing (and prune empties what an earlier setting kept)", () => {
  const db = database("off.db");
  new ResponseStore(db, { retentionMs: HOUR }).save(response("resp_kept", Date.now()), [{ id: "msg_kept", item: {} }]);
  const store = new ResponseStore(db, { retentionMs: 0 });
  assert.equal(store.enabled, false);
  store.save(response("resp_1", Date.now()), [{ id: "msg_1", item: {} }]);
  assert.equal(store.get("resp_1"), undefined);
  assert.equal(store.get("resp_kept"), undefined);
  assert.equal(store.item("msg_kept"), undefined);
  assert.equal(store.prune(), 1);
  assert.deepEqual(db.prepare("SELECT count(*) AS n FROM response_items").get(), { n: 0 });
});

test("delete forgets the response and its items, once; the database keeps the rest across a reopen", () => {
  const file = "reopen.db";
  const db = database(file);
  const store = new ResponseStore(db, { retentionMs: HOUR });
  store.save(response("resp_a", Date.now()), [{ id: "msg_a", item: { text: "a" } }]);
  store.save(response("resp_b", Date.now()), [{ id: "msg_b", item: { text: "b" } }]);
  assert.equal(store.delete("resp_a"), true);
  assert.equal(store.delete("resp_a"), false);
  assert.equal(store.get("resp_a"), undefined);
  assert.equal(store.item("msg_a"), undefined);
  db.close();
  const reopened = new ResponseStore(database(file), { retentionMs: HOUR });
  assert.equal(reopened.get("resp_b")?.id, "resp_b");
  assert.deepEqual(reopened.item("msg_b"), { text: "b" });
});
