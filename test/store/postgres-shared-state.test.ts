/**
 * PostgreSQL as several replicas see it, with a real server: replicas (processes and pools) migrating one database
 * at once; model names unique whatever their case; the cached tables kept fresh with one query per refresh, and by
 * notifications between requests (also after the listening connection was lost); a server that cannot be used named
 * plainly, never with its password — by the store, and by `ai-server serve` on its way out; a database that goes away
 * under a running server (503s, /ready says why) and comes back.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { KeyStore } from "../../src/auth/key-store.js";
import { DatabaseUnavailableError } from "../../src/domain/errors.js";
import { openDatabase, type SqlDatabase } from "../../src/store/database.js";
import { POSTGRES_MIGRATIONS } from "../../src/store/sql/postgres-migrations.js";
import { SharedState } from "../../src/store/sql/shared-state.js";
import { freePort } from "../helpers/free-port.js";
import { FakeEngine } from "../helpers/fake-engine.js";
import { adminQuery, PostgresServer, postgresSkipReason } from "../helpers/postgres-server.js";
import { startServer } from "../helpers/start-server.js";
import { TestDatabases } from "../helpers/test-databases.js";
import { waitFor } from "../pull/pull-helpers.js";

const skip = postgresSkipReason() ?? false;
const run = promisify(execFile);
const databases = new TestDatabases();
const opened: SqlDatabase[] = [];

/** A connection (a replica's pool) to the database named `name` (a fresh one per name). */
async function replica(name: string): Promise<SqlDatabase> {
  const db = await openDatabase(await databases.target("postgres", name));
  opened.push(db);
  return db;
}

before(async () => {
  if (!skip) await databases.postgresUrl(); // the server starts once, before the tests time anything
});

after(async () => {
  for (const db of opened) await db.close().catch(() => undefined);
  await databases.close();
});

test("processes and pools migrating one database at the same time apply every step once", { skip }, async () => {
  const { url } = await databases.target("postgres", "racing");
  const script = `import { PostgresDatabase } from ${JSON.stringify(path.resolve("src/store/sql/postgres-database.ts"))};
    const db = await PostgresDatabase.open(process.argv[1]); await db.close(); console.log("migrated");`;
  const processes = [1, 2, 3].map(() => run(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script, url ?? ""]));
  const pools = [1, 2, 3].map(() => openDatabase({ file: "", ...(url && { url }) }));
  const outputs = await Promise.all(processes);
  const dbs = await Promise.all(pools);
  opened.push(...dbs);
  assert.deepEqual(outputs.map((output) => output.stdout.trim()), ["migrated", "migrated", "migrated"]);
  const db = dbs[0]!;
  assert.deepEqual(await db.all("SELECT version FROM schema_version"), [{ version: POSTGRES_MIGRATIONS.length }], "one row, the last step");
  assert.deepEqual(await db.all("SELECT name, version FROM state_versions ORDER BY name"), [
    { name: "api_keys", version: 0 },
    { name: "models", version: 0 },
  ]);
});

test("two models never differ only by the case of their names", { skip }, async () => {
  const db = await replica("names");
  const insert = "INSERT INTO models (name, digest, manifest, modified_at) VALUES (?, 'd', '{}', 1)";
  await db.run(insert, ["Qwen:latest"]);
  await assert.rejects(db.run(insert, ["qwen:LATEST"]), /models_by_lower_name/);
});

test("a refresh reads the versions in one query, and re-reads only the table another replica changed", { skip }, async () => {
  const mine = await replica("fresh");
  const queries: string[] = [];
  const counted: SqlDatabase = Object.create(mine, {
    all: { value: (sql: string, params?: []) => (queries.push(sql), mine.all(sql, params)) },
    get: { value: (sql: string, params?: []) => (queries.push(sql), mine.get(sql, params)) },
  });
  const keys = await KeyStore.open(counted);
  const state = SharedState.of(counted);
  queries.length = 0;
  await state.refresh();
  assert.deepEqual(queries, ["SELECT name, version FROM state_versions"], "nothing changed: one query");

  const theirs = await KeyStore.open(await replica("fresh"));
  const { key } = await theirs.create({ name: "made elsewhere", scope: "inference" });
  assert.equal(keys.check(key).ok, false, "not seen before a refresh");
  queries.length = 0;
  await state.refresh();
  assert.equal(keys.check(key).ok, true, "seen after one");
  assert.equal(queries.length, 3, `the versions, then the keys' version and rows: ${queries.join(" | ")}`);

  // Refreshes asked for while one runs share the next one
  queries.length = 0;
  await Promise.all([state.refresh(), state.refresh(), state.refresh(), state.refresh()]);
  assert.ok(queries.length <= 2, `${queries.length} queries for 4 refreshes`);
});

test("between requests, another replica's write reaches this one's cache by notification, also after the connection was lost", { skip }, async () => {
  const warnings: string[] = [];
  const mine = await openDatabase({ ...(await databases.target("postgres", "notified")), warn: (message) => warnings.push(message) });
  opened.push(mine);
  const keys = await KeyStore.open(mine);
  const stop = await SharedState.of(mine).listen((message) => warnings.push(message));
  try {
    const theirs = await KeyStore.open(await replica("notified"));
    const seen = async (key: string): Promise<void> => {
      while (!keys.check(key).ok) await new Promise((resolve) => setTimeout(resolve, 20));
    };
    await seen((await theirs.create({ name: "first", scope: "inference" })).key);

    // The server ends the listening connection (a restart, a failover): it is opened again, and writes made
    // meanwhile are read once it is back
    const { url } = await databases.target("postgres", "notified");
    await adminQuery(url ?? "", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()");
    const { key } = await theirs.create({ name: "while it was gone", scope: "inference" });
    await seen(key);
    assert.ok(warnings.some((warning) => /connection listening for changes was lost/.test(warning)), warnings.join("\n"));
    await seen((await theirs.create({ name: "after", scope: "inference" })).key);
  } finally {
    await stop();
  }
});

test("a server that cannot be reached, or refuses the user, is named (host and port) without the password", { skip }, async () => {
  const port = await freePort();
  await assert.rejects(openDatabase({ file: "", url: `postgres://app:s3cret-pw@127.0.0.1:${port}/state` }), (error: unknown) => {
    assert.ok(error instanceof DatabaseUnavailableError);
    assert.match(error.message, new RegExp(`postgres://app@127\\.0\\.0\\.1:${port}/state .*connection refused`));
    assert.ok(!error.message.includes("s3cret-pw"));
    return true;
  });
  const server = new URL(await databases.postgresUrl());
  await assert.rejects(openDatabase({ file: "", url: `postgres://intruder:s3cret-pw@${server.host}/postgres` }), (error: unknown) => {
    assert.ok(error instanceof DatabaseUnavailableError);
    assert.match(error.message, /refused the credentials: .*"intruder"/);
    assert.ok(!error.message.includes("s3cret-pw"));
    return true;
  });
});

test("serve says in one line which database it cannot use, and exits", { skip }, async () => {
  const port = await freePort();
  const home = await mkdtemp(path.join(os.tmpdir(), "ai-server-unreachable-"));
  const env = { ...process.env, AI_SERVER_HOME: home, AI_SERVER_HOST: "127.0.0.1:0", AI_SERVER_LOG_LEVEL: "silent" };
  const failed = await run(process.execPath, ["--import", "tsx", path.resolve("src/cli/main.ts"), "serve"], {
    env: { ...env, AI_SERVER_DATABASE_URL: `postgresql://app:s3cret-pw@127.0.0.1:${port}/state` },
  })
    .then(
      () => assert.fail("serve started"),
      (error: { code: number; stderr: string }) => error,
    )
    .finally(() => rm(home, { recursive: true, force: true }));
  assert.equal(failed.code, 1);
  assert.equal(failed.stderr.trim().split("\n").length, 1, failed.stderr);
  assert.match(failed.stderr, new RegExp(`cannot use the database at postgres://app@127\\.0\\.0\\.1:${port}/state \\(AI_SERVER_DATABASE_URL\\)`));
  assert.ok(!failed.stderr.includes("s3cret-pw"));
});

test("while PostgreSQL is away, /ready is 503 with the reason and requests that need the state get 503 database_unavailable; then it recovers", { skip }, async () => {
  const own = await PostgresServer.start();
  const server = await startServer({ engine: new FakeEngine(), config: { databaseUrl: await own.createDatabase() } });
  const get = async (route: string): Promise<{ status: number; body: Record<string, unknown> }> => {
    const response = await fetch(`${server.baseUrl}${route}`);
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  try {
    assert.equal((await get("/ready")).status, 200);
    assert.equal((await get("/api/tags")).status, 200);
    await own.stop();
    const ready = await get("/ready");
    assert.equal(ready.status, 503);
    assert.match(String((ready.body.reasons as string[])[0]), /^the store cannot be read: /);
    const tags = await get("/api/tags");
    assert.equal(tags.status, 503);
    assert.match(String(tags.body.error), /the database cannot be read/);
    assert.equal((await get("/health")).status, 200, "/health reads no database");
    await own.restart();
    await waitFor("the server to use the database again", async () => (await get("/ready")).status === 200);
    assert.equal((await get("/api/tags")).status, 200);
  } finally {
    await server.close();
    await own.close();
  }
});
