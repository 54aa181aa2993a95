/**
 * The database port (src/store/sql) on a real SQLite file and a real PostgreSQL, the same tests on both: values come
 * back with their types, `?` placeholders bind in order, transactions are all or nothing and never seen half done;
 * the two migration lists make the same tables with the same columns; an existing SQLite home opens unchanged.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import Database from "better-sqlite3";
import { openDatabase, type SqlDatabase } from "../../src/store/database.js";
import { numberedPlaceholders } from "../../src/store/sql/placeholders.js";
import { POSTGRES_MIGRATIONS } from "../../src/store/sql/postgres-migrations.js";
import { SQLITE_MIGRATIONS } from "../../src/store/sql/sqlite-migrations.js";
import { DIALECTS, TestDatabases } from "../helpers/test-databases.js";

const databases = new TestDatabases();
after(() => databases.close());

const KEY_ROW = "INSERT INTO api_keys (id, name, scope, models, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)";

for (const { dialect, skip } of DIALECTS) {
  describe(`on ${dialect}`, { skip }, () => {
    const opened: SqlDatabase[] = [];
    after(async () => {
      for (const db of opened) await db.close();
    });
    async function database(): Promise<SqlDatabase> {
      const db = await openDatabase(await databases.target(dialect));
      opened.push(db);
      return db;
    }

    test("values come back typed: text, 64-bit integers as numbers, blobs as Buffers, null; a ? inside a literal stays", async () => {
      const db = await database();
      const hash = Buffer.from([0, 1, 2, 255]);
      const late = 4_102_444_800_000_123; // beyond 2^32, within 2^53
      assert.deepEqual(await db.run(KEY_ROW, ["k1", "what? 'quoted'", "admin", null, hash, late, null]), { changes: 1 });
      const row = await db.get("SELECT * FROM api_keys WHERE name = ? AND scope <> 'a?b' AND id = ?", ["what? 'quoted'", "k1"]);
      assert.equal(row?.name, "what? 'quoted'");
      assert.deepEqual(row?.hash, hash);
      assert.equal(row?.created_at, late);
      assert.equal(row?.expires_at, null);
      assert.equal(row?.from_setting, 0, "the column default");
      assert.equal(await db.get("SELECT * FROM api_keys WHERE id = ?", ["nothing"]), undefined);
      assert.deepEqual(await db.run("UPDATE api_keys SET revoked_at = ? WHERE id = ?", [1, "nothing"]), { changes: 0 });
      const counted = await db.get("SELECT count(*) AS n FROM api_keys");
      assert.equal(counted?.n, 1, "a count is a number");
    });

    test("a NUL in a string (PostgreSQL's text cannot hold one) finds nothing and is written without failing", async () => {
      const db = await database();
      assert.equal(await db.get("SELECT * FROM responses WHERE id = ?", ["resp_\u0000"]), undefined);
      await db.run(KEY_ROW, ["nul", "a\u0000b", "admin", null, Buffer.alloc(1), 1, null]);
      assert.match(String((await db.get("SELECT name FROM api_keys WHERE id = 'nul'"))?.name), /^a[\u0000\uFFFD]b$/);
    });

    test("a transaction commits as a whole or not at all, and no statement outside sees it half done", async () => {
      const db = await database();
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.run(KEY_ROW, ["a", "a", "admin", null, Buffer.alloc(1), 1, null]);
          throw new Error("changed my mind");
        }),
        /changed my mind/,
      );
      assert.equal(await db.get("SELECT id FROM api_keys WHERE id = 'a'"), undefined, "rolled back");
      let outside: Promise<unknown> | undefined;
      const result = await db.transaction(async (tx) => {
        await tx.run(KEY_ROW, ["b", "b", "admin", null, Buffer.alloc(1), 1, null]);
        outside = db.get("SELECT count(*) AS n FROM api_keys");
        await new Promise((resolve) => setTimeout(resolve, 20));
        await tx.run(KEY_ROW, ["c", "c", "admin", null, Buffer.alloc(1), 1, null]);
        return "done";
      });
      assert.equal(result, "done");
      assert.ok([0, 2].includes(Number(((await outside) as { n: unknown }).n)), "before or after, never between");
      assert.equal(Number((await db.get("SELECT count(*) AS n FROM api_keys"))?.n), 2);
    });

    test("a lazy transaction (the audit log's batches) commits like any other", async () => {
      const db = await database();
      await db.transaction((tx) => tx.run(KEY_ROW, ["lazy", "lazy", "admin", null, Buffer.alloc(1), 1, null]), { lazy: true });
      assert.ok(await db.get("SELECT id FROM api_keys WHERE id = 'lazy'"));
      if (dialect === "sqlite") assert.equal((await db.get("PRAGMA synchronous"))?.synchronous, 2, "FULL again after the commit");
    });

    test("the schema is up to date at open, and opening again changes nothing", async () => {
      const target = await databases.target(dialect, "twice");
      const first = await openDatabase(target);
      await first.run(KEY_ROW, ["kept", "kept", "admin", null, Buffer.alloc(1), 1, null]);
      await first.close();
      const again = await openDatabase(target);
      opened.push(again);
      assert.ok(await again.get("SELECT id FROM api_keys WHERE id = 'kept'"));
      assert.deepEqual(await again.all("SELECT name, version FROM state_versions ORDER BY name"), [
        { name: "api_keys", version: 0 },
        { name: "models", version: 0 },
      ]);
    });
  });
}

test("placeholders are numbered for PostgreSQL, outside quoted strings, identifiers and comments", () => {
  assert.equal(numberedPlaceholders("SELECT * FROM t WHERE a = ? AND b = '?' AND \"c?\" = ? -- what?\nLIMIT ?"), "SELECT * FROM t WHERE a = $1 AND b = '?' AND \"c?\" = $2 -- what?\nLIMIT $3");
  assert.equal(numberedPlaceholders("SELECT 1"), "SELECT 1");
});

/** Every table's columns, as the database itself describes them. */
async function columns(db: SqlDatabase): Promise<Record<string, string[]>> {
  const tables = ["models", "jobs", "quantizations", "responses", "response_items", "api_keys", "audit_log", "state_versions"];
  const result: Record<string, string[]> = {};
  for (const table of tables) {
    const rows =
      db.dialect === "sqlite"
        ? await db.all(`SELECT name FROM pragma_table_info('${table}')`)
        : await db.all("SELECT column_name AS name FROM information_schema.columns WHERE table_name = ? AND table_schema = current_schema()", [table]);
    result[table] = rows.map((row) => String(row.name)).sort();
  }
  return result;
}

test("both migration lists have the same steps and make the same tables with the same columns", { skip: DIALECTS[1]?.skip }, async () => {
  assert.equal(POSTGRES_MIGRATIONS.length, SQLITE_MIGRATIONS.length);
  const sqlite = await openDatabase(await databases.target("sqlite"));
  const postgres = await openDatabase(await databases.target("postgres"));
  try {
    const expected = await columns(sqlite);
    assert.ok((expected.audit_log?.length ?? 0) > 10);
    assert.deepEqual(await columns(postgres), expected);
  } finally {
    await sqlite.close();
    await postgres.close();
  }
});

test("an existing SQLite home (made by the migrations before state_versions) opens with its rows, and gains the new step", async () => {
  const target = await databases.target("sqlite");
  const old = new Database(target.file);
  old.pragma("journal_mode = WAL");
  old.transaction(() => {
    for (const step of SQLITE_MIGRATIONS.slice(0, 7)) old.exec(step);
    old.pragma("user_version = 7");
  })();
  old.prepare("INSERT INTO models (name, digest, manifest, modified_at) VALUES (?, ?, ?, ?)").run("old:latest", "d", "{}", 1);
  old.close();
  const db = await openDatabase(target);
  try {
    assert.equal((await db.get("PRAGMA user_version"))?.user_version, SQLITE_MIGRATIONS.length);
    assert.deepEqual(await db.all("SELECT name FROM models"), [{ name: "old:latest" }]);
    assert.equal((await db.all("SELECT * FROM state_versions")).length, 2);
    assert.equal(path.basename(db.label), path.basename(target.file), "labelled by its file");
  } finally {
    await db.close();
  }
});
