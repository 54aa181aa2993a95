/** The key store on a real SQLite file: only hashes stored, checks by id then hash, revocation, expiry, the setting key. */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { generateKey, hashKey, keyIdOf, sameHash } from "../../src/auth/api-key.js";
import { parseExpiry } from "../../src/auth/expiry.js";
import { KeyStore, SETTING_KEY_NAME } from "../../src/auth/key-store.js";
import { InvalidModelNameError, InvalidRequestError, KeyNotFoundError } from "../../src/domain/errors.js";
import { openDatabase, type Db } from "../../src/store/database.js";

let dir: string;
let file: string;
let db: Db;
let now: Date;
let keys: KeyStore;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "ai-server-keys-"));
  file = path.join(dir, "ai-server.db");
  db = openDatabase(file);
  now = new Date("2030-01-01T00:00:00Z");
  keys = new KeyStore(db, () => now);
});

after(async () => {
  db.close();
  await rm(dir, { recursive: true, force: true });
});

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

test("create stores only a hash: the key is nowhere in the database, and checking it finds its record", async () => {
  const { key, record } = keys.create({ name: "ci", scope: "inference", models: ["Qwen", "hf.co/owner/repo:Q4_K_M", "qwen:latest"], limits: { rpm: 60, maxParallel: 2 } });
  assert.equal(record.name, "ci");
  assert.deepEqual(record.models, ["qwen:latest", "hf.co/owner/repo:Q4_K_M"], "model names are normalised as the store spells them, once each");
  assert.deepEqual(record.limits, { rpm: 60, maxParallel: 2 });
  db.pragma("wal_checkpoint(FULL)");
  const bytes = Buffer.concat([await readFile(file), await readFile(`${file}-wal`).catch(() => Buffer.alloc(0))]);
  assert.equal(bytes.includes(key.slice(13)), false, "the secret is not stored");
  const row = db.prepare("SELECT hash FROM api_keys WHERE id = ?").get(record.id) as { hash: Buffer };
  assert.deepEqual(row.hash, hashKey(key));
  const check = keys.check(key);
  assert.equal(check.ok, true);
  assert.equal(check.ok && check.record.id, record.id);
});

test("a key with a known id but another secret is refused (the hash comparison decides), as is an unknown one", () => {
  const { key, record } = keys.create({ name: "victim", scope: "admin" });
  const forged = `ais_${record.id}_${"A".repeat(43)}`;
  assert.equal(keyIdOf(forged), record.id, "the forged key reaches the record by its id");
  assert.deepEqual(keys.check(forged), { ok: false, reason: "unknown" });
  assert.deepEqual(keys.check(key.slice(0, -1) + (key.endsWith("A") ? "B" : "A")), { ok: false, reason: "unknown" });
  assert.deepEqual(keys.check("not a key"), { ok: false, reason: "unknown" });
  assert.deepEqual(keys.check(""), { ok: false, reason: "unknown" });
});

test("revoked and expired keys are refused with their reason; an expired key keeps authentication in force", () => {
  const fresh = new KeyStore(db, () => now);
  const revoked = fresh.create({ name: "old", scope: "inference" });
  fresh.revoke(revoked.record.id);
  const check = fresh.check(revoked.key);
  assert.equal(!check.ok && check.reason, "revoked");
  assert.ok(fresh.list().find((k) => k.id === revoked.record.id)?.revokedAt);

  const expiring = fresh.create({ name: "short", scope: "inference", expiresAt: new Date(now.getTime() + 60_000) });
  assert.equal(fresh.check(expiring.key).ok, true);
  const later = new KeyStore(db, () => new Date(now.getTime() + 120_000));
  const expired = later.check(expiring.key);
  assert.equal(!expired.ok && expired.reason, "expired");
  assert.throws(() => fresh.revoke("nosuchid"), KeyNotFoundError);
});

test("hasActiveKey counts unrevoked keys (expired ones too); hasUsableKey only those that work now", async () => {
  const home = await mkdtemp(path.join(os.tmpdir(), "ai-server-keys-"));
  const own = openDatabase(path.join(home, "db"));
  try {
    let clock = new Date("2030-01-01T00:00:00Z");
    const store = new KeyStore(own, () => clock);
    assert.equal(store.hasActiveKey(), false);
    const { record } = store.create({ name: "k", scope: "admin", expiresAt: new Date(clock.getTime() + 1000) });
    assert.equal(store.hasActiveKey(), true);
    assert.equal(store.hasUsableKey(), true);
    clock = new Date(clock.getTime() + 2000);
    assert.equal(store.hasActiveKey(), true, "expiry never turns authentication off");
    assert.equal(store.hasUsableKey(), false);
    store.revoke(record.id);
    assert.equal(store.hasActiveKey(), false);
  } finally {
    own.close();
    await rm(home, { recursive: true, force: true });
  }
});

test("a new key's fields are checked", () => {
  assert.throws(() => keys.create({ name: " ", scope: "admin" }), InvalidRequestError);
  assert.throws(() => keys.create({ name: "x", scope: "root" as "admin" }), InvalidRequestError);
  assert.throws(() => keys.create({ name: "x", scope: "admin", models: [] }), InvalidRequestError);
  assert.throws(() => keys.create({ name: "x", scope: "admin", models: ["../etc"] }), InvalidModelNameError);
  assert.throws(() => keys.create({ name: "x", scope: "admin", limits: { tpm: 0 } }), /tpm/);
  assert.throws(() => keys.create({ name: "x", scope: "admin", limits: { maxParallel: 1.5 } }), /max_parallel/);
  assert.throws(() => keys.create({ name: "x", scope: "admin", expiresAt: new Date(now.getTime() - 1) }), /future/);
});

test("the last use is written at most once a minute", () => {
  let clock = new Date("2030-01-01T00:00:00Z");
  const store = new KeyStore(db, () => clock);
  const { key, record } = store.create({ name: "used", scope: "inference" });
  const stored = (): number | null => (db.prepare("SELECT last_used_at FROM api_keys WHERE id = ?").pluck().get(record.id) as number | null);
  assert.equal(stored(), null);
  store.check(key);
  assert.equal(stored(), clock.getTime());
  const first = clock.getTime();
  clock = new Date(first + 30_000);
  store.check(key);
  assert.equal(stored(), first, "not again within the minute");
  clock = new Date(first + 61_000);
  store.check(key);
  assert.equal(stored(), clock.getTime());
});

test("a key created or revoked by another process (another connection) is seen at the next check", () => {
  const other = openDatabase(file);
  try {
    const theirs = new KeyStore(other, () => now);
    const { key, record } = theirs.create({ name: "from the CLI", scope: "inference" });
    assert.equal(keys.check(key).ok, true);
    theirs.revoke(record.id);
    const check = keys.check(key);
    assert.equal(!check.ok && check.reason, "revoked");
  } finally {
    other.close();
  }
});

test("AI_SERVER_ADMIN_KEY's key: created once, present after, replaced when the value changes, and a revoked one stays revoked", async () => {
  const home = await mkdtemp(path.join(os.tmpdir(), "ai-server-keys-"));
  const own = openDatabase(path.join(home, "db"));
  try {
    const store = new KeyStore(own);
    const first = "first-admin-secret-of-at-least-32-characters";
    assert.equal(store.ensureSettingKey(first), "created");
    assert.equal(store.ensureSettingKey(first), "present");
    const record = store.list()[0];
    assert.equal(record?.name, SETTING_KEY_NAME);
    assert.equal(record?.scope, "admin");
    assert.equal(record?.fromSetting, true);
    assert.equal(store.check(first).ok, true);

    const second = "second-admin-secret-of-at-least-32-characters";
    assert.equal(store.ensureSettingKey(second), "replaced");
    assert.equal(!store.check(first).ok && (store.check(first) as { reason: string }).reason, "revoked");
    assert.equal(store.check(second).ok, true);

    store.revoke(keyIdOf(second));
    assert.equal(store.ensureSettingKey(second), "revoked");
    assert.equal(store.check(second).ok, false, "a revoked key does not come back with a restart");
  } finally {
    own.close();
    await rm(home, { recursive: true, force: true });
  }
});

test("a temporary admin key works in this process only and does not turn authentication on", async () => {
  const home = await mkdtemp(path.join(os.tmpdir(), "ai-server-keys-"));
  const own = openDatabase(path.join(home, "db"));
  try {
    const store = new KeyStore(own);
    const key = store.temporaryAdminKey();
    assert.equal(store.check(key).ok, true);
    assert.equal(store.hasActiveKey(), false);
    assert.deepEqual(store.list(), []);
    assert.equal(new KeyStore(own).check(key).ok, false);
  } finally {
    own.close();
    await rm(home, { recursive: true, force: true });
  }
});

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
