/**
 * The key store on a real SQLite file and a real PostgreSQL (the same tests on both): only hashes stored, checks by id
 * then hash, revocation, expiry, the setting key, and changes made through another connection.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, test } from "node:test";
import { generateKey, hashKey, keyIdOf, sameHash } from "../../src/auth/api-key.js";
import { parseExpiry } from "../../src/auth/expiry.js";
import { KeyStore, SETTING_KEY_NAME } from "../../src/auth/key-store.js";
import { InvalidModelNameError, InvalidRequestError, KeyNotFoundError } from "../../src/domain/errors.js";
import { openDatabase, type DatabaseTarget, type SqlDatabase, type SqlValue } from "../../src/store/database.js";
import { SharedState } from "../../src/store/sql/shared-state.js";
import { DIALECTS, TestDatabases } from "../helpers/test-databases.js";

const databases = new TestDatabases();

after(() => databases.close());

test("a generated key is ais_<id>_<43 base64url chars>, its id is the public prefix, and keys differ", () => {
  const a = generateKey();
  const b = generateKey();
  assert.match(a.key, /^ais_[a-z0-9]{8}_[A-Za-z0-9_-]{43}$/);
  assert.equal(keyIdOf(a.key), a.id);
  assert.notEqual(a.key, b.key);
  // A key of another shape (an operator's AI_SERVER_ADMIN_KEY) gets an id from its hash, the same every time
  assert.equal(keyIdOf("x".repeat(40)), keyIdOf("x".repeat(40)));
  assert.match(keyIdOf("x".repeat(40)), /^[0-9a-f]{8}$/);
});

test("sameHash compares hashes in constant time and refuses different lengths", () => {
  assert.equal(sameHash(hashKey("a"), hashKey("a")), true);
  assert.equal(sameHash(hashKey("a"), hashKey("b")), false);
  assert.equal(sameHash(hashKey("a"), Buffer.alloc(3)), false);
});

/** The same behaviour on both databases. */
for (const { dialect, skip } of DIALECTS) {
  describe(`on ${dialect}`, { skip }, () => {
    let target: DatabaseTarget;
    let db: SqlDatabase;
    let now: Date;
    let keys: KeyStore;
    const opened: SqlDatabase[] = [];

    /** Another connection to a database (another process, or another replica): the shared one unless named. */
    async function connect(name = "shared"): Promise<SqlDatabase> {
      const connection = await openDatabase(await databases.target(dialect, name));
      opened.push(connection);
      return connection;
    }

    before(async () => {
      target = await databases.target(dialect, "shared");
      db = await connect();
      now = new Date("2030-01-01T00:00:00Z");
      keys = await KeyStore.open(db, () => now);
    });

    after(async () => {
      for (const connection of opened) await connection.close();
    });

    test("create stores only a hash: the key is nowhere in the database, and checking it finds its record", async () => {
      const { key, record } = await keys.create({ name: "ci", scope: "inference", models: ["Qwen", "hf.co/owner/repo:Q4_K_M", "qwen:latest"], limits: { rpm: 60, maxParallel: 2 } });
      assert.equal(record.name, "ci");
      assert.deepEqual(record.models, ["qwen:latest", "hf.co/owner/repo:Q4_K_M"], "model names are normalised as the store spells them, once each");
      assert.deepEqual(record.limits, { rpm: 60, maxParallel: 2 });
      const rows = await db.all("SELECT * FROM api_keys");
      assert.equal(JSON.stringify(rows).includes(key.slice(13)), false, "the secret is in no column");
      if (dialect === "sqlite") {
        const bytes = Buffer.concat([await readFile(target.file), await readFile(`${target.file}-wal`).catch(() => Buffer.alloc(0))]);
        assert.equal(bytes.includes(key.slice(13)), false, "the secret is not in the file");
      }
      const row = await db.get("SELECT hash FROM api_keys WHERE id = ?", [record.id]);
      assert.deepEqual(row?.hash, hashKey(key));
      const check = keys.check(key);
      assert.equal(check.ok, true);
      assert.equal(check.ok && check.record.id, record.id);
    });

    test("a key with a known id but another secret is refused (the hash comparison decides), as is an unknown one", async () => {
      const { key, record } = await keys.create({ name: "victim", scope: "admin" });
      const forged = `ais_${record.id}_${"A".repeat(43)}`;
      assert.equal(keyIdOf(forged), record.id, "the forged key reaches the record by its id");
      assert.deepEqual(keys.check(forged), { ok: false, reason: "unknown" });
      assert.deepEqual(keys.check(key.slice(0, -1) + (key.endsWith("A") ? "B" : "A")), { ok: false, reason: "unknown" });
      assert.deepEqual(keys.check("not a key"), { ok: false, reason: "unknown" });
      assert.deepEqual(keys.check(""), { ok: false, reason: "unknown" });
    });

    test("revoked and expired keys are refused with their reason; an expired key keeps authentication in force", async () => {
      const fresh = await KeyStore.open(db, () => now);
      const revoked = await fresh.create({ name: "old", scope: "inference" });
      await fresh.revoke(revoked.record.id);
      const check = fresh.check(revoked.key);
      assert.equal(!check.ok && check.reason, "revoked");
      assert.ok(fresh.list().find((k) => k.id === revoked.record.id)?.revokedAt);

      const expiring = await fresh.create({ name: "short", scope: "inference", expiresAt: new Date(now.getTime() + 60_000) });
      assert.equal(fresh.check(expiring.key).ok, true);
      const later = await KeyStore.open(db, () => new Date(now.getTime() + 120_000));
      const expired = later.check(expiring.key);
      assert.equal(!expired.ok && expired.reason, "expired");
      await assert.rejects(fresh.revoke("nosuchid"), KeyNotFoundError);
    });

    test("hasActiveKey counts unrevoked keys (expired ones too); hasUsableKey only those that work now", async () => {
      let clock = new Date("2030-01-01T00:00:00Z");
      const store = await KeyStore.open(await connect("active"), () => clock);
      assert.equal(store.hasActiveKey(), false);
      const { record } = await store.create({ name: "k", scope: "admin", expiresAt: new Date(clock.getTime() + 1000) });
      assert.equal(store.hasActiveKey(), true);
      assert.equal(store.hasUsableKey(), true);
      clock = new Date(clock.getTime() + 2000);
      assert.equal(store.hasActiveKey(), true, "expiry never turns authentication off");
      assert.equal(store.hasUsableKey(), false);
      await store.revoke(record.id);
      assert.equal(store.hasActiveKey(), false);
    });

    test("a new key's fields are checked", async () => {
      await assert.rejects(keys.create({ name: " ", scope: "admin" }), InvalidRequestError);
      await assert.rejects(keys.create({ name: "x", scope: "root" as "admin" }), InvalidRequestError);
      await assert.rejects(keys.create({ name: "x", scope: "admin", models: [] }), InvalidRequestError);
      await assert.rejects(keys.create({ name: "x", scope: "admin", models: ["../etc"] }), InvalidModelNameError);
      await assert.rejects(keys.create({ name: "x", scope: "admin", limits: { tpm: 0 } }), /tpm/);
      await assert.rejects(keys.create({ name: "x", scope: "admin", limits: { maxParallel: 1.5 } }), /max_parallel/);
      await assert.rejects(keys.create({ name: "x", scope: "admin", expiresAt: new Date(now.getTime() - 1) }), /future/);
    });

    test("the last use is written at most once a minute, without the check waiting for it", async () => {
      let clock = new Date("2030-01-01T00:00:00Z");
      // The store's writes of the last use, counted on the way to the database
      const touches: unknown[] = [];
      const counted: SqlDatabase = Object.create(db, {
        run: { value: (sql: string, params?: SqlValue[]) => (sql.includes("last_used_at") && touches.push(params?.[0]), db.run(sql, params)) },
      });
      const store = await KeyStore.open(counted, () => clock);
      const { key, record } = await store.create({ name: "used", scope: "inference" });
      const stored = async (): Promise<unknown> => (await db.get("SELECT last_used_at FROM api_keys WHERE id = ?", [record.id]))?.last_used_at;
      assert.equal(await stored(), null);
      store.check(key);
      const first = clock.getTime();
      assert.deepEqual(touches, [first]);
      while ((await stored()) !== first) await new Promise((resolve) => setTimeout(resolve, 10));
      clock = new Date(first + 30_000);
      store.check(key);
      assert.deepEqual(touches, [first], "not again within the minute");
      clock = new Date(first + 61_000);
      store.check(key);
      assert.deepEqual(touches, [first, clock.getTime()]);
      while ((await stored()) !== clock.getTime()) await new Promise((resolve) => setTimeout(resolve, 10));
    });

    test("a key created or revoked by another process or replica (another connection) is seen after the next refresh", async () => {
      const theirs = await KeyStore.open(await connect(), () => now);
      const { key, record } = await theirs.create({ name: "from the CLI", scope: "inference" });
      await SharedState.of(db).refresh();
      assert.equal(keys.check(key).ok, true);
      await theirs.revoke(record.id);
      await SharedState.of(db).refresh();
      const check = keys.check(key);
      assert.equal(!check.ok && check.reason, "revoked");
    });

    test("AI_SERVER_ADMIN_KEY's key: created once, present after, replaced when the value changes, and a revoked one stays revoked", async () => {
      const store = await KeyStore.open(await connect("setting"));
      const first = "first-admin-secret-of-at-least-32-characters";
      assert.equal(await store.ensureSettingKey(first), "created");
      assert.equal(await store.ensureSettingKey(first), "present");
      const record = store.list()[0];
      assert.equal(record?.name, SETTING_KEY_NAME);
      assert.equal(record?.scope, "admin");
      assert.equal(record?.fromSetting, true);
      assert.equal(store.check(first).ok, true);

      const second = "second-admin-secret-of-at-least-32-characters";
      assert.equal(await store.ensureSettingKey(second), "replaced");
      assert.equal(!store.check(first).ok && (store.check(first) as { reason: string }).reason, "revoked");
      assert.equal(store.check(second).ok, true);

      await store.revoke(keyIdOf(second));
      assert.equal(await store.ensureSettingKey(second), "revoked");
      assert.equal(store.check(second).ok, false, "a revoked key does not come back with a restart");
    });

    test("replicas starting together with the same AI_SERVER_ADMIN_KEY store it once", async () => {
      const secret = "the-same-admin-secret-on-every-replica-0123";
      const stores = await Promise.all([1, 2, 3].map(async () => KeyStore.open(await connect("together"))));
      const states = await Promise.all(stores.map((store) => store.ensureSettingKey(secret)));
      assert.ok(states.every((state) => state === "created" || state === "present"), states.join());
      const rows = await stores[0]!.list();
      assert.equal(rows.filter((k) => k.id === keyIdOf(secret)).length, 1);
      for (const store of stores) assert.equal(store.check(secret).ok, true);
    });

    test("a temporary admin key works in this process only and does not turn authentication on", async () => {
      const own = await connect("temporary");
      const store = await KeyStore.open(own);
      const key = store.temporaryAdminKey();
      assert.equal(store.check(key).ok, true);
      assert.equal(store.hasActiveKey(), false);
      assert.deepEqual(store.list(), []);
      assert.equal((await KeyStore.open(own)).check(key).ok, false);
    });
  });
}

test("expiry: spans from now, dates, and refusals", () => {
  const at = new Date("2030-01-01T00:00:00Z");
  assert.equal(parseExpiry("30d", at).toISOString(), "2030-01-31T00:00:00.000Z");
  assert.equal(parseExpiry("1d12h", at).toISOString(), "2030-01-02T12:00:00.000Z");
  assert.equal(parseExpiry("2w", at).toISOString(), "2030-01-15T00:00:00.000Z");
  assert.equal(parseExpiry("2030-02-01T00:00:00Z", at).toISOString(), "2030-02-01T00:00:00.000Z");
  assert.throws(() => parseExpiry("2029-12-31", at), /not in the future/);
  assert.throws(() => parseExpiry("soon", at), /neither a span/);
  assert.throws(() => parseExpiry("0d", at), /not in the future/);
});
