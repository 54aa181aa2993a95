/**
 * ResponseStore on a real SQLite database and a real PostgreSQL (the server's schema, migrations included; the same
 * tests on both), with a clock the test moves: what is stored comes back whole, by response and by item id; the retention hides and prunes; a
 * retention of 0 stores nothing; delete forgets a response and its items; a reopened database still has them.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { openDatabase, type SqlDatabase } from "../../src/store/database.js";
import { DIALECTS, TestDatabases } from "../helpers/test-databases.js";
import { ResponseStore, type StoredResponse } from "../../src/store/response-store.js";

const HOUR = 3_600_000;
const databases = new TestDatabases();
after(() => databases.close());

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

/** The same behaviour on both databases. */
for (const { dialect, skip } of DIALECTS) {
  describe(`on ${dialect}`, { skip }, () => {
    const opened: SqlDatabase[] = [];
    after(async () => {
      for (const db of opened) await db.close().catch(() => undefined);
    });

    async function database(name: string): Promise<SqlDatabase> {
      const db = await openDatabase(await databases.target(dialect, name));
      opened.push(db);
      return db;
    }

    async function count(db: SqlDatabase, table: string): Promise<number> {
      return Number((await db.get(`SELECT count(*) AS n FROM ${table}`))?.n);
    }

    test("a stored response comes back whole, its items by id; unknown ids are undefined", async () => {
      let now = 1_000_000_000_000;
      const store = new ResponseStore(await database("whole"), { retentionMs: HOUR, now: () => now });
      const message = { id: "msg_1", type: "message", role: "assistant", content: [{ type: "output_text", text: "Hello" }] };
      const saved = { ...response("resp_1", now, [message]), previousResponseId: "resp_0" };
      await store.save(saved, [{ id: "msg_1", item: message }]);
      now += 1000;
      assert.deepEqual(await store.get("resp_1"), saved);
      assert.deepEqual(await store.item("msg_1"), message);
      assert.equal(await store.get("resp_2"), undefined);
      assert.equal(await store.item("msg_2"), undefined);
      assert.equal(store.enabled, true);
      await store.save({ ...saved, status: "incomplete" }, [{ id: "msg_1", item: message }]);
      assert.equal((await store.get("resp_1"))?.status, "incomplete", "saving an id again replaces it");
    });

    test("past the retention a response and its items are never served, and prune removes them", async () => {
      let now = 2_000_000_000_000;
      const db = await database("retention");
      const store = new ResponseStore(db, { retentionMs: HOUR, now: () => now });
      await store.save(response("resp_old", now), [{ id: "fc_old", item: { id: "fc_old", type: "function_call" } }]);
      now += HOUR / 2;
      await store.save(response("resp_new", now), [{ id: "fc_new", item: { id: "fc_new", type: "function_call" } }]);
      now += HOUR / 2 + 1; // resp_old is now just past the retention, resp_new half way
      assert.equal(await store.get("resp_old"), undefined);
      assert.equal(await store.item("fc_old"), undefined);
      assert.equal(await store.delete("resp_old"), false, "an expired response counts as none");
      assert.ok(await store.get("resp_new"));
      assert.ok(await store.item("fc_new"));
      const rows = async (): Promise<unknown> => ({ responses: await count(db, "responses"), items: await count(db, "response_items") });
      assert.deepEqual(await rows(), { responses: 2, items: 2 }, "expired rows are hidden before they are pruned");
      assert.equal(await store.prune(), 1);
      assert.deepEqual(await rows(), { responses: 1, items: 1 });
      assert.ok(await store.get("resp_new"));
    });

    test("a retention of 0 stores nothing (and prune empties what an earlier setting kept)", async () => {
      const db = await database("off");
      await new ResponseStore(db, { retentionMs: HOUR }).save(response("resp_kept", Date.now()), [{ id: "msg_kept", item: {} }]);
      const store = new ResponseStore(db, { retentionMs: 0 });
      assert.equal(store.enabled, false);
      await store.save(response("resp_1", Date.now()), [{ id: "msg_1", item: {} }]);
      assert.equal(await store.get("resp_1"), undefined);
      assert.equal(await store.get("resp_kept"), undefined);
      assert.equal(await store.item("msg_kept"), undefined);
      assert.equal(await store.prune(), 1);
      assert.equal(await count(db, "response_items"), 0);
    });

    test("delete forgets the response and its items, once; the database keeps the rest across a reopen", async () => {
      const db = await database("reopen");
      const store = new ResponseStore(db, { retentionMs: HOUR });
      await store.save(response("resp_a", Date.now()), [{ id: "msg_a", item: { text: "a" } }]);
      await store.save(response("resp_b", Date.now()), [{ id: "msg_b", item: { text: "b" } }]);
      assert.equal(await store.delete("resp_a"), true);
      assert.equal(await store.delete("resp_a"), false);
      assert.equal(await store.get("resp_a"), undefined);
      assert.equal(await store.item("msg_a"), undefined);
      await db.close();
      const reopened = new ResponseStore(await database("reopen"), { retentionMs: HOUR });
      assert.equal((await reopened.get("resp_b"))?.id, "resp_b");
      assert.deepEqual(await reopened.item("msg_b"), { text: "b" });
    });
  });
}
