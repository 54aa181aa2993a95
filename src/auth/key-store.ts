import { z } from "zod";
import { InvalidRequestError, KeyNotFoundError } from "../domain/errors.js";
import { normalizeModelName } from "../domain/model-name.js";
import type { SqlDatabase, SqlExecutor } from "../store/database.js";
import { TableCache } from "../store/sql/shared-state.js";
import { generateKey, hashKey, keyIdOf, sameHash } from "./api-key.js";
import type { Limits, Scope } from "./principal.js";

/** An API key as stored and listed: everything but the key itself, of which only a hash is kept. */
export interface ApiKeyRecord {
  /** Public: the `<id>` of `ais_<id>_<secret>`. */
  readonly id: string;
  readonly name: string;
  readonly scope: Scope;
  /** Normalised names of the models the key may see and use; absent = every model. */
  readonly models?: readonly string[];
  readonly limits: Readonly<Limits>;
  readonly createdAt: Date;
  readonly expiresAt?: Date;
  readonly revokedAt?: Date;
  /** The last request made with it, to the minute. */
  readonly lastUsedAt?: Date;
  /** The key of AI_SERVER_ADMIN_KEY (ensured at every start). */
  readonly fromSetting: boolean;
}

/** What a new key is: its name, scope, and optionally its models, limits and expiry. */
export interface NewKey {
  name: string;
  scope: Scope;
  models?: readonly string[];
  limits?: Limits;
  expiresAt?: Date;
}

/** The outcome of checking a presented key. */
export type KeyCheck = { ok: true; record: ApiKeyRecord } | { ok: false; reason: "unknown" | "revoked" | "expired"; record?: ApiKeyRecord };

/** What AI_SERVER_ADMIN_KEY's key turned out to be at start-up. */
export type SettingKeyState = "created" | "replaced" | "present" | "revoked";

/** The name the key of AI_SERVER_ADMIN_KEY is listed under. */
export const SETTING_KEY_NAME = "admin (AI_SERVER_ADMIN_KEY)";

/** A key's last use is written at most this often (a write per request would cost an fsync per request). */
const LAST_USED_RESOLUTION_MS = 60_000;

const NAME_MAX = 100;

const rowSchema = z.object({
  id: z.string(),
  name: z.string(),
  scope: z.enum(["inference", "admin"]),
  models: z.string().nullable(),
  rpm: z.number().nullable(),
  tpm: z.number().nullable(),
  max_parallel: z.number().nullable(),
  hash: z.instanceof(Buffer),
  created_at: z.number(),
  expires_at: z.number().nullable(),
  revoked_at: z.number().nullable(),
  last_used_at: z.number().nullable(),
  from_setting: z.number(),
});

interface Entry {
  record: ApiKeyRecord;
  hash: Buffer;
}

/** Compared against when no key has the presented id, so that an unknown id costs the same work as a wrong secret. */
const NO_HASH = hashKey("");

/**
 * API keys in the database (the `api_keys` table), used by the server on every request and by `ai-server keys` when
 * no server runs. Reads are synchronous, from the rows loaded once and kept in memory: this store's own writes read
 * them again at once, another process's or replica's are read at the next refresh of the database's shared state
 * (before each request: a key revoked on one replica gets 401 on every replica from the next request on).
 */
export class KeyStore {
  private readonly cache: TableCache<Map<string, Entry>>;
  /** Keys that live in this process's memory only (the CLI's own in-process server). */
  private readonly temporary = new Map<string, Entry>();

  private constructor(private readonly db: SqlDatabase, private readonly now: () => Date) {
    this.cache = new TableCache(db, "api_keys", readEntries);
  }

  /** The keys of a database, read once (then kept current by its shared state's refresh). */
  static async open(db: SqlDatabase, now: () => Date = () => new Date()): Promise<KeyStore> {
    const keys = new KeyStore(db, now);
    await keys.cache.load();
    return keys;
  }

  /** Creates a key; the key itself is in the answer and nowhere else (print it once). */
  async create(input: NewKey): Promise<{ key: string; record: ApiKeyRecord }> {
    const checked = validated(input, this.now());
    let generated = generateKey();
    while (this.entries().has(generated.id)) generated = generateKey();
    await this.cache.write((tx) => this.insert(tx, generated.id, hashKey(generated.key), checked, false));
    return { key: generated.key, record: this.require(generated.id) };
  }

  /** Every key, the revoked and expired ones included, oldest first. */
  list(): ApiKeyRecord[] {
    return [...this.entries().values()].map((entry) => entry.record);
  }

  /** Revokes a key at once (its next request gets 401, on every replica); revoking a revoked key changes nothing. */
  async revoke(id: string): Promise<ApiKeyRecord> {
    this.require(id);
    await this.cache.write((tx) => tx.run(REVOKE, [this.now().getTime(), id]));
    return this.require(id);
  }

  /**
   * Checks a presented key: found by its id, then its hash compared in constant time (also when no key has that id,
   * against a dummy). A valid key's last use is recorded.
   */
  check(key: string): KeyCheck {
    const id = keyIdOf(key);
    const entry = this.temporary.get(id) ?? this.entries().get(id);
    const matches = sameHash(hashKey(key), entry?.hash ?? NO_HASH);
    if (entry === undefined || !matches) return { ok: false, reason: "unknown" };
    const { record } = entry;
    const now = this.now();
    if (record.revokedAt !== undefined) return { ok: false, reason: "revoked", record };
    if (record.expiresAt !== undefined && record.expiresAt <= now) return { ok: false, reason: "expired", record };
    if (!this.temporary.has(id)) this.noteUse(entry, now);
    return { ok: true, record };
  }

  /** Whether a key is in force: not revoked (an expired key counts, so that expiry never opens the server). */
  hasActiveKey(): boolean {
    for (const { record } of this.entries().values()) if (record.revokedAt === undefined) return true;
    return false;
  }

  /** Whether some key can be used now: neither revoked nor expired. */
  hasUsableKey(): boolean {
    const now = this.now();
    for (const { record } of this.entries().values()) {
      if (record.revokedAt === undefined && (record.expiresAt === undefined || record.expiresAt > now)) return true;
    }
    return false;
  }

  /**
   * Makes AI_SERVER_ADMIN_KEY's key exist (an admin key named SETTING_KEY_NAME, stored hashed like any other). A
   * different value than last time revokes the earlier one ("replaced"). A key revoked by hand stays revoked
   * ("revoked"): a leaked key must not come back with a restart. Replicas starting together with the same value
   * store it once.
   */
  async ensureSettingKey(key: string): Promise<SettingKeyState> {
    const id = keyIdOf(key);
    const hash = hashKey(key);
    const existing = this.entries().get(id);
    if (existing !== undefined && !sameHash(existing.hash, hash)) {
      throw new Error(`AI_SERVER_ADMIN_KEY has the id "${id}" of another key: choose another value`);
    }
    let replaced = false;
    await this.cache.write(async (tx) => {
      for (const { record } of this.entries().values()) {
        if (record.fromSetting && record.id !== id && record.revokedAt === undefined) {
          await tx.run(REVOKE, [this.now().getTime(), record.id]);
          replaced = true;
        }
      }
      if (existing === undefined) await this.insert(tx, id, hash, { name: SETTING_KEY_NAME, scope: "admin", limits: {} }, true);
    });
    if (existing !== undefined) return existing.record.revokedAt !== undefined ? "revoked" : "present";
    return replaced ? "replaced" : "created";
  }

  /**
   * An admin key that lives in this process's memory only, never stored: the CLI's own in-process server takes it
   * from the command that started it. It does not turn authentication on.
   */
  temporaryAdminKey(): string {
    const { id, key } = generateKey();
    const record: ApiKeyRecord = { id, name: "this command", scope: "admin", limits: {}, createdAt: this.now(), fromSetting: false };
    this.temporary.set(id, { record, hash: hashKey(key) });
    return key;
  }

  private require(id: string): ApiKeyRecord {
    const entry = this.entries().get(id);
    if (entry === undefined) throw new KeyNotFoundError(id);
    return entry.record;
  }

  /**
   * Inserts a key. The setting's key is inserted unless a key of its id exists (a replica that started at the same
   * time stored it first); any other key's id is new (a clash fails rather than answer with another key's record).
   */
  private async insert(tx: SqlExecutor, id: string, hash: Buffer, key: NewKey, fromSetting: boolean): Promise<void> {
    await tx.run(
      `INSERT INTO api_keys (id, name, scope, models, rpm, tpm, max_parallel, hash, created_at, expires_at, from_setting)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)${fromSetting ? " ON CONFLICT (id) DO NOTHING" : ""}`,
      [
        id,
        key.name,
        key.scope,
        key.models === undefined ? null : JSON.stringify(key.models),
        key.limits?.rpm ?? null,
        key.limits?.tpm ?? null,
        key.limits?.maxParallel ?? null,
        hash,
        this.now().getTime(),
        key.expiresAt?.getTime() ?? null,
        fromSetting ? 1 : 0,
      ],
    );
  }

  /**
   * Records a key's use, at most once a minute, without waiting (nor failing the request): the time is for people
   * reading the list, not a change of what the key may do, so other replicas read it at their next reload.
   */
  private noteUse(entry: Entry, now: Date): void {
    const last = entry.record.lastUsedAt?.getTime() ?? 0;
    if (now.getTime() - last < LAST_USED_RESOLUTION_MS) return;
    entry.record = { ...entry.record, lastUsedAt: now };
    this.db.run("UPDATE api_keys SET last_used_at = ? WHERE id = ?", [now.getTime(), entry.record.id]).catch(() => undefined);
  }

  private entries(): Map<string, Entry> {
    return this.cache.value;
  }
}

const REVOKE = "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL";

/** Every key by id, oldest first. */
async function readEntries(db: SqlExecutor): Promise<Map<string, Entry>> {
  const byId = new Map<string, Entry>();
  for (const row of await db.all("SELECT * FROM api_keys ORDER BY created_at, id")) {
    const entry = toEntry(rowSchema.parse(row));
    byId.set(entry.record.id, entry);
  }
  return byId;
}

function toEntry(row: z.infer<typeof rowSchema>): Entry {
  const limits: Limits = {
    ...(row.rpm !== null && { rpm: row.rpm }),
    ...(row.tpm !== null && { tpm: row.tpm }),
    ...(row.max_parallel !== null && { maxParallel: row.max_parallel }),
  };
  const record: ApiKeyRecord = {
    id: row.id,
    name: row.name,
    scope: row.scope,
    ...(row.models !== null && { models: z.array(z.string()).parse(JSON.parse(row.models)) }),
    limits,
    createdAt: new Date(row.created_at),
    ...(row.expires_at !== null && { expiresAt: new Date(row.expires_at) }),
    ...(row.revoked_at !== null && { revokedAt: new Date(row.revoked_at) }),
    ...(row.last_used_at !== null && { lastUsedAt: new Date(row.last_used_at) }),
    fromSetting: row.from_setting === 1,
  };
  return { record, hash: row.hash };
}

/** A new key's fields checked and normalised (model names as the store spells them). */
function validated(input: NewKey, now: Date): NewKey {
  const name = input.name.trim();
  if (name === "" || name.length > NAME_MAX) throw new InvalidRequestError(`name: give the key a name of 1 to ${NAME_MAX} characters`);
  if (input.scope !== "inference" && input.scope !== "admin") throw new InvalidRequestError(`scope: "${String(input.scope)}" is neither "inference" nor "admin"`);
  let models: string[] | undefined;
  if (input.models !== undefined) {
    // One spelling per model (names compare case-insensitively, as the store's do)
    const byKey = new Map(input.models.map((model) => normalizeModelName(model)).map((name) => [name.toLowerCase(), name] as const));
    models = [...byKey.values()];
    if (models.length === 0) throw new InvalidRequestError("models: name at least one model, or leave it out for every model");
  }
  const limits: Limits = {};
  for (const [field, value] of Object.entries(input.limits ?? {}) as Array<[keyof Limits, number | undefined]>) {
    if (value === undefined) continue;
    if (!Number.isInteger(value) || value < 1) throw new InvalidRequestError(`${field === "maxParallel" ? "max_parallel" : field}: expected a whole number of at least 1, got ${value}`);
    limits[field] = value;
  }
  if (input.expiresAt !== undefined && input.expiresAt <= now) throw new InvalidRequestError("expires: the time is not in the future");
  return { name, scope: input.scope, ...(models && { models }), limits, ...(input.expiresAt && { expiresAt: input.expiresAt }) };
}
